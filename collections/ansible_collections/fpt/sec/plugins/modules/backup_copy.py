#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_copy
short_description: Keep verified copies of a site's backups on a backup host
version_added: "0.3.0"
description:
  - Runs on a backup host (a NAS or backup server reachable over SSH), whose folder for one site's copies is
    O(copies_dir), for example C(/srv/sec-backups/studio/com_teststudio_prod).
  - Pulls one backup made by M(fpt.sec.db_backup) from the site's App server
    (C(<source_site_dir>/db_backup/<backup>/)) with C(rsync) over SSH, directly from host to host (never through
    the controller), logging in as M(fpt.sec.media_sync) does (the forwarded SSH agent or O(ssh_key)) and
    checking the App server's host key (O(host_keys)). The copy lands under a hidden temporary name, every
    file is checked against the manifest's sha256 and size, and only then does it get the backup's name,
    with C(sec-copy.json) saying when it was verified. A failure removes the partial copy and fails.
  - A copy already there is verified in full and kept (no change); one that fails its check fails the task.
  - Then the retention of the backup host, independent of the App server's - the copies beyond the newest
    O(keep_copies) and those older than O(keep_days) go, never the one just made nor a pinned one (a
    C(.sec-pinned) file in it).
  - M(fpt.sec.backup_copy_info) lists the copies.
author:
  - sec maintainers (!UNKNOWN)
extends_documentation_fragment:
  - fpt.sec.rsync_source
options:
  copies_dir:
    description: This host's folder for the site's copies. Made when missing.
    type: path
    required: true
  backup:
    description: The backup's folder name, as M(fpt.sec.db_backup) returns it.
    type: str
    required: true
  source_site_dir:
    description: The site's folder on the App server.
    type: path
    required: true
  keep_copies:
    description: Copies to keep on this host, newest first; V(0) keeps all.
    type: int
    default: 0
  keep_days:
    description: Remove copies older than this many days; V(0) keeps them whatever their age.
    type: int
    default: 0
  low_priority:
    description: Run the transfer under C(nice -n 10) on both hosts.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Says whether the copy would be made, and copies and removes nothing.
  diff_mode:
    support: none
    description: A copy has no meaningful diff.
notes:
  - C(rsync) must be installed on the App server and on the backup host.
seealso:
  - module: fpt.sec.db_backup
  - module: fpt.sec.db_backup_transfer
"""

EXAMPLES = r"""
- name: Copy a new backup to the NAS, keeping 14 copies
  fpt.sec.backup_copy:
    copies_dir: /srv/sec-backups/studio/com_teststudio_prod
    backup: 20240501T120000Z_8.0.0
    source_site_dir: /var/rails/com_teststudio_prod
    source_host: app1.teststudio.com
    keep_copies: 14
  delegate_to: nas1

"""

RETURN = r"""
copy_path:
  description: The copy's folder on this host.
  returned: always
  type: str
  sample: /srv/sec-backups/studio/com_teststudio_prod/20240501T120000Z_8.0.0
method:
  description: V(rsync) (copied now) or V(present) (already there and verified).
  returned: always
  type: str
  sample: rsync
transferred_bytes:
  description: Bytes rsync transferred.
  returned: always
  type: int
  sample: 104857600
checked_files:
  description: Files checked against the manifest.
  returned: always
  type: int
  sample: 12
removed:
  description: Copies the retention removed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import json
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import db_backups, rsync_ssh
from ansible_collections.fpt.sec.plugins.module_utils.backup_copies import COPY_RECORD, list_copies
from ansible_collections.fpt.sec.plugins.module_utils.durable import fsync_dir, write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.priority import low_priority_prefix
from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso, iso_utc


class CopyFailed(Exception):
    """The copy could not be made or does not match its manifest. ``str()`` is one line."""


def retention(copies: list[dict], keep: int, days: int, spare: str, now: float) -> list[str]:
    """The copies to remove: beyond the newest ``keep`` (0: none), or older than ``days`` (0: none); never
    ``spare`` nor a pinned copy."""
    removable = [c for c in copies if c["name"] != spare and not c.get("pinned")]
    doomed = set()
    if keep > 0:
        kept = [c for c in copies if c["name"] == spare or c.get("pinned")]
        newest_first = list(reversed(removable))
        doomed |= {c["name"] for c in newest_first[max(keep - len(kept), 0):]}
    if days > 0:
        for copy in removable:
            started = epoch_of_iso(copy.get("started") or "")
            if started and now - started > days * 86400:
                doomed.add(copy["name"])
    return sorted(doomed)


