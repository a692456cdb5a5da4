"""Operation history: `operations/<id>/` (ansible-runner's artifacts) plus our record, `sec.json`.

This module writes and reads records and interprets job events; it never runs anything. A record that says
`running` while none of its processes is alive is read back as `interrupted`: a SIGKILLed `sec` cannot
write its own ending, so the reader decides.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive

from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.store import write_json_atomic

RECORD = "sec.json"
CANCEL_REQUEST = "cancel.json"
# Modules that open a run's window (the site down, or its data changing): a cancel is honoured only before
# the first of them starts, never inside the window it opens.
WINDOW_ACTIONS = frozenset({"fpt.sec.maintenance", "fpt.sec.db_restore", "fpt.sec.db_migrate",
                            "fpt.sec.release_activate", "fpt.sec.events_trim"})
STATUSES = ("running", "successful", "failed", "interrupted")
ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped",
                 "runner_on_async_failed")
_FAILED_EVENTS = ("runner_on_failed", "runner_on_async_failed")


# ---- ids, folders, who and when ---------------------------------------------------------------------

def operations_dir() -> Path:
    path = sec_home() / "operations"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def new_operation_id(now: datetime | None = None) -> str:
    """A fresh id that sorts by start time (UTC, to the second) and its folder, created exclusively."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = operations_dir()
    while True:
        op_id = f"{stamp}-{secrets.token_hex(2)}"
        try:
            (base / op_id).mkdir(mode=0o700)
            return op_id
        except FileExistsError:
            continue


def check_claimed(op_id: str) -> str:
    """An id claimed ahead of its run (a detached start answers with it at once): its folder exists, unused."""
    folder = operation_dir(op_id)
    if not folder.is_dir() or (folder / RECORD).exists():
        raise SecError(f"operation {op_id} is not a claimed, unused operation folder")
    return op_id


def operation_dir(op_id: str) -> Path:
    if not ID_RE.match(op_id):
        raise SecError(f"{op_id!r} is not an operation id: see `sec ops list`")
    return operations_dir() / op_id


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def started_via(user: str | None) -> str:
    """Which front end started an operation, from who its caller says started it: a schedule
    (`schedule:NAME`), the console (an account), else the CLI (the OS user)."""
    if user is None:
        return "cli"
    return "schedule" if user.startswith("schedule:") else "console"


def current_user() -> str:
    """Who runs an operation started from a shell: the OS user (the console passes its logged-in user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        user = str(os.getuid())
    return user  # the machine is the record's `host`; `via` says the CLI started it


# ---- processes --------------------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) from /proc, or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("X", "") if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], fields[19]


def process_start(pid: int) -> str | None:
    """An opaque start stamp that tells a process from a later one given the same pid."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: int | None, start: str | None = None) -> bool:
    if not pid or not pid_alive(pid):
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):  # killed but not yet reaped: it will never write again
        return False
    return not (start and started != start)


# ---- records ----------------------------------------------------------------------------------------

def write_record(op_id: str, record: dict[str, Any]) -> None:
    write_json_atomic(operation_dir(op_id) / RECORD, record)


def read_record(op_id: str) -> dict[str, Any]:
    """The record as stored, with `status` corrected for runs whose processes are gone."""
    path = operation_dir(op_id) / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SecError(f"operation {op_id} has no record: see `sec ops list`") from exc
    except ValueError as exc:
        raise SecError(f"cannot read {path}: {exc}") from exc
    return effective(record)


