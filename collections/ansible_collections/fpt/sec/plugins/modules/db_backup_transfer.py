#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_backup_transfer
short_description: Bring another site's database backup into this site's backup folder, verified
version_added: "0.1.0"
description:
  - Runs on the App server of the target site, whose folder on this host is O(site_dir) (for example
    C(/var/rails/com_teststudio_staging)). Copies one backup made by M(fpt.sec.db_backup) from the
    source site's backup folder, C(<source_site_dir>/db_backup/<backup>/), into the target's,
    C(<site_dir>/db_backup/<backup>/), where M(fpt.sec.db_restore) can restore it. This is the transfer
    step of a production to staging sync.
  - When the source site is on another host (O(source_host)), the target pulls the backup with C(rsync)
    over SSH. The data is streamed from App server to App server, never through the controller. It
    logs in as M(fpt.sec.media_sync) does, with the forwarded SSH agent or O(ssh_key), and always checks
    the source's host key (O(host_keys), else this user's C(known_hosts)). The manifest comes first and
    is checked before the dump is transferred.
  - When both sites are on this host, every file is hard-linked into the target's folder, which takes no
    time and no space (a backup is never modified). Files on another file system are copied instead.
  - The copy is made under a hidden temporary name (C(.partial-<backup>-<pid>)). Every file is checked
    against the sha256 and size in the manifest on arrival, and nothing else may be in the dump. Only
    then is the folder renamed to the backup's name. A failure removes the temporary folder.
  - Refused before anything is copied, each with one line that says why. The backup was not verified when
    it was made. It is not a backup of O(source_site). It is older than O(max_age_hours). Or it was taken
    on a newer version than the target site's code (upgrade the target first). Or there is not enough
    free space for it.
  - A backup of the same name already in the target's folder is checked in full and reused (no change).
    If it fails its checks, the task fails and leaves it alone.
extends_documentation_fragment:
  - fpt.sec.site
  - fpt.sec.rsync_source
options:
  backup:
    description:
      - The backup's folder name in the source's C(db_backup/), for example C(20240501T120000Z_8.0.0), as
        M(fpt.sec.db_backup) returns it.
    type: str
    required: true
  source_site_dir:
    description:
      - The source site's folder, on the source host; the backup is in its C(db_backup/).
      - Exactly one of O(source_site_dir) and O(source_backups_dir) is given.
    type: path
  source_backups_dir:
    description:
      - A folder of backups on the source host other than a site's C(db_backup/), such as a backup host's
        copies of the site's backups (M(fpt.sec.backup_copy)). A restore brings a copy back this way when the
        App server has lost its own.
    type: path
  source_site:
    description:
      - The source site's name or reverse name. When set, the backup's manifest must name this site.
    type: str
  max_age_hours:
    description:
      - Refuse a backup that ended longer ago than this many hours. V(0) accepts any age.
    type: int
    default: 0
  low_priority:
    description: Run the transfer under C(nice -n 10) on both hosts.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description:
      - Reads the backup's manifest (over SSH when the source is remote, into a temporary folder) and makes
        every check that needs no copy. It reports what would be transferred, and writes nothing in the
        backup folder.
  diff_mode:
    support: none
    description: A backup transfer has no meaningful diff.
notes:
  - C(rsync) must be installed on both hosts when they differ.
seealso:
  - module: fpt.sec.db_backup
  - module: fpt.sec.db_restore
  - module: fpt.sec.media_sync
"""

EXAMPLES = r"""
- name: Bring production's backup to staging's App server
  fpt.sec.db_backup_transfer:
    site_dir: /var/rails/com_teststudio_staging
    backup: 20240501T120000Z_8.0.0
    source_site_dir: /var/rails/com_teststudio_prod
    source_site: prod.teststudio.com
    source_host: app1.teststudio.com
    source_user: shotgun
  register: transfer

- name: Two sites of one App server, a backup at most a day old
  fpt.sec.db_backup_transfer:
    site_dir: /var/rails/com_teststudio_staging
    backup: 20240501T120000Z_8.0.0
    source_site_dir: /var/rails/com_teststudio_prod
    max_age_hours: 24
"""

RETURN = r"""
name:
  description: The backup's folder name, the same in both sites' backup folders.
  returned: always
  type: str
  sample: 20240501T120000Z_8.0.0
