"""One module per command group; each exposes `register(subparsers)` and sets `func` on its parsers.

A handler takes the parsed arguments and returns the exit status; it raises SecError for a user error.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

GROUPS = ["sandbox", "cluster", "host", "site", "site_operations", "advanced", "sync", "releases", "upgrade", "ops",
          "user", "serve", "schedule", "notify"]


def add_action(actions: argparse._SubParsersAction, name: str, help: str,  # noqa: A002 (argparse's word)
               func: Callable[[argparse.Namespace], int], *positional: str, cluster: bool = False,
               json: bool = True) -> argparse.ArgumentParser:
    """`sec GROUP NAME POSITIONAL... [--cluster C] [--json]`, the shape of most commands that read the store."""
    parser = actions.add_parser(name, help=help)
    for argument in positional:
        parser.add_argument(argument)
    if cluster:
        parser.add_argument("--cluster", help="when a site's name is in several clusters" if positional else None)
    if json:
        parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=func)
    return parser


def load_all() -> list:
    return [importlib.import_module(f"{__name__}.{name}") for name in GROUPS]
