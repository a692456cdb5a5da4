#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List a site's database backups, optionally re-reading every file against its manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
module: db_backup_info
short_description: List the database backups in a site's backup folder
version_added: "0.1.0"
description:
  - Lists the complete backups that M(fpt.sec.db_backup) wrote into C(<site_dir>/db_backup/), newest first, with
    their size, version, start time, age and whether they were verified when made.
  - With O(check_files), every file of every backup is read again and compared with its manifest (size and
    sha256), so a backup damaged since it was made shows as C(damaged) with the first bad file named.
  - Without it, the cheap part of that check still runs. The manifest's own checksum is checked (an edited
    manifest fails), and so is every file's presence and size. A listing never claims more than was
    checked. C(verified) comes with the time of the last check that read the data (RV(backups[].verified_at)),
    and a backup stays C(damaged) once any check failed (this module, or a restore that refused it) until a
    full check passes again.
  - Each check's outcome is recorded in the backup's C(sec-check.json), in check mode too, since it changes
    nothing of the backup.
  - Folders without a sec manifest (for example the vendor's own dumps) are not listed and never touched.
extends_documentation_fragment:
  - fpt.sec.site
options:
  check_files:
    description: Re-read every file and compare it with the manifest; slower, as it reads every backup in full.
    type: bool
    default: false
  replaced:
    description:
      - Also list the site's replaced databases (C(<db>_replaced_<UTC time>), kept on the DB server by a
        restore or a sync as its undo) in RV(replaced), from the site's database with database.yml's
        credentials. A database that cannot be reached makes RV(replaced) null, with a warning.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Changes no backup; runs the same in check mode (a check's outcome is still recorded).
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the App server.
"""

EXAMPLES = r"""
- name: List the backups of a site, checking their files
  fpt.sec.db_backup_info:
    site_dir: /var/rails/com_teststudio_prod
    check_files: true
  register: backups
"""

RETURN = r"""
backups:
  description: The backups, newest first.
  type: list
  elements: dict
  returned: always
  contains:
    name:
      description: The backup's folder name, which restore takes.
      type: str
    path:
      description: Its full path.
      type: str
    version:
      description: The site's version when it was made.
      type: str
    started:
      description: When the dump started, UTC, ISO 8601.
      type: str
    age_seconds:
      description: Seconds since it started.
      type: int
    size:
      description: Bytes of dump data.
      type: int
    verified:
      description: Whether it was verified when made.
      type: bool
    kind:
      description:
        - V(safety) for a backup taken before data was overwritten (a label starting with C(before-) or
          C(pre-)), with its own retention rule; V(ordinary) otherwise.
      type: str
    state:
      description:
        - V(verified) (see RV(backups[].verified_at)), V(unverified), or V(damaged) when this check or an
          earlier one failed.
      type: str
    verified_at:
      description: When the last check that read the whole backup passed (UTC), null unless verified.
      type: str
    problem:
      description: For a damaged backup, the first problem found, and by which check and when for an earlier one.
      type: str
    last_check:
      description: The recorded last check (C(state), C(at), C(problem), C(by)), null when none was recorded.
      type: dict
    drill:
      description:
        - "How the last restore drill (M(fpt.sec.db_drill)) of the backup went, in words
          (C(drilled <time> (restored in N s)) or C(drill failed: <reason>)), null when never drilled."
      type: str
    last_drill:
      description:
        - The drill's record (C(state) passed or failed, C(at), C(recovery_seconds), C(restore_seconds),
          C(reason), C(operation_id), C(tables), C(rows)), null when never drilled.
      type: dict
replaced:
  description:
    - The replaced databases kept as undo, newest first (C(sec restore SITE --undo) puts the first back). Null
      when not asked for or when the database could not be reached.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The database's name on the DB server.
      type: str
    size_bytes:
      description: Its size.
      type: int
    replaced_at:
      description: When it was replaced (UTC).
      type: str
    operation_id:
      description: The operation that replaced it.
      type: str
    backup:
      description: The backup that replaced it (null for an undo).
      type: str
    release:
      description: The release the site ran on it (an undo switches back to it).
      type: str
"""

import datetime
import os

from ansible_collections.fpt.sec.plugins.module_utils import db_replaced
from ansible_collections.fpt.sec.plugins.module_utils.db_backups import (
    BackupError,
    list_backups,
    listed_state,
    quick_problem,
    read_check,
    read_manifest,
    record_check,
    verify_files,
)
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient, PostgresError
from ansible_collections.fpt.sec.plugins.module_utils.site_model import DatabaseConfigError
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module


def _age(started: str | None) -> int | None:
    if not started:
        return None
    try:
        moment = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((datetime.datetime.now(datetime.timezone.utc) - moment).total_seconds())


def main() -> None:
    module = site_module(
        argument_spec={"check_files": {"type": "bool", "default": False},
                       "replaced": {"type": "bool", "default": True}},
        supports_check_mode=True,
    )
    site_dir = module.params["site_dir"]
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist: refresh the inventory (sec cluster connect)")
    backups = []
    warnings = []
    for entry in reversed(list_backups(site_dir)):
        folder = entry["path"]
        entry["age_seconds"] = _age(entry.get("started"))
        # Without check_files, the cheap part of a check still runs (the manifest's own checksum, the files'
        # presence and sizes): a truncated file or an edited manifest is never listed as verified.
        try:
            manifest = read_manifest(folder)
            if module.params["check_files"]:
                verify_files(folder, manifest)
                problem = None
            else:
                problem = quick_problem(folder, manifest)
        except BackupError as exc:
            problem = str(exc)
        if problem or module.params["check_files"]:
            try:
                record_check(folder, problem, "check" if module.params["check_files"] else "listing")
            except OSError as exc:
                warnings.append(f"cannot record the check of {entry['name']}: {exc.strerror or exc}")
        entry.update(listed_state(entry, read_check(folder), problem))
        entry["last_check"] = read_check(folder)
        backups.append(entry)
    replaced = None
    if module.params["replaced"]:
        try:
            client = PgClient.for_site(site_dir)
            if client.password:
                module.no_log_values.add(client.password)
            with client:
                replaced = db_replaced.listed(client, client.database, "postgres")
        except (PostgresError, DatabaseConfigError, OSError) as exc:
            warnings.append(f"cannot list the replaced databases: {exc}")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, backups=backups, replaced=replaced)


if __name__ == "__main__":
    main()
