"""`sec ops`: the operation history, like the vendor console's Operations page (list, show, log)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sec_wrapper import history, host_outcome
from sec_wrapper.operations import reading, service
from sec_wrapper.render import print_fields, print_json, print_table

_FOLLOW_POLL = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    ops = subparsers.add_parser("ops", help="operation history: list, show, log, cancel")
    sub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="recent operations, newest first")
    p.add_argument("--site", help="only this site (name or reverse name)")
    p.add_argument("--cluster", help="only this cluster")
    p.add_argument("--status", choices=history.STATUSES, help="only operations in this state")
    p.add_argument("--operation", help="only this operation (as listed, e.g. backup or \"site settings\")")
    p.add_argument("--user", help="only operations started by this account, OS user or schedule:NAME")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only operations started on or after this day (UTC)")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only operations started on or before this day (UTC)")
    p.add_argument("--limit", type=int, default=20, help="at most N operations (0: all; default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one operation: status, duration, hosts, per-task results")
    p.add_argument("id", help="operation id (or a unique prefix)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("log", help="the operation's ansible output")
    p.add_argument("id", help="operation id (or a unique prefix)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the operation ends")
    p.add_argument("--json", action="store_true", help="print {id, status, stdout} once the log is read")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("cancel", help="stop a running operation before its window (refused inside it)")
    p.add_argument("id", help="operation id (or a unique prefix)")
    p.set_defaults(func=cmd_cancel)


def _elapsed(record: dict[str, Any]) -> float | None:
    if record.get("duration") is not None:
        return record["duration"]
    try:
        started = datetime.fromisoformat(record["started"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return None
    return (datetime.now(UTC) - started).total_seconds() if record.get("status") == "running" else None


def _when(stamp: str | None) -> str | None:
    return stamp[:19].replace("T", " ") + "Z" if stamp else None


def cmd_list(args: argparse.Namespace) -> int:
    records = reading.operations(site=args.site, status=args.status, cluster=args.cluster, operation=args.operation,
                                 user=args.user, since=args.since, until=args.until, limit=args.limit or None)
    if args.json:
        print_json(records)
        return 0
    # A run whose sec was killed: what its remote work did is not known until the App server is asked.
    unsettled = [r for r in records if host_outcome.needs_host(r)]
    rows = [{"id": r["id"], "operation": r.get("operation"),
             "status": f"{r.get('status')}*" if r in unsettled else r.get("status"), "site": r.get("site"),
             "cluster": r.get("cluster"), "started": _when(r.get("started")),
             "duration": history.format_duration(_elapsed(r)), "user": r.get("user")} for r in records]
    print_table(rows, ["id", "operation", "status", "site", "cluster", "started", "duration", "user"],
                empty="(no operations)")
    if unsettled:
        print(f"* its sec was killed; `sec ops show {unsettled[0]['id']}` asks the App server what its remote "
              "work did")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    record = reading.settled_document(args.id)
    tasks = record["tasks"]
    if args.json:
        print_json(record)
        return 0
    print_fields({
        "id": record["id"], "operation": record.get("operation"), "status": record.get("status"),
        "message": record.get("message") or None, "cluster": record.get("cluster"), "site": record.get("site"),
        "user": record.get("user"), "started": _when(record.get("started")), "ended": _when(record.get("ended")),
        "duration": history.format_duration(_elapsed(record)), "rc": record.get("rc"),
        "changed hosts": record.get("changed_hosts") or None, "failed hosts": record.get("failed_hosts") or None,
        "arguments": " ".join(f"{k}={v}" for k, v in (record.get("arguments") or {}).items()) or None,
    })
    print()
    print_table(tasks, ["task", "host", "status", "msg"], empty="(no task results)")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    op_id = history.resolve_id(args.id)
    path = history.operation_dir(op_id) / "stdout"
    if args.json:
        if args.follow:
            _wait_for_end(op_id)
        print_json(reading.log(op_id))
        return 0
    offset = _print_from(path, 0, whole_lines=args.follow)
    while args.follow:
        running = history.read_record(op_id).get("status") == "running"
        # Read after the status check, so nothing written before the end is missed.
        offset = _print_from(path, offset, whole_lines=running)
        if not running:
            break
        time.sleep(_FOLLOW_POLL)
    return 0


def _print_from(path: Path, offset: int, whole_lines: bool = False) -> int:
    """Prints the file past `offset` (only up to the last newline when more may come); returns the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    if whole_lines:
        data = data[: data.rfind(b"\n") + 1]  # never split a line or a UTF-8 character in two
    if data:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(data)


def _wait_for_end(op_id: str) -> None:
    while history.read_record(op_id).get("status") == "running":
        time.sleep(_FOLLOW_POLL)


def cmd_cancel(args: argparse.Namespace) -> int:
    print(service.cancel(args.id, history.current_user()))
    return 0
