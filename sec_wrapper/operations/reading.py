"""Reading operations back, for every front end alike: the list, one operation's document (its record, result
included, and its task rows), its log, and the settled outcome of a run whose `sec` was killed."""

from __future__ import annotations

from typing import Any

from sec_wrapper import history, host_outcome, store
from sec_wrapper.errors import SecError


def site_names(query: str) -> set[str]:
    """The site's name and reverse name when the store knows it, so either finds its operations."""
    try:
        _, site = store.find_site(query)
    except SecError:
        return {query}
    return {query, site.name, site.reverse_name}


def operations(site: str | None = None, status: str | None = None, cluster: str | None = None,
               operation: str | None = None, user: str | None = None, limit: int | None = None
               ) -> list[dict[str, Any]]:
    """Records, newest first, filtered; a bad status is refused in one line."""
    if status and status not in history.STATUSES:
        raise SecError(f"status {status!r}: choose one of {', '.join(history.STATUSES)}")
    records = history.list_operations(site=site_names(site) if site else None, status=status, cluster=cluster,
                                      limit=None if (operation or user) else limit)
    records = [r for r in records if (not operation or r.get("operation") == operation)
               and (not user or r.get("user") == user)]
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