def effective(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != "running" or still_running(record):
        return record
    # controller_lost: what the App server did is not known yet (`sec ops show` asks it: host_outcome.py).
    record = dict(record, status="interrupted", controller_lost=True)
    if not record.get("message"):
        task = last_task(load_events(record["id"])) if record.get("id") else None
        during = f" during task '{task}'" if task else ""
        record["message"] = (f"interrupted{during}: the sec process ended before the operation finished "
                             "(`sec ops show` asks the App server what its remote work did)")
    return record


def still_running(record: dict[str, Any]) -> bool:
    if record.get("host") and record["host"] != socket.gethostname():
        return True  # started on another machine sharing SEC_HOME: its processes are not ours to see
    return (process_alive(record.get("pid"), record.get("pid_start"))
            or process_alive(record.get("ansible_pid"), record.get("ansible_pid_start")))


def all_ids() -> list[str]:
    return sorted((p.name for p in operations_dir().iterdir() if ID_RE.match(p.name)), reverse=True)


def resolve_id(text: str) -> str:
    """An exact id, or the one id that starts with `text`."""
    ids = all_ids()
    if text in ids:
        return text
    matches = [i for i in ids if i.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SecError(f"no operation {text}: see `sec ops list`")
    raise SecError(f"operation {text} is ambiguous ({len(matches)} match): give more of the id")


def list_operations(site: str | set[str] | None = None, status: str | None = None,
                    limit: int | None = None, cluster: str | None = None) -> list[dict[str, Any]]:
    """Records, newest first. `site` may be a set of names (a site's name and its reverse name)."""
    sites = {site} if isinstance(site, str) else site
    out: list[dict[str, Any]] = []
    for op_id in all_ids():
        try:
            record = read_record(op_id)
        except SecError:
            continue  # a folder being created, or not ours
        if sites and record.get("site") not in sites:
            continue
        if cluster and record.get("cluster") != cluster:
            continue
        if status and record.get("status") != status:
            continue
        out.append(record)
    out.sort(key=lambda r: (r.get("started") or "", r.get("id") or ""), reverse=True)
    return out[:limit] if limit else out


def request_cancel(op_id: str, user: str) -> None:
    write_json_atomic(operation_dir(op_id) / CANCEL_REQUEST, {"by": user, "at": now_iso()})


def cancel_request(op_id: str) -> dict[str, Any] | None:
    try:
        found = json.loads((operation_dir(op_id) / CANCEL_REQUEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def window_started(events: list[dict[str, Any]]) -> str | None:
    """The task that opened the run's window (WINDOW_ACTIONS), None while the run is before it."""
    for ev in events:
        data = ev.get("event_data") or {}
        if ev.get("event") == "playbook_on_task_start" and (
                data.get("resolved_action") in WINDOW_ACTIONS or data.get("task_action") in WINDOW_ACTIONS):
            return str(data.get("task") or data.get("task_action"))
    return None


# ---- job events -------------------------------------------------------------------------------------

def load_events(op_id: str) -> list[dict[str, Any]]:
    """The run's job events in order; partial or half-written files are skipped."""
    folder = operation_dir(op_id) / "job_events"
    if not folder.is_dir():
        return []
    events = []
    for path in folder.glob("*.json"):
        head = path.name.split("-", 1)[0]
        if not head.isdigit() or path.name.endswith("-partial.json"):
            continue
        try:
            events.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    events.sort(key=lambda e: e.get("counter", 0))
    return events


def _matches(data: dict[str, Any], name: str) -> bool:
    return name in (data.get("task"), data.get("task_action"), data.get("resolved_action"))


def task_results(events: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    """{host: res} for the task named `name`, or run by module `name` (short or FQCN).

    When several tasks match, a host's later result replaces its earlier one. Skipped hosts are left out.
    """
    results: dict[str, dict[str, Any]] = {}
    for ev in events:
        data = ev.get("event_data", {})
        if ev.get("event") in RESULT_EVENTS and ev.get("event") != "runner_on_skipped" and _matches(data, name):
            results[data.get("host", "?")] = data.get("res", {})
    return results


def task_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per host result: task, action, host, status (ok/changed/failed/ignored/unreachable/skipped)."""
    rows = []
    for ev in events:
        kind = ev.get("event")
        if kind not in RESULT_EVENTS:
            continue
        data = ev.get("event_data", {})
        res = data.get("res") or {}
        if kind in _FAILED_EVENTS:
            status = "ignored" if data.get("ignore_errors") else "failed"
        elif kind == "runner_on_unreachable":
            status = "unreachable"
        elif kind == "runner_on_skipped":
            status = "skipped"
        else:
            status = "changed" if res.get("changed") else "ok"
        msg = result_message(res) if status in ("failed", "ignored", "unreachable") else one_line(res.get("msg"))
        rows.append({"task": data.get("task"), "action": data.get("resolved_action") or data.get("task_action"),
                     "host": data.get("host"), "status": status, "msg": msg})
    return rows


def host_summary(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(changed hosts, failed or unreachable hosts), from the recap, else from the results seen so far."""
    for ev in reversed(events):
        if ev.get("event") == "playbook_on_stats":
            data = ev.get("event_data", {})
            failed = set(data.get("failures") or {}) | set(data.get("dark") or {})
            return sorted(data.get("changed") or {}), sorted(failed)
    rows = task_rows(events)
    changed = {r["host"] for r in rows if r["status"] == "changed"}
    failed = {r["host"] for r in rows if r["status"] in ("failed", "unreachable")}
    return sorted(changed), sorted(failed)


def last_task(events: list[dict[str, Any]]) -> str | None:
    for ev in reversed(events):
        if ev.get("event") == "playbook_on_task_start":
            return ev.get("event_data", {}).get("task")
    return None


# ---- messages ---------------------------------------------------------------------------------------

def one_line(text: Any, limit: int = 600) -> str:
    """`text` on one line of at most `limit` characters. A longer one loses its middle, not its end: a
    refusal names the fix last ("...; move the file aside"), after a path that may be long."""
    if text is None:
        return ""
    line = " ".join(str(text).split())
    if len(line) <= limit:
        return line
    head = limit // 3
    return line[:head] + " ... " + line[len(line) - (limit - head - 5):]


def result_message(res: dict[str, Any]) -> str:
    """The useful words of a failed result: its msg, an item's msg, else the command's last stderr line."""
    if not res:
        # ansible-runner leaves out a result larger than MAX_EVENT_RES (700 kB): say so, never a bare "failed".
        return ("failed; its result was too large to record (over 700 kB, usually a huge argument): "
                "the task's own message is in `sec ops log`")
    msg = res.get("msg") or ""
    items = [i for i in res.get("results") or [] if isinstance(i, dict) and i.get("failed")]
    if items and (not msg or msg.startswith("One or more items failed")):
        msg = items[0].get("msg") or msg
        res = items[0]
    if not msg or msg == "non-zero return code":
        tail = (res.get("stderr") or res.get("stdout") or "").strip().splitlines()
        detail = tail[-1] if tail else ""
        rc = f"rc {res['rc']}" if "rc" in res else ""
        msg = ": ".join(p for p in (msg or "failed", rc, detail) if p)
    return one_line(msg)


_CONNECT_RE = re.compile(r"connect to host (\S+) port (\d+): (.+)")


def unreachable_cause(msg: str) -> str:
    """The cause ssh gave, without ansible's and ssh's prefixes (e.g. 'Connection refused')."""
    lines = [ln.strip() for ln in str(msg).splitlines() if ln.strip()]
    line = lines[-1] if lines else "unreachable"
    # ansible words it as "Failed to connect to the host via ssh: ..." or (2.19, on a refused login)
    # "Task failed: Data could not be sent ... can be reached over ssh: ...": keep what ssh said.
    line = re.sub(r"^.*?(?:via|over) ssh:\s*", "", line)
    match = _CONNECT_RE.search(line)
    if match:
        return match.group(3).strip()
    line = re.sub(r"^ssh:\s*", "", line)
    line = re.sub(r"^[^\s:]+@[^\s:]+:\s*", "", line)  # "user@host: Permission denied (...)"
    return one_line(line)


def failure_message(events: list[dict[str, Any]], endpoints: dict[str, str] | None = None,
                    stdout: str = "", rc: int | None = None) -> str:
    """One line naming why a run failed: the last fatal result, else ansible's own ERROR line."""
    endpoints = endpoints or {}
    for ev in reversed(events):
        kind, data = ev.get("event"), ev.get("event_data", {})
        host = data.get("host", "?")
        if kind == "runner_on_unreachable":
            where = endpoints.get(host) or data.get("remote_addr") or host
            return f"{where} unreachable: {unreachable_cause((data.get('res') or {}).get('msg', ''))}"
        if kind in _FAILED_EVENTS and not data.get("ignore_errors"):
            return f"{data.get('task')} on {host}: {result_message(data.get('res') or {})}"
    for line in stdout.splitlines():
        text = line.strip()
        if text.startswith("[ERROR]:") or text.startswith("ERROR!"):
            return one_line(text.split(":", 1)[1] if text.startswith("[ERROR]:") else text[len("ERROR!"):])
    return f"ansible-playbook ended with rc {rc}" if rc is not None else "failed"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
