"""`sec cluster create | list | show | connect | remove`."""

from __future__ import annotations

import argparse

from sec_wrapper import store
from sec_wrapper.cluster_discovery import print_skipped
from sec_wrapper.commands import add_action
from sec_wrapper.commands.operation_args import add_said_operation
from sec_wrapper.operations.clusters import CLUSTER_CONNECT, CLUSTER_CREATE, remove_cluster
from sec_wrapper.render import print_fields, print_json, print_table
from sec_wrapper.runner import OperationResult
from sec_wrapper.site_rows import cluster_rows, site_rows

SITE_COLUMNS = ["name", "role", "version", "site_dir", "database"]
HOST_COLUMNS = ["name", "address", "port", "user", "roles"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cluster", help="create, list, show, connect to and remove clusters")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add_said_operation(actions, CLUSTER_CREATE, _say_created, "create")

    add_action(actions, "list", "every cluster", _list)
    add_action(actions, "show", "a cluster's hosts and sites", _show, "name")

    add_said_operation(actions, CLUSTER_CONNECT, _say_connected, "connect")

    add_action(actions, "remove", "forget a cluster (its file and keys)", _remove, "name", json=False)


def _say_created(created: dict, result: OperationResult) -> None:
    app = created["hosts"][0]
    print(f"cluster {created['name']} created from {app['address']} (operation {result.id}); sites found:")
    print_table(site_rows(store.load_cluster(created["name"])), SITE_COLUMNS)
    print_skipped(created["skipped_sites"])


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


def _say_connected(connected: dict, result: OperationResult) -> None:
    name = connected["cluster"]["name"]
    print(f"cluster {name}: every host answered (operation {result.id})")
    for note in connected["changes"] or ["no change"]:
        print(f"  {note}")
    print_table(site_rows(store.load_cluster(name)), SITE_COLUMNS)
    print_skipped(connected["skipped_sites"])


def _remove(args: argparse.Namespace) -> int:
    remove_cluster(args.name)
    print(f"cluster {args.name} removed (its file and keys)")
    return 0
