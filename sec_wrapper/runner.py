"""The operations engine: runs one playbook through ansible-runner and records it in `operations/<id>/`.

The private data dir (inventory, env/extravars, env/envvars) is a fresh temp dir outside the data folder,
removed afterwards: extra vars never land in `operations/`, and never on a command line (`-e @file`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
from ansible_runner.exceptions import AnsibleRunnerException

from sec_wrapper import history, operation_inputs, redact, untemplated
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import endpoints
from sec_wrapper.paths import ANSIBLE_CFG, COLLECTIONS_DIR, PLAYBOOKS_DIR, PROJECT_DIR

# How long a cancelled ansible-playbook gets to stop its workers before ansible-runner SIGKILLs it.
_CANCEL_GRACE = 10.0
# Environment names worth keeping in the `command` artifact; everything else in the user's env is dropped.
_ENV_KEEP_PREFIXES = ("ANSIBLE_", "AWX_", "RUNNER_")
_ENV_KEEP = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "PWD", "SHELL", "VIRTUAL_ENV",
             "ORIGINAL_STDOUT_CALLBACK", "JOB_ID"}


@dataclass
class OperationResult:
    id: str
    operation: str
    status: str  # successful | failed | interrupted
    rc: int | None
    message: str
    duration: float
    changed_hosts: list[str] = field(default_factory=list)
    failed_hosts: list[str] = field(default_factory=list)
    result: Any = None  # the operation's result document (the CLI's --json), kept in its record

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    @property
    def directory(self) -> Path:
        return history.operation_dir(self.id)

    def events(self) -> list[dict[str, Any]]:
        return history.load_events(self.id)

    def task_results(self, name: str) -> dict[str, dict[str, Any]]:
        """{host: res} of the task named `name` or of module `name` (e.g. "fpt.sec.site_facts")."""
        return history.task_results(self.events(), name)


def resolve_playbook(playbook: str | Path) -> Path:
    path = Path(playbook)
    if not path.is_absolute():
        path = PLAYBOOKS_DIR / path
    if not path.is_file():
        raise SecError(f"playbook {path} does not exist")
    return path


def ansible_playbook() -> str:
    # Next to our own interpreter first: `sec` may run from a venv that is not on PATH.
    local = Path(sys.executable).parent / "ansible-playbook"
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        raise SecError("ansible-playbook not found: install ansible-core in the environment that runs sec")
    return found


def _write_guard(private: Path, target: str) -> str:
    """An ansible-playbook stand-in that dies with us: without it a SIGKILLed `sec` leaves ansible-playbook
    (and its setsid workers) running unrecorded. PR_SET_PDEATHSIG sends SIGTERM, which ansible passes to its
    workers; where prctl is missing (not Linux) the guard simply execs."""
    script = private / "bin" / "ansible-playbook"
    script.parent.mkdir(mode=0o700)
    script.write_text(
        f"#!{sys.executable}\n"
        "import ctypes, os, signal, sys\n"
        "try:\n"
        "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG\n"
        "except (OSError, AttributeError):\n"
        "    pass\n"
        f"if os.getppid() != {os.getpid()}:\n"
        "    sys.exit(143)  # sec died before prctl took effect\n"
        f"os.execv({target!r}, [{target!r}] + sys.argv[1:])\n",
        encoding="utf-8",
    )
    script.chmod(0o700)
    return str(script)


def _scrub_command_artifact(artifact_dir: Path) -> None:
    """ansible-runner dumps our whole environment into `command`; keep only what explains the run."""
    path = artifact_dir / "command"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    env = data.get("env") or {}
    data["env"] = {k: v for k, v in env.items()
                   if (k in _ENV_KEEP or k.startswith(_ENV_KEEP_PREFIXES))
                   and not redact.is_secret_name(k) and not redact.is_secret_value(v)}
    tmp = path.with_name(".command.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.chmod(0o600)
    os.replace(tmp, path)


class _Run:
    """The state of one run shared by ansible-runner's callbacks: progress, the child's pid, cancelling."""

    def __init__(self, op_id: str, record: dict[str, Any], show: bool, where: dict[str, str],
                 summarize: Summarize | None = None) -> None:
        self.op_id = op_id
        self.summarize = summarize
        self.record = record
        self.show = show
        self.where = where
        self.cancel_signal: int | None = None
        self.cancelled_by: str | None = None
        self.window: str | None = None  # the task that opened the run's window, once it started
        self.term_sent: float | None = None

    def say(self, line: str) -> None:
        if self.show:
            print(line, file=sys.stderr, flush=True)

    def on_event(self, event: dict[str, Any]) -> bool:
        pid = event.get("pid")
        if isinstance(pid, int) and not self.record.get("ansible_pid") and pid != os.getpid():
            self.record.update(ansible_pid=pid, ansible_pid_start=history.process_start(pid))
            history.write_record(self.op_id, self.record)
        kind, data = event.get("event"), event.get("event_data", {})
        if kind == "playbook_on_task_start":
            self.say(f"- {data.get('task')}")
            if self.window is None:
                self.window = history.window_started([event])
        elif kind in ("runner_on_failed", "runner_on_async_failed") and not data.get("ignore_errors"):
            self.say(f"  ! {data.get('host')}: {history.result_message(data.get('res') or {})}")
        elif kind == "runner_on_unreachable":
            host = data.get("host", "?")
            cause = history.unreachable_cause((data.get("res") or {}).get("msg", ""))
            self.say(f"  ! {self.where.get(host, host)} unreachable: {cause}")
        return True  # True: ansible-runner still writes the event to job_events/

    def on_status(self, status: dict[str, Any], runner_config: Any = None) -> None:
        if status.get("status") == "running":  # `command` is written by now, before the child starts
            _scrub_command_artifact(history.operation_dir(self.op_id))

    def on_signal(self, signum: int, frame: Any) -> None:
        self.cancel_signal = signum

    def cancelled(self) -> bool:
        """Polled by ansible-runner: on Ctrl-C, SIGTERM ansible-playbook first so it stops its workers."""
        if self.cancel_signal is None:
            asked = history.cancel_request(self.op_id)
            if asked is None or self.window is not None:  # never inside the window: it runs to its end
                return False
            self.cancel_signal, self.cancelled_by = signal.SIGTERM, str(asked.get("by") or "?")
            self.say(f"cancelled by {self.cancelled_by}: stopping before the window")
        pid = self.record.get("ansible_pid")
        if pid and self.term_sent is None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return True
            self.term_sent = time.monotonic()
            return False
        if pid and history.process_alive(pid) and time.monotonic() - self.term_sent < _CANCEL_GRACE:
            return False
        return True


Summarize = Callable[[OperationResult], Any]


def run_operation(operation: str, playbook: str | Path, inventory: dict[str, Any], extravars: dict[str, Any],
                  cluster: str | None, site: str | None, arguments: dict[str, Any],
                  show_progress: bool = True, user: str | None = None, operation_id: str | None = None,
                  summarize: Summarize | None = None) -> OperationResult:
    """Runs `playbook` (relative to playbooks/, or absolute) and records it; returns how it ended.

    `operation_id` is an id its caller claimed (a detached start answers with it at once); `summarize` turns
    the ended run into its result document, written into the record with the final status."""
    path = resolve_playbook(playbook)
    operation_inputs.check(str(playbook), extravars)  # bad input: one line, and no operation is recorded
    binary = ansible_playbook()
    op_id = history.check_claimed(operation_id) if operation_id else history.new_operation_id()
    started = time.monotonic()
    record: dict[str, Any] = {
        "id": op_id, "operation": operation, "playbook": str(playbook), "cluster": cluster, "site": site,
        "user": user or history.current_user(), "via": history.started_via(user), "host": socket.gethostname(),
        "arguments": redact.scrub(arguments),
        "status": "running", "started": history.now_iso(), "ended": None, "duration": None, "rc": None,
        "pid": os.getpid(), "pid_start": history.process_start(os.getpid()), "ansible_pid": None,
        "message": "", "changed_hosts": [], "failed_hosts": [], "result": None,
    }
    history.write_record(op_id, record)
    run = _Run(op_id, record, show_progress, endpoints(inventory), summarize)
    run.say(f"{operation}: operation {op_id}")

    # Playbooks record the operation in the site lock, so it must be the same id as the history's.
    extravars = {**extravars, "operation_id": op_id}
    private = Path(tempfile.mkdtemp(prefix="sec-run-"))  # 0700; holds env/extravars, never copied out
    handlers = _install_signals(run)
    try:
        inventory_file = _write_inputs(private, extravars, inventory)
        runner = ansible_runner.run(
            private_data_dir=str(private), artifact_dir=str(history.operations_dir()), ident=op_id,
            # With `binary` set ansible-runner runs a raw command: the playbook goes in as its argument.
            playbook=str(path), cmdline=shlex.quote(str(path)), binary=_write_guard(private, binary),
            inventory=str(inventory_file), envvars=_envvars(), settings={"pexpect_timeout": 1}, quiet=True,
            project_dir=str(PROJECT_DIR),
            fact_cache_type="memory",  # gathered facts (remote env included) stay out of the artifacts
            event_handler=run.on_event, status_handler=run.on_status, cancel_callback=run.cancelled,
        )
        status_name, rc = runner.status, runner.rc
    except AnsibleRunnerException as exc:
        _finish(run, "failed", None, started, f"ansible-runner: {history.one_line(exc)}")
        raise SecError(f"operation {op_id} could not start: {history.one_line(exc)}") from exc
    except BaseException as exc:
        _finish(run, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", None, started,
                f"sec stopped: {type(exc).__name__}: {history.one_line(exc)}")
        raise
    finally:
        _restore_signals(handlers)
        shutil.rmtree(private, ignore_errors=True)

    if run.cancelled_by is not None:
        return _finish(run, "interrupted", rc, started,
                       f"cancelled by {run.cancelled_by} before its window (what ran before is in the log)")
    if run.cancel_signal is not None or status_name == "canceled":
        signame = signal.Signals(run.cancel_signal).name if run.cancel_signal else "cancel"
        return _finish(run, "interrupted", rc, started, f"interrupted by {signame}")
    if status_name == "successful":
        return _finish(run, "successful", rc, started, "")
    return _finish(run, "failed", rc, started, None)


def record_done(operation: str, user: str | None, arguments: dict[str, Any], result: dict[str, Any],
                started: str, duration: float, message: str = "") -> str:
    """Records work sec did on its own machine, without a playbook (a release added to the releases folder),
    once it succeeded: the history lists it like any operation. Returns its id."""
    op_id = history.new_operation_id()
    history.write_record(op_id, {
        "id": op_id, "operation": operation, "playbook": None, "cluster": None, "site": None,
        "user": user or history.current_user(), "via": history.started_via(user), "host": socket.gethostname(),
        "arguments": redact.scrub(arguments), "status": "successful", "started": started,
        "ended": history.now_iso(), "duration": round(duration, 3), "rc": 0, "pid": os.getpid(),
        "pid_start": history.process_start(os.getpid()), "ansible_pid": None, "message": message,
        "changed_hosts": [], "failed_hosts": [], "result": redact.scrub(result, keep=redact.RESULT_NAMES),
    })
    return op_id


def run_read(playbook: str | Path, inventory: dict[str, Any], extravars: dict[str, Any],
             timeout: int = 120) -> list[dict[str, Any]]:
    """Runs a read-only playbook without recording it (reads are not operations) and returns its events.

    Inputs go in as for an operation (untemplated, in a private dir removed afterwards); the artifacts stay
    in that private dir and go with it."""
    path = resolve_playbook(playbook)
    binary = ansible_playbook()
    private = Path(tempfile.mkdtemp(prefix="sec-read-"))
    try:
        inventory_file = _write_inputs(private, extravars, inventory)
        runner = ansible_runner.run(
            private_data_dir=str(private), artifact_dir=str(private / "artifacts"), ident="read",
            playbook=str(path), cmdline=shlex.quote(str(path)), binary=_write_guard(private, binary),
            inventory=str(inventory_file), envvars=_envvars(), settings={"pexpect_timeout": 1}, quiet=True,
            project_dir=str(PROJECT_DIR), fact_cache_type="memory", timeout=timeout,
        )
        return list(runner.events)
    except AnsibleRunnerException as exc:
        raise SecError(f"{path.name} could not start: {history.one_line(exc)}") from exc
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _write_inputs(private: Path, extravars: dict[str, Any], inventory: dict[str, Any]) -> Path:
    """env/extravars and the inventory in the private dir; returns the inventory's path. Both as YAML with
    every string value tagged !unsafe: what people typed is data, never a template."""
    (private / "env").mkdir(mode=0o700)
    _write_private(private / "env" / "extravars", untemplated.unsafe_yaml(extravars))
    (private / "inventory").mkdir(mode=0o700)
    inventory_file = private / "inventory" / "hosts.yml"
    _write_private(inventory_file, untemplated.unsafe_yaml(inventory))
    return inventory_file


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _envvars() -> dict[str, str]:
    return {
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
        # ansible-runner turns host key checking off unless told; our ssh args ask for accept-new instead.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        # The child has a pty (pexpect), so ansible would colour the stored stdout.
        "ANSIBLE_NOCOLOR": "1",
        # ansible-core 2.19 imports DSA support that cryptography 46+ deprecates: two lines of noise at the
        # top of every operation's log, about nothing sec uses (the filter matches that message only).
        "PYTHONWARNINGS": "ignore:DSA is deprecated:UserWarning",
    }


def _install_signals(run: _Run) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, run.on_signal)
    return old


def _restore_signals(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _finish(run: _Run, status: str, rc: int | None, started: float, message: str | None) -> OperationResult:
    events = history.load_events(run.op_id)
    changed, failed = history.host_summary(events)
    if message is None:
        stdout_path = history.operation_dir(run.op_id) / "stdout"
        stdout = stdout_path.read_text(encoding="utf-8", errors="replace") if stdout_path.exists() else ""
        message = history.failure_message(events, run.where, stdout, rc)
    duration = round(time.monotonic() - started, 3)
    operation = run.record["operation"]
    ended = OperationResult(id=run.op_id, operation=operation, status=status, rc=rc, message=message,
                            duration=duration, changed_hosts=changed, failed_hosts=failed)
    if run.summarize is not None and status != "interrupted":
        try:
            ended.result = redact.scrub(run.summarize(ended), keep=redact.RESULT_NAMES)
        except Exception as exc:  # the hosts' part ended, sec's own part did not (e.g. nothing discovered)
            ended.status, ended.message = "failed", exc.args[0] if isinstance(exc, SecError) else \
                f"sec could not finish: {type(exc).__name__}: {history.one_line(exc)}"
    run.record.update(status=ended.status, rc=rc, ended=history.now_iso(), duration=duration, message=ended.message,
                      changed_hosts=changed, failed_hosts=failed, result=ended.result)
    history.write_record(run.op_id, run.record)
    tail = f": {ended.message}" if ended.message else ""
    run.say(f"{operation} {ended.status} in {history.format_duration(duration)}{tail} (sec ops show {run.op_id})")
    return ended
