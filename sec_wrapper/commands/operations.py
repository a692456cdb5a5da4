"""Site operations: `sec maintenance`, `sec backup`, `sec backups`, `sec restore`, `sec trim-events`,
`sec redeploy`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from sec_wrapper import store
from sec_wrapper.host_probe import probe_hosts, web_heads
from sec_wrapper.render import human_age, human_size, print_fields, print_json, print_table
from sec_wrapper.site_operation import first_result, require_yes, run_on_site

if TYPE_CHECKING:
    from sec_wrapper.runner import OperationResult


def _site_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", help="name (prod.teststudio.com) or reverse name (com_teststudio_prod)")
    parser.add_argument("--cluster", help="when the site's name is in several clusters")
    parser.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    maintenance = sub.add_parser("maintenance", help="put a site in or out of maintenance (503 + page)")
    _site_args(maintenance)
    maintenance.add_argument("state", choices=["on", "off"])
    maintenance.add_argument("--message", help="shown on the maintenance page")
    maintenance.set_defaults(func=_maintenance)

    backup = sub.add_parser("backup", help="back a site's database up into <site_dir>/db_backup")
    _site_args(backup)
    backup.add_argument("--keep", type=int, default=5,
                        help="newest ordinary backups to keep (default 5, 0 keeps all)")
    backup.add_argument("--keep-safety", type=int,
                        help="newest safety backups (before-/pre- labels) to keep; the latest always stays "
                             "(default 3, 0 keeps all)")
    backup.add_argument("--label", help="a short tag in the backup's name, e.g. before-upgrade")
    backup.set_defaults(func=_backup)

    backups = sub.add_parser("backups", help="list a site's backups with size, age, version and state")
    _site_args(backups)
    backups.add_argument("--check", action="store_true", help="re-read every file against its manifest")
    backups.set_defaults(func=_backups)

    restore = sub.add_parser("restore", help="restore one of the site's backups (in maintenance)")
    _site_args(restore)
    restore.add_argument("backup", help="the backup's name, as `sec backups SITE` lists it")
    restore.add_argument("--yes", action="store_true", help="needed to restore a production site")
    restore.add_argument("--force", action="store_true",
                         help="accept a backup of another site (a backup of another version still needs its release)")
    restore.add_argument("--switch-release", action="store_true",
                         help="restore a backup of another version with its release: current is switched to it "
                              "on every App/API server of the site")
    restore.set_defaults(func=_restore)

    trim = sub.add_parser("trim-events", help="archive events older than a date to a CSV, then delete them")
    _site_args(trim)
    trim.add_argument("--before", required=True, metavar="YYYY-MM-DD", help="events created before this day go")
    trim.add_argument("--batch-size", type=int, help="rows per short transaction (default 5000)")
    trim.add_argument("--throttle-ms", type=int, help="pause between batches (default 20)")
    trim.add_argument("--keep-days", type=int, help="never trim the last N days (default 30)")
    trim.add_argument("--vacuum", action="store_true", help="VACUUM (ANALYZE) the table afterwards")
    trim.add_argument("--yes", action="store_true", help="needed to trim a production site")
    trim.set_defaults(func=_trim)

    redeploy = sub.add_parser("redeploy", help="apply persisted settings: runtime config, graceful restarts")
    _site_args(redeploy)
    redeploy.add_argument("--force", action="store_true", help="even when nothing is pending")
    redeploy.set_defaults(func=_redeploy)


def _maintenance(args: argparse.Namespace) -> int:
    extravars = {"state": args.state, **({"message": args.message} if args.message else {})}
    _, site, result = run_on_site("maintenance", "maintenance.yml", args.site, args.cluster, extravars)
    recovery = _upgrade_recovery(result)
    if args.json:
        print_json({"operation": result.id, "site": site.name, "state": args.state, "upgrade_recovery": recovery})
        return 0
    print(f"{site.name}: maintenance {args.state}")
    if recovery and recovery["rolled_back"]:
        restored = ", its database restored from the backup taken before it" if recovery["database_restored"] else ""
        print(f"the upgrade {recovery['from']} -> {recovery['to']} interrupted in its maintenance window was rolled "
              f"back first{restored}: the site runs {recovery['from']}")
    elif recovery:
        print(f"the upgrade {recovery['from']} -> {recovery['to']} interrupted after it had finished was closed: "
              f"the site runs {recovery['to']}")
    return 0


def _upgrade_recovery(result: OperationResult) -> dict[str, Any] | None:
    """What leaving maintenance did about an upgrade killed in its window (maintenance.yml), or None."""
    found = first_result(result, "Look for an upgrade interrupted in its maintenance window")
    if not found.get("recovery_needed"):
        return None
    journal = found.get("journal") or {}
    return {"from": journal.get("from"), "to": journal.get("to"),
            # The rollback switches `current` back; an upgrade that had finished is only closed.
            "rolled_back": bool(first_result(result, "fpt.sec.release_activate")),
            "database_restored": bool(first_result(result, "fpt.sec.db_restore"))}


def _backup(args: argparse.Namespace) -> int:
    extravars = {"keep": args.keep, **({"label": args.label} if args.label else {}),
                 **({"keep_safety": args.keep_safety} if args.keep_safety is not None else {})}
    _, site, result = run_on_site("backup", "backup.yml", args.site, args.cluster, extravars)
    made = first_result(result, "fpt.sec.db_backup")
    if args.json:
        print_json({"operation": result.id, "site": site.name, **{k: made.get(k) for k in
                    ("path", "name", "dump_bytes", "duration", "verified", "removed")}})
    else:
        print_fields({"site": site.name, "backup": made.get("name"), "path": made.get("path"),
                      "size": human_size(made.get("dump_bytes")), "verified": made.get("verified"),
                      "duration": f"{made.get('duration', 0):.1f}s", "removed": made.get("removed") or None})
    return 0


def _backups(args: argparse.Namespace) -> int:
    cluster, site, result = run_on_site("backups", "backups.yml", args.site, args.cluster,
                                        {"check_files": args.check})
    rows = first_result(result, "fpt.sec.db_backup_info").get("backups", [])
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
    print_table(rows, ["name", "version", "size", "age", "state"], empty=f"no backup of {site.name} yet")
    for row in rows:
        if row.get("problem"):
            print(f"{row['name']}: {row['problem']}")
    for note in notes:
        print(note)
    return 0


def _restore(args: argparse.Namespace) -> int:
    _, site = store.find_site(args.site, args.cluster)
    require_yes(site, args.yes, "restoring a backup overwrites the database of")
    extravars = {"backup": args.backup, "force": args.force, "switch_release": args.switch_release}
    cluster, site, result = run_on_site("restore", "restore.yml", site.reverse_name, args.cluster, extravars)
    restored = first_result(result, "fpt.sec.db_restore")
    if restored.get("release_switched"):
        store.record_site_version(cluster.name, site.reverse_name, restored["release_switched"]["to"])
    if args.json:
        print_json({"operation": result.id, "site": site.name, "backup": args.backup, **restored})
    else:
        switched = restored.get("release_switched")
        release = f", release switched from {switched['from']} to {switched['to']}" if switched else ""
        print(f"{site.name}: restored {args.backup}{release} (operation {result.id})")
    return 0


def _redeploy(args: argparse.Namespace) -> int:
    _, site, result = run_on_site("redeploy", "redeploy.yml", args.site, args.cluster, {"force": args.force})
    done = first_result(result, "fpt.sec.redeploy")
    if args.json:
        print_json({"operation": result.id, "site": site.name, **done})
    elif done.get("changed"):
        print(f"{site.name}: redeployed ({done.get('reason') or 'settings applied'}), healthy")
    else:
        print(f"{site.name}: nothing pending, nothing redeployed")
    return 0


def _trim(args: argparse.Namespace) -> int:
    _, site = store.find_site(args.site, args.cluster)
    require_yes(site, args.yes, "trimming deletes events (archived to a CSV) of")
    options = {"batch_size": args.batch_size, "throttle_ms": args.throttle_ms, "keep_days": args.keep_days}
    extravars = {"before": args.before, "vacuum": args.vacuum,
                 **{k: v for k, v in options.items() if v is not None}}
    _, site, result = run_on_site("trim events", "trim_events.yml", site.reverse_name, args.cluster, extravars)
    trimmed = first_result(result, "fpt.sec.events_trim")
    if args.json:
        print_json({"operation": result.id, "site": site.name, **trimmed})
        return 0
    print_fields({"site": site.name, "events archived": trimmed.get("rows_archived"),
                  "events deleted": trimmed.get("rows_deleted"), "batches": trimmed.get("batches"),
                  "longest batch": f"{trimmed.get('max_batch_ms') or 0:.0f} ms",
                  "csv": trimmed.get("csv_path"), "csv size": human_size(trimmed.get("csv_size")),
                  "duration": f"{trimmed.get('duration') or 0:.1f}s"})
    return 0
