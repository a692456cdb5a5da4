"""`sec schedule`: operations that run by themselves, at the occurrences of an iCalendar RRULE."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from sec_wrapper import alerts, history, schedules
from sec_wrapper.commands import add_action
from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.render import print_json, print_table

# The operations' own options a schedule may carry (never the site, the backup to drill or a trim's fixed date).
_NOT_SCHEDULED = {"site", "backup", "before"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("schedule", help="run backups, drills and trims by themselves, on an RRULE")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="a new schedule: --site S --operation OP --rrule RULE")
    add.add_argument("name", help="lowercase letters, digits, - and _, e.g. nightly-backup")
    add.add_argument("--site", required=True)
    add.add_argument("--cluster", help="when the site's name is in several clusters")
    add.add_argument("--operation", required=True, metavar="|".join(schedules.OPERATIONS))
    add.add_argument("--rrule", required=True,
                     help="an iCalendar RRULE, e.g. 'FREQ=DAILY;BYHOUR=2;BYMINUTE=0' (a DTSTART line may come first)")
    add.add_argument("--timezone", default="UTC", help="the zone of the rule's hours (default UTC), e.g. Europe/Paris")
    add.add_argument("--before-days", type=int, metavar="N", help="trim-events: events older than N days at each run")
    add.add_argument("--max-backup-age", metavar="DURATION",
                     help="backup: alert when the newest good backup is older than this, e.g. 26h (the default)")
    seen = set()
    for operation in schedules.OPERATIONS:
        for option in service.spec_of(operation).options:
            if option.name in _NOT_SCHEDULED or option.name in seen or option.positional:
                continue
            seen.add(option.name)
            flag = "--" + option.name.replace("_", "-")
            help_text = f"{operation}: {option.help}" if option.help else operation
            if option.kind == "bool":
                add.add_argument(flag, action="store_true", default=None, help=help_text)
            else:
                add.add_argument(flag, type=int if option.kind == "int" else str, help=help_text)
    add.add_argument("--yes", action="store_true",
                     help="confirm once what a production run needs confirmed (a trim): every run is then confirmed")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=_add, scheduled_options=sorted(seen))
    add_action(actions, "list", "every schedule with its next run and its last run's outcome", _list)
    add_action(actions, "show", "one schedule, its rule and its runs", _show, "name")
    add_action(actions, "pause", "stop a schedule from running (it keeps its history)", _pause, "name", json=False)
    add_action(actions, "resume", "run a paused schedule again (missed occurrences run once)", _resume, "name",
               json=False)
    add_action(actions, "remove", "remove a schedule and its claims (the operations stay in the history)", _remove,
               "name", json=False)
    due = add_action(actions, "run-due", "run what is due now, once (for a systemd timer or cron)", _run_due)
    due.add_argument("--lock-wait", type=float, metavar="SECONDS",
                     help="how long a due run waits for its site to be free (default 600)")


def _add(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in args.scheduled_options if getattr(args, name) is not None}
    spec = service.spec_of(args.operation) if args.operation in schedules.OPERATIONS else None
    if spec:
        for name in options:
            if spec.option(name) is None:
                flag = "--" + name.replace("_", "-")
                raise SecError(f"{flag} is not an option of {args.operation}")
    schedule = schedules.Schedule(name=args.name, site=args.site, cluster=args.cluster or "", operation=args.operation,
                                  rrule=args.rrule, timezone=args.timezone, options=options,
                                  before_days=args.before_days, confirmed=args.yes,
                                  max_backup_age=schedules.parse_duration(args.max_backup_age, "--max-backup-age")
                                  if args.max_backup_age else None)
    schedules.add(schedule, service.prepare)
    row = schedules.describe(schedule)
    if args.json:
        print_json(row)
    else:
        print(f"schedule {schedule.name}: {schedule.operation} of {schedule.site}, next run {row['next_run']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = [schedules.describe(s) for s in schedules.list_schedules()]
    if args.json:
        print_json(rows)
        return 0
    shown = [{"name": r["name"], "site": r["site"], "operation": r["operation"],
              "next run": "paused" if r["paused"] else (r["next_run"] or "never"),
              "last run": _last_words(r["last_run"])} for r in rows]
    print_table(shown, ["name", "site", "operation", "next run", "last run"], empty="no schedule yet")
    return 0


def _last_words(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    words = f"{run.get('occurrence')} {run.get('status') or '?'}"
    if run.get("operation_id"):
        words += f" ({run['operation_id']})"
    return words


def _show(args: argparse.Namespace) -> int:
    schedule = schedules.load(args.name)
    row = {**schedules.describe(schedule), "runs": schedules.runs(schedule.name)[:20]}
    if args.json:
        print_json(row)
        return 0
    for key in ("name", "site", "cluster", "operation", "rrule", "timezone", "options", "before_days", "paused",
                "next_run"):
        print(f"{key}: {row[key]}")
    for run in row["runs"]:
        late = f", {history.format_duration(run.get('late_seconds'))} late" if run.get("late_seconds", 0) >= 60 else ""
        print(f"run {run.get('occurrence')}: {run.get('status')}{late} {run.get('operation_id') or ''} "
              f"{run.get('reason') or ''}".rstrip())
    return 0


def _pause(args: argparse.Namespace) -> int:
    schedules.set_paused(args.name, True)
    print(f"schedule {args.name} paused")
    return 0


def _resume(args: argparse.Namespace) -> int:
    schedule = schedules.set_paused(args.name, False)
    print(f"schedule {args.name} resumed, next run {schedules.next_run(schedule)}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    schedules.remove(args.name)
    print(f"schedule {args.name} removed")
    return 0


def run_here(schedule: schedules.Schedule, request: OperationRequest) -> str:
    """A due run in this process, to its end, as the CLI runs it (the timer's process lives as long)."""
    result = service.run(service.prepare(request), user=schedule.user, show_progress=False)
    return result.id


def _run_due(args: argparse.Namespace) -> int:
    made = schedules.run_due(run_here, now=datetime.now(UTC), say=lambda line: print(line, file=sys.stderr),
                             lock_wait=args.lock_wait)
    sent = alerts.check_and_send(say=lambda line: print(line, file=sys.stderr))
    for run in made:
        if run.get("operation_id"):
            try:
                run["status"] = history.effective(history.read_record(run["operation_id"])).get("status")
            except SecError:
                pass
    if args.json:
        print_json({"runs": made, "alerts": sent})
        return 0
    for run in made:
        line = f"schedule {run['schedule']}: {run['occurrence']} {run['status']} {run.get('operation_id') or ''}"
        print(line.rstrip())
    for alert in sent:
        print(f"alert {alert['key']}: {alert['event']} -> {alert['delivered']} of {alert['targets']} delivered")
    return 0
