"""Operation records and job events read back: ids, interrupted runs, filters, messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sec_wrapper import history, redact
from sec_wrapper.errors import SecError

pytestmark = pytest.mark.usefixtures("home")  # a data folder of each test's own (tests/unit/conftest.py)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _record(op_id: str, **fields: Any) -> dict[str, Any]:
    record = {"id": op_id, "operation": "backup", "status": "successful", "site": "prod.x.com",
              "cluster": "c1", "started": "2026-01-01T00:00:00.000Z", "host": socket.gethostname()}
    record.update(fields)
    history.write_record(op_id, record)
    return record


def _event(counter: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"counter": counter, "event": kind, "event_data": data}


def _write_events(op_id: str, events: list[dict[str, Any]]) -> None:
    folder = history.operation_dir(op_id) / "job_events"
    folder.mkdir(parents=True, exist_ok=True)
    for ev in events:
        (folder / f"{ev['counter']}-u{ev['counter']}.json").write_text(json.dumps(ev))


def test_ids_sort_by_time_and_are_unique(home: Path) -> None:
    early = history.new_operation_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = history.new_operation_id(datetime(2026, 11, 26, 16, 5, 1, tzinfo=UTC))
    assert early.startswith("20260102T030405Z-") and late.startswith("20261126T160501Z-")
    assert sorted([late, early]) == [early, late]
    same = {history.new_operation_id(datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(20)}
    assert len(same) == 20
    assert (home / "operations" / early).is_dir()
    assert history.ID_RE.match(late)


def test_operation_dir_refuses_paths() -> None:
    with pytest.raises(SecError, match="not an operation id"):
        history.operation_dir("../clusters")


def test_scrub_removes_secrets_at_any_depth() -> None:
    args = {"site": "prod", "password": "x", "db": {"db_password": "x", "host": "h", "api_token": "t"},
            "items": [{"secret": "s", "keep": 5}], "ssh_key": "/k", "blob": "-----BEGIN RSA PRIVATE KEY-----"}
    assert redact.scrub(args) == {"site": "prod", "db": {"host": "h"}, "items": [{"keep": 5}]}


def test_process_alive() -> None:
    me = os.getpid()
    assert history.process_alive(me, history.process_start(me))
    assert not history.process_alive(_dead_pid())
    assert not history.process_alive(None)
    if history.process_start(me) is not None:  # where /proc tells, a reused pid is not our process
        assert not history.process_alive(me, "1")


def test_running_with_dead_processes_reads_as_interrupted() -> None:
    op_id = history.new_operation_id()
    _record(op_id, status="running", pid=_dead_pid(), ansible_pid=_dead_pid())
    _write_events(op_id, [_event(1, "playbook_on_task_start", task="Dump the database")])
    record = history.read_record(op_id)
    assert record["status"] == "interrupted"
    assert "during task 'Dump the database'" in record["message"]
    stored = json.loads((history.operation_dir(op_id) / history.RECORD).read_text())
    assert stored["status"] == "running"  # the reader judges; it does not rewrite history


def test_running_with_live_process_stays_running() -> None:
    op_id = history.new_operation_id()
    _record(op_id, status="running", pid=_dead_pid(), ansible_pid=os.getpid(),
            ansible_pid_start=history.process_start(os.getpid()))
    assert history.read_record(op_id)["status"] == "running"


def test_running_on_another_host_is_left_alone() -> None:
    op_id = history.new_operation_id()
    _record(op_id, status="running", pid=_dead_pid(), host="elsewhere.invalid")
    assert history.read_record(op_id)["status"] == "running"


def test_list_filters_order_and_limit() -> None:
    a = history.new_operation_id(datetime(2026, 1, 1, tzinfo=UTC))
    b = history.new_operation_id(datetime(2026, 1, 2, tzinfo=UTC))
    c = history.new_operation_id(datetime(2026, 1, 3, tzinfo=UTC))
    _record(a, started="2026-01-01T00:00:00.000Z", status="failed")
    _record(b, started="2026-01-02T00:00:00.000Z", site="staging.x.com")
    _record(c, started="2026-01-03T00:00:00.000Z", status="running", pid=_dead_pid())
    history.new_operation_id()  # a folder without a record yet: skipped, not an error
    assert [r["id"] for r in history.list_operations()] == [c, b, a]
    assert [r["id"] for r in history.list_operations(limit=2)] == [c, b]
    assert [r["id"] for r in history.list_operations(site="staging.x.com")] == [b]
    assert [r["id"] for r in history.list_operations(site={"prod.x.com", "com_x_prod"})] == [c, a]
    assert [r["id"] for r in history.list_operations(status="interrupted")] == [c]
    assert history.list_operations(cluster="other") == []


def test_resolve_id() -> None:
    a = history.new_operation_id(datetime(2026, 1, 1, tzinfo=UTC))
    b = history.new_operation_id(datetime(2026, 1, 2, tzinfo=UTC))
    assert history.resolve_id(a) == a
    assert history.resolve_id("20260102") == b
    with pytest.raises(SecError, match="ambiguous"):
        history.resolve_id("2026")
    with pytest.raises(SecError, match="no operation"):
        history.resolve_id("1999")


EVENTS = [
    _event(1, "playbook_on_task_start", task="Find sites"),
    _event(2, "runner_on_ok", task="Find sites", task_action="site_facts", resolved_action="fpt.sec.site_facts",
           host="app1", res={"changed": False, "sites": ["a"]}),
    _event(3, "runner_on_ok", task="Find sites", task_action="site_facts", resolved_action="fpt.sec.site_facts",
           host="app2", res={"changed": True, "sites": ["b"]}),
    _event(4, "runner_on_skipped", task="Find sites", resolved_action="fpt.sec.site_facts", host="app3"),
    _event(5, "runner_on_failed", task="Probe", host="app1", ignore_errors=True,
           res={"msg": "non-zero return code", "rc": 1, "stderr": "first\nlast words"}),
    _event(6, "runner_on_failed", task="Check inputs", host="app1",
           res={"msg": "site is required:\n pass -e site=NAME"}),
]


def test_task_results_by_name_module_and_fqcn() -> None:
    by_fqcn = history.task_results(EVENTS, "fpt.sec.site_facts")
    assert by_fqcn == {"app1": {"changed": False, "sites": ["a"]}, "app2": {"changed": True, "sites": ["b"]}}
    assert history.task_results(EVENTS, "site_facts") == by_fqcn
    assert history.task_results(EVENTS, "Find sites") == by_fqcn
    assert history.task_results(EVENTS, "nothing") == {}


def test_task_rows_and_hosts() -> None:
    rows = history.task_rows(EVENTS)
    assert [(r["host"], r["status"]) for r in rows] == [
        ("app1", "ok"), ("app2", "changed"), ("app3", "skipped"), ("app1", "ignored"), ("app1", "failed")]
    assert rows[3]["msg"] == "non-zero return code: rc 1: last words"
    assert history.host_summary(EVENTS) == (["app2"], ["app1"])
    stats = _event(7, "playbook_on_stats", changed={"app2": 1}, failures={"app1": 1}, dark={"db1": 1})
    assert history.host_summary([*EVENTS, stats]) == (["app2"], ["app1", "db1"])


def test_failure_message_takes_the_fatal_task() -> None:
    assert history.failure_message(EVENTS) == "Check inputs on app1: site is required: pass -e site=NAME"


def test_failure_message_for_unreachable_host() -> None:
    msg = "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 2222: Connection refused"
    events = [_event(1, "runner_on_unreachable", task="Gather", host="app1", res={"msg": msg})]
    assert history.failure_message(events, {"app1": "127.0.0.1:2222"}) == \
        "127.0.0.1:2222 unreachable: Connection refused"


@pytest.mark.parametrize(("msg", "cause"), [
    ("Failed to connect to the host via ssh: root@127.0.0.1: Permission denied (publickey,password).",
     "Permission denied (publickey,password)."),
    ('Task failed: Data could not be sent to remote host "127.0.0.1". Make sure this host can be reached '
     "over ssh: root@127.0.0.1: Permission denied (publickey).", "Permission denied (publickey)."),
    ("Failed to connect to the host via ssh: Warning: Permanently added 'x'\r\nHost key verification failed.",
     "Host key verification failed."),
    ("Failed to connect to the host via ssh: ssh: Could not resolve hostname nowhere: Name or service not known",
     "Could not resolve hostname nowhere: Name or service not known"),
])
def test_unreachable_cause(msg: str, cause: str) -> None:
    assert history.unreachable_cause(msg) == cause


def test_failure_message_from_ansible_error_line() -> None:
    stdout = "noise\n[ERROR]: the playbook: nope.yml could not be found\n"
    assert history.failure_message([], stdout=stdout, rc=1) == "the playbook: nope.yml could not be found"
    assert history.failure_message([], stdout="ERROR! bad thing\n") == "bad thing"
    assert history.failure_message([], rc=4) == "ansible-playbook ended with rc 4"


def test_result_message_from_loop_items() -> None:
    res = {"msg": "One or more items failed", "results": [{"failed": False}, {"failed": True, "msg": "no space"}]}
    assert history.result_message(res) == "no space"


def test_format_duration() -> None:
    assert history.format_duration(None) == "-"
    assert history.format_duration(3.14) == "3.1s"
    assert history.format_duration(125) == "2m05s"
    assert history.format_duration(3 * 3600 + 120) == "3h02m"
