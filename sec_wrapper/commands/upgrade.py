"""`sec upgrade SITE --to VERSION [--plan] [--yes]`: along the enforced path, with a short window."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sec_wrapper import history
from sec_wrapper.commands.operation_args import add_operation, prepare, request_of
from sec_wrapper.operations import service
from sec_wrapper.operations.site_work import UPGRADE, upgrade_plan
from sec_wrapper.render import human_size, print_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_operation(sub, UPGRADE)
    parser.add_argument("--plan", action="store_true", help="print the steps and an estimate; change nothing")
    parser.set_defaults(func=_upgrade)


def _seconds(value: float | None) -> str:
    return history.format_duration(value) if value is not None else "-"


def print_plan(plan: dict[str, Any]) -> None:
    print(f"upgrade {plan['site']} ({plan['role']}, cluster {plan['cluster']}) from {plan['from']} to {plan['to']}")
    print("\nsteps:")
    for step in plan["steps"]:
        names = ", ".join(step["migrations"]) or "none"
        note = "" if step["exact"] else " (those not yet applied)"
        print(f"  {step['version']}  {step['file']}  {human_size(step['size'])}  {step['checksum']}")
        print(f"      migrations{note}: {names}")
    print("\noutside maintenance, the site serving:")
    for line in plan["outside"]:
        print(f"  - {line}")
    print("inside maintenance (503 with the maintenance page):")
    for line in plan["inside"]:
        print(f"  - {line}")
    print("then:")
    for line in plan["after"]:
        print(f"  - {line}")
    print("on failure inside maintenance: back to the previous release, the backup restored if the schema moved,"
          " out of maintenance, and the operation fails saying \"rolled back\"")
    est = plan["estimate"]
    if est:
        print(f"\nestimate (from {est['site']}'s upgrade {est['operation']}, {est['source']}): maintenance window "
              f"{_seconds(est['window'])}, whole upgrade {_seconds(est['duration'])}")
    else:
        print(f"\nestimate: no upgrade {plan['from']} -> {plan['to']} in the history of this cluster yet")


def _upgrade(args: argparse.Namespace) -> int:
    if args.plan:
        plan = upgrade_plan(args.site, args.to, args.cluster)
        if args.json:
            print_json(plan)
        else:
            print_plan(plan)
            if plan["warning"]:
                print(f"\nwarning: {plan['warning']}")
        return 0
    prepared = prepare(request_of(args))
    if prepared.context["plan"]["warning"]:
        print(f"sec: warning: {prepared.context['plan']['warning']}", file=sys.stderr)
    result = service.run(prepared)
    if not result.ok:
        raise service.failure(prepared, result)
    summary = result.result
    if args.json:
        print_json(summary)
        return 0
    print(f"{summary['site']}: upgraded from {summary['from']} to {summary['to']} in {_seconds(result.duration)} "
          f"(maintenance window {_seconds(summary['window'])}; operation {result.id})")
    for step in summary["steps"]:
        print(f"  {step['release']}: {', '.join(step['applied'])} ({step['duration']:.2f}s)")
    if summary["backup"]:
        print(f"  backup taken before: {summary['backup']}")
    return 0
