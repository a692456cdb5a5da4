"""Operations: the history, an operation's page and its log as server-sent events."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sec_wrapper import history
from sec_wrapper.web.common import filtered_operations, operation_or_404
from sec_wrapper.web.rendering import render

_SSE_POLL = 0.3


async def operations_page(request: Request) -> Response:
    records = filtered_operations(request)
    names = sorted({r.get("operation") or "" for r in history.list_operations()} - {""})
    return render(request, "operations.html", {"records": records[:200], "filters": dict(request.query_params),
                                               "statuses": history.STATUSES, "names": names,
                                               "active": "operations"})


async def operation_page(request: Request) -> Response:
    document = await asyncio.to_thread(operation_or_404, request.path_params["id"], True)
    return render(request, "operation.html", {"op": document, "active": "operations",
                                              "duration": history.format_duration(document.get("duration"))})


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
        while True:
            running = history.read_record(op_id).get("status") == "running"
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