backup_path:
  description:
    - The backup's folder in the target's backup folder (in check mode, where it would be). (Not named
      C(path), which would make Ansible replace RV(size) with the folder's own.)
  returned: always
  type: str
  sample: /var/rails/com_teststudio_staging/db_backup/20240501T120000Z_8.0.0
method:
  description:
    - How it got there. V(rsync) over SSH, V(hardlink), V(copy) (another file system on this host), or
      V(present) (already there and verified).
  returned: always
  type: str
  sample: rsync
size:
  description: Bytes of the dump files, from the manifest.
  returned: when the manifest was read
  type: int
  sample: 734003200
transferred_bytes:
  description: Bytes that rsync transferred, or copied; 0 for hard links.
  returned: always
  type: int
  sample: 734105211
checked_files:
  description: How many files were checked against their sha256 on arrival (0 in check mode).
  returned: always
  type: int
  sample: 112
verified:
  description: Every file of the copy matched the manifest. False in check mode.
  returned: always
  type: bool
  sample: true
backup_site:
  description: The site the backup is of, from its manifest.
  returned: when the manifest was read
  type: str
  sample: prod.teststudio.com
backup_version:
  description: The site version the backup was taken on.
  returned: when the manifest was read
  type: str
  sample: 8.0.0
backup_ended:
  description: When the backup was finished, UTC.
  returned: when the manifest was read
  type: str
  sample: "2024-05-01T12:00:42Z"
age_hours:
  description: The backup's age in hours.
  returned: when the manifest was read
  type: float
  sample: 0.2
site_version:
  description: The version of the target site's code.
  returned: always
  type: str
  sample: 8.0.0
duration:
  description: Seconds for the whole module run.
  returned: always
  type: float
  sample: 12.3
command:
  description: The rsync command (or the one that would run) as an argument vector, null for a local copy.
  returned: always
  type: list
  elements: str
  sample: [nice, -n, "10", rsync, --recursive, --times, "..."]
"""

import datetime
import errno
import os
import shutil
import tempfile
import time

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, rsync_ssh
from ansible_collections.fpt.sec.plugins.module_utils.durable import fsync_dir
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.priority import low_priority_prefix
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    looks_like_site_dir,
    read_running_version,
    reverse_name,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version

# The transfer is a plain copy of a fresh folder: no add-only subtleties, but the same transport and output.
# Room to leave beyond the backup's size, so that a transfer never fills the disk the site writes to.
FREE_SPACE_MARGIN = 256 * 1024 * 1024


class Refused(Exception):
    """The backup must not be used for this target. ``str()`` is one line."""


def _site_key(text: str | None) -> str | None:
    if not text or not str(text).strip():
        return None
    text = str(text).strip().lower()
    return reverse_name(text) if "." in text else text


def _age_hours(manifest: dict) -> float | None:
    stamp = manifest.get("ended") or manifest.get("started")
    try:
        moment = datetime.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)  # noqa: UP017
    except ValueError:
        return None
    return max((db_backups.utc_now() - moment).total_seconds() / 3600.0, 0.0)


def check_manifest(manifest: dict, name: str, source_site: str | None, max_age_hours: int,
                   site_version: str | None) -> float | None:
    """Raise Refused when this backup must not be brought to the target; returns its age in hours."""
    if not db_backups.made_verified(manifest):
        raise Refused(f"backup {name} was not verified when it was made: take a new backup")
    wanted = _site_key(source_site)
    theirs = {k for k in (_site_key(manifest.get("site")), _site_key(manifest.get("reverse_name"))) if k}
    if wanted and wanted not in theirs:
        raise Refused(f"backup {name} is a backup of {manifest.get('site') or 'another site'}, not of {source_site}")
    age = _age_hours(manifest)
    if max_age_hours > 0:
        if age is None:
            raise Refused(f"backup {name}: its manifest has no readable date, so its age cannot be checked")
        if age > max_age_hours:
            raise Refused(f"backup {name} is {age:.1f} hours old, older than the {max_age_hours} hours allowed: "
                          "take a new backup, or allow an older one")
    backup_version = manifest.get("version")
    try:
        newer = Version(str(backup_version)) > Version(str(site_version))
    except ValueError:
        raise Refused(f"cannot compare the backup's version {backup_version} with the target's code "
                      f"({site_version})") from None
    if newer:
        raise Refused(f"backup {name} was taken on version {backup_version}, newer than the target's code "
                      f"({site_version}): upgrade the target to {backup_version} first")
    return age


def _free_bytes(folder: str) -> int:
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


def _link_or_copy(source: str, partial: str, manifest: dict) -> tuple[str, int]:
    """Hard-link every file of the backup into ``partial``; copy where linking is not possible."""
    # As over rsync, a dump holding a file its manifest does not list is refused, not silently trimmed.
    extra = sorted(set(db_backups.dump_files(source)) - set(manifest["files"]))
    if extra:
        raise db_backups.BackupError(f"backup {os.path.basename(source)}: {extra[0]} is not in the manifest (the "
                                     "backup was changed after it was made)")
    method, copied = "hardlink", 0
    for rel in [db_backups.MANIFEST, *sorted(manifest["files"])]:
        src = os.path.join(source, rel)
        dst = os.path.join(partial, rel)
        os.makedirs(os.path.dirname(dst), mode=0o750, exist_ok=True)
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copy2(src, dst, follow_symlinks=False)
            method = "copy"
            copied += os.path.getsize(dst)
    return method, copied


def main() -> None:
    module = site_module(
        argument_spec={
            "backup": {"type": "str", "required": True},
            "source_site_dir": {"type": "path"},
            "source_backups_dir": {"type": "path"},
            "source_site": {"type": "str"},
            **rsync_ssh.RSYNC_SOURCE_ARGUMENT_SPEC,
            "max_age_hours": {"type": "int", "default": 0},
            "low_priority": {"type": "bool", "default": True},
        },
        required_one_of=[("source_site_dir", "source_backups_dir")],
        mutually_exclusive=[("source_site_dir", "source_backups_dir")],
        supports_check_mode=True,
    )
    params = module.params
    clock = time.monotonic()
    name = params["backup"]
    site_dir = os.path.abspath(params["site_dir"])
    # Where the source's backups are: a site's db_backup/, or another folder of backups (a backup host's).
    source_backups = os.path.normpath(params["source_backups_dir"] or
                                      db_backups.backup_root(params["source_site_dir"]))
    source_site_dir = os.path.normpath(params["source_site_dir"] or source_backups)
    remote = bool(params["source_host"])
    site_version = read_running_version(site_dir)[0] if looks_like_site_dir(site_dir) else None
    root = db_backups.backup_root(site_dir)
    result: dict = {"changed": False, "name": name, "backup_path": os.path.join(root, str(name)), "method": None,
                    "transferred_bytes": 0, "checked_files": 0, "verified": False, "site_version": site_version,
                    "command": None}

    def fail(msg: str) -> None:
        result["duration"] = round(time.monotonic() - clock, 3)
        module.fail_json(msg=msg, **result)

    def admit(manifest: dict) -> None:
        """What the manifest says, into the result; then every check it allows (Refused)."""
        result.update(size=manifest.get("size"), backup_site=manifest.get("site"),
                      backup_version=manifest.get("version"), backup_ended=manifest.get("ended"))
        result["age_hours"] = check_manifest(manifest, name, params["source_site"], params["max_age_hours"],
                                             site_version)

    if not looks_like_site_dir(site_dir):
        fail(f"{site_dir} is not a site dir (no current and shared/ in it)")
    if not site_version:
        fail(f"cannot tell the version of {site_dir}'s code (current points at no release)")
    if not isinstance(name, str) or not db_backups._NAME_RE.match(name) or ".." in name:
        fail(f"backup {name!r}: give the folder name of a backup, as db_backup returns it, not a path")
    if not os.path.isabs(source_backups):
        fail(f"the source folder {source_backups} must be an absolute path")
    if not remote and os.path.realpath(source_site_dir) == os.path.realpath(site_dir):
        fail("the source and the target are the same site")
    if params["max_age_hours"] < 0:
        fail("max_age_hours must be 0 (any age) or more")

    # SIGTERM/SIGHUP while copying raise Interrupted, so that the temporary folder is removed on the way out.
    raise_on_signals()

    # Already there (a sync run again with the same backup): checked in full, then reused.
    if os.path.lexists(result["backup_path"]):
        try:
            folder = db_backups.resolve_backup(site_dir, name)
            manifest = db_backups.read_manifest(folder)
            admit(manifest)
            result["checked_files"] = db_backups.verify_files(folder, manifest)
        except (db_backups.BackupError, Refused) as exc:
            fail(f"{exc} (the copy already in {root}; it was left as it is)")
        except Interrupted as exc:
            fail(str(exc))
        result.update(method="present", verified=True, duration=round(time.monotonic() - clock, 3))
        module.exit_json(**result)

    with tempfile.TemporaryDirectory(prefix="sec-backup-transfer-") as private:
        # 1. The manifest alone, and every check that needs no copy.
        argv: list[str] = []
        remote_folder = ""
        where = source_backups
        source_folder = os.path.join(source_backups, name)
        try:
            if remote:
                rsync_ssh.check_endpoint(params["source_host"], params["source_user"], params["source_port"])
                rsync = rsync_ssh.find_rsync()
                known_hosts = (rsync_ssh.write_known_hosts(private, params["source_host"], params["source_port"],
                                                           params["host_keys"]) if params["host_keys"] else None)
                argv = (low_priority_prefix() if params["low_priority"] else []) + [
                    rsync, *rsync_ssh.BACKUP_COPY_OPTIONS, rsync_ssh.OUT_FORMAT,
                    "-e", rsync_ssh.ssh_transport(params["source_port"], known_hosts, params["ssh_key"],
                                                  params["connect_timeout"])]
                if params["low_priority"]:
                    argv.append("--rsync-path=nice -n 10 rsync")
                where = f"{params['source_host']}:{params['source_port']}"
                remote_folder = rsync_ssh.remote_spec(params["source_user"], params["source_host"], source_folder)
                landing = os.path.join(private, "manifest")
                os.mkdir(landing, 0o700)
                fetched = rsync_ssh.run_rsync(argv + [f"{remote_folder}/{db_backups.MANIFEST}", landing + "/"])
                if fetched.rc != 0:
                    if "No such file or directory" in fetched.stderr:
                        raise Refused(f"there is no backup {name} (with a manifest) in {where}:{source_backups}")
                    raise rsync_ssh.RsyncError(rsync_ssh.explain_failure(fetched.rc, fetched.stderr, where))
                manifest = db_backups.read_manifest(landing)
            elif params["source_site_dir"]:
                source_folder = db_backups.resolve_backup(source_site_dir, name)
                manifest = db_backups.read_manifest(source_folder)
            else:
                manifest = db_backups.read_manifest(source_folder)
            admit(manifest)
        except (db_backups.BackupError, Refused, rsync_ssh.RsyncError, Interrupted) as exc:
            fail(f"{exc}; nothing was copied")

        if not os.path.isdir(root) and not module.check_mode:
            os.mkdir(root, 0o750)
        size = int(manifest.get("size") or 0)
        check_dir = root if os.path.isdir(root) else site_dir
        if (remote or os.stat(check_dir).st_dev != os.stat(source_site_dir).st_dev) \
                and _free_bytes(check_dir) < size + FREE_SPACE_MARGIN:
            fail(f"not enough free space in {root} for backup {name} ({size} bytes and a margin of "
                 f"{FREE_SPACE_MARGIN // 1048576} MiB); nothing was copied")

        if module.check_mode:
            result.update(changed=True, method="rsync" if remote else "hardlink",
                          command=(argv + [f"{remote_folder}/", result["backup_path"] + "/"]) if remote else None,
                          duration=round(time.monotonic() - clock, 3))
            module.exit_json(**result)

        # 2. The copy, under a temporary name, checked file by file before it gets the backup's name.
        for leftover in db_backups.stale_partials(site_dir):
            db_backups.remove_tree(leftover)
        partial = os.path.join(root, db_backups.partial_name(name))
        try:
            os.mkdir(partial, 0o750)
            if remote:
                transfer_argv = argv + [f"{remote_folder}/", partial + "/"]
                result["command"] = transfer_argv
                run = rsync_ssh.run_rsync(transfer_argv, list_limit=0)
                if run.rc != 0:
                    raise rsync_ssh.RsyncError(rsync_ssh.explain_failure(run.rc, run.stderr, where))
                result.update(method="rsync", transferred_bytes=run.stats.get("transferred_size", run.bytes))
            else:
                method, copied = _link_or_copy(source_folder, partial, manifest)
                result.update(method=method, transferred_bytes=copied)
            arrived = db_backups.read_manifest(partial)
            if arrived != manifest:
                raise db_backups.BackupError(f"backup {name}: its manifest changed while it was copied")
            result["checked_files"] = db_backups.verify_files(partial, arrived)
            os.rename(partial, result["backup_path"])
            fsync_dir(root)
        except (db_backups.BackupError, rsync_ssh.RsyncError, Interrupted, OSError) as exc:
            db_backups.remove_tree(partial)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            fail(f"the transfer of backup {name} failed: {detail}; the partial copy was removed and the target's "
                 "backup folder is as it was")

    result.update(changed=True, verified=True, duration=round(time.monotonic() - clock, 3))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
