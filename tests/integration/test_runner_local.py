"""The operations engine end to end on localhost (connection local): no sandbox needed.

Artifacts land in SEC_HOME/operations/<id>/, secrets given as extra vars never reach them, failures and
unreachable hosts come back as one line, and a SIGKILLed run reads back as interrupted.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sec_wrapper import history
from sec_wrapper.inventory import single_host_inventory
from sec_wrapper.runner import run_operation

PLAYBOOKS = Path(__file__).resolve().parent.parent / "fixtures" / "playbooks"
SECRET = "hunter2-do-not-leak"
LOCAL = {"all": {"hosts": {"localhost": {
    "ansible_connection": "local",
    # The play runs on the controller: use its python, not whatever discovery would find. A path, not a
    # template: sec's inventory is data (every string !unsafe), never rendered.
    "ansible_python_interpreter": sys.executable,
}}}}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "SEC_HOME": str(home)}


def _sec(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sec_wrapper.cli", *args], env=_env(home),
                          capture_output=True, text=True, timeout=60)


def _start_background(home: Path, playbook: str, extravars: dict[str, Any]) -> subprocess.Popen[bytes]:
    """run_operation in a process of its own (as the console's worker runs it)."""
    code = ("import json, sys\n"
            "from sec_wrapper.runner import run_operation\n"
            "run_operation('pause', sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]),"
            " 'local', 'pause.example.com', {})\n")
    return subprocess.Popen([sys.executable, "-c", code, str(PLAYBOOKS / playbook), json.dumps(LOCAL),
                             json.dumps(extravars)], env=_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _only_record(home: Path) -> dict[str, Any] | None:
    records = list((home / "operations").glob("*/sec.json"))
    return json.loads(records[0].read_text()) if records else None


def test_successful_run_leaves_artifacts_and_no_secret(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SEC_TEST_DB_PASSWORD", SECRET)  # the user's environment must not be copied either
    result = run_operation("smoke", PLAYBOOKS / "ok.yml", LOCAL, {"who": "tester", "password": SECRET},
                           cluster="local", site="smoke.example.com",
                           arguments={"who": "tester", "password": SECRET, "db": {"token": SECRET}})
    assert result.status == "successful", result.message
    assert result.rc == 0 and result.ok
    assert result.changed_hosts == ["localhost"] and result.failed_hosts == []

    folder = home / "operations" / result.id
    for name in ("status", "rc", "stdout", "command", "job_events", "sec.json"):
        assert (folder / name).exists(), name
    assert (folder / "status").read_text() == "successful"
    assert "hello tester" in (folder / "stdout").read_text()

    record = json.loads((folder / "sec.json").read_text())
    assert record["status"] == "successful" and record["operation"] == "smoke"
    assert record["cluster"] == "local" and record["site"] == "smoke.example.com"
    assert record["arguments"] == {"who": "tester", "db": {}}
    assert record["user"] == getpass.getuser() and record["via"] == "cli" and record["host"] == socket.gethostname()
    assert record["ended"] and record["duration"] > 0 and record["ansible_pid"]

    assert result.task_results("Say hello")["localhost"]["msg"] == "hello tester"
    assert result.task_results("ansible.builtin.command")["localhost"]["changed"] is True

    for path in (home / "operations").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), f"secret leaked into {path}"

    # The private data dir held the extra vars: outside operations/, passed as a file, removed afterwards.
    command = json.loads((folder / "command").read_text())
    extravars_arg = next(a for a in command["command"] if a.startswith("@"))
    assert not Path(extravars_arg[1:]).is_relative_to(home)
    assert not Path(extravars_arg[1:]).exists()

    progress = capsys.readouterr().err
    assert "- Say hello" in progress and "smoke successful in" in progress


def test_failed_run_names_the_failing_task(home: Path) -> None:
    result = run_operation("check", PLAYBOOKS / "fail.yml", LOCAL, {}, cluster=None, site=None, arguments={},
                           show_progress=False)
    assert result.status == "failed"
    assert result.message == "Check inputs on localhost: site is required: pass -e site=NAME"
    assert result.failed_hosts == ["localhost"]
    record = history.read_record(result.id)
    assert record["status"] == "failed" and record["message"] == result.message and record["rc"] != 0

    shown = _sec(home, "ops", "show", result.id, "--json")
    assert shown.returncode == 0, shown.stderr
    tasks = json.loads(shown.stdout)["tasks"]
    assert [(t["task"], t["status"]) for t in tasks] == [("Tolerated failure", "ignored"),
                                                         ("Check inputs", "failed")]


def test_missing_playbook_is_a_clear_error(home: Path) -> None:
    from sec_wrapper.errors import SecError
    with pytest.raises(SecError, match="does not exist"):
        run_operation("x", "no/such.yml", LOCAL, {}, None, None, {})


def test_unreachable_host_gives_one_line(home: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = single_host_inventory("127.0.0.1", port, "nobody")
    result = run_operation("probe", PLAYBOOKS / "ok.yml", inv, {}, None, None, {}, show_progress=False)
    assert result.status == "failed"
    assert result.message == f"127.0.0.1:{port} unreachable: Connection refused"
    assert result.failed_hosts == ["candidate"]


def test_killed_run_reads_back_as_interrupted(home: Path) -> None:
    proc = _start_background(home, "pause.yml", {"pause_seconds": 30})
    try:
        record = _wait_for(lambda: (r := _only_record(home)) and r.get("ansible_pid") and r, 60,
                           "ansible-playbook to start")
        stdout = home / "operations" / record["id"] / "stdout"
        _wait_for(lambda: "TASK [Wait a while]" in stdout.read_text(), 30, "the long task to start")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # ansible-playbook dies with its parent (PDEATHSIG): nothing keeps working unrecorded.
    _wait_for(lambda: not history.process_alive(record["ansible_pid"], record.get("ansible_pid_start")), 15,
              "ansible-playbook to end")

    listed = _sec(home, "ops", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (op,) = json.loads(listed.stdout)
    assert op["id"] == record["id"]
    assert op["status"] == "interrupted"
    assert "Wait a while" in op["message"]
    assert json.loads(_sec(home, "ops", "list", "--status", "interrupted", "--json").stdout)[0]["id"] == op["id"]


def test_cancel_stops_a_run_before_its_window_and_never_inside_it(home: Path, tmp_path: Path) -> None:
    from sec_wrapper.errors import SecError
    from sec_wrapper.operations import service

    # Before any window: the run stops at once, recorded as cancelled by whoever asked.
    proc = _start_background(home, "pause.yml", {"pause_seconds": 60})
    try:
        record = _wait_for(lambda: (r := _only_record(home)) and r.get("ansible_pid") and r, 60, "the run")
        stdout = home / "operations" / record["id"] / "stdout"
        _wait_for(lambda: "TASK [Wait a while]" in stdout.read_text(), 30, "the long task to start")
        asked = time.monotonic()
        assert "cancel asked" in service.cancel(record["id"], "alice")
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - asked < 20, "cancelled long before the 60 s task would end"
    finally:
        proc.kill()
    ended = history.read_record(record["id"])
    assert ended["status"] == "interrupted" and ended["message"].startswith("cancelled by alice before its window")
    assert "TASK [Done waiting]" not in stdout.read_text()
    with pytest.raises(SecError, match="only a running operation can be cancelled"):
        service.cancel(record["id"], "alice")

    # Inside the window: refused, and a request slipped in anyway is not honoured: the run ends normally.
    site_dir = tmp_path / "scratch"
    (site_dir / "tmp").mkdir(parents=True)
    shutil.rmtree(home / "operations")
    proc = _start_background(home, "window_then_pause.yml", {"pause_seconds": 6, "site_dir": str(site_dir)})
    try:
        record = _wait_for(lambda: (r := _only_record(home)) and r.get("ansible_pid") and r, 60, "the run")
        stdout = home / "operations" / record["id"] / "stdout"
        _wait_for(lambda: "TASK [Wait inside the window]" in stdout.read_text(), 30, "the window to open")
        with pytest.raises(SecError, match="is inside its window"):
            service.cancel(record["id"], "alice")
        history.request_cancel(record["id"], "mallory")
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert history.read_record(record["id"])["status"] == "successful"


def test_log_follow_streams_until_the_end(home: Path) -> None:
    proc = _start_background(home, "pause.yml", {"pause_seconds": 2})
    try:
        record = _wait_for(lambda: _only_record(home), 30, "the operation record")
        follow = _sec(home, "ops", "log", record["id"], "--follow")
        assert follow.returncode == 0, follow.stderr
        assert "TASK [Wait a while]" in follow.stdout
        assert "PLAY RECAP" in follow.stdout  # it kept reading until the run ended
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert history.read_record(record["id"])["status"] == "successful"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A throwaway sshd on loopback (skipped where there is none), with one authorized key."""
    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if not binary or not shutil.which("ssh-keygen"):
        pytest.skip("no sshd/ssh-keygen here")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        pytest.skip("sshd as root needs /run/sshd")
    folder = tmp_path / "sshd"
    folder.mkdir()
    for name in ("host", "user", "wrong"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\n")
    proc = subprocess.Popen([binary, "-D", "-f", str(folder / "config"), "-E", str(folder / "log")])
    try:
        _wait_for(lambda: _listening(port), 10, "sshd to listen")
        yield {"port": port, "user": os.environ.get("USER") or "root", "key": folder / "user",
               "wrong": folder / "wrong",
               "host_pub": folder / "host.pub"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_host_keys_and_refused_key(home: Path, sshd: dict[str, Any]) -> None:
    def probe(key: Path) -> Any:
        inv = single_host_inventory("127.0.0.1", sshd["port"], sshd["user"], key)
        inv["all"]["hosts"]["candidate"]["ansible_python_interpreter"] = sys.executable
        return run_operation("probe", PLAYBOOKS / "ok.yml", inv, {}, None, None, {}, show_progress=False)

    first = probe(sshd["key"])
    assert first.status == "successful", first.message
    host_key = sshd["host_pub"].read_text().split()[1]
    assert host_key in (home / "known_hosts").read_text()  # accept-new recorded it in the data folder
    refused = probe(sshd["wrong"])  # right after a good login: no shared ssh master may hide the refusal
    assert refused.status == "failed"
    assert refused.message == f"127.0.0.1:{sshd['port']} unreachable: Permission denied (publickey)."
