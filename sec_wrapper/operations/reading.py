"""Reading operations back, for every front end alike: the list, one operation's document (its record, result
included, and its task rows), its log, and the settled outcome of a run whose `sec` was killed."""

from __future__ import annotations

import datetime
import time
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso

from sec_wrapper import history, host_outcome, store
from sec_wrapper.errors import SecError


def site_names(query: str) -> set[str]:
    """The site's name and reverse name when the store knows it, so either finds its operations."""
    try:
        _, site = store.find_site(query)
    except SecError:
        return {query}
    return {query, site.name, site.reverse_name}


def _day(text: str | None, name: str) -> str | None:
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise SecError(f"{name} {text!r}: give a date as YYYY-MM-DD") from None


def operations(site: str | None = None, status: str | None = None, cluster: str | None = None,
               operation: str | None = None, user: str | None = None, limit: int | None = None,
               since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """Records, newest first, filtered; `since`/`until` are UTC days, both included. A bad status or date is
    refused in one line."""
    if status and status not in history.STATUSES:
        raise SecError(f"status {status!r}: choose one of {', '.join(history.STATUSES)}")
    first, last = _day(since, "since"), _day(until, "until")
    filtered = bool(operation or user or first or last)
    records = history.list_operations(site=site_names(site) if site else None, status=status, cluster=cluster,
                                      limit=None if filtered else limit)
    records = [r for r in records if (not operation or r.get("operation") == operation)
               and (not user or r.get("user") == user)
               and (not first or (r.get("started") or "")[:10] >= first)
               and (not last or (r.get("started") or "")[:10] <= last)]
    return records[:limit] if limit else records


def document(op_id: str) -> dict[str, Any]:
    """`sec ops show --json`: the record (with `result`, the operation's --json document once it ended) and
    its tasks."""
    op_id = history.resolve_id(op_id)
    record = history.read_record(op_id)
    return {"result": None, **record, "tasks": history.task_rows(history.load_events(op_id))}


def settled_document(op_id: str) -> dict[str, Any]:
    """`document`, after asking the App server how a run whose `sec` was killed really ended there
    (host_outcome); the answer is stored in the history once it is final."""
    found = document(op_id)
    if host_outcome.needs_host(found):
        found.update(host_outcome.reconcile(history.read_record(found["id"])))
    return found


def log(op_id: str) -> dict[str, Any]:
    op_id = history.resolve_id(op_id)
    path = history.operation_dir(op_id) / "stdout"
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return {"id": op_id, "status": history.read_record(op_id).get("status"), "stdout": text}


def _task_starts(events: list[dict[str, Any]]) -> list[str]:
    return [(e.get("event_data") or {}).get("task") or "?" for e in events
            if e.get("event") == "playbook_on_task_start"]


def _like_before(record: dict[str, Any]) -> dict[str, Any] | None:
    """The last successful run of the same operation on the same site (or cluster): what to expect."""
    for other in history.list_operations(site=record.get("site") or None, status="successful",
                                         cluster=None if record.get("site") else record.get("cluster")):
        if other.get("operation") == record.get("operation") and other.get("id") != record.get("id"):
            return other
    return None


def progress(op_id: str, expected: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where a run is: step N (tasks started) of about M (the tasks of the last successful run of the same
    operation on the same site), the current task, the time elapsed and an estimate of the time left from that
    run's duration. `expected` ({steps, duration}) is what an earlier call found, to read that run only once."""
    record = history.read_record(op_id)
    starts = _task_starts(history.load_events(op_id))
    if expected is None:
        before = _like_before(record)
        expected = {"steps": len(_task_starts(history.load_events(before["id"]))) if before else None,
                    "duration": before.get("duration") if before else None,
                    "from": before.get("id") if before else None}
    started = epoch_of_iso(record.get("started") or "")
    running = record.get("status") == "running"
    elapsed = (time.time() - started if running else record.get("duration")) if started else None
    remaining = None
    if running and expected["duration"] and elapsed is not None:
        remaining = max(0.0, expected["duration"] - elapsed)
    steps = expected["steps"]
    return {"step": len(starts), "steps": max(steps, len(starts)) if steps else None, "task": starts[-1] if starts
            else None, "elapsed": round(elapsed, 1) if elapsed is not None else None,
            "remaining": round(remaining, 1) if remaining is not None else None, "status": record.get("status"),
            "expected": expected}
