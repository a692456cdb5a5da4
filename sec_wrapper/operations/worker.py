"""A detached operation's process: `python -m sec_wrapper.operations.worker`, started by
`service.start_detached` with {request, user, operation_id} as JSON on its standard input."""

from __future__ import annotations

import json
import sys

from sec_wrapper import history, site_state
from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.store import write_json_atomic


def main() -> int:
    payload = json.load(sys.stdin)
    op_id = str(payload["operation_id"])
    try:
        service.run(OperationRequest.from_json(payload["request"]), user=str(payload["user"]), operation_id=op_id)
        _read_state_after(op_id)
    except SecError as exc:
        folder = history.operation_dir(op_id)
        if not (folder / history.RECORD).exists():  # refused before it ran: the console says why
            write_json_atomic(folder / service.REFUSAL, {"message": str(exc)})
        print(f"sec: {exc}", file=sys.stderr)
        return 2
    return 0


def _read_state_after(op_id: str) -> None:
    """The console shows a site's state from its cache: read it again once an operation on it has ended, so
    the next page shows what the operation did (best effort: the background refresh comes anyway)."""
    record = history.read_record(op_id)
    if not (record.get("cluster") and record.get("site")):
        return
    try:
        site_state.probe(record["cluster"], record["site"])
    except Exception as exc:  # noqa: BLE001 (the operation is over and recorded; this is only a read)
        print(f"sec: the site's state was not read again: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
