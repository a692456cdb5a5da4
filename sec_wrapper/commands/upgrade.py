"""`sec upgrade SITE --to VERSION [--plan] [--yes]`: along the enforced path, with a short window."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sec_wrapper import history, store, upgrades
from sec_wrapper.commands.releases import human_size
from sec_wrapper.errors import SecError
from sec_wrapper.paths import releases_dir
from sec_wrapper.render import print_json
from sec_wrapper.site_operation import require_yes, run_on_site


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("upgrade", help="upgrade a site along the enforced path (--plan shows it first)")
    parser.add_argument("site", help="name (prod.teststudio.com) or reverse name (com_teststudio_prod)")
    parser.add_argument("--to", required=True, metavar="VERSION", help="the target version, e.g. 8.2.0")
    parser.add_argument("--plan", action="store_true", help="print the steps and an estimate; change nothing")
    parser.add_argument("--yes", action="store_true", help="needed to upgrade a production site")
    parser.add_argument("--keep-releases", type=int, default=3, metavar="N",
                        help="releases to keep on the servers afterwards, the current one included (default 3)")
    parser.add_argument("--cluster", help="when the site's name is in several clusters")
    parser.add_argument("--json", action="store_true")
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
    cluster, site = store.find_site(args.site, args.cluster)
    if args.keep_releases < 1:
        raise SecError("--keep-releases must be 1 or more (the current release counts)")
    state = str(site.extra.get("state") or "ok")
    if state.startswith("broken"):
        raise SecError(f"{site.name} is {state}: run sec site repair {site.name} first")
    plan = upgrades.build_plan(cluster, site, args.to, releases_dir())
    if args.plan:
        if args.json:
            print_json(plan)
        else:
            print_plan(plan)
            if plan["warning"]:
                print(f"\nwarning: {plan['warning']}")
        return 0
    require_yes(site, args.yes, f"upgrading to {args.to}")
    if plan["warning"]:
        print(f"sec: warning: {plan['warning']}", file=sys.stderr)

    extravars = {"to": args.to, "releases_dir": str(releases_dir()), "keep_releases": args.keep_releases}
    arguments = {"site": site.name, "from": site.version, "to": args.to, "keep_releases": args.keep_releases}
    _, site, result = run_on_site("upgrade", "upgrade.yml", site.reverse_name, cluster.name, extravars,
                                  arguments=arguments, check=False)
    events = result.events()
    if not result.ok:
        raise SecError(f"upgrade of {site.name} to {args.to} {result.status}: {result.message or 'see the log'} "
                       f"(sec ops log {result.id})")

    store.record_site_version(cluster.name, site.reverse_name, args.to)
    steps = upgrades.migrations_applied(events)
    backup = upgrades.result_of(events, "fpt.sec.db_backup")
    summary = {"operation": result.id, "site": site.name, "from": plan["from"], "to": args.to,
               "steps": steps, "backup": backup.get("name"), "window": upgrades.window_seconds(events),
               "duration": result.duration}
    if args.json:
        print_json(summary)
        return 0
    print(f"{site.name}: upgraded from {plan['from']} to {args.to} in {_seconds(result.duration)} "
          f"(maintenance window {_seconds(summary['window'])}; operation {result.id})")
    for step in steps:
        print(f"  {step['release']}: {', '.join(step['applied'])} ({step['duration']:.2f}s)")
    if summary["backup"]:
        print(f"  backup taken before: {summary['backup']}")
    return 0
