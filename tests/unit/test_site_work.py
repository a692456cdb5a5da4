"""The remote work's record on the App server: registered in the lock while it runs, its outcome kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.fpt.sec.plugins.module_utils import site_lock, site_work

OWNER = {"host": "ctl1", "pid": 4242, "pid_start": "boot:100", "user": "awx"}


def _site(tmp_path: Path) -> str:
    (tmp_path / "tmp").mkdir()
    return str(tmp_path)


def test_work_is_in_the_lock_while_it_runs_and_its_outcome_stays(tmp_path: Path) -> None:
    site = _site(tmp_path)
    lock = site_lock.acquire(site_lock.lock_path(site), "op-1", OWNER)["lock"]
    work = site_work.SiteWork(site, "events_trim")
    work.begin()
    on_disk = json.loads(Path(site_lock.lock_path(site)).read_text())
    assert on_disk["work"]["pid"] == os.getpid() and on_disk["token"] == lock["token"]
    assert site_lock.work_alive(on_disk)
    assert site_work.read_outcome(site, "op-1")["state"] == "running"
    work.end(site_work.COMPLETED, "done", {"rows_deleted": 3})
    assert "work" not in json.loads(Path(site_lock.lock_path(site)).read_text())
    outcome = site_work.read_outcome(site, "op-1")
    assert outcome["state"] == "completed" and outcome["last"]["summary"] == {"rows_deleted": 3}
    assert work.warnings == []


def test_a_step_whose_process_died_reads_as_killed(tmp_path: Path) -> None:
    site = _site(tmp_path)
    site_lock.acquire(site_lock.lock_path(site), "op-2", OWNER)
    code = ("import sys; from ansible_collections.fpt.sec.plugins.module_utils import site_work;"
            "site_work.SiteWork(sys.argv[1], 'db_restore').begin()")
    collections = str(Path(__file__).resolve().parents[2] / "collections")
    env = {**os.environ, "PYTHONPATH": collections + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", code, site], check=True, env=env)  # registers, ends without end()
    outcome = site_work.read_outcome(site, "op-2")
    assert outcome["state"] == "killed" and outcome["last"]["module"] == "db_restore"
    assert not site_lock.work_alive(json.loads(Path(site_lock.lock_path(site)).read_text()))


def test_no_lock_no_record_and_check_mode_writes_nothing(tmp_path: Path) -> None:
    site = _site(tmp_path)
    site_work.SiteWork(site, "db_backup").begin()  # ad hoc, outside an operation
    assert not (tmp_path / site_work.OUTCOMES_DIR).exists()
    site_lock.acquire(site_lock.lock_path(site), "op-3", OWNER)
    site_work.SiteWork(site, "db_backup", check_mode=True).begin()
    assert site_work.read_outcome(site, "op-3") is None
    assert site_work.outcome_path(site, "../etc/passwd") is None


def test_the_lock_release_records_that_the_operation_reached_its_end(tmp_path: Path) -> None:
    site = _site(tmp_path)
    site_lock.acquire(site_lock.lock_path(site), "op-9", OWNER)
    work = site_work.SiteWork(site, "db_backup")
    work.begin()
    work.end(site_work.COMPLETED, "made")
    assert site_work.read_outcome(site, "op-9")["finished"] is None  # the last step ended, the operation not yet
    assert site_work.record_finished(site, "op-9", site_work.COMPLETED) is None
    outcome = site_work.read_outcome(site, "op-9")
    assert outcome["finished"]["state"] == "completed" and outcome["steps"][0]["module"] == "db_backup"
    # An operation with no module work of its own (maintenance) still records that it completed; one refused
    # under its lock leaves nothing behind.
    site_work.record_finished(site, "op-10", site_work.COMPLETED)
    assert site_work.read_outcome(site, "op-10")["finished"]["state"] == "completed"
    site_work.record_finished(site, "op-11", site_work.FAILED)
    assert site_work.read_outcome(site, "op-11") is None
    assert site_work.record_finished(site, "../escape", site_work.COMPLETED) is None
    assert not (tmp_path / "escape.json").exists()
