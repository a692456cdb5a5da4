"""`sec host list | add | edit | remove`: a cluster's servers and their roles (app, api, db)."""

from __future__ import annotations

import argparse

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.host_checks import check_new_host
from sec_wrapper.render import print_json, print_table

COLUMNS = ["name", "address", "port", "user", "roles", "key"]


def _roles(text: str) -> list[str]:
    roles = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in roles if r not in store.ROLES]
    if bad or not roles:
        raise argparse.ArgumentTypeError(f"roles are a comma-separated subset of {','.join(store.ROLES)}")
    return [r for r in store.ROLES if r in roles]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("host", help="list, add, edit and remove a cluster's hosts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="a cluster's hosts")
    listing.add_argument("cluster")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    for name, func in (("add", _add), ("edit", _edit)):
        action = actions.add_parser(name, help=f"{name} a host")
        action.add_argument("cluster")
        action.add_argument("name")
        action.add_argument("--address", required=name == "add")
        action.add_argument("--port", type=int)
        action.add_argument("--user")
        action.add_argument("--key", metavar="PATH", help="SSH private key (copied into the keys folder)")
        action.add_argument("--roles", type=_roles, required=name == "add", help="e.g. app,api,db")
        action.add_argument("--python", help="the host's Python for modules, if discovery picks a wrong one")
        if name == "add":
            action.add_argument("--no-check", action="store_true",
                                help="record the host without contacting it (a host that is down for now); "
                                     "by default it is checked over SSH: it answers, carries the cluster's "
                                     "sites as an App/API server, holds a site's database as a DB server")
        action.set_defaults(func=func)

    remove = actions.add_parser("remove", help="remove a host")
    remove.add_argument("cluster")
    remove.add_argument("name")
    remove.add_argument("--force", action="store_true", help="even while a site depends on it")
    remove.set_defaults(func=_remove)


def _rows(cluster: store.Cluster) -> list[dict]:
    return [dict(h.__dict__) for h in cluster.hosts]


def _list(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.cluster)
    if args.json:
        print_json(_rows(cluster))
    else:
        print_table(_rows(cluster), COLUMNS)
    return 0


def _add(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.cluster)
    store.validate_name(args.name, "host")
    if any(h.name == args.name for h in cluster.hosts):
        raise SecError(f"cluster {cluster.name} already has a host {args.name}: use `sec host edit`")
    host = store.Host(name=args.name, address=args.address, port=args.port or 22, user=args.user or "root",
                      roles=args.roles, python=args.python)
    # Discovery names a remote DB server by the address database.yml gives; adding it by name adopts it.
    placeholder = next((h for h in cluster.hosts if h.name == h.address == args.address and h.roles == ["db"]), None)
    taken = next((h for h in cluster.hosts if (h.address, h.port) == (host.address, host.port)), None)
    if taken and taken is not placeholder:
        raise SecError(f"host {taken.name} of {cluster.name} already is {host.address}:{host.port}: "
                       f"use `sec host edit {cluster.name} {taken.name}`")
    if args.no_check:
        carried: dict[str, dict] = {}
        print(f"host {args.name} not checked (--no-check): `sec cluster connect {cluster.name}` checks it")
    else:
        carried = check_new_host(cluster, host, args.key)
    host.key = store.import_key(args.key, cluster.name, args.name) if args.key else None
    if placeholder:
        host.roles = [r for r in store.ROLES if r in {*host.roles, *placeholder.roles}]
        cluster.hosts = [h for h in cluster.hosts if h is not placeholder]
    cluster.hosts.append(host)
    for site in cluster.sites:
        if placeholder and site.db_host == placeholder.name:
            site.db_host = host.name
        if site.reverse_name in carried:
            site.extra.setdefault("on_hosts", {})[host.name] = carried[site.reverse_name]
            if "app" in host.roles and host.name not in site.app_hosts:
                site.app_hosts = [*site.app_hosts, host.name]
    store.save_cluster(cluster)
    serves = f"; serves {', '.join(s.name for s in cluster.sites if s.reverse_name in carried)}" if carried else ""
    checked = "" if args.no_check else ", checked over SSH"
    print(f"host {args.name} added to {cluster.name} ({','.join(host.roles)}){checked}{serves}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.cluster)
    host = cluster.host(args.name)
    if args.roles is not None and "app" in host.roles and "app" not in args.roles:
        _refuse_if_serving(cluster, host.name, "drop its app role")
    for field in ("address", "port", "user", "roles", "python"):
        value = getattr(args, field)
        if value is not None:
            setattr(host, field, value)
    if args.key:
        host.key = store.import_key(args.key, cluster.name, host.name)
    store.save_cluster(cluster)
    print(f"host {host.name} of {cluster.name} updated")
    return 0


def _refuse_if_serving(cluster: store.Cluster, name: str, what: str) -> None:
    users = [s.name for s in cluster.sites if name in s.app_hosts or s.db_host == name]
    if users:
        raise SecError(f"cannot {what} {name}: sites {', '.join(users)} depend on it (add --force to do it anyway)"
                       if what == "remove" else f"cannot {what}: sites {', '.join(users)} run on {name}")


def _remove(args: argparse.Namespace) -> int:
    cluster = store.load_cluster(args.cluster)
    host = cluster.host(args.name)
    if not args.force:
        _refuse_if_serving(cluster, host.name, "remove")
    cluster.hosts = [h for h in cluster.hosts if h.name != host.name]
    for site in cluster.sites:
        site.app_hosts = [h for h in site.app_hosts if h != host.name]
    store.save_cluster(cluster)
    print(f"host {host.name} removed from {cluster.name}")
    return 0
