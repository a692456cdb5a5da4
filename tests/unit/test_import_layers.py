"""The layers import one way: front ends (the CLI's commands, the console's web) over the operation service
over the engine. Every import line counts, those inside functions too (they once hid a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sec_wrapper"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path, name) if m in modules and m != name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _wrong_way(graph: dict[str, set[str]], importer: str, imported: str) -> list[str]:
    return sorted(f"{a} imports {b}" for a, deps in graph.items() if a.startswith(importer)
                  for b in deps if b.startswith(imported))


def test_no_module_of_sec_imports_itself_back_in_a_circle() -> None:
    graph = import_graph()
    # A package's __init__ naming its own modules is how Python packages are read, not a circle.
    graph = {a: {b for b in deps if not (a.startswith(b + ".") and b in graph and
                                         (PACKAGE.parent / (b.replace(".", "/") + "/__init__.py")).exists())}
             for a, deps in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_console_and_the_service_never_reach_into_the_cli() -> None:
    graph = import_graph()
    assert not _wrong_way(graph, "sec_wrapper.web", "sec_wrapper.commands")
    assert not _wrong_way(graph, "sec_wrapper.operations", "sec_wrapper.commands")
    assert not _wrong_way(graph, "sec_wrapper.operations", "sec_wrapper.web")
    # `sec serve` makes the app, and that is all the CLI knows of the console.
    assert _wrong_way(graph, "sec_wrapper.commands", "sec_wrapper.web") == [
        "sec_wrapper.commands.serve imports sec_wrapper.web.app"]
    engine = ("sec_wrapper.runner", "sec_wrapper.history", "sec_wrapper.store", "sec_wrapper.inventory")
    for module in engine:
        assert not _wrong_way(graph, module, "sec_wrapper.operations"), module


def test_handlers_never_import_the_app_or_each_other() -> None:
    graph = import_graph()
    handlers = [m for m in graph if m.startswith("sec_wrapper.web.pages.") or m == "sec_wrapper.web.api"]
    for handler in handlers:
        wrong = {m for m in graph[handler] if m in ("sec_wrapper.web.app", "sec_wrapper.web.routes")
                 or (m in handlers and m != handler)}
        assert not wrong, f"{handler} imports {sorted(wrong)}: handlers share web/common.py, forms.py, operate.py"


def test_the_check_sees_a_circle_and_a_wrong_way_import() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _wrong_way({"sec_wrapper.web.x": {"sec_wrapper.commands.y"}}, "sec_wrapper.web", "sec_wrapper.commands")
    assert "sec_wrapper.web.security" in import_graph()["sec_wrapper.web.app"]
