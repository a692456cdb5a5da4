"""playbooks/maintenance.yml against the sandbox: the vhost's 503 page, idempotence, check mode, the site
lock (a live holder refuses, a dead one is taken over), and bad input stopped before any host."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.site_lock import process_start

from tests.integration.conftest import (
    ROOT,
    ansible_env,
    http_get,
    run_module,
    run_playbook,
    site_by_name,
    site_status,
)

pytestmark = pytest.mark.integration

SITE = "prod.teststudio.com"


@pytest.fixture
def site(sandbox: dict) -> Iterator[dict]:
    """The production site, put back as found: no maintenance page, no lock, serving."""
    found = site_by_name(sandbox, SITE)
    yield found
    for each in sandbox["sites"]:
        for leftover in (page_path(each), lock_path(each)):
            leftover.unlink(missing_ok=True)
    assert http_get(sandbox, SITE)[0] == 200


def page_path(site: dict) -> Path:
    return Path(site["site_dir"], "tmp/maintenance.html")


def lock_path(site: dict) -> Path:
    return Path(site["site_dir"], "tmp/sec-operation.lock")


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP as {host: {ok, changed, failed, ...}}."""
    assert "PLAY RECAP" in output, output
    counts: dict[str, dict[str, int]] = {}
    for line in output.split("PLAY RECAP", 1)[1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
        if match:
            counts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return counts


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def write_lock(site: dict, operation_id: str, host: str, pid: int, pid_start: str | None) -> bytes:
    record = {"format": 1, "operation_id": operation_id, "token": f"token-{operation_id}", "owner_host": host,
              "owner_pid": pid, "owner_pid_start": pid_start, "owner_user": "someone",
              "started": "2024-05-01T12:00:00Z", "started_epoch": 1714564800.0}
    lock_path(site).write_text(json.dumps(record))
    return lock_path(site).read_bytes()


def test_on_twice_then_off(sandbox: dict, inventory: Path, site: dict) -> None:
    before = site_status(sandbox, SITE)

    first = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on", "message": "Back at 14:00"})
    assert first.returncode == 0, output(first)
    assert recap(first.stdout)["app1"]["changed"] == 1
    code, body = http_get(sandbox, SITE)
    assert code == 503
    assert "Back at 14:00" in body and SITE in body
    assert page_path(site).stat().st_mode & 0o777 == 0o644
    assert not lock_path(site).exists()
    assert http_get(sandbox, "staging.teststudio.com")[0] == 200  # only this site

    again = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on", "message": "Back at 14:00"})
    assert again.returncode == 0, output(again)
    assert all(host["changed"] == 0 for host in recap(again.stdout).values()), again.stdout

    off = run_playbook("maintenance.yml", inventory, {"site": "com_teststudio_prod", "state": "off"})
    assert off.returncode == 0, output(off)
    assert recap(off.stdout)["app1"]["changed"] == 1
    assert not page_path(site).exists() and not lock_path(site).exists()
    after = site_status(sandbox, SITE)
    assert [after[k] for k in ("site", "version", "schema_version", "events")] == [
        before[k] for k in ("site", "version", "schema_version", "events")]

    off_again = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "off"})
    assert off_again.returncode == 0, output(off_again)
    assert recap(off_again.stdout)["app1"]["changed"] == 0


def test_check_mode_predicts_and_changes_nothing(sandbox: dict, inventory: Path, site: dict) -> None:
    on = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on"}, "--check")
    assert on.returncode == 0, output(on)
    assert recap(on.stdout)["app1"]["changed"] == 1  # predicted
    assert not page_path(site).exists() and not lock_path(site).exists()
    assert http_get(sandbox, SITE)[0] == 200

    page_path(site).write_text("<h1>by hand</h1>\n")
    off = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "off"}, "--check", "--diff")
    assert off.returncode == 0, output(off)
    assert recap(off.stdout)["app1"]["changed"] == 1
    assert "by hand" in off.stdout  # the diff shows the page that would go
    assert page_path(site).read_text() == "<h1>by hand</h1>\n"
    assert http_get(sandbox, SITE)[0] == 503


