"""`sec sync-db` (production data into a staging site) and `sec sync-media` (add-only media copy)."""

from __future__ import annotations

import argparse
import sys

from sec_wrapper.commands.operation_args import add_operation, add_said_operation, run
from sec_wrapper.operations.pairs import SYNC_DB, SYNC_MEDIA
from sec_wrapper.render import human_size, print_fields, print_json
from sec_wrapper.runner import OperationResult


def register(sub: argparse._SubParsersAction) -> None:
    add_said_operation(sub, SYNC_DB, _say_synced_db)
    add_operation(sub, SYNC_MEDIA).set_defaults(func=_sync_media)


def _sync_media(args: argparse.Namespace) -> int:
    _, result = run(args, allow_failed_result=True)
    summary = result.result
    files = summary.get("files") or []
    if args.json:
        print_json(summary)
    else:
        verb = "would copy" if summary["dry_run"] else "copied"
        print_fields({"source": summary["source"], "target": summary["target"], "transport": summary["transport"],
                      verb: f"{summary['files_copied']} files, {human_size(summary['bytes_copied'])}",
                      "folders created": summary["dirs_created"], "files in source": summary["source_files"],
                      "duration": f"{summary['duration'] or 0:.1f}s", "operation": result.id})
        for entry in files[:args.list]:
            print(f"  {entry.get('path')}  {human_size(entry.get('size') or 0)}")
        hidden = summary["files_copied"] - min(args.list, len(files))
        if hidden > 0:
            print(f"  ... and {hidden} more (sec ops show {result.id}, or --json)")
        for error in summary["errors"][:5]:
            print(f"not copied: {error}")
        for name in summary["passed_over"][:5]:
            print(f"not copied (a link or special file, never copied): {name}")
    if not summary["complete"]:
        print(f"sec: {result.message} (sec ops log {result.id})", file=sys.stderr)
    return 0 if summary["complete"] else 1


def _say_synced_db(summary: dict, result: OperationResult) -> None:
    origin = "new" if summary["new_backup"] else "given"
    email = summary["email_notifications_enabled"]
    print_fields({"source": summary["source"], "target": summary["target"],
                  "backup": f"{summary['backup']} ({origin}, {human_size(summary['backup_size'] or 0)})",
                  "transfer": summary["transfer"], "database": summary["database"],
                  "target url": summary["site_url"], "target e-mail": "off" if email is False else email,
                  "in maintenance": (f"{summary['window_seconds']:.1f}s" if summary.get("window_seconds") is not None
                                     else None),
                  "replaced kept as": summary.get("replaced_database"),
                  "duration": f"{result.duration:.1f}s", "operation": result.id})
    if summary.get("replaced_database"):
        print(f"sec restore {summary['target']} --undo puts the target's previous data back")
