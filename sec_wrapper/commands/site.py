"""`sec site list | show | status | role | settings | repair`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import site_for_host

from sec_wrapper import site_state, store
from sec_wrapper.commands import add_action
from sec_wrapper.commands.operation_args import add_operation, add_said_operation, run_and_say
from sec_wrapper.errors import SecError
from sec_wrapper.host_probe import probe_hosts, web_heads
from sec_wrapper.operations.site_work import REPAIR, SETTINGS
from sec_wrapper.render import print_fields, print_json, print_table
from sec_wrapper.runner import OperationResult
from sec_wrapper.site_rows import all_site_rows


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("site", help="the sites of your clusters")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add_action(actions, "list", "every site, or a cluster's", _list, cluster=True)
    add_action(actions, "show", "a site's details", _show, "site", cluster=True)
    status = add_action(actions, "status", "a site's state now: maintenance, release, health, lock, pending "
                        "redeploy, backups, database, free space (read-only, not recorded)", _status, "site",
                        cluster=True)
    status.add_argument("--cached", action="store_true", help="show the last state read (by `sec serve` or an "
                        "earlier status) instead of reading the hosts")
    role = add_action(actions, "role", "mark a site production or staging", _role, "site", cluster=True, json=False)
    role.add_argument("role", choices=store.SITE_ROLES)

    settings = add_operation(actions, SETTINGS, "settings")
    settings.add_argument("--file", type=Path, help="a JSON object of settings to merge in (--replace: the whole "
                          "settings)")
    settings.set_defaults(func=_settings)

    add_said_operation(actions, REPAIR, lambda repaired, _: print(repaired["message"]), "repair")


def _list(args: argparse.Namespace) -> int:
    rows = all_site_rows(args.cluster)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["name", "cluster", "role", "version", "state", "site_dir", "database"],
                    empty="no site yet: sec cluster create ...")
    return 0


def head_rows(cluster: store.Cluster, site: store.Site) -> list[dict]:
    """Every web head of the site with its own site dir and vhost, and whether it answers over SSH now."""
    names = web_heads(cluster, site)
    answers = probe_hosts(cluster, names)
    rows = []
    for name in names:
        host = cluster.host(name)
        own = site_for_host(site.to_dict(), name)
        rows.append({"host": name, "address": host.address, "roles": ",".join(host.roles),
                     "site_dir": own.get("site_dir"), "health_url": own.get("health_url"),
                     "answers": answers[name] is None, "error": answers[name]})
    return rows


def _show(args: argparse.Namespace) -> int:
    cluster, site = store.find_site(args.site, args.cluster)
    heads = head_rows(cluster, site)
    silent = [h for h in heads if not h["answers"]]
    data = {**site.to_dict(), "cluster": cluster.name, "web_heads": heads,
            "unreachable": [h["host"] for h in silent]}
    if args.json:
        print_json(data)
        return 0
    db = site.database
    print_fields({
        "site": site.name, "reverse name": site.reverse_name, "cluster": cluster.name, "role": site.role,
        "version": site.version, "site dir": site.site_dir, "app servers": site.app_hosts,
        "database": f"{db.name} on {db.host}:{db.port} as {db.user}" if db else None,
        "db host": site.db_host, "media": site.media_dir, "backups": site.backup_dir,
        "health url": site.health_url, "aliases": site.aliases,
    })
    print("\nweb heads:")
    print_table([{**h, "answers": "yes" if h["answers"] else "NO"} for h in heads],
                ["host", "address", "roles", "site_dir", "health_url", "answers"])
    for head in silent:
        print(f"host {head['host']} ({head['address']}) did not answer over SSH: {head['error']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster, site = store.find_site(args.site, args.cluster)
    if not args.cached:
        site_state.probe(cluster.name, site.name)
    state = site_state.site_state(cluster.name, site.name)
    if state is None:
        raise SecError(f"the state of {site.name} was never read: run `sec site status {site.name}` "
                       "without --cached")
    if args.json:
        print_json(state)
        return 0
    for line in status_lines(state):
        print(line)
    return 0


def _size(count: int | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return "?"


def status_lines(state: dict) -> list[str]:
    badge = state["badge"]
    lines = [f"{state['name']} ({state['role']}, cluster {state['cluster']}): {badge['state'].upper()}"
             f"  as of {state['read_at']}"]
    for head in state["heads"]:
        if head["error"]:
            lines.append(f"  {head['host']}: not read: {head['error']}")
            continue
        maintenance = head.get("maintenance") or {}
        health = head.get("health") or {}
        lines.append(f"  {head['host']}: release {(head.get('release') or {}).get('version')}, "
                     f"maintenance {'ON: ' + str(maintenance.get('message')) if maintenance.get('on') else 'off'}, "
                     f"health {health.get('status') or health.get('error') or 'not checked'}")
    db = state.get("database") or {}
    backups = state.get("backups") or {}
    newest = backups.get("newest") or {}
    lines.append(f"  database: {db.get('name')} {_size(db.get('size_bytes'))}, "
                 f"about {db.get('events_estimate')} events")
    lines.append(f"  backups: {backups.get('count', 0)} ({_size(backups.get('total_bytes'))})"
                 + (f", newest {newest.get('name')} ({newest.get('state')})" if newest else ""))
    for disk in state.get("disk") or []:
        lines.append(f"  free: {disk['host']} {disk['path']}: {_size(disk['free_bytes'])} of "
                     f"{_size(disk['total_bytes'])}")
    settings = state.get("settings") or {}
    lines.append(f"  redeploy pending: {'yes: ' + str(settings.get('reason')) if settings.get('pending') else 'no'}")
    lock = state.get("lock")
    lines.append(f"  lock: {lock['description'] if lock else 'free'}")
    for line in badge["attention"]:
        lines.append(f"  ! {line}")
    return lines


def _role(args: argparse.Namespace) -> int:
    cluster, site = store.find_site(args.site, args.cluster)
    if site.role == args.role:
        print(f"{site.name} is already {args.role}")
        return 0
    site.role = args.role
    store.save_cluster(cluster)
    print(f"{site.name} is now {args.role}")
    return 0


def _settings_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SecError(f"--file {path}: cannot read it ({reason}): give a readable UTF-8 JSON file, "
                       'e.g. {"max_upload_mb": 800}') from exc
    try:
        changes = json.loads(text)
    except ValueError as exc:
        raise SecError(f"--file {path}: not valid JSON ({exc}): write one JSON object of settings, "
                       'e.g. {"max_upload_mb": 800}') from exc
    if not isinstance(changes, dict):
        raise SecError(f"--file {path}: not a JSON object of settings: write one object, "
                       'e.g. {"max_upload_mb": 800}')
    return changes


def _settings(args: argparse.Namespace) -> int:
    if args.replace and not args.file:
        raise SecError("--replace goes with --file (the whole settings)")
    return run_and_say(args, _say_settings, {"settings": _settings_file(args.file)} if args.file else None)


def _say_settings(answer: dict, result: OperationResult) -> None:
    print_fields(answer.get("settings") or {})
    for change in answer.get("changes") or []:
        print(f"changed {change.get('key')}: {change.get('old')!r} -> {change.get('new')!r}")
    if answer.get("pending_redeploy"):
        print(f"\nredeploy pending: run `sec redeploy {answer['site']}` to apply the persisted settings")
