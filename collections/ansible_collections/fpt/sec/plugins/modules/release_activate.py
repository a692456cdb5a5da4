#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_activate
short_description: Switch a site's current release atomically, and restart its application
version_added: "0.1.0"
description:
  - Runs on the site's App or API server. Points C(<site_dir>/current) at the staged release
    C(releases/<version>). The new link is made under a temporary name and renamed over the old one. The
    rename replaces it in one step, so there is never a moment without C(current). It is never removed
    and made again.
  - Then touches C(<site_dir>/tmp/restart.txt), so that the application reloads on the new release
    (Passenger's convention).
  - Switching back to the previous release (a rollback) is the same call with the older version.
  - By default the switch is refused when any migration the release ships is missing from the database's
    C(schema_migrations) table. C(current) then never points at code whose migrations did not run. Use
    O(require_migrations=false) for a rollback to a release whose database is being restored.
  - A release already current reports no change and does not restart the application, unless
    O(restart=always).
  - With O(leave_maintenance=true), the maintenance page (C(tmp/maintenance.html), see
    M(fpt.sec.maintenance)) is removed right after the switch. Only for a single web head. With several,
    the upgrade playbook switches every head first and removes the pages in a task of its own, so that a
    head lost right after its switch still shows its page (the collection's docs/split_cluster.md).
extends_documentation_fragment:
  - fpt.sec.site
options:
  version:
    description: The staged release to make current, for example V(8.2.0).
    type: str
    required: true
  restart:
    description:
      - V(changed) touches C(tmp/restart.txt) when C(current) changed. V(always) touches it in any case,
        for example after the database was restored under the same code. V(never) leaves it alone.
    type: str
    choices: [changed, always, never]
    default: changed
  require_migrations:
    description: Refuse the switch when the database lacks any migration the release ships.
    type: bool
    default: true
  leave_maintenance:
    description:
      - After the switch and the restart, remove the maintenance page so that the site serves the release.
      - Nothing is removed when the task fails.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Checks the release and the migrations and reports whether the link would change.
  diff_mode:
    support: full
    description: Shows the link's target before and after.
seealso:
  - module: fpt.sec.release_stage
  - module: fpt.sec.db_migrate
"""

EXAMPLES = r"""
- name: Switch every App server of the site to 8.2.0
  fpt.sec.release_activate:
    site_dir: "{{ sec_site.site_dir }}"
    version: 8.2.0
  register: activated

- name: Switch to 8.2.0 and open the site in the same step (the end of an upgrade's window)
  fpt.sec.release_activate:
    site_dir: "{{ sec_site.site_dir }}"
    version: 8.2.0
    leave_maintenance: true

- name: Switch back to the release that ran before
  fpt.sec.release_activate:
    site_dir: "{{ sec_site.site_dir }}"
    version: "{{ activated.previous_version }}"
    require_migrations: false
"""

RETURN = r"""
version:
  description: The release C(current) points at after the task.
  returned: always
  type: str
  sample: 8.2.0
previous_version:
  description: The version C(current) pointed at before the task, null when it pointed nowhere.
  returned: always
  type: str
  sample: 8.1.2
previous_link:
  description: The link's text before the task.
  returned: always
  type: str
  sample: releases/8.1.2
link:
  description: The link's text after the task (or that it would have, in check mode).
  returned: always
  type: str
  sample: releases/8.2.0
restarted:
  description: Whether C(tmp/restart.txt) was touched (or would be).
  returned: always
  type: bool
  sample: true
switched_at:
  description: When the link was renamed into place, in seconds since the epoch. Null when it did not change.
  returned: always
  type: float
  sample: 1714564823.512
maintenance_left:
  description: Whether the maintenance page was removed (or would be), with O(leave_maintenance).
  returned: always
  type: bool
  sample: false
missing_migrations:
  description: Migrations the release ships that the database lacks (checked when O(require_migrations)).
  returned: always
  type: list
  elements: str
  sample: []
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import site_releases
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PostgresError
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def missing_migrations(module: AnsibleModule, site_dir: str, folder: str) -> list[str]:
    """The release's migration files whose versions are not in schema_migrations."""
    migrations = site_releases.migrations_of(folder)
    if not migrations:
        return []

    def refuse(message: str) -> None:
        raise site_releases.ReleaseError(message)

    with site_database(module, site_dir, refuse) as client:
        try:
            applied = client.applied_migrations()
        except PostgresError as exc:
            raise site_releases.ReleaseError(f"cannot read schema_migrations of {client.database}: {exc}") from None
    return [m["file"] for m in migrations if m["version"] not in applied]


def main() -> None:
    module = site_module(
        argument_spec={
            "version": {"type": "str", "required": True},
            "restart": {"type": "str", "choices": ["changed", "always", "never"], "default": "changed"},
            "require_migrations": {"type": "bool", "default": True},
            "leave_maintenance": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    result: dict = {"changed": False, "version": params["version"], "restarted": False, "switched_at": None,
                    "missing_migrations": [], "maintenance_left": False}
    try:
        version = str(Version(params["version"]))
    except ValueError as exc:
        module.fail_json(msg=str(exc), **result)
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host", **result)

    folder = site_releases.release_dir(site_dir, version)
    before = site_releases.current_state(site_dir)
    result.update(version=version, previous_version=before["version"], previous_link=before["link"])
    if os.path.islink(folder) or not os.path.isdir(folder):
        module.fail_json(msg=f"release {version} is not staged in {folder} (fpt.sec.release_stage first)", **result)
    written = site_releases.read_json(os.path.join(folder, site_releases.MANIFEST_NAME)) or {}
    try:
        with open(os.path.join(folder, "VERSION"), encoding="utf-8") as handle:
            stated = handle.readline().strip()
    except OSError:
        stated = written.get("version")
    if stated != version:
        module.fail_json(msg=f"{folder} holds release {stated}, not {version}", **result)

    target = site_releases.link_text(site_dir, version, before["link"])
    result["link"] = target
    is_current = before["release"] is not None and os.path.realpath(before["release"]) == os.path.realpath(folder)
    if params["require_migrations"]:
        try:
            missing = missing_migrations(module, site_dir, folder)
        except site_releases.ReleaseError as exc:
            module.fail_json(msg=f"cannot check the migrations of release {version}: {exc}", **result)
        result["missing_migrations"] = missing
        if missing:
            module.fail_json(msg=f"release {version} ships {len(missing)} migration(s) the database has not run "
                                 f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): run "
                                 "fpt.sec.db_migrate first; current was not changed", **result)

    switch = not is_current
    restart = params["restart"] == "always" or (params["restart"] == "changed" and switch)
    page = os.path.join(site_dir, site_releases.MAINTENANCE_PAGE)
    leave = params["leave_maintenance"] and os.path.lexists(page)
    result.update(changed=switch or restart or leave, restarted=restart, maintenance_left=leave,
                  diff={"before": f"current -> {before['link']}\n", "after": f"current -> {target}\n"})
    if module.check_mode:
        module.exit_json(**result)
    try:
        if switch:
            site_releases.switch_current(site_dir, target)
            result["switched_at"] = round(time.time(), 3)
        if restart:
            site_releases.touch(os.path.join(site_dir, site_releases.RESTART_FILE))
    except (OSError, site_releases.ReleaseError) as exc:
        result["maintenance_left"] = False
        module.fail_json(msg=f"cannot switch {site_dir}/current to {target}: {exc}", **result)
    if leave:
        try:
            os.unlink(page)
        except FileNotFoundError:
            result["maintenance_left"] = False
        except OSError as exc:
            result["maintenance_left"] = False
            module.fail_json(msg=f"switched to {version} but cannot remove the maintenance page {page}: {exc}",
                             **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
