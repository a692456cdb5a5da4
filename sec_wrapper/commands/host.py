"""`sec host list | add | edit | remove`: a cluster's servers and their roles (app, api, db, backup)."""

from __future__ import annotations

import argparse

from sec_wrapper import store
from sec_wrapper.commands import add_action
from sec_wrapper.errors import SecError
from sec_wrapper.operations.clusters import add_host, check_roles, edit_host, remove_host
from sec_wrapper.render import human_size, print_json, print_table

COLUMNS = ["name", "address", "port", "user", "roles", "key", "backup_dir"]


def _roles(text: str) -> list[str]:
    try:
        return check_roles(text)
    except SecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("host", help="list, add, edit and remove a cluster's hosts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add_action(actions, "list", "a cluster's hosts", _list, "cluster")

    for name, func in (("add", _add), ("edit", _edit)):
        action = actions.add_parser(name, help=f"{name} a host")
        action.add_argument("cluster")
        action.add_argument("name")
        action.add_argument("--address", required=name == "add")
        action.add_argument("--port", type=int)
        action.add_argument("--user")
        action.add_argument("--key", metavar="PATH", help="SSH private key (copied into the keys folder)")
        action.add_argument("--roles", type=_roles, required=name == "add", help="e.g. app,api,db or backup")
        action.add_argument("--backup-dir", metavar="PATH",
                            help="a backup host's folder for the copies of every backup (the backup role needs it)")
        action.add_argument("--python", help="the host's Python for modules, if discovery picks a wrong one")
        if name == "add":
            action.add_argument("--no-check", action="store_true",
                                help="record the host without contacting it (a host that is down for now); "
                                     "by default it is checked over SSH: it answers, carries the cluster's "
                                     "sites as an App/API server, holds a site's database as a DB server, "
                                     "may write its backup folder as a backup host")
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
    if args.no_check:
        print(f"host {args.name} not checked (--no-check): `sec cluster connect {args.cluster}` checks it")
    added = add_host(args.cluster, args.name, args.address, args.roles, port=args.port, user=args.user,
                     key=args.key, python=args.python, check=not args.no_check, backup_dir=args.backup_dir)
    serves = f"; serves {', '.join(added['serves'])}" if added["serves"] else ""
    checked = "" if args.no_check else ", checked over SSH"
    room = added.get("backup_room")
    keeps = (f"; keeps copies in {added['backup_dir']} ({human_size(room['free_bytes'])} free)" if room
             else f"; keeps copies in {added['backup_dir']}" if added.get("backup_dir") else "")
    print(f"host {args.name} added to {args.cluster} ({','.join(added['roles'])}){checked}{serves}{keeps}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    changes = {field: getattr(args, field) for field in ("address", "port", "user", "roles", "python", "backup_dir")}
    edit_host(args.cluster, args.name, changes, key=args.key)
    print(f"host {args.name} of {args.cluster} updated")
    return 0


def _remove(args: argparse.Namespace) -> int:
    remove_host(args.cluster, args.name, force=args.force)
    print(f"host {args.name} removed from {args.cluster}")
    return 0
