"""`sec site list | show | role | settings | repair`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import site_for_host

from sec_wrapper import store
from sec_wrapper.commands.cluster import site_rows
from sec_wrapper.errors import SecError
from sec_wrapper.host_probe import probe_hosts, web_heads
from sec_wrapper.render import print_fields, print_json, print_table
from sec_wrapper.site_operation import first_result, run_on_site


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("site", help="the sites of your clusters")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every site, or a cluster's")
    listing.add_argument("--cluster")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", help="a site's details")
    show.add_argument("site", help="name (prod.teststudio.com) or reverse name (com_teststudio_prod)")
    show.add_argument("--cluster")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    role = actions.add_parser("role", help="mark a site production or staging")
    role.add_argument("site")
    role.add_argument("role", choices=store.SITE_ROLES)
    role.add_argument("--cluster")
    role.set_defaults(func=_role)

    settings = actions.add_parser("settings", help="show or change a site's settings (applied by a redeploy)")
    settings.add_argument("site")
    settings.add_argument("--cluster")
    settings.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="change one setting (typed by the schema); repeat for several")
    settings.add_argument("--file", type=Path, help="a JSON object of settings to merge in")
    settings.add_argument("--replace", action="store_true", help="with --file: the file is the whole settings")
    settings.add_argument("--force", action="store_true", help="accept keys the schema does not know")
    settings.add_argument("--json", action="store_true")
    settings.set_defaults(func=_settings)

    repair = actions.add_parser(
        "repair", help="align every web head with the database (what a lost head or a broken site needs)")
    repair.add_argument("site")
    repair.add_argument("--cluster")
    repair.add_argument("--json", action="store_true")
    repair.set_defaults(func=_repair)


def all_site_rows(cluster: str | None = None) -> list[dict]:
    """`sec site list --json`: every site (of one cluster), also the console's /api/sites."""
    clusters = [store.load_cluster(cluster)] if cluster else store.list_clusters()
    return [row for c in clusters for row in site_rows(c)]


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


def _role(args: argparse.Namespace) -> int:
    cluster, site = store.find_site(args.site, args.cluster)
    if site.role == args.role:
        print(f"{site.name} is already {args.role}")
        return 0
    site.role = args.role
    store.save_cluster(cluster)
    print(f"{site.name} is now {args.role}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    changes: dict = {}
    if args.file:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SecError(f"--file {args.file}: cannot read it ({reason}): give a readable UTF-8 JSON file, "
                           'e.g. {"max_upload_mb": 800}') from exc
        try:
            changes = json.loads(text)
        except ValueError as exc:
            raise SecError(f"--file {args.file}: not valid JSON ({exc}): write one JSON object of settings, "
                           'e.g. {"max_upload_mb": 800}') from exc
        if not isinstance(changes, dict):
            raise SecError(f"--file {args.file}: not a JSON object of settings: write one object, "
                           'e.g. {"max_upload_mb": 800}')
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SecError(f"--set {item!r}: write KEY=VALUE, e.g. --set max_upload_mb=800")
        changes[key.strip()] = value  # the module types it by the schema
    if args.replace and not args.file:
        raise SecError("--replace goes with --file (the whole settings)")
    extravars: dict = {"force": args.force, "replace": args.replace}
    if changes:
        extravars["settings_json"] = json.dumps(changes)
    operation = "site settings" if changes else "site settings (read)"
    _, site, result = run_on_site(operation, "site_settings.yml", args.site, args.cluster, extravars)
    answer = first_result(result, "fpt.sec.site_settings")
    shown = {k: answer.get(k) for k in ("settings", "changes", "pending_redeploy", "pending_changes")}
    if args.json:
        print_json({"site": site.name, "operation": result.id, **shown})
        return 0
    print_fields(answer.get("settings") or {})
    for change in answer.get("changes") or []:
        print(f"changed {change.get('key')}: {change.get('old')!r} -> {change.get('new')!r}")
    if answer.get("pending_redeploy"):
        print(f"\nredeploy pending: run `sec redeploy {site.name}` to apply the persisted settings")
    return 0


def _repair(args: argparse.Namespace) -> int:
    from sec_wrapper.paths import releases_dir

    cluster, site = store.find_site(args.site, args.cluster)
    _, site, result = run_on_site("repair", "repair.yml", site.reverse_name, cluster.name,
                                  {"releases_dir": str(releases_dir())}, arguments={"site": site.name})
    match = first_result(result, "fpt.sec.release_match")
    said = first_result(result, "Say what was found and done").get("msg", "")
    version = next((r.get("version") for r in result.task_results("fpt.sec.release_activate").values()), None)
    if version is None:
        running = {r.get("running_version") for r in result.task_results("fpt.sec.upgrade_journal").values()}
        version = running.pop() if len(running) == 1 else None
    # The stored version follows what every head now runs (a lost head had left it wrong).
    if version:
        store.record_site_version(cluster.name, site.reverse_name, version)
    summary = {"operation": result.id, "site": site.name, "version": version,
               "schema_version": match.get("schema_version"), "message": said}
    if args.json:
        print_json(summary)
    else:
        print(said)
    return 0
