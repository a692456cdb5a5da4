#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_stage
short_description: Verify a release archive and unpack it under the site's releases folder
version_added: "0.1.0"
description:
  - Runs on an App or API server, with the release archive already copied there. Checks the archive
    completely, then unpacks it into C(<site_dir>/releases/<version>/). Nothing in C(current) changes, so
    the site keeps serving its running release while this runs.
  - The archive's name must be C(<name>-<version>.tar.gz) with O(version) in it. It is verified before
    anything is written. Its C(MANIFEST.json) must list every file with the right sha256, and C(VERSION) must
    hold the version.
  - Archives that could write outside their folder are refused before anything is written. That means
    members with C(..) or an absolute path, links that point out of the tree, devices and FIFOs. The
    message names the member.
  - Extraction happens in a hidden folder renamed into place at the end, so C(releases/<version>) is
    either complete or absent, even if the task is killed.
  - A release already staged with the same manifest and every file intact reports no change. A staged
    folder that differs (another build, an edited file) is replaced, unless it is the release C(current)
    points at, which is refused.
extends_documentation_fragment:
  - fpt.sec.site
options:
  archive:
    description: The release archive on the server, C(<name>-<version>.tar.gz).
    type: path
    required: true
  version:
    description: The version the archive must hold, for example V(8.2.0).
    type: str
    required: true
  remove_archive:
    description: Remove the archive once the release is staged (or found already staged).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description:
      - Verifies the archive and reports whether it would be unpacked or replaced. Writes nothing.
      - An archive not on the host yet (its copy ran in check mode too) is reported as to be staged, unverified.
  diff_mode:
    support: none
    description: A release folder has no meaningful diff.
notes:
  - The files belong to the user the task runs as. Modes keep at most rwxr-xr-x.
seealso:
  - module: fpt.sec.release_activate
  - module: fpt.sec.db_migrate
"""

EXAMPLES = r"""
- name: Copy the release to the App server
  ansible.builtin.copy:
    src: /srv/releases/shotgun-8.2.0.tar.gz
    dest: /var/rails/com_teststudio_prod/tmp/sec-releases/shotgun-8.2.0.tar.gz
    mode: "0644"

- name: Verify and unpack it under releases/8.2.0
  fpt.sec.release_stage:
    site_dir: /var/rails/com_teststudio_prod
    archive: /var/rails/com_teststudio_prod/tmp/sec-releases/shotgun-8.2.0.tar.gz
    version: 8.2.0
    remove_archive: true
"""

RETURN = r"""
path:
  description: The staged release's folder.
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/releases/8.2.0
version:
  description: The release's version.
  returned: always
  type: str
  sample: 8.2.0
outcome:
  description:
    - V(staged) (unpacked now), V(replaced) (a different staged copy was replaced), V(already_staged)
      (identical, nothing done). In check mode, what would happen.
  returned: success
  type: str
  sample: staged
reason:
  description: Why a staged copy was replaced (or would be).
  returned: when RV(outcome) is V(replaced)
  type: str
  sample: /var/rails/com_teststudio_prod/releases/8.2.0/public/index.html was modified
migrations:
  description: The migration files the release ships, in the order they run.
  returned: success
  type: list
  elements: str
  sample: [20200101000000_create_base_schema.sql, 20200601000000_add_shot_status.sql]
files:
  description: How many files the manifest lists.
  returned: success
  type: int
  sample: 7
size:
  description: Bytes of the staged release's files (0 in check mode when it would be unpacked).
  returned: success
  type: int
  sample: 52311
archive_removed:
  description: Whether the archive was removed.
  returned: always
  type: bool
  sample: false