def test_a_live_lock_refuses_and_changes_nothing(sandbox: dict, inventory: Path, site: dict) -> None:
    # Held by this very pytest process, on this host: alive.
    held = write_lock(site, "op-live-holder", socket.gethostname(), os.getpid(), process_start(os.getpid()))
    result = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on"})
    assert result.returncode != 0
    text = output(result)
    assert "locked by operation op-live-holder (started 2024-05-01T12:00:00Z" in text
    assert f"its process {os.getpid()} on {socket.gethostname()} is running" in text
    counts = recap(result.stdout)["app1"]
    assert counts["changed"] == 0 and counts["failed"] == 1
    assert lock_path(site).read_bytes() == held
    assert not page_path(site).exists()
    assert http_get(sandbox, SITE)[0] == 200


def test_a_lock_of_another_controller_is_not_taken_over(inventory: Path, site: dict) -> None:
    held = write_lock(site, "op-elsewhere", "other-controller.example.com", 1, None)
    result = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on"})
    assert result.returncode != 0
    assert "locked by operation op-elsewhere" in output(result)
    assert "another controller (other-controller.example.com)" in output(result)
    assert lock_path(site).read_bytes() == held
    assert not page_path(site).exists()


def test_an_old_lock_of_another_controller_is_taken_over_past_sec_lock_stale_after(
        sandbox: dict, inventory: Path, site: dict) -> None:
    # An AWX job runs in a container of its own: a killed job's lock is judged by its age alone.
    write_lock(site, "awx-41", "awx-job-container-41", 1, None)  # started 2024-05-01: old
    try:
        result = run_playbook("maintenance.yml", inventory,
                              {"site": SITE, "state": "on", "sec_lock_stale_after": 3600})
        assert result.returncode == 0, output(result)
        assert "awx-41" in next(line for line in output(result).splitlines() if "over the lock of dead" in line)
        assert http_get(sandbox, SITE)[0] == 503
        assert not lock_path(site).exists()
    finally:
        run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "off"})
    assert http_get(sandbox, SITE)[0] == 200


def test_a_dead_lock_is_taken_over_with_a_warning(sandbox: dict, inventory: Path, site: dict) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(site, "op-killed", socket.gethostname(), gone.pid, "boot:1")
    result = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on"})
    assert result.returncode == 0, output(result)
    text = output(result)
    warning = next(line for line in text.splitlines() if "over the lock of dead" in line)
    assert "[WARNING]" in warning or "WARNING" in warning
    assert "operation op-killed" in warning and f"process {gone.pid}" in warning
    assert http_get(sandbox, SITE)[0] == 503
    assert not lock_path(site).exists()  # taken over, then released at the end of the run
    assert recap(result.stdout)["app1"]["changed"] == 2  # the dead lock cleared, the page written


@pytest.mark.parametrize(
    ("extravars", "message"),
    [
        ({"site": SITE, "state": "maybe"}, "must be on or off (got maybe)"),
        ({"state": "on"}, "The extra var `site` is missing"),
        ({"site": "", "state": "on"}, "The extra var `site` is missing"),
        ({"site": SITE}, "must be on or off (got nothing)"),
        ({"site": "nope.teststudio.com", "state": "on"}, "Site nope.teststudio.com is not in this inventory"),
        ({"site": SITE, "state": "on", "operation_id": "a b;c"}, "`operation_id` must be letters, digits"),
    ],
)
def test_bad_input_fails_before_any_host(inventory: Path, site: dict, extravars: dict, message: str) -> None:
    result = run_playbook("maintenance.yml", inventory, extravars)
    assert result.returncode != 0
    assert message in output(result), output(result)
    counts = recap(result.stdout)
    assert set(counts) == {"localhost"} and counts["localhost"]["failed"] == 1
    assert not page_path(site).exists() and not lock_path(site).exists()


