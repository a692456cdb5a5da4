#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_journal
short_description: Read or write the journal of an upgrade in its maintenance window
version_added: "0.1.0"
description:
  - The journal C(<site_dir>/tmp/sec-upgrade.json) records what an upgrade is doing while the site is in
    maintenance. It holds the version it came from and the steps, the backup taken before, the previous
    C(current) link, and the migrations applied before. It is written just before the window and removed
    once the site serves the new release or was rolled back.
  - If it is still there, an upgrade was interrupted (killed) in its window. The next upgrade, or taking
    the site out of maintenance, must roll the site back first. O(state=query) tells, and reports what the
    upgrade playbook checks up front (running version, maintenance page, free disk space).
  - Runs on the App server whose O(site_dir) holds the site lock (see M(fpt.sec.site_lock)).
  - The journal is written atomically and synced to disk, since it must survive the crash it is there for.
extends_documentation_fragment:
  - fpt.sec.site
options:
  state:
    description: V(query) reads it, V(present) writes it, V(absent) removes it.
    type: str
    choices: [query, present, absent]
    default: query
  from_version:
    description: The version the site ran before the upgrade. Required with O(state=present).
    type: str
  to_version:
    description: The version the upgrade goes to. Required with O(state=present).
    type: str
  steps:
    description: The releases installed in turn, the last one being O(to_version).
    type: list
    elements: str
    default: []
  backup:
    description: The backup taken before the window (its folder name in C(db_backup/)).
    type: str
  previous_link:
    description: The text of the C(current) link before the window.
    type: str
  schema_before:
    description: The versions in C(schema_migrations) before the window.
    type: list
    elements: str
  phase:
    description: V(window) while the upgrade runs, V(rolling_back) once a rollback started.
    type: str
    choices: [window, rolling_back]
    default: window
  operation_id:
    description: The operation writing the journal.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would be written or removed.
  diff_mode:
    support: none
    description: Use RV(journal).
seealso:
  - module: fpt.sec.db_migrate
  - module: fpt.sec.release_activate
"""

EXAMPLES = r"""
- name: Was an upgrade interrupted?
  fpt.sec.upgrade_journal:
    site_dir: /var/rails/com_teststudio_prod
  register: journal

- name: Record the upgrade before the window
  fpt.sec.upgrade_journal:
    site_dir: /var/rails/com_teststudio_prod
    state: present
    from_version: 8.0.0
    to_version: 8.2.0
    steps: [8.1.2, 8.2.0]
    backup: 20240501T120002Z_8.0.0_pre-upgrade-8.2.0
    previous_link: releases/8.0.0
    schema_before: ["20200101000000"]
    operation_id: 20240501T120000Z-ab12
"""

RETURN = r"""
journal:
  description: The journal after the task (for O(state=query), as found). Null when there is none.
  returned: always
  type: dict
  sample: {from: 8.0.0, to: 8.2.0, steps: [8.1.2, 8.2.0], backup: 20240501T120002Z_8.0.0_pre-upgrade-8.2.0,
           phase: window}
recovery_needed:
  description: Whether a journal was found, that is an upgrade interrupted in its window.
  returned: always
  type: bool
  sample: false
journal_path:
  description: The journal's file.
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/tmp/sec-upgrade.json
running_version:
  description: The version C(current) points at.
  returned: always
  type: str
  sample: 8.0.0
current_link:
  description: The text of the C(current) link.
  returned: always
  type: str
  sample: releases/8.0.0
maintenance:
  description: Whether the maintenance page (C(tmp/maintenance.html)) is in place.
  returned: always
  type: bool
  sample: false
staged:
  description: The versions staged under C(releases/).
  returned: always
  type: list
  elements: str
  sample: [8.0.0, 8.1.2]
free_bytes:
  description: Free bytes for the site's user on the file system of the site dir.
  returned: always
  type: int
  sample: 53687091200
backup_free_bytes:
  description:
    - Free bytes on the file system of C(db_backup/), where the pre-upgrade backup is written (it may be a
      mount of its own); that of the site dir when C(db_backup/) does not exist yet.
  returned: always
  type: int
  sample: 53687091200
newest_backup_size:
  description: Size in bytes of the newest complete backup in C(db_backup/), null when there is none.
  returned: always
  type: int
  sample: 734003200
"""

import os

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, site_releases, upgrade_journal
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module


def facts(site_dir: str) -> dict:
    current = site_releases.current_state(site_dir)
    stats = os.statvfs(site_dir)
    backup_dir = os.path.join(site_dir, db_backups.BACKUP_DIR)
    backup_stats = os.statvfs(backup_dir) if os.path.isdir(backup_dir) else stats
    backups = db_backups.list_backups(site_dir)
    return {
        "running_version": current["version"],
        "current_link": current["link"],
        "maintenance": os.path.exists(os.path.join(site_dir, site_releases.MAINTENANCE_PAGE)),
        "staged": site_releases.staged_versions(site_dir),
        "free_bytes": stats.f_bavail * stats.f_frsize,
        "backup_free_bytes": backup_stats.f_bavail * backup_stats.f_frsize,
        "newest_backup_size": backups[-1]["size"] if backups else None,
    }


def _same(a: dict | None, b: dict) -> bool:
    if a is None:
        return False
    skip = ("started", "updated")
    return {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


def main() -> None:
    module = site_module(
        argument_spec={
            "state": {"type": "str", "choices": ["query", "present", "absent"], "default": "query"},
            "from_version": {"type": "str"},
            "to_version": {"type": "str"},
            "steps": {"type": "list", "elements": "str", "default": []},
            "backup": {"type": "str"},
            "previous_link": {"type": "str"},
            "schema_before": {"type": "list", "elements": "str"},
            "phase": {"type": "str", "choices": list(upgrade_journal.PHASES), "default": "window"},
            "operation_id": {"type": "str"},
        },
        required_if=[("state", "present", ["from_version", "to_version"])],
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    path = upgrade_journal.journal_path(site_dir)
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host", journal_path=path)
    try:
        found = upgrade_journal.read(site_dir)
    except upgrade_journal.JournalError as exc:
        module.fail_json(msg=str(exc), journal_path=path)
    result = {"changed": False, "journal_path": path, "journal": found, "recovery_needed": found is not None,
              **facts(site_dir)}

    state = params["state"]
    if state == "query":
        module.exit_json(**result)
    if state == "absent":
        result.update(changed=found is not None, journal=None)
        if found is not None and not module.check_mode:
            upgrade_journal.remove(site_dir)
        module.exit_json(**result)

    try:
        record = upgrade_journal.new_record(params["operation_id"], params["from_version"], params["to_version"],
                                            params["steps"] or [params["to_version"]], params["backup"],
                                            params["previous_link"], params["schema_before"], params["phase"])
    except (upgrade_journal.JournalError, ValueError) as exc:
        module.fail_json(msg=f"cannot write the upgrade journal: {exc}", **result)
    if found is not None and found.get("from") == record["from"] and found.get("backup") == record["backup"]:
        record["started"] = found.get("started", record["started"])  # the same upgrade, a later phase
    if _same(found, record):
        module.exit_json(**result)
    result.update(changed=True, journal=record)
    if not module.check_mode:
        try:
            upgrade_journal.write(site_dir, record)
        except OSError as exc:
            module.fail_json(msg=f"cannot write {path}: {exc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