def pull(params: dict, partial: str, private: str) -> int:
    """rsync of the App server's backup folder into ``partial``; the bytes transferred."""
    rsync_ssh.check_endpoint(params["source_host"], params["source_user"], params["source_port"])
    known_hosts = (rsync_ssh.write_known_hosts(private, params["source_host"], params["source_port"],
                                               params["host_keys"]) if params["host_keys"] else None)
    argv = (low_priority_prefix() if params["low_priority"] else []) + [
        rsync_ssh.find_rsync(), *rsync_ssh.BACKUP_COPY_OPTIONS, rsync_ssh.OUT_FORMAT,
        "-e", rsync_ssh.ssh_transport(params["source_port"], known_hosts, params["ssh_key"],
                                      params["connect_timeout"])]
    if params["low_priority"]:
        argv.append("--rsync-path=nice -n 10 rsync")
    source = os.path.join(db_backups.backup_root(params["source_site_dir"]), params["backup"])
    remote = rsync_ssh.remote_spec(params["source_user"], params["source_host"], source)
    run = rsync_ssh.run_rsync(argv + [f"{remote}/", partial + "/"], list_limit=0)
    if run.rc != 0:
        where = f"{params['source_host']}:{params['source_port']}"
        raise CopyFailed(rsync_ssh.explain_failure(run.rc, run.stderr, where))
    return int(run.stats.get("transferred_size", run.bytes) or 0)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "copies_dir": {"type": "path", "required": True},
            "backup": {"type": "str", "required": True},
            "source_site_dir": {"type": "path", "required": True},
            **rsync_ssh.RSYNC_SOURCE_ARGUMENT_SPEC,
            "keep_copies": {"type": "int", "default": 0},
            "keep_days": {"type": "int", "default": 0},
            "low_priority": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    copies_dir = os.path.abspath(params["copies_dir"])
    if not params["source_host"]:
        module.fail_json(msg="source_host is required: the App server the backup is pulled from")
    clock = time.monotonic()
    name = params["backup"]
    final = os.path.join(copies_dir, str(name))
    result: dict = {"changed": False, "copy_path": final, "method": None, "transferred_bytes": 0,
                    "checked_files": 0, "removed": []}

    def fail(msg: str) -> None:
        result["duration"] = round(time.monotonic() - clock, 3)
        module.fail_json(msg=msg, **result)

    if not db_backups._NAME_RE.match(str(name)) or ".." in str(name):
        fail(f"backup {name!r}: give the folder name of a backup, as db_backup returns it, not a path")
    if params["keep_copies"] < 0 or params["keep_days"] < 0:
        fail("keep_copies and keep_days must be 0 (keep all) or more")
    raise_on_signals()
    if os.path.lexists(final):
        try:
            result["checked_files"] = db_backups.verify_files(final, db_backups.read_manifest(final))
        except (db_backups.BackupError, Interrupted) as exc:
            fail(f"the copy already in {copies_dir} does not check out: {exc}; it was left as it is")
        result["method"] = "present"
    elif module.check_mode:
        result.update(changed=True, method="rsync")
    else:
        os.makedirs(copies_dir, 0o750, exist_ok=True)
        partial = os.path.join(copies_dir, db_backups.partial_name(name))
        try:
            with tempfile.TemporaryDirectory(prefix="sec-backup-copy-") as private:
                os.mkdir(partial, 0o750)
                result["transferred_bytes"] = pull(params, partial, private)
            manifest = db_backups.read_manifest(partial)
            result["checked_files"] = db_backups.verify_files(partial, manifest)
            write_atomic(os.path.join(partial, COPY_RECORD),
                         (json.dumps({"verified_at": iso_utc(), "from": params["source_host"]}, sort_keys=True)
                          + "\n").encode(), 0o640)
            os.rename(partial, final)
            fsync_dir(copies_dir)
        except (CopyFailed, db_backups.BackupError, rsync_ssh.RsyncError, Interrupted, OSError) as exc:
            shutil.rmtree(partial, ignore_errors=True)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            fail(f"the copy of backup {name} failed: {detail}; the partial copy was removed")
        result.update(changed=True, method="rsync")
    doomed = retention(list_copies(copies_dir), params["keep_copies"], params["keep_days"], str(name), time.time())
    if not module.check_mode:
        for gone in doomed[:]:
            if db_backups.is_pinned(os.path.join(copies_dir, gone)):
                doomed.remove(gone)  # pinned since the copies were listed: the pin wins
                continue
            shutil.rmtree(os.path.join(copies_dir, gone), ignore_errors=True)
    result.update(removed=doomed, changed=result["changed"] or bool(doomed),
                  duration=round(time.monotonic() - clock, 3))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
