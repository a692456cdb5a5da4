"""Operations: the history, an operation's page and its log as server-sent events."""

from __future__ import annotations

import asyncio
import json
import math
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import reading, service
from sec_wrapper.web import operate, security
from sec_wrapper.web.common import filtered_operations, operation_or_404, redirect
from sec_wrapper.web.rendering import render

_SSE_POLL = 0.3
_PROGRESS_EVERY = 3  # polls between two progress events (about a second)


PAGE_SIZE = 50


async def operations_page(request: Request) -> Response:
    """The history with its filters (site, operation, who, status, a date range) and pages of PAGE_SIZE."""
    records = filtered_operations(request)
    everything = history.list_operations()
    names = sorted({r.get("operation") or "" for r in everything} - {""})
    users = sorted({r.get("user") or "" for r in everything} - {""})
    sites = sorted({s.name for c in store.list_clusters() for s in c.sites}
                   | {r.get("site") or "" for r in everything} - {""})
    page = request.query_params.get("page", "1")
    number = max(1, int(page)) if page.isdigit() else 1
    pages = max(1, math.ceil(len(records) / PAGE_SIZE))
    number = min(number, pages)
    shown = records[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return render(request, "operations.html", {
        "records": shown, "filters": dict(request.query_params), "statuses": history.STATUSES, "names": names,
        "users": users, "sites": sites, "page": number, "pages": pages, "total": len(records),
        "query": urlencode(query), "active": "operations"})


async def operation_page(request: Request) -> Response:
    document = await asyncio.to_thread(operation_or_404, request.path_params["id"], True)
    return render(request, "operation.html", {"op": document, "active": "operations",
                                              "duration": history.format_duration(document.get("duration"))})


async def cancel_operation(request: Request) -> Response:
    """Cancel: the run stops before its window; inside it, refused (the page says why)."""
    await security.checked_form(request)
    op_id = operation_or_404(request.path_params["id"])["id"]
    try:
        await asyncio.to_thread(service.cancel, op_id, operate.user_of(request))
    except SecError as exc:
        document = await asyncio.to_thread(operation_or_404, op_id, True)
        return render(request, "operation.html", {"op": document, "active": "operations", "error": str(exc),
                                                  "duration": history.format_duration(document.get("duration"))},
                      409)
    return redirect(f"/operations/{op_id}")


async def operation_events(request: Request) -> Response:
    """Server-sent events: the log as it grows (`log`), then the final record (`end`). A reconnecting
    browser sends Last-Event-ID, the byte offset it has, and gets only what follows."""
    op_id = operation_or_404(request.path_params["id"])["id"]
    path = history.operation_dir(op_id) / "stdout"
    try:
        offset = max(0, int(request.headers.get("last-event-id", "0")))
    except ValueError:
        offset = 0

    async def stream():
        nonlocal offset
        yield "retry: 1000\n\n"
        expected, polls = None, 0
        while True:
            running = history.read_record(op_id).get("status") == "running"
            if polls % _PROGRESS_EVERY == 0 or not running:  # reading the events costs more than the log
                where = await asyncio.to_thread(reading.progress, op_id, expected)
                expected = where.pop("expected")
                yield f"event: progress\ndata: {json.dumps(where)}\n\n"
            polls += 1
            data = b""
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            if running:
                data = data[: data.rfind(b"\n") + 1]  # whole lines only while more may come
            if data:
                offset += len(data)
                text = json.dumps(data.decode("utf-8", errors="replace"))
                yield f"id: {offset}\nevent: log\ndata: {text}\n\n"
            if not running:
                document = operation_or_404(op_id)
                summary = {k: document.get(k) for k in ("status", "message", "duration", "ended", "rc")}
                summary["duration_text"] = history.format_duration(document.get("duration"))
                yield f"event: end\ndata: {json.dumps(summary)}\n\n"
                return
            if await request.is_disconnected():
                return
            yield ": waiting\n\n"
            await asyncio.sleep(_SSE_POLL)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
