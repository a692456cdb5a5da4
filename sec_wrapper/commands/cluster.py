"""`sec cluster create | list | show | connect | remove`."""

from __future__ import annotations

import argparse

from sec_wrapper import store
from sec_wrapper.cluster_discovery import (
    check_defines,
    parse_apache_env,
    print_skipped,
    refreshed,
    require_sites,
    run_discovery,
    skipped_sites,
)
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import cluster_inventory, single_host_inventory
from sec_wrapper.render import print_fields, print_json, print_table

SITE_COLUMNS = ["name", "role", "version", "site_dir", "database"]
HOST_COLUMNS = ["name", "address", "port", "user", "roles"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cluster", help="create, list, show, connect to and remove clusters")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="discover a cluster from its App server over SSH")
    create.add_argument("name")
    create.add_argument("--app-server", required=True, metavar="HOST", help="address of the main App server")
    create.add_argument("--port", type=int, default=22)
    create.add_argument("--user", default="root")
    create.add_argument("--key", metavar="PATH", help="SSH private key (copied into the keys folder)")
    create.add_argument("--apache-config", metavar="PATH", help="Apache's main config file, to skip the search")
    _apache_variable_options(create)
    create.add_argument("--host-name", metavar="NAME", help="the App server's name in the cluster (default: its "
                        "address), e.g. app1")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=_create)

    listing = actions.add_parser("list", help="every cluster")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    for name, func, text in (("show", _show, "a cluster's hosts and sites"),
                             ("connect", _connect, "re-check every host and refresh the sites"),
                             ("remove", _remove, "forget a cluster (its file and keys)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
        if name != "remove":
            action.add_argument("--json", action="store_true")
        if name == "connect":
            action.add_argument("--apache-config", metavar="PATH")
            _apache_variable_options(action)
        action.set_defaults(func=func)


def _apache_variable_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apache-env", action="append", metavar="NAME=VALUE",
                        help="a ${NAME} of the Apache config that discovery cannot read from the App server "
                             "(repeatable; kept with the cluster)")
    parser.add_argument("--apache-define", action="append", metavar="NAME",
                        help="a -D name Apache is started with that discovery cannot read (repeatable)")


def site_rows(cluster: store.Cluster) -> list[dict]:
    return [{**s.to_dict(), "cluster": cluster.name,
             "database": f"{s.database.name}@{s.database.host}:{s.database.port}" if s.database else None}
            for s in cluster.sites]


def cluster_rows() -> list[dict]:
    """`sec cluster list --json`: one row per cluster (also the console's Clusters page and /api/clusters)."""
    return [{"name": c.name, "hosts": len(c.hosts), "sites": [s.name for s in c.sites], "updated": c.updated}
            for c in store.list_clusters()]


def _create(args: argparse.Namespace) -> int:
    store.ensure_new_cluster_name(args.name)
    host_name = store.validate_name(args.host_name or args.app_server, "host")
    inventory = single_host_inventory(args.app_server, args.port, args.user, args.key, name=host_name)
    apache_env, apache_defines = parse_apache_env(args.apache_env), check_defines(args.apache_define)
    arguments = {"app_server": args.app_server, "port": args.port, "user": args.user, "key": args.key}
    result, facts = run_discovery("cluster create", args.name, inventory, args.apache_config, arguments,
                                  apache_env, apache_defines)
    require_sites(facts, f"{args.app_server}:{args.port}")
    # The cluster file and the key copy are written only now that discovery succeeded.
    store.ensure_new_cluster_name(args.name)
    key = store.import_key(args.key, args.name, host_name) if args.key else None
    app = store.Host(name=host_name, address=args.app_server, port=args.port, user=args.user, key=key,
                     roles=["app"])
    cluster, _ = refreshed(store.Cluster(name=args.name, hosts=[app]), facts)
    if args.apache_config:
        cluster.settings["apache_config"] = args.apache_config
    if apache_env:
        cluster.settings["apache_env"] = apache_env
    if apache_defines:
        cluster.settings["apache_defines"] = apache_defines
    try:
        store.save_cluster(cluster, new=True)
    except BaseException:
        if key:
            store.remove_cluster_keys(args.name)
        raise
    skipped = skipped_sites(facts)
    if args.json:
        print_json({**cluster.to_dict(), "skipped_sites": skipped})
        return 0
    print(f"cluster {args.name} created from {args.app_server} (operation {result.id}); sites found:")
    print_table(site_rows(cluster), SITE_COLUMNS)
    print_skipped(skipped)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = cluster_rows()
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["name", "hosts", "sites", "updated"], empty="no cluster yet: sec cluster create ...")
    return 0


def _show(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.name)
    if args.json:
        print_json(cluster.to_dict())
        return 0
    print_fields({"cluster": cluster.name, "created": cluster.created, "updated": cluster.updated})
    print("\nhosts:")
    print_table([{**h.__dict__} for h in cluster.hosts], HOST_COLUMNS)
    print("\nsites:")
    print_table(site_rows(cluster), SITE_COLUMNS)
    return 0


def _connect(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.name)
    if not cluster.hosts_with_role("app"):
        raise SecError(f"cluster {cluster.name} has no App server: sec host add {cluster.name} NAME --roles app ...")
    apache_config = args.apache_config or cluster.settings.get("apache_config")
    apache_env = parse_apache_env(args.apache_env) or cluster.settings.get("apache_env") or {}
    apache_defines = check_defines(args.apache_define) or cluster.settings.get("apache_defines") or []
    result, facts = run_discovery("cluster connect", cluster.name, cluster_inventory(cluster), apache_config,
                                  {"cluster": cluster.name}, apache_env, apache_defines)
    require_sites(facts, f"cluster {cluster.name}")
    cluster, notes = refreshed(cluster, facts)
    store.save_cluster(cluster)
    skipped = skipped_sites(facts)
    if args.json:
        print_json({"cluster": cluster.to_dict(), "changes": notes, "operation": result.id,
                    "skipped_sites": skipped})
        return 0
    print(f"cluster {cluster.name}: every host answered (operation {result.id})")
    for note in notes or ["no change"]:
        print(f"  {note}")
    print_table(site_rows(cluster), SITE_COLUMNS)
    print_skipped(skipped)
    return 0


def _remove(args: argparse.Namespace) -> int:
    store.remove_cluster(args.name)
    print(f"cluster {args.name} removed (its file and keys)")
    return 0
