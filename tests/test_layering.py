"""The package's layering: config below train/models/metrics, no import cycles, no machine paths."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ganforge

PACKAGE = Path(ganforge.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The ganforge modules ``path`` imports (module level only, or anywhere in the file)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("ganforge"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganforge"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in out if m in modules}


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, top_level_only=top_level_only) for p in PACKAGE.rglob("*.py")}


def test_config_imports_nothing_from_the_layers_above_it():
    above = ("ganforge.train", "ganforge.models", "ganforge.metrics")
    imported = _imports(PACKAGE / "config.py", top_level_only=False)
    assert not [m for m in imported if m.startswith(above)], imported


def test_no_import_cycles_between_modules():
    """Module-level imports form a DAG (a package importing its own submodules to register them
    is the only allowed back edge: ``pkg/__init__`` -> ``pkg.sub``)."""
    graph = _graph(top_level_only=True)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt == node or nxt.startswith(node + "."):
                continue  # a package's __init__ importing its own submodules
            if state.get(nxt) == 1:
                cycle.extend([*stack, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for module in graph:
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_metrics_do_not_import_the_trainer_and_models_do_not_import_compose_back():
    graph = _graph(top_level_only=False)
    for module, imported in graph.items():
        if module.startswith("ganforge.metrics"):
            assert not [m for m in imported if m.startswith("ganforge.train")], module
    assert "ganforge.models.compose" not in graph["ganforge.models.base"]


def test_no_machine_specific_paths_in_the_package():
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.json")]:
        text = path.read_text()
        for marker in ("/work/", "/home/", "/root/", "/tmp/", '"shared" /', "shared/data"):
            assert marker not in text, f"{path.relative_to(PACKAGE)} mentions {marker!r}"
        if path.suffix == ".json":
            values = json.dumps(json.loads(text))
            assert '"/' not in values, path