def test_the_lock_names_the_running_playbook_and_refuses_a_second_operation(
        sandbox: dict, inventory: Path, site: dict, tmp_path: Path) -> None:
    """The owner pid recorded is the ansible-playbook process (the action plugin's parent), with its
    start time; a second operation on the site meanwhile is refused with that operation's id."""
    go = tmp_path / "go"
    holder = tmp_path / "hold.yml"
    holder.write_text(f"""---
- name: Hold the site lock until told to go
  hosts: app1
  gather_facts: false
  tasks:
    - name: Lock
      fpt.sec.site_lock:
        site_dir: {site["site_dir"]}
        operation_id: op-holding
    - name: Wait for the test
      ansible.builtin.wait_for:
        path: {go}
        timeout: 120
      delegate_to: localhost
    - name: Unlock
      fpt.sec.site_lock:
        site_dir: {site["site_dir"]}
        operation_id: op-holding
        state: absent
""")
    argv = ["ansible-playbook", "-i", str(inventory), str(holder)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env=ansible_env(), cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not lock_path(site).exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        record = json.loads(lock_path(site).read_text())
        assert record["operation_id"] == "op-holding"
        assert record["owner_pid"] == proc.pid
        assert record["owner_pid_start"] == process_start(proc.pid)
        assert record["owner_host"] == socket.gethostname()

        second = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": "on", "operation_id": "op-2"})
        assert second.returncode != 0
        assert "locked by operation op-holding" in output(second)
        assert not page_path(site).exists()
    finally:
        go.touch()
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert not lock_path(site).exists()


def test_module_returns(sandbox: dict, inventory: Path, site: dict) -> None:
    url = site["url"].rstrip("/") + "/status"
    healthy = run_module(inventory, "site_health", {"url": url, "host_header": SITE}).result
    assert healthy["changed"] is False and healthy["status"] == 200
    assert healthy["version"] == "8.0.0" and healthy["events"] == 20_000
    assert healthy["body"]["site"] == SITE and healthy["elapsed"] >= 0 and healthy["attempts"] == 1
    wrong = run_module(inventory, "site_health",
                       {"url": url, "host_header": SITE, "expect_version": "9.0.0"}).result
    assert wrong["failed"] and "runs version 8.0.0, expected 9.0.0" in wrong["msg"]

    on = run_module(inventory, "maintenance", {"site_dir": site["site_dir"], "site_name": SITE}).result
    assert on["changed"] is True and on["state"] == "on"
    assert on["page_path"] == str(page_path(site))
    down = run_module(inventory, "site_health",
                      {"url": url, "host_header": SITE, "retries": 1, "delay": 0.1}).result
    assert down["failed"] and down["status"] == 503 and down["attempts"] == 2
    assert f"answered 503 (expected 200): {SITE} is under maintenance after 2 tries" in down["msg"]
    assert "\n" not in down["msg"]
    off = run_module(inventory, "maintenance", {"site_dir": site["site_dir"], "state": "off"}).result
    assert off["changed"] is True and off["state"] == "off"

    free = run_module(inventory, "site_lock", {"site_dir": site["site_dir"], "state": "query"}).result
    assert free["held"] is False and free["lock"] is None and free["outcome"] == "query"
    taken = run_module(inventory, "site_lock", {"site_dir": site["site_dir"], "operation_id": "op-a"}).result
    assert taken["changed"] is True and taken["outcome"] == "acquired" and taken["lock_path"] == str(lock_path(site))
    # ad-hoc `ansible` ended, so its lock is dead: query says so; another op takes it over with a warning.
    query = run_module(inventory, "site_lock", {"site_dir": site["site_dir"], "state": "query"}).result
    assert query["held"] is True and query["lock"]["operation_id"] == "op-a"
    other, printed = run_module(inventory, "site_lock", {"site_dir": site["site_dir"], "operation_id": "op-b"})
    assert other["outcome"] == "taken_over" and other["taken_over"]["operation_id"] == "op-a"
    warnings = [line for line in printed.splitlines() if "WARNING" in line]
    assert any("over the lock of dead operation op-a" in w for w in warnings), (other, warnings)
    refused = run_module(inventory, "site_lock",
                         {"site_dir": site["site_dir"], "operation_id": "op-c", "state": "absent"}).result
    assert refused["changed"] is False and refused["outcome"] == "not_held" and "op-b" in refused["msg"]
    assert json.loads(lock_path(site).read_text())["operation_id"] == "op-b"
    forced = run_module(inventory, "site_lock", {"site_dir": site["site_dir"], "state": "absent", "force": True},
                        check=True).result
    assert forced["changed"] is True and lock_path(site).exists()  # check mode predicts, keeps the lock
    forced = run_module(inventory, "site_lock",
                        {"site_dir": site["site_dir"], "state": "absent", "force": True}).result
    assert forced["changed"] is True and not lock_path(site).exists()


def test_yaml_boolean_state_is_understood(sandbox: dict, inventory: Path, site: dict) -> None:
    # `state: on` typed unquoted in a YAML vars file arrives as true.
    on = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": True})
    assert on.returncode == 0, output(on)
    assert http_get(sandbox, SITE)[0] == 503
    off = run_playbook("maintenance.yml", inventory, {"site": SITE, "state": False})
    assert off.returncode == 0, output(off)
    assert http_get(sandbox, SITE)[0] == 200
