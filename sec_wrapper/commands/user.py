"""`sec user add | remove | list | token`: the web console's accounts (see `sec serve`)."""

from __future__ import annotations

import argparse
import sys

from sec_wrapper import accounts
from sec_wrapper.errors import SecError
from sec_wrapper.render import print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("user", help="the web console's accounts: add, remove, list, token, revoke")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add an account; the password is read from stdin (first line)")
    add.add_argument("name")
    add.add_argument("--replace", action="store_true",
                     help="set a new password for an existing account (ends its sessions and its API token)")
    add.set_defaults(func=_add)

    remove = actions.add_parser("remove", help="remove an account (its sessions end, its token stops working)")
    remove.add_argument("name")
    remove.set_defaults(func=_remove)

    listing = actions.add_parser("list", help="every account")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    token = actions.add_parser("token", help="make the account's API token and print it (shown only once)")
    token.add_argument("name")
    token.set_defaults(func=_token)

    revoke = actions.add_parser("revoke", help="end every console session of the account (it logs in again)")
    revoke.add_argument("name")
    revoke.set_defaults(func=_revoke)


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SecError("the two passwords differ: run the command again")
        return password
    line = sys.stdin.readline()
    if not line:
        raise SecError("no password on stdin: echo ... | sec user add NAME, or run it in a terminal")
    return line.rstrip("\r\n")


def _add(args: argparse.Namespace) -> int:
    accounts.add_user(args.name, _read_password(), replace=args.replace)
    print(f"user {args.name} {'updated' if args.replace else 'added'}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    accounts.remove_user(args.name)
    print(f"user {args.name} removed")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = accounts.list_users()
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["name", "created", "token", "sessions"], empty="no account yet: sec user add NAME")
    return 0


def _token(args: argparse.Namespace) -> int:
    print(accounts.new_token(args.name))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    ended = accounts.end_sessions(args.name)
    print(f"user {args.name}: {ended} session{'s' if ended != 1 else ''} ended")
    return 0
