"""Site operations: `sec maintenance`, `sec backup`, `sec backups`, `sec restore`, `sec drill`, `sec trim-events`,
`sec redeploy`. Their options and checks are the operation service's; here they are printed."""

from __future__ import annotations

import argparse
import sys

from sec_wrapper.commands.operation_args import add_operation, add_said_operation, request_of, run, run_and_say
from sec_wrapper.host_probe import probe_hosts, web_heads
from sec_wrapper.operations import service
from sec_wrapper.operations.site_work import (
    BACKUP,
    BACKUPS,
    DRILL,
    MAINTENANCE,
    REDEPLOY,
    RESTORE,
    TRIM_EVENTS,
    restore_plan,
)
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.render import human_age, human_size, print_fields, print_json, print_table
from sec_wrapper.runner import OperationResult


def register(sub: argparse._SubParsersAction) -> None:
    for spec, say in ((MAINTENANCE, _say_maintenance), (BACKUP, _say_backup),
                      (DRILL, _say_drill), (TRIM_EVENTS, _say_trim), (REDEPLOY, _say_redeploy)):
        add_said_operation(sub, spec, say)
    restore = add_said_operation(sub, RESTORE, _say_restore)
    restore.add_argument("--plan", action="store_true", help="print the steps, and which run inside the "
                         "maintenance window, without running anything")
    restore.set_defaults(func=_restore)
    add_operation(sub, BACKUPS).set_defaults(func=_backups)


def _say_maintenance(done: dict, result: OperationResult) -> None:
    print(f"{done['site']}: maintenance {done['state']}")
    recovery = done["upgrade_recovery"]
    if recovery and recovery["rolled_back"]:
        restored = ", its database restored from the backup taken before it" if recovery["database_restored"] else ""
        print(f"the upgrade {recovery['from']} -> {recovery['to']} interrupted in its maintenance window was rolled "
              f"back first{restored}: the site runs {recovery['from']}")
    elif recovery:
        print(f"the upgrade {recovery['from']} -> {recovery['to']} interrupted after it had finished was closed: "
              f"the site runs {recovery['to']}")


def _say_backup(made: dict, result: OperationResult) -> None:
    print_fields({"site": made["site"], "backup": made.get("name"), "path": made.get("path"),
                  "size": human_size(made.get("dump_bytes")), "verified": made.get("verified"),
                  "duration": f"{made.get('duration') or 0:.1f}s", "removed": made.get("removed") or None,
                  "copies": "; ".join(f"{c['host']}: {c['path']} (verified there)" for c in made.get("copies") or [])
                  or None})


def _backups(args: argparse.Namespace) -> int:
    prepared, result = run(args)
    cluster, site = prepared.context["cluster"], prepared.context["site"]
    rows = [dict(row) for row in result.result]
    # The backups sit on the first App server; the other web heads are only named if they are silent.
    silent = {name: why for name, why in probe_hosts(cluster, web_heads(cluster, site)).items() if why}
    notes = [f"host {name} ({cluster.host(name).address}) did not answer over SSH: {why}"
             for name, why in silent.items()]
    if args.json:
        print_json(rows)
        for note in notes:
            print(note, file=sys.stderr)
        return 0
    for row in rows:
        row["size"] = human_size(row.get("size"))
        row["age"] = human_age(row.get("age_seconds"))
        if row.get("state") == "verified" and row.get("verified_at"):
            row["state"] = f"verified at {row['verified_at']}"  # never more than that check said
    for row in rows:
        if row.get("kind") == "replaced":
            row["places"] = None
        elif len(row.get("places") or []) > 1 or row.get("kind") == "copy":
            row["places"] = ", ".join(f"{p['host']} {p.get('state') or '?'}{' pinned' if p.get('pinned') else ''}"
                                      for p in row["places"])
        else:
            if row.get("pinned"):
                row["state"] = f"{row['state']}, pinned"
            row["places"] = None
    print_table(rows, ["name", "kind", "version", "size", "age", "state", "drill", "places"],
                empty=f"no backup of {site.name} yet")
    if any(row.get("kind") == "replaced" for row in rows):
        print(f"replaced: a database a restore or sync replaced, kept on the DB server; `sec restore {site.name} "
              "--undo` puts the newest back")
    for row in rows:
        if row.get("problem"):
            print(f"{row['name']}: {row['problem']}")
    for note in notes:
        print(note)
    return 0


def _restore(args: argparse.Namespace) -> int:
    if not args.plan:
        return run_and_say(args, _say_restore)
    request = request_of(args)
    prepared = service.prepare(OperationRequest(request.operation, site=request.site, options=request.options,
                                                cluster=request.cluster, confirmed=True))
    steps = restore_plan(prepared.context["site"], prepared.options)
    if args.json:
        print_json({"site": prepared.site, "steps": steps})
        return 0
    for step in steps:
        print(f"{'in maintenance ' if step['window'] else 'serving        '} {step['step']}")
    return 0


def _say_restore(restored: dict, result: OperationResult) -> None:
    switched = restored.get("release_switched")
    release = f", release switched from {switched['from']} to {switched['to']}" if switched else ""
    window = restored.get("window_seconds")
    shown = f", in maintenance for {window:.1f}s" if isinstance(window, (int, float)) else ""
    if restored.get("undo"):
        back = restored.get("undone") or {}
        print(f"{restored['site']}: put back {back.get('name')} (replaced at {back.get('replaced_at')}){release}"
              f"{shown} (operation {result.id})")
    else:
        print(f"{restored['site']}: restored {restored['backup']}{release}{shown} (operation {result.id})")
    if restored.get("replaced_database"):
        print(f"the data it replaced is kept as {restored['replaced_database']}: sec restore {restored['site']} "
              "--undo puts it back")


def _say_redeploy(done: dict, result: OperationResult) -> None:
    if done.get("changed"):
        print(f"{done['site']}: redeployed ({done.get('reason') or 'settings applied'}), healthy")
    else:
        print(f"{done['site']}: nothing pending, nothing redeployed")


def _say_drill(done: dict, result: OperationResult) -> None:
    print_fields({"site": done["site"], "backup": done.get("backup"), "drill": done.get("drill"),
                  "tables counted": done.get("tables"), "rows": done.get("rows"),
                  "restore": f"{done.get('restore_seconds') or 0:.1f}s",
                  "checks": f"{done.get('checks_seconds') or 0:.1f}s",
                  "scratch database": f"{done.get('scratch_database')} (dropped)" if done.get("dropped")
                  else done.get("scratch_database")})


def _say_trim(trimmed: dict, result: OperationResult) -> None:
    print_fields({"site": trimmed["site"], "events archived": trimmed.get("rows_archived"),
                  "events deleted": trimmed.get("rows_deleted"), "batches": trimmed.get("batches"),
                  "longest batch": f"{trimmed.get('max_batch_ms') or 0:.0f} ms",
                  "csv": trimmed.get("csv_path"), "csv size": human_size(trimmed.get("csv_size")),
                  "duration": f"{trimmed.get('duration') or 0:.1f}s"})
