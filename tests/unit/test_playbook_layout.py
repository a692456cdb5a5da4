"""What every playbook shares lives once, in playbooks/tasks/: the operation id (its rule and its default) and
the lock's take and release. A playbook that writes them again fails here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SHARED = PLAYBOOKS / "tasks"


def _tasks(node: object) -> list[dict]:
    """Every task mapping in a playbook or task file, blocks and their rescue/always included."""
    found: list[dict] = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item)
    elif isinstance(node, dict):
        if any(k.startswith(("fpt.", "ansible.builtin.")) for k in node):
            found.append(node)
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            found += _tasks(node.get(key))
    return found


def wrongly_placed(path: Path) -> list[str]:
    text = path.read_text()
    problems = []
    if re.search(r"operation_id is fpt\.sec\.operation_id|lookup\('fpt\.sec\.operation_id'", text):
        problems.append("the operation id's rule or default (import tasks/fix_operation_id.yml)")
    for task in _tasks(yaml.safe_load(text)):
        lock = task.get("fpt.sec.site_lock")
        if isinstance(lock, dict) and lock.get("state", "present") in ("present", "absent"):
            problems.append(f"a lock task {task.get('name')!r} (import tasks/lock_site.yml, tasks/unlock_site.yml)")
    return problems


def test_only_the_shared_task_files_hold_the_operation_id_and_the_lock() -> None:
    playbooks = [p for p in PLAYBOOKS.rglob("*.yml") if SHARED not in p.parents]
    assert len(playbooks) > 10
    found = {str(p.relative_to(PLAYBOOKS)): wrongly_placed(p) for p in playbooks}
    assert not {name: problems for name, problems in found.items() if problems}
    assert wrongly_placed(SHARED / "lock_site.yml") and wrongly_placed(SHARED / "fix_operation_id.yml")
