"""`sec notify`: where alerts go (Apprise URLs) and which ones each target takes."""

from __future__ import annotations

import argparse
import sys

from sec_wrapper import alerts
from sec_wrapper.commands import add_action
from sec_wrapper.errors import SecError
from sec_wrapper.render import print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("notify", help="alerts: failed operations, stale backups, drills, disk space")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="a target, as an Apprise URL (mailto://, json://, slack://, msteams://...)")
    add.add_argument("url", help="the target's Apprise URL, or - to read it from stdin (a URL holding a password or "
                                 "token stays out of argv and the shell's history)")
    add.add_argument("--on", metavar="EVENTS",
                     help=f"comma-separated, among {','.join(alerts.EVENTS)} (default: all)")
    add.set_defaults(func=_add)
    add_action(actions, "list", "the targets (passwords hidden) and what each takes", _list)
    add_action(actions, "remove", "remove a target, by its number in `sec notify list` or its URL", _remove,
               "target", json=False)
    add_action(actions, "test", "send a test notification to every target", _test, json=False)
    add_action(actions, "link", "the console's address, for a link to the operation in each alert", _link, "url",
               json=False)


def _add(args: argparse.Namespace) -> int:
    events = [e.strip() for e in args.on.split(",") if e.strip()] if args.on else None
    url = sys.stdin.readline().strip() if args.url == "-" else args.url
    if not url:
        raise SecError("no URL on stdin: echo the target's URL into `sec notify add -`")
    target = alerts.add_target(url, events)
    print(f"notifying {alerts.shown_url(target['url'])} on {', '.join(target['on'])}")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = alerts.list_targets()
    if args.json:
        print_json(rows)
        return 0
    print_table([{**r, "on": ",".join(r["on"])} for r in rows], ["index", "url", "on", "added"],
                empty="no target: sec notify add URL")
    return 0


def _remove(args: argparse.Namespace) -> int:
    alerts.remove_target(args.target)
    print(f"target {args.target} removed")
    return 0


def _test(_args: argparse.Namespace) -> int:
    delivered, targets = alerts.send_test()
    if not targets:
        raise SecError("no target to test: sec notify add URL")
    print(f"test notification delivered to {delivered} of {targets} targets")
    if delivered < targets:
        raise SecError(f"{targets - delivered} target(s) did not take it: see {alerts._log_path()}")
    return 0


def _link(args: argparse.Namespace) -> int:
    alerts.set_console_url(args.url if args.url not in ("", "none") else None)
    print(f"alerts link to {args.url}")
    return 0
