"""How a killed controller's record reads once the App server said what its remote work did."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sec_wrapper import history, host_outcome

RECORD = {"status": "interrupted", "controller_lost": True, "site": "s", "cluster": "c", "message": "x"}


def _outcome(*steps: dict) -> dict:
    state = "running" if any(s["state"] == "running" for s in steps) else steps[-1]["state"]
    return {"operation_id": "op", "steps": list(steps), "state": state, "last": steps[-1]}


def test_still_running_on_the_host() -> None:
    got = host_outcome.apply(RECORD, _outcome({"module": "events_trim", "pid": 7, "started": "t0",
                                               "state": "running"}))
    assert got["status"] == "running" and "events_trim (pid 7" in got["message"]
    assert "still running on the App server" in got["message"]


def test_completed_failed_killed_and_nothing() -> None:
    # Issue 22: the last step completed, but the operation never reached its end: not a success.
    done = host_outcome.apply(RECORD, _outcome({"module": "db_restore", "pid": 7, "state": "completed",
                                                "ended": "t1", "msg": "swapped"}))
    assert done["status"] == "interrupted"
    assert "db_restore completed on the App server at t1: swapped" in done["message"]
    assert "later steps did not run" in done["message"]
    failed = host_outcome.apply(RECORD, _outcome({"module": "events_trim", "pid": 7, "state": "failed",
                                                  "ended": "t1", "msg": "batch failed"}))
    assert failed["status"] == "failed" and "batch failed" in failed["message"]
    killed = host_outcome.apply(RECORD, _outcome({"module": "events_trim", "pid": 7, "state": "killed"}))
    assert killed["status"] == "interrupted" and "killed on the App server too" in killed["message"]
    nothing = host_outcome.apply(RECORD, None)
    assert nothing["status"] == "interrupted" and "no remote work" in nothing["message"]


def test_an_upgrade_killed_after_its_backup_is_interrupted_not_successful() -> None:
    """Issue 22 #3: sec killed as the maintenance page appeared; the backup was the last step that ended."""
    got = host_outcome.apply(RECORD, _outcome({"module": "db_backup", "pid": 7, "state": "completed", "ended": "t1"}))
    assert got["status"] == "interrupted" and "never reached its end" in got["message"]
    assert "db_backup completed" in got["host_outcome"]["steps"]


def test_only_an_operation_that_reached_its_end_is_settled_from_it() -> None:
    ended = _outcome({"module": "events_trim", "pid": 7, "state": "completed", "ended": "t1"})
    ok = host_outcome.apply(RECORD, dict(ended, finished={"state": "completed", "at": "t2"}))
    assert ok["status"] == "successful" and "completed at t2" in ok["message"]
    failed = host_outcome.apply(RECORD, dict(ended, finished={"state": "failed", "at": "t2"}))
    assert failed["status"] == "failed"
    bare = host_outcome.apply(RECORD, {"operation_id": "op", "steps": [], "state": None, "last": None,
                                       "finished": {"state": "completed", "at": "t2"}})
    assert bare["status"] == "successful"  # an operation with no module work (maintenance) that ended


class _Result:
    def __init__(self, res: dict) -> None:
        self.res = res

    def task_results(self, name: str) -> dict:
        assert name == "fpt.sec.site_lock"
        return {"app1": self.res}


def test_a_takeover_settles_the_dead_operations_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEC_HOME", str(tmp_path))
    op_id = history.new_operation_id()
    history.write_record(op_id, {"id": op_id, "status": "running", "host": socket.gethostname(), "pid": None,
                                 "site": "s", "cluster": "c", "message": ""})
    assert history.read_record(op_id)["controller_lost"] is True
    outcome = _outcome({"module": "events_trim", "pid": 7, "state": "completed", "ended": "t1", "msg": "done"})
    host_outcome.settle_taken_over(_Result({"taken_over": {"operation_id": op_id}, "holder_outcome": outcome}))
    settled = history.read_record(op_id)
    assert settled["status"] == "interrupted" and "events_trim completed on the App server" in settled["message"]
    assert "controller_lost" not in settled
