"""One module per command group; each exposes `register(subparsers)` and sets `func` on its parsers.

A handler takes the parsed arguments and returns the exit status; it raises SecError for a user error.
"""

from __future__ import annotations

import importlib

GROUPS = ["sandbox", "cluster", "host", "site", "site_operations", "advanced", "sync", "releases", "upgrade", "ops",
          "user", "serve"]


def load_all() -> list:
    return [importlib.import_module(f"{__name__}.{name}") for name in GROUPS]
