"""`sec advanced list | run`: the low-level operations (the collection's modules), one at a time."""

from __future__ import annotations

import argparse

from sec_wrapper.commands.operation_args import add_said_operation
from sec_wrapper.operations.modules import low_level_modules
from sec_wrapper.operations.site_work import RUN_MODULE
from sec_wrapper.render import print_json, print_table
from sec_wrapper.runner import OperationResult


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("advanced", help="low-level operations: run one module of fpt.sec on a site")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the low-level modules, one line each")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)
    add_said_operation(actions, RUN_MODULE, _say_run, "run")


def _list(args: argparse.Namespace) -> int:
    rows = [{"module": m["module"], "description": m["description"], "options": sorted(m["options"])}
            for m in low_level_modules()]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["module", "description"])
    return 0


def _say_run(answer: dict, result: OperationResult) -> None:
    changed = "changed" if answer["result"].get("changed") else "ok"
    print(f"{answer['site']}: fpt.sec.{result.operation.removeprefix('advanced ')} {changed} (operation {result.id})")
