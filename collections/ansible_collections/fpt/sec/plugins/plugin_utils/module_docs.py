# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's documentation as ansible-doc shows it: its own options plus those of this collection's doc
fragments (`extends_documentation_fragment: [fpt.sec.site]`). The run_module action plugin fills and checks
options from it, and `sec advanced list` shows them, without loading Ansible's plugin machinery."""

from __future__ import annotations

import ast
import os
from typing import Any

import yaml
from ansible.utils.plugin_docs import read_docstring

COLLECTION = "fpt.sec"
FRAGMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "doc_fragments")


def fragment_doc(name: str) -> dict[str, Any]:
    """The documentation of fragment `fpt.sec.NAME[.VARIANT]`; {} for another collection's fragment."""
    if not name.startswith(COLLECTION + "."):
        return {}
    fragment, _dot, variant = name[len(COLLECTION) + 1:].partition(".")
    path = os.path.join(FRAGMENTS_DIR, fragment + ".py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    attribute = (variant or "DOCUMENTATION").upper()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == attribute for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value)) or {}
    return {}


def module_doc(path: str) -> dict[str, Any]:
    """The module's DOCUMENTATION with the options of its fragments merged in (the module's own win)."""
    doc = read_docstring(path).get("doc") or {}
    fragments = doc.get("extends_documentation_fragment") or []
    options: dict[str, Any] = {}
    for name in [fragments] if isinstance(fragments, str) else fragments:
        options.update(fragment_doc(name).get("options") or {})
    options.update(doc.get("options") or {})
    return {**doc, "options": options}
