"""Every module and module_util ships to managed hosts, which may have Python 3.8 and nothing but the standard
library and ansible-core: each parses as 3.8, postpones annotations, and imports only what a host has."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "collections/ansible_collections/fpt/sec/plugins"
HOST_SIDE = sorted([*PLUGINS.glob("modules/*.py"), *PLUGINS.glob("module_utils/*.py")])


def test_the_list_is_not_empty() -> None:
    assert len(HOST_SIDE) > 30 and any(p.name == "db_backup.py" for p in HOST_SIDE)


@pytest.mark.parametrize("path", HOST_SIDE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parses_as_python_3_8_and_imports_only_what_a_host_has(path: Path) -> None:
    source = path.read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    if source.strip():
        assert "from __future__ import annotations" in source, f"{path.name}: annotations must be postponed"
    allowed = set(sys.stdlib_module_names) | {"ansible", "ansible_collections"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
            if node.module and node.module.startswith("ansible_collections"):
                assert node.module.startswith("ansible_collections.fpt.sec.plugins.module_utils"), (
                    f"{path.name} imports {node.module}: only the collection's module_utils ship with a module")
            if node.module and node.module.startswith("ansible.") and not node.module.startswith(
                    "ansible.module_utils"):
                pytest.fail(f"{path.name} imports {node.module}: only ansible.module_utils runs on a host")
        else:
            continue
        for root in roots:
            assert root in allowed, f"{path.name} imports {root}: managed hosts may not have it"
