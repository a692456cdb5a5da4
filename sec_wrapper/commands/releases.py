"""`sec releases list | add`: the release archives upgrades are made from (the data folder's releases/)."""

from __future__ import annotations

import argparse

from sec_wrapper.paths import releases_dir
from sec_wrapper.release_store import add_release_recorded, list_releases
from sec_wrapper.render import human_size, print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("releases", help="the release archives upgrades are made from")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every release: checksum state and the sites that could go to it")
    listing.add_argument("--verify", action="store_true",
                         help="also verify every archive completely (members, manifest, each file's checksum)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    add = actions.add_parser("add", help="verify a release archive and copy it into the releases folder")
    add.add_argument("file", help="<name>-<version>.tar.gz")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=_add)


def _list(args: argparse.Namespace) -> int:
    releases = list_releases(full=args.verify)
    if args.json:
        print_json([{k: v for k, v in r.items() if k != "unpacked_size"} for r in releases])
        return 0
    rows = [{"version": r["version"], "file": r["file"], "size": human_size(r["size"]) or "-",
             "checksum": r["state"] + (f" ({r['problem']})" if r["problem"] else ""),
             "sites": r["sites"] or None} for r in releases]
    print_table(rows, ["version", "file", "size", "checksum", "sites"],
                empty=f"no release in {releases_dir()}: sec releases add FILE")
    return 0


def _add(args: argparse.Namespace) -> int:
    added = add_release_recorded(args.file)
    if args.json:
        print_json(added)
        return 0
    verb = "added" if added["added"] else "already present:"
    print(f"{verb} {added['file']} (release {added['version']}, {len(added['migrations'])} migrations, "
          f"{added['files']} files, sha256 {added['sha256'][:16]}...) in {releases_dir()}")
    return 0
