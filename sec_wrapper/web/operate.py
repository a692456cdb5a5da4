"""The console's calls into the operation service: who asks (the logged-in account), an operation started
detached (it outlives the request), one run to its end for a page that shows its result, and the
confirmation asked in the console's own words. Nothing here builds a command line or reads one's output."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest


def user_of(request: Request) -> str:
    return str(request.scope["sec_user"])


def _refusal(exc: ConfirmationNeeded) -> SecError:
    return SecError(f"{exc.what}: type the site's name ({exc.name}) in confirm to go ahead")


async def start(request: Request, wanted: OperationRequest) -> str:
    """Starts the operation detached; its id once recorded. A refusal is a SecError (400), nothing recorded."""
    try:
        return await asyncio.to_thread(service.start_detached, wanted, user_of(request))
    except ConfirmationNeeded as exc:
        raise _refusal(exc) from None


async def run_to_end(request: Request, wanted: OperationRequest) -> dict[str, Any]:
    """Starts the operation detached and waits for its end: its result document, or its failure (SecError)."""
    op_id = await start(request, wanted)
    record = await asyncio.to_thread(service.wait_for_end, op_id)
    if record.get("status") != "successful" or record.get("result") is None:
        raise SecError(f"{wanted.operation} {record.get('status')}: {record.get('message') or 'see the log'} "
                       f"(operation {op_id})")
    return record["result"]
