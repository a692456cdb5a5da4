"""`sec sync-db` (production data into a staging site) and `sec sync-media` (add-only media copy)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sec_wrapper.errors import SecError
from sec_wrapper.render import print_fields, print_json
from sec_wrapper.runner import OperationResult, run_operation
from sec_wrapper.site_operation import first_result
from sec_wrapper.site_pair import (
    SitePair,
    check_db_target,
    check_distinct,
    find_pair,
    pair_inventory,
    source_agent,
    source_known_hosts,
)


def _pair_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="the site to copy from: name (prod.teststudio.com) or reverse name")
    parser.add_argument("target", help="the site to copy into")
    parser.add_argument("--cluster", help="the cluster of both sites, when a name is in several clusters")
    parser.add_argument("--source-cluster", metavar="NAME", help="the source's cluster (a sync between clusters)")
    parser.add_argument("--target-cluster", metavar="NAME", help="the target's cluster")
    parser.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("sync-db", help="copy a site's database into a staging site (backup, then restore)")
    _pair_args(db)
    db.add_argument("--use-backup", metavar="NAME",
                    help="a recent verified backup of the source (as `sec backups SOURCE` lists it) instead of "
                         "a new one")
    db.add_argument("--max-age-hours", type=int, default=24,
                    help="with --use-backup: refuse a backup older than this (default 24, 0: any age)")
    db.add_argument("--keep-backup", action="store_true",
                    help="keep the backup made for the sync on the source and its copy on the target")
    db.add_argument("--yes", action="store_true", help="needed: the target's database is overwritten")
    db.set_defaults(func=_sync_db)

    media = sub.add_parser("sync-media", help="copy the media files a site lacks from another site, add-only")
    _pair_args(media)
    media.add_argument("--dry-run", action="store_true", help="only list what would be copied")
    media.add_argument("--bwlimit", type=int, default=0, metavar="KIB_PER_S",
                       help="transfer rate limit, to spare a busy source (default 0: none)")
    media.add_argument("--list", type=int, default=20, metavar="N",
                       help="how many of the copied files to print (default 20)")
    media.set_defaults(func=_sync_media)


def _pair(args: argparse.Namespace) -> SitePair:
    return find_pair(args.source, args.target, args.cluster, args.source_cluster, args.target_cluster)


def _run(operation: str, playbook: str, pair: SitePair, extravars: dict[str, Any],
         arguments: dict[str, Any], check: bool = True) -> OperationResult:
    """Runs the playbook on one inventory holding both sites, with the source's key in a private agent."""
    with source_agent(pair) as forwarding:
        variables = {"source": pair.source.reverse_name, "target": pair.target.reverse_name,
                     "forward_agent": forwarding, "known_hosts_file": source_known_hosts(pair), **extravars}
        result = run_operation(operation, playbook, pair_inventory(pair), variables,
                               cluster=pair.target_cluster.name, site=pair.target.name,
                               arguments={"source": pair.source.name, "source_cluster": pair.source_cluster.name,
                                          "target": pair.target.name, **arguments})
    if check and not result.ok:
        raise _failed(operation, pair, result)
    return result


def _failed(operation: str, pair: SitePair, result: OperationResult) -> SecError:
    return SecError(f"{operation} {pair.source.name} -> {pair.target.name} {result.status}: "
                    f"{result.message or 'see the log'} (sec ops log {result.id})")


