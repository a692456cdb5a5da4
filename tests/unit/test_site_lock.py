"""The site lock's logic (module_utils/site_lock.py): take, refuse, take over, retake, release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import process, site_lock
from ansible_collections.fpt.sec.plugins.module_utils.site_lock import (
    ACQUIRED,
    ALREADY_HELD,
    DEAD,
    HELD_BY_OTHER,
    NOT_HELD,
    RELEASED,
    RUNNING,
    TAKEN_OVER,
    UNKNOWN,
    LockError,
)

ME = {"host": "ctl1", "pid": 4242, "pid_start": "boot:100", "user": "awx"}
OTHER = {"host": "ctl1", "pid": 5151, "pid_start": "boot:200", "user": "awx"}


@pytest.fixture
def path(tmp_path: Path) -> str:
    (tmp_path / "tmp").mkdir()
    return site_lock.lock_path(str(tmp_path))


def on_disk(path: str) -> dict:
    return json.loads(Path(path).read_text())


def test_take_a_free_lock_records_the_owner(path: str) -> None:
    result = site_lock.acquire(path, "op-1", ME, now=1_700_000_000.0)
    assert result["outcome"] == ACQUIRED
    record = on_disk(path)
    assert record == result["lock"]
    assert record["operation_id"] == "op-1"
    assert (record["owner_host"], record["owner_pid"], record["owner_pid_start"], record["owner_user"]) == (
        "ctl1", 4242, "boot:100", "awx")
    assert record["started"] == "2023-11-14T22:13:20Z"
    assert record["format"] == 1 and len(record["token"]) == 32
    # Nothing left behind but the lock itself (the temporary file used to create it is gone).
    assert sorted(os.listdir(os.path.dirname(path))) == ["sec-operation.lock"]


def test_another_operation_is_refused_with_the_holder(path: str) -> None:
    site_lock.acquire(path, "op-1", ME, now=1_700_000_000.0)
    before = Path(path).read_bytes()
    result = site_lock.acquire(path, "op-2", OTHER, now=1_700_000_060.0)
    assert result["outcome"] == HELD_BY_OTHER
    assert result["lock"] is None
    holder = result["holder"]
    assert holder["operation_id"] == "op-1" and holder["age_seconds"] == 60.0
    line = site_lock.describe(holder)
    assert line == "operation op-1 (started 2023-11-14T22:13:20Z, pid 4242 on ctl1 as awx)"
    assert "\n" not in line
    assert Path(path).read_bytes() == before


def test_retaking_a_lock_the_operation_holds_is_unchanged(path: str) -> None:
    first = site_lock.acquire(path, "op-1", ME)
    before = Path(path).read_bytes()
    again = site_lock.acquire(path, "op-1", OTHER)
    assert again["outcome"] == ALREADY_HELD
    assert again["lock"]["token"] == first["lock"]["token"]
    assert Path(path).read_bytes() == before


def test_takeover_needs_the_token_of_the_lock_found(path: str) -> None:
    dead = site_lock.acquire(path, "op-dead", OTHER)["lock"]
    # A wrong token (the lock changed since it was judged) does not replace it.
    refused = site_lock.acquire(path, "op-2", ME, takeover_token="not-the-token")
    assert refused["outcome"] == HELD_BY_OTHER
    assert on_disk(path)["operation_id"] == "op-dead"
    taken = site_lock.acquire(path, "op-2", ME, takeover_token=dead["token"])
    assert taken["outcome"] == TAKEN_OVER
    assert taken["holder"]["operation_id"] == "op-dead"
    assert on_disk(path)["operation_id"] == "op-2"
    assert sorted(os.listdir(os.path.dirname(path))) == ["sec-operation.lock"]


def test_check_mode_predicts_and_writes_nothing(path: str) -> None:
    predicted = site_lock.acquire(path, "op-1", ME, check_mode=True)
    assert predicted["outcome"] == ACQUIRED
    assert not os.path.exists(path)
    dead = site_lock.acquire(path, "op-dead", OTHER)["lock"]
    before = Path(path).read_bytes()
    assert site_lock.acquire(path, "op-2", ME, check_mode=True, takeover_token=dead["token"])["outcome"] == TAKEN_OVER
    assert site_lock.release(path, "op-dead", check_mode=True)["outcome"] == RELEASED
    assert Path(path).read_bytes() == before


def test_release_by_another_operation_is_refused(path: str) -> None:
    site_lock.acquire(path, "op-1", ME)
    result = site_lock.release(path, "op-2")
    assert result["outcome"] == NOT_HELD
    assert result["holder"]["operation_id"] == "op-1"
    assert on_disk(path)["operation_id"] == "op-1"


def test_release_by_the_holder_and_forced_release(path: str) -> None:
    site_lock.acquire(path, "op-1", ME)
    assert site_lock.release(path, "op-1")["outcome"] == RELEASED
    assert not os.path.exists(path)
    assert site_lock.release(path, "op-1")["outcome"] == NOT_HELD  # nothing to release: unchanged
    site_lock.acquire(path, "op-1", ME)
    forced = site_lock.release(path, None, force=True)
    assert forced["outcome"] == RELEASED and forced["holder"]["operation_id"] == "op-1"
    assert sorted(os.listdir(os.path.dirname(path))) == []


def test_an_unreadable_lock_still_locks(path: str) -> None:
    Path(path).write_text("")  # as left by a crash of a writer without atomic creation
    result = site_lock.acquire(path, "op-1", ME)
    assert result["outcome"] == HELD_BY_OTHER
    holder = result["holder"]
    assert holder["unreadable"] is True
    assert "unreadable lock file" in site_lock.describe(holder)
    assert site_lock.holder_state(holder, "ctl1")[0] == UNKNOWN
    # Only stale_after (or force) clears it; then the takeover replaces it.
    holder["age_seconds"] = 7200
    assert site_lock.holder_state(holder, "ctl1", stale_after=3600)[0] == DEAD
    taken = site_lock.acquire(path, "op-1", ME, takeover_token=holder["token"])
    assert taken["outcome"] == TAKEN_OVER
    assert on_disk(path)["operation_id"] == "op-1"


def test_missing_site_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="does not exist"):
        site_lock.acquire(site_lock.lock_path(str(tmp_path / "nope")), "op-1", ME)


def test_tmp_folder_is_created_when_missing(tmp_path: Path) -> None:
    path = site_lock.lock_path(str(tmp_path))
    assert site_lock.acquire(path, "op-1", ME)["outcome"] == ACQUIRED
    assert os.path.isfile(path)


# -- deciding whether the holder is dead ---------------------------------------------------------------

def holder(host: str = "ctl1", pid: int = 5151, start: str | None = "boot:200", age: float = 10.0) -> dict:
    return {"operation_id": "op-old", "owner_host": host, "owner_pid": pid, "owner_pid_start": start,
            "started": "2024-05-01T12:00:00Z", "age_seconds": age, "token": "t"}


def test_same_controller_dead_pid_is_dead() -> None:
    status, why = site_lock.holder_state(holder(), "ctl1", alive=lambda pid: False, start_of=lambda pid: None)
    assert status == DEAD and "5151" in why and "gone" in why


def test_same_controller_reused_pid_is_dead() -> None:
    status, why = site_lock.holder_state(holder(), "ctl1", alive=lambda pid: True,
                                         start_of=lambda pid: "boot:999")
    assert status == DEAD and "another process" in why


def test_same_controller_live_owner_is_running_even_when_old() -> None:
    status, _ = site_lock.holder_state(holder(age=10 ** 6), "ctl1", stale_after=60, alive=lambda pid: True,
                                       start_of=lambda pid: "boot:200")
    assert status == RUNNING
    # A start time that cannot be read does not make a live pid dead.
    assert site_lock.holder_state(holder(start=None), "ctl1", alive=lambda pid: True,
                                  start_of=lambda pid: "boot:1")[0] == RUNNING


def test_other_controller_is_dead_only_past_stale_after() -> None:
    never_checked = {"alive": lambda pid: pytest.fail("no pid check for another host"), "start_of": None}
    old = holder(host="ctl2", age=7200)
    assert site_lock.holder_state(old, "ctl1", **never_checked)[0] == UNKNOWN
    assert site_lock.holder_state(old, "ctl1", stale_after=86400, **never_checked)[0] == UNKNOWN
    status, why = site_lock.holder_state(old, "ctl1", stale_after=3600, **never_checked)
    assert status == DEAD and "stale_after=3600" in why


def test_real_processes_alive_and_start_identity() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process.pid_alive(os.getpid())
    assert not process.pid_alive(child.pid)
    start = site_lock.process_start(os.getpid())
    if Path("/proc/self/stat").exists():
        assert start and start == site_lock.process_start(os.getpid())
    me = holder(pid=os.getpid(), start=start)
    assert site_lock.holder_state(me, "ctl1")[0] == RUNNING
    assert site_lock.holder_state(holder(pid=child.pid), "ctl1")[0] == DEAD


def test_remote_work_keeps_a_lock_whose_controller_is_dead(path: str) -> None:
    """The work's pid on the App server decides, not the controller's: a live one blocks the takeover."""
    dead = site_lock.acquire(path, "op-dead", OTHER)["lock"]
    work = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        entry = {"module": "events_trim", "pid": work.pid, "pid_start": site_lock.process_start(work.pid),
                 "started": "2024-05-01T12:00:00Z"}
        assert site_lock.set_work(path, dead["token"], entry)
        assert not site_lock.set_work(path, "another-token", None), "only the lock it was taken with"
        assert on_disk(path)["work"] == entry and on_disk(path)["token"] == dead["token"]
        refused = site_lock.acquire(path, "op-2", ME, takeover_token=dead["token"])
        assert refused["outcome"] == HELD_BY_OTHER and refused["holder"]["work_running"] is True
        status, why = site_lock.holder_state(refused["holder"], "ctl1", alive=lambda pid: False)
        assert status == RUNNING and f"events_trim (pid {work.pid}" in why and "still running" in why
    finally:
        work.kill()
        work.wait()
    gone = site_lock.acquire(path, "op-2", ME, takeover_token=dead["token"])
    assert gone["outcome"] == TAKEN_OVER
    assert "work" not in on_disk(path)
