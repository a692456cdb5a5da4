"""The low-level operations: the collection's modules with their documentation (`sec advanced list`, the
console's Advanced page), read once per process."""

from __future__ import annotations

import functools
from typing import Any

from sec_wrapper.paths import COLLECTIONS_DIR

MODULES_DIR = COLLECTIONS_DIR / "ansible_collections" / "fpt" / "sec" / "plugins" / "modules"
# The engine itself, and the lock every run already takes, are not operations of their own here.
NOT_LISTED = {"run_module", "site_lock"}


@functools.cache
def _documented() -> tuple[dict[str, Any], ...]:
    # Slow to import (Ansible's doc parser): only when asked.
    from ansible_collections.fpt.sec.plugins.plugin_utils.module_docs import module_doc

    rows = []
    for path in sorted(MODULES_DIR.glob("*.py")):
        if path.stem in NOT_LISTED or path.stem.startswith("_"):
            continue
        doc = module_doc(str(path))
        rows.append({"module": path.stem, "description": doc.get("short_description", ""), "doc": doc,
                     "options": doc.get("options") or {}})
    return tuple(rows)


def low_level_modules() -> list[dict[str, Any]]:
    """Every listed module: its name, one-line description, documentation and options."""
    return list(_documented())
