"""The `sec` command: argument parsing and dispatch only. Operation logic lives in the playbooks."""

from __future__ import annotations

import argparse
import sys

from sec_wrapper import __version__
from sec_wrapper.commands import load_all
from sec_wrapper.errors import SecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sec", description="Enterprise Console for Flow Production Tracking")
    parser.add_argument("--version", action="version", version=f"sec {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for module in load_all():
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SecError as exc:
        print(f"sec: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
