"""What a run whose `sec` was killed really did on the App server.

A SIGKILLed `sec` cannot write how its operation ended, and its remote work goes on (ssh only closes the
channel). The history reads such a record back as interrupted; this asks the App server, through
`playbooks/operation_outcome.yml`, what the operation's modules recorded there (module_utils/site_work),
and writes the answer into the record once it is final: completed, failed, or killed on the host too.
"""

from __future__ import annotations

from typing import Any

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import cluster_inventory
from sec_wrapper.runner import OperationResult, run_operation

# How an operation that reached its end on the hosts (its lock release recorded it) is settled.
FINAL_STATUS = {"completed": "successful", "failed": "failed"}


def needs_host(record: dict[str, Any]) -> bool:
    """A run whose controller is gone and whose outcome on the host is not final in the record yet."""
    return bool(record.get("controller_lost")) and bool(record.get("site")) and bool(record.get("cluster"))


def reconcile(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its status and message from the App server; stored when final."""
    if not needs_host(record):
        return record
    try:
        cluster, site = store.find_site(record["site"], record["cluster"])
    except SecError as exc:
        return dict(record, message=f"{record.get('message')} (the App server cannot be asked: {exc})")
    checked = run_operation("check outcome", "operation_outcome.yml", cluster_inventory(cluster),
                            {"site": site.reverse_name, "outcome_of": record["id"]}, cluster=cluster.name,
                            site=site.name, arguments={"site": site.name, "outcome_of": record["id"]},
                            show_progress=False)
    if not checked.ok:
        return dict(record, message=f"{record.get('message')} (the App server could not be asked: "
                                    f"{checked.message}; sec ops show {checked.id})")
    outcome = next(iter(checked.task_results("fpt.sec.site_lock").values()), {}).get("operation_outcome")
    updated = apply(record, outcome)
    updated["checked_by"] = checked.id
    if updated["status"] != "running":
        stored = {k: v for k, v in updated.items() if k != "controller_lost"}
        history.write_record(record["id"], stored)
    return updated


def _steps_text(steps: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s.get('module')} {s.get('state')}" for s in steps) or "none"


def apply(record: dict[str, Any], outcome: dict[str, Any] | None) -> dict[str, Any]:
    """The record as the host's journal of the operation tells it (pure: unit-tested).

    Only an operation that reached its end on the hosts (its lock release recorded ``finished``) is settled
    from that end; one stopped half-way is never `successful`, whatever its last step did there."""
    task = history.last_task(history.load_events(record["id"])) if record.get("id") else None
    killed = f"the sec process was killed during task '{task}'" if task else "the sec process was killed"
    last = (outcome or {}).get("last") or {}
    state = (outcome or {}).get("state")
    finished = (outcome or {}).get("finished") or {}
    module = last.get("module")
    if state is None and not finished:
        return dict(record, status="interrupted", host_outcome=None,
                    message=f"{killed}; no remote work of it was recorded on the App server")
    if state == "running":
        running = next(s for s in outcome["steps"] if s.get("state") == "running")
        return dict(record, status="running", host_outcome=dict(running, state="running"),
                    message=f"{killed}, but its remote work {running.get('module')} (pid {running.get('pid')}, "
                            f"started {running.get('started')}) is still running on the App server; the site "
                            "stays locked until it ends")
    steps = (outcome or {}).get("steps") or []
    host = {"state": state, "module": module, "ended": last.get("ended"), "msg": last.get("msg"),
            "summary": last.get("summary"), "pid": last.get("pid"), "steps": _steps_text(steps),
            "finished": finished or None}
    if finished.get("state") in ("completed", "failed"):
        host["state"] = finished["state"]
        return dict(record, status=FINAL_STATUS[finished["state"]], host_outcome=host,
                    message=f"{killed} after the operation had ended on the App server: every step "
                            f"{'ran' if finished['state'] == 'completed' else 'ran or failed'} and it "
                            f"{finished['state']} at {finished.get('at')} (steps there: {_steps_text(steps)})")
    if state == "killed":
        said = f"{module} was killed on the App server too (pid {last.get('pid')}), before it recorded an end"
        status = "interrupted"
    else:
        detail = f": {last.get('msg')}" if last.get("msg") else ""
        said = (f"{module} {state} on the App server at {last.get('ended')}{detail}; the operation never reached "
                f"its end there (steps there: {_steps_text(steps)}), so its later steps did not run: check the "
                "site (sec site show, its maintenance page) before relying on it")
        status = "failed" if state == "failed" else "interrupted"
    return dict(record, status=status, host_outcome=host, message=f"{killed}; {said}")


def settle_taken_over(result: OperationResult) -> None:
    """When this run took over a dead operation's lock, the App server said how that one's work ended
    (``holder_outcome``): put it in that operation's record, if it is ours and still unsettled."""
    for res in result.task_results("fpt.sec.site_lock").values():
        holder = res.get("taken_over") or {}
        op_id = holder.get("operation_id")
        if not op_id or not history.ID_RE.match(op_id) or "holder_outcome" not in res:
            continue
        try:
            record = history.read_record(op_id)
        except SecError:
            continue  # another controller's operation (AWX), not in this history
        if not record.get("controller_lost"):
            continue
        settled = apply(record, res.get("holder_outcome"))
        if settled["status"] != "running":
            history.write_record(op_id, {k: v for k, v in settled.items() if k != "controller_lost"})