def _sync_media(args: argparse.Namespace) -> int:
    pair = _pair(args)
    check_distinct(pair)
    if pair.target.role != "staging" and not args.dry_run:
        raise SecError(f"{pair.target.name} is a production site: nothing is ever synced into production "
                       f"(--dry-run lists what it lacks); if it is a staging site: "
                       f"sec site role {pair.target.name} staging")
    if args.bwlimit < 0 or args.list < 0:
        raise SecError("--bwlimit and --list take 0 or more")
    extravars = {"dry_run": args.dry_run, "bwlimit": args.bwlimit}
    result = _run("sync-media", "sync_media.yml", pair, extravars,
                  {"dry_run": args.dry_run, "bwlimit": args.bwlimit}, check=False)
    media = first_result(result, "fpt.sec.media_sync")
    if not result.ok and media.get("complete", True):  # failed elsewhere than in a copy that left names
        raise _failed("sync-media", pair, result)
    summary = {
        "operation": result.id, "source": pair.source.name, "target": pair.target.name,
        "dry_run": args.dry_run, "transport": media.get("transport"),
        "files_copied": media.get("files_copied", 0), "bytes_copied": media.get("bytes_copied", 0),
        "dirs_created": media.get("dirs_created", 0), "source_files": media.get("source_files"),
        "complete": media.get("complete", True), "errors": media.get("errors") or [],
        "passed_over": media.get("passed_over") or [],
        "duration": media.get("duration"),
    }
    if args.json:
        print_json({**summary, "files": media.get("files") or []})
    else:
        verb = "would copy" if args.dry_run else "copied"
        print_fields({"source": pair.source.name, "target": pair.target.name, "transport": summary["transport"],
                      verb: f"{summary['files_copied']} files, {_size(summary['bytes_copied'])}",
                      "folders created": summary["dirs_created"], "files in source": summary["source_files"],
                      "duration": f"{summary['duration'] or 0:.1f}s", "operation": result.id})
        for entry in (media.get("files") or [])[:args.list]:
            print(f"  {entry.get('path')}  {_size(entry.get('size') or 0)}")
        hidden = summary["files_copied"] - min(args.list, len(media.get("files") or []))
        if hidden > 0:
            print(f"  ... and {hidden} more (sec ops show {result.id}, or --json)")
        for error in summary["errors"][:5]:
            print(f"not copied: {error}")
        for name in summary["passed_over"][:5]:
            print(f"not copied (a link or special file, never copied): {name}")
    if not summary["complete"]:
        print(f"sec: {result.message} (sec ops log {result.id})", file=sys.stderr)
    return 0 if summary["complete"] else 1


def _sync_db(args: argparse.Namespace) -> int:
    pair = _pair(args)
    check_db_target(pair)
    if not args.yes:
        raise SecError(f"sync-db overwrites the database of {pair.target.name} with {pair.source.name}'s: "
                       "add --yes to go ahead")
    if args.max_age_hours < 0:
        raise SecError("--max-age-hours takes 0 (any age) or more")
    extravars: dict[str, Any] = {"keep_backup": args.keep_backup, "max_age_hours": args.max_age_hours}
    if args.use_backup:
        extravars["use_backup"] = args.use_backup
    result = _run("sync-db", "sync_staging.yml", pair, extravars,
                  {"use_backup": args.use_backup, "keep_backup": args.keep_backup,
                   "max_age_hours": args.max_age_hours})
    made = first_result(result, "fpt.sec.db_backup")
    moved = first_result(result, "fpt.sec.db_backup_transfer")
    restored = first_result(result, "fpt.sec.db_restore")
    settings = first_result(result, "fpt.sec.site_settings")
    summary = {
        "operation": result.id, "source": pair.source.name, "target": pair.target.name,
        "backup": moved.get("name") or args.use_backup, "new_backup": bool(made),
        "backup_size": moved.get("size"), "transfer": moved.get("method"),
        "database": restored.get("database"), "restore_seconds": restored.get("duration"),
        "site_url": (settings.get("settings") or {}).get("site_url"),
        "email_notifications_enabled": (settings.get("settings") or {}).get("email_notifications_enabled"),
        "duration": result.duration,
    }
    if args.json:
        print_json(summary)
    else:
        origin = "new" if made else "given"
        email = summary["email_notifications_enabled"]
        print_fields({"source": pair.source.name, "target": pair.target.name,
                      "backup": f"{summary['backup']} ({origin}, {_size(summary['backup_size'] or 0)})",
                      "transfer": summary["transfer"], "database": summary["database"],
                      "target url": summary["site_url"], "target e-mail": "off" if email is False else email,
                      "duration": f"{result.duration:.1f}s", "operation": result.id})
    return 0


def _size(count: int | float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
