"""`sec site list | show | role`."""

from __future__ import annotations

import argparse

from sec_wrapper import store
from sec_wrapper.commands.cluster import site_rows
from sec_wrapper.render import print_fields, print_json, print_table


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


def _list(args: argparse.Namespace) -> int:
    clusters = [store.load_cluster(args.cluster)] if args.cluster else store.list_clusters()
    rows = [row for c in clusters for row in site_rows(c)]
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["name", "cluster", "role", "version", "site_dir", "database"],
                    empty="no site yet: sec cluster create ...")
    return 0


def _show(args: argparse.Namespace) -> int:
    cluster, site = store.find_site(args.site, args.cluster)
    data = {**site.to_dict(), "cluster": cluster.name}
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
