#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: media_sync
short_description: Copy the media files a site lacks from another site, add-only
version_added: "0.1.0"
description:
  - Runs on the App server of the target site and copies into O(target_dir) every file of O(source_dir)
    that the target does not have, with C(rsync). The target pulls. When the source site is on another
    host (O(source_host)), rsync reads it over SSH from that host, so the files go from App server to App
    server, never through the controller. Without O(source_host) both folders are on this host and the
    copy is local.
  - Add-only, as the vendor's media sync. Nothing on the target is ever deleted, and a file that exists on
    the target is never written, even when its content differs from the source's (C(--ignore-existing)).
    Existing folders keep their mode, owner and times. New files keep the source's modification time and
    get the source's mode through this host's umask.
  - Only regular files and folders are copied. Symbolic links and special files in the source are
    skipped.
  - When the module runs as root, the files and folders it creates get the owner and group of
    O(target_dir) (the site's user), unless O(match_owner=false). Existing entries are not touched.
  - Logs in to the source with the SSH agent forwarded into this session by the controller (C(sec) loads
    only the source host's key into a private agent for the operation; the C(sync_media.yml) playbook
    turns forwarding on), or with O(ssh_key), a key already on this host.
  - The source's host key is always checked. With O(host_keys) exactly those keys are trusted for the
    source (C(sec) passes the ones the controller trusts for it). Without them, this user's own
    C(known_hosts) decides. An unknown key fails the task; nothing is accepted on first use.
  - Reports how many files and bytes were copied, from rsync's itemized output and C(--stats). Nothing to
    copy reports no change.
author:
  - sec maintainers (!UNKNOWN)
extends_documentation_fragment:
  - fpt.sec.rsync_source
options:
  source_dir:
    description:
      - The source site's media folder, on the source host, for example
        C(/var/rails/com_teststudio_prod/media).
    type: path
    required: true
  target_dir:
    description:
      - The target site's media folder on this host, for example C(/var/rails/com_teststudio_staging/media).
        It is created when missing, if its parent (the site dir) exists.
    type: path
    required: true
  bwlimit:
    description:
      - Maximum transfer rate in KiB per second (C(rsync --bwlimit)), to spare a busy production host.
        V(0) means no limit.
    type: int
    default: 0
  low_priority:
    description:
      - Run rsync under C(nice -n 10) (and C(ionice -c3) where it is allowed) on both hosts, so that the
        live sites keep the CPU and disk they need.
    type: bool
    default: true
  match_owner:
    description:
      - When running as root, give the files and folders created the owner and group of O(target_dir).
    type: bool
    default: true
  list_limit:
    description: How many of the copied (or, in check mode, to-be-copied) files to list in RV(files).
    type: int
    default: 1000
attributes:
  check_mode:
    support: full
    description:
      - Runs C(rsync --dry-run). It connects to the source the same way and lists what would be copied,
        with the same counts. It writes nothing.
  diff_mode:
    support: none
    description: RV(files) lists what is (or would be) copied.
notes:
  - C(rsync) must be installed on both hosts.
  - Do not run this module with C(become) when it logs in with the forwarded agent. C(sudo) drops
    E(SSH_AUTH_SOCK), unless it is configured to keep it.
  - A source file that disappears while the copy runs, or a name the target has as another type of entry
    (a file where the source has a folder), is reported in RV(errors) with RV(complete=false). The task
    does not fail for it, and nothing on the target is replaced.
seealso:
  - module: fpt.sec.db_backup_transfer
"""

EXAMPLES = r"""
- name: Copy the media staging lacks, from production on another App server
  fpt.sec.media_sync:
    source_dir: /var/rails/com_teststudio_prod/media
    target_dir: /var/rails/com_teststudio_staging/media
    source_host: app1.teststudio.com
    source_user: shotgun
    host_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq7vQ0p8mPBFjA7dGQ9bW3ZfzPsOjVOw0k1dxkH4Vd
  register: media

- name: List what would be copied between two sites of one App server
  fpt.sec.media_sync:
    source_dir: /var/rails/com_teststudio_prod/media
    target_dir: /var/rails/com_teststudio_staging/media
  check_mode: true

- name: Throttled, with a key set up between the App servers
  fpt.sec.media_sync:
    source_dir: /var/rails/com_teststudio_prod/media
    target_dir: /var/rails/com_teststudio_staging/media
    source_host: 10.0.0.11
    ssh_key: /home/shotgun/.ssh/id_media_sync
    bwlimit: 50000
"""

RETURN = r"""
files_copied:
  description: How many files were copied (in check mode, would be).
  returned: always
  type: int
  sample: 1523
bytes_copied:
  description: Their total size in bytes.
  returned: always
  type: int
  sample: 734003200
dirs_created:
  description: How many folders were created (in check mode, would be).
  returned: always
  type: int
  sample: 97
files:
  description:
    - The first O(list_limit) files copied (or that would be), as paths relative to the media folder, with
      their sizes.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, relative to O(target_dir).
      type: str
      sample: files/0000/0222/8524/shot_0001_comp_v002.jpg
    size:
      description: Its size in bytes.
      type: int
      sample: 65536
files_listed:
  description: Whether RV(files) lists every file copied (false when there were more than O(list_limit)).
  returned: always
  type: bool
  sample: true
source_files:
  description: Regular files in the source folder, as rsync counted them.
  returned: when rsync ran
  type: int
  sample: 120394
source_bytes:
  description: Their total size in bytes.
  returned: when rsync ran
  type: int
  sample: 98234012311
complete:
  description:
    - False when some names could not be copied (see RV(errors)), for example a source file that vanished
      during the copy or a name that is another type of entry on the target.
  returned: always
  type: bool
  sample: true
passed_over:
  description:
    - Source names passed over by design (symbolic links, devices and other special files), as rsync named
      them, at most O(list_limit). They are not copied; they do not make the copy incomplete.
  returned: always
  type: list
  elements: str
  sample: [0000/0222/8524/link-to-elsewhere]
errors:
  description: rsync's messages about names it could not handle (at most 50).
  returned: always
  type: list
  elements: str
  sample: []
transport:
  description: V(local) (both folders on this host) or V(ssh) (pulled from O(source_host)).
  returned: always
  type: str
  sample: ssh
source:
  description: Where the files came from, as rsync was given it.
  returned: always
  type: str
  sample: shotgun@app1.teststudio.com:/var/rails/com_teststudio_prod/media/
owner_matched:
  description: How many created entries were given O(target_dir)'s owner and group.
  returned: always
  type: int
  sample: 1620
duration:
  description: Seconds the copy took.
  returned: always
  type: float
  sample: 84.2
command:
  description: The rsync command run, as an argument vector. It holds no secret.
  returned: when rsync ran
  type: list
  elements: str
  sample: [nice, -n, "10", rsync, --recursive, --times, --omit-dir-times, --ignore-existing, "..."]
"""

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.priority import low_priority_prefix
from ansible_collections.fpt.sec.plugins.module_utils.rsync_ssh import (
    ADD_ONLY_OPTIONS,
    OUT_FORMAT,
    RSYNC_SOURCE_ARGUMENT_SPEC,
    RsyncError,
    check_endpoint,
    explain_failure,
    find_rsync,
    remote_spec,
    run_rsync,
    ssh_transport,
    write_known_hosts,
)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _match_owner(target: str, created: list[bytes]) -> int:
    """Give the created entries the owner of the target folder (the module runs as root, rsync created
    them as root). lchown: an entry replaced by a symlink meanwhile is not followed."""
    info = os.stat(target)
    base = os.fsencode(target)
    done = 0
    for name in created:
        path = os.path.join(base, name.rstrip(b"/"))
        try:
            current = os.lstat(path)
            if (current.st_uid, current.st_gid) != (info.st_uid, info.st_gid):
                os.lchown(path, info.st_uid, info.st_gid)
            done += 1
        except FileNotFoundError:
            continue
    return done


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source_dir": {"type": "path", "required": True},
            "target_dir": {"type": "path", "required": True},
            **RSYNC_SOURCE_ARGUMENT_SPEC,
            "bwlimit": {"type": "int", "default": 0},
            "low_priority": {"type": "bool", "default": True},
            "match_owner": {"type": "bool", "default": True},
            "list_limit": {"type": "int", "default": 1000},
        },
        supports_check_mode=True,
    )
    params = module.params
    clock = time.monotonic()
    remote = bool(params["source_host"])
    source_dir = os.path.normpath(params["source_dir"])
    target_dir = os.path.abspath(params["target_dir"])
    result: dict = {"changed": False, "files_copied": 0, "bytes_copied": 0, "dirs_created": 0, "files": [],
                    "files_listed": True, "complete": True, "errors": [], "passed_over": [], "owner_matched": 0,
                    "transport": "ssh" if remote else "local", "source": source_dir + "/"}

    def fail(msg: str) -> None:
        result["duration"] = round(time.monotonic() - clock, 3)
        module.fail_json(msg=msg, **result)

    if params["list_limit"] < 0 or params["bwlimit"] < 0:
        fail("list_limit and bwlimit must be 0 or more")
    if not os.path.isabs(source_dir):
        fail(f"source_dir {source_dir} must be an absolute path")

    # The target folder: created when missing (a new staging site), but only inside an existing site dir,
    # so that a wrong path fails instead of growing a tree somewhere.
    if not os.path.isdir(target_dir):
        if os.path.lexists(target_dir):
            fail(f"target_dir {target_dir} exists and is not a folder")
        if not os.path.isdir(os.path.dirname(target_dir)):
            fail(f"target_dir {target_dir}: its parent folder does not exist (is the site dir right?)")
        if not module.check_mode:
            os.mkdir(target_dir, 0o755)
            result["changed"] = True
    real_target = os.path.realpath(target_dir)

    if not remote:
        if not os.path.isdir(source_dir):
            fail(f"source_dir {source_dir} is not a folder on this host")
        real_source = os.path.realpath(source_dir)
        if _inside(real_target, real_source) or _inside(real_source, real_target):
            fail(f"source_dir {source_dir} and target_dir {target_dir} overlap: they must be two sites' "
                 "own media folders")

    # SIGTERM/SIGHUP raise Interrupted, so that rsync is stopped rather than left running without us.
    raise_on_signals()

    try:
        rsync = find_rsync()
    except RsyncError as exc:
        fail(str(exc))
    argv = (low_priority_prefix() if params["low_priority"] else []) + [rsync, *ADD_ONLY_OPTIONS, OUT_FORMAT]
    if module.check_mode:
        argv.append("--dry-run")
    if params["bwlimit"]:
        argv.append(f"--bwlimit={params['bwlimit']}")

    with tempfile.TemporaryDirectory(prefix="sec-media-sync-") as private:
        where = source_dir
        if remote:
            known_hosts = None
            try:
                check_endpoint(params["source_host"], params["source_user"], params["source_port"])
                if params["host_keys"]:
                    known_hosts = write_known_hosts(private, params["source_host"], params["source_port"],
                                                    params["host_keys"])
                argv += ["-e", ssh_transport(params["source_port"], known_hosts, params["ssh_key"],
                                             params["connect_timeout"])]
            except RsyncError as exc:
                fail(str(exc))
            if params["low_priority"]:
                argv.append("--rsync-path=nice -n 10 rsync")
            where = f"{params['source_host']}:{params['source_port']}"
            result["source"] = remote_spec(params["source_user"], params["source_host"], source_dir + "/")
        # Trailing slashes: the contents of one media folder into the other, not a folder inside it.
        argv += [result["source"], real_target + "/"]
        result["command"] = argv

        created: list[bytes] = []
        collect = params["match_owner"] and os.geteuid() == 0 and not module.check_mode

        def on_item(_kind: str, name: bytes) -> None:
            if collect:
                created.append(name)

        try:
            run = run_rsync(argv, list_limit=params["list_limit"], on_item=on_item)
        except (RsyncError, Interrupted) as exc:
            fail(str(exc))

    result.update(
        files_copied=run.file_count, bytes_copied=run.bytes, dirs_created=run.dir_count,
        files=[{"path": name, "size": size} for name, size in run.files],
        files_listed=run.file_count <= len(run.files),
        source_files=(run.stats.get("files_by_type") or {}).get("reg", 0),
        source_bytes=run.stats.get("total_size", 0),
        passed_over=run.skipped,  # not `skipped`: Ansible reads that key as a skipped task
    )
    result["changed"] = result["changed"] or run.file_count > 0 or run.dir_count > 0
    if created:
        result["owner_matched"] = _match_owner(real_target, created)

    if run.rc != 0 and not run.partial:
        message = explain_failure(run.rc, run.stderr, where)
        if remote and not params["ssh_key"] and not os.environ.get("SSH_AUTH_SOCK") and "log in" in message:
            message += "; no SSH agent was forwarded into this session (SSH_AUTH_SOCK is not set)"
        fail(message + (f"; {run.file_count} files were copied before the failure" if run.file_count else ""))
    if run.partial:
        result.update(complete=False, errors=run.errors)
        module.warn(f"some names were not copied (rsync exit {run.rc}), the first: "
                    f"{run.errors[0] if run.errors else 'see errors'}")
    result["duration"] = round(time.monotonic() - clock, 3)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