"""

import os
import tempfile
import time

from ansible_collections.fpt.sec.plugins.module_utils import release_archive, site_releases
from ansible_collections.fpt.sec.plugins.module_utils.files import folder_size
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def replace_release(archive: str, target: str) -> None:
    """Unpack beside ``target`` and swap it in; the old copy is removed afterwards."""
    parent = os.path.dirname(target)
    fresh = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".new", dir=parent)
    os.rmdir(fresh)  # safe_extract wants a free name; the unique name is what mkdtemp was for
    old = os.path.join(parent, f".{os.path.basename(target)}.sec-old-{os.getpid()}-{int(time.time())}")
    try:
        release_archive.safe_extract(archive, fresh)
        os.rename(target, old)
        os.rename(fresh, target)
    except BaseException:
        if os.path.isdir(fresh):
            site_releases.remove_tree(fresh)
        if os.path.isdir(old) and not os.path.lexists(target):
            os.rename(old, target)
        raise
    site_releases.remove_tree(old)


def main() -> None:
    module = site_module(
        argument_spec={
            "archive": {"type": "path", "required": True},
            "version": {"type": "str", "required": True},
            "remove_archive": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    archive = params["archive"]
    result: dict = {"changed": False, "version": params["version"], "archive_removed": False}
    try:
        version = str(Version(params["version"]))
    except ValueError as exc:
        module.fail_json(msg=str(exc), **result)
    target = site_releases.release_dir(site_dir, version)
    result.update(version=version, path=target)
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host", **result)

    try:
        named = release_archive.split_archive_name(archive)[1]
        if named != version:
            module.fail_json(msg=f"{os.path.basename(archive)} is release {named}, not {version}", **result)
        if not os.path.isfile(archive):
            if module.check_mode:
                # A check-mode copy before this task copied nothing: say what would happen, as far as known.
                staged = os.path.isdir(target)
                result.update(changed=True, outcome="replaced" if staged else "staged", migrations=[], files=0,
                              size=0, msg=f"{archive} is not on this host yet: it was not verified")
                module.exit_json(**result)
            module.fail_json(msg=f"release archive {archive} is not on this host (copy it first)", **result)
        manifest = release_archive.verify(archive)
    except release_archive.ReleaseArchiveError as exc:
        module.fail_json(msg=f"release {version} refused, nothing was unpacked: {exc}", **result)
    migrations = list(manifest["migrations"])
    result.update(migrations=migrations, files=len(manifest["files"]))

    outcome, reason = "staged", None
    if os.path.lexists(target):
        if os.path.islink(target) or not os.path.isdir(target):
            module.fail_json(msg=f"{target} exists and is not a folder: move it away first", **result)
        try:
            reason = site_releases.staged_difference(target, manifest)
        except site_releases.ReleaseError as exc:
            reason = str(exc)
        if reason is None:
            outcome = "already_staged"
        else:
            running = site_releases.current_state(site_dir)["release"]
            if running and os.path.realpath(running) == os.path.realpath(target):
                module.fail_json(msg=f"release {version} is the running one (current) and differs from the "
                                     f"archive: {reason}; it is not replaced under a live site", **result)
            outcome = "replaced"
    result.update(outcome=outcome)
    if reason is not None and outcome == "replaced":
        result["reason"] = reason

    changed = outcome != "already_staged"
    if module.check_mode:
        result["size"] = folder_size(target) if outcome == "already_staged" else 0
        result["changed"] = changed or (params["remove_archive"] and os.path.exists(archive))
        module.exit_json(**result)

    try:
        os.makedirs(site_releases.releases_root(site_dir), 0o755, exist_ok=True)
        if outcome == "staged":
            release_archive.safe_extract(archive, target)
        elif outcome == "replaced":
            replace_release(archive, target)
    except (release_archive.ReleaseArchiveError, OSError, site_releases.ReleaseError) as exc:
        module.fail_json(msg=f"cannot unpack release {version} into {target}: {exc}", **result)
    result["size"] = folder_size(target)
    if params["remove_archive"]:
        try:
            os.unlink(archive)
            result["archive_removed"] = True
            changed = True
        except FileNotFoundError:
            pass
        except OSError as exc:
            module.warn(f"release {version} is staged but its archive {archive} could not be removed: {exc}")
    result["changed"] = changed
    module.exit_json(**result)


if __name__ == "__main__":
    main()
