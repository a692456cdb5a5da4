"""The one way an operation is checked, started and run, whichever front end asks: the CLI runs it in its own
process, the console starts it detached (a worker process that outlives the request), the scheduler calls it
like the CLI. Each passes an OperationRequest with typed options; none builds another's argv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from sec_wrapper import history, host_outcome, operation_inputs
from sec_wrapper.errors import SecError
from sec_wrapper.operations.clusters import CLUSTER_CONNECT, CLUSTER_CREATE
from sec_wrapper.operations.pairs import SYNC_DB, SYNC_MEDIA
from sec_wrapper.operations.site_work import (
    BACKUP,
    BACKUPS,
    DRILL,
    MAINTENANCE,
    REDEPLOY,
    REPAIR,
    RESTORE,
    RUN_MODULE,
    SETTINGS,
    TRIM_EVENTS,
    UPGRADE,
)
from sec_wrapper.operations.spec import OperationRequest, OperationSpec, Prepared
from sec_wrapper.runner import OperationResult, run_operation

CATALOG: dict[str, OperationSpec] = {spec.name: spec for spec in (
    MAINTENANCE, BACKUP, BACKUPS, RESTORE, DRILL, TRIM_EVENTS, REDEPLOY, SETTINGS, REPAIR, UPGRADE, RUN_MODULE,
    SYNC_DB, SYNC_MEDIA, CLUSTER_CREATE, CLUSTER_CONNECT)}

# In a detached run's folder: the worker's own output (sec's progress lines), and why it refused to start.
WORKER_LOG = "worker.log"
REFUSAL = "refused.json"
# How long a detached start waits for the operation's record before answering with its id anyway.
_RECORD_WAIT = 30.0
_POLL = 0.05


def spec_of(name: str) -> OperationSpec:
    spec = CATALOG.get(name)
    if spec is None:
        raise SecError(f"no operation {name}: choose one of {', '.join(sorted(CATALOG))}")
    return spec


def prepare(request: OperationRequest) -> Prepared:
    """Checks the request (options, site, confirmation, what the playbook would refuse); a refusal is a
    SecError and nothing is recorded."""
    prepared = spec_of(request.operation).prepare(request)
    operation_inputs.check(prepared.playbook, prepared.extravars)
    return prepared


def run(request: OperationRequest | Prepared, user: str | None = None, operation_id: str | None = None,
        show_progress: bool = True) -> OperationResult:
    """Runs the operation in this process and records it, its result document included; returns how it
    ended (a failed run is returned, not raised: `failure` words it)."""
    prepared = request if isinstance(request, Prepared) else prepare(request)
    spec = prepared.spec

    def summarize(result: OperationResult) -> Any:
        if result.ok or (spec.result_when_failed and result.status == "failed"):
            return spec.summarize(prepared, result)
        return None

    with prepared.environment() as extra:
        result = run_operation(prepared.context.get("name", spec.name), prepared.playbook, prepared.inventory,
                               {**prepared.extravars, **extra}, cluster=prepared.cluster, site=prepared.site,
                               arguments=prepared.arguments, show_progress=show_progress, user=user,
                               operation_id=operation_id, summarize=summarize)
    host_outcome.settle_taken_over(result)
    return result


def failure(prepared: Prepared, result: OperationResult) -> SecError:
    """A run that did not succeed, in one line: what, how it ended, why, and where its log is."""
    return SecError(f"{prepared.subject} {result.status}: {result.message or 'see the log'} "
                    f"(sec ops log {result.id})")


def start_detached(request: OperationRequest, user: str) -> str:
    """Starts the operation in a worker process of its own session (it goes on when the console stops, as a
    CLI run in a shell would) and returns its id once recorded. A refusal raises, with nothing recorded."""
    prepare(request)  # bad input is refused here, in the caller, before any process or folder exists
    op_id = history.new_operation_id()
    folder = history.operation_dir(op_id)
    payload = json.dumps({"request": request.to_json(), "user": user, "operation_id": op_id}).encode()
    try:
        with open(folder / WORKER_LOG, "wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "sec_wrapper.operations.worker"],
                                      stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise SecError(f"the operation could not start: {exc.strerror or exc}") from exc
    assert worker.stdin is not None
    worker.stdin.write(payload)
    worker.stdin.close()
    threading.Thread(target=worker.wait, daemon=True).start()  # reaped, never a zombie
    record = folder / history.RECORD
    deadline = time.monotonic() + _RECORD_WAIT
    while not record.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(_POLL)
    if record.exists() or worker.poll() is None:
        return op_id
    try:
        refusal = json.loads((folder / REFUSAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        refusal = {}
    shutil.rmtree(folder, ignore_errors=True)  # nothing ran: leave no empty operation behind
    raise SecError(str(refusal.get("message") or f"the operation stopped before it started (exit {worker.returncode})"))


def wait_for_end(op_id: str, timeout: float = 3600.0) -> dict[str, Any]:
    """The record once the operation has ended (or its process is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        record = history.read_record(op_id)
        if record.get("status") != "running" or time.monotonic() > deadline:
            return record
        time.sleep(_POLL * 4)


def cancel(op_id: str, user: str) -> str:
    """Asks a running operation to stop before its window (the site down or its data changing); refused, in
    one line, once the window has begun or when the run has ended. The run stops at its next step."""
    op_id = history.resolve_id(op_id)
    record = history.effective(history.read_record(op_id))
    if record.get("status") != "running":
        raise SecError(f"operation {op_id} is {record.get('status')}: only a running operation can be cancelled")
    window = history.window_started(history.load_events(op_id))
    if window:
        raise SecError(f"operation {op_id} is inside its window (since \"{window}\"): it cannot be cancelled now "
                       "and runs to its end, putting the site back")
    history.request_cancel(op_id, user)
    return f"operation {op_id}: cancel asked; it stops before its window"
