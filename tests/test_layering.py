"""The package's layering: every import points down, and no modules import each other in a circle.

Every ``import`` statement of the package is parsed with ``ast``: module level, function bodies,
``if TYPE_CHECKING:`` blocks, all of them. The layers, lowest first (a package may import only
from the layers below its own, never from a sibling in its own layer)::

    errors                       GanforgeError, imported by everything
    _io, _subcommand             atomic writes, allocation checks; the stand-alone subcommand runner
    config                       presets, files, overrides, typed validation
    registry                     the name -> builder registry of every plug-in point
    maths, weights, _images, viz the equations; the shipped classifier weights and their loader;
                                 tensor helpers that feed images to those classifiers; figures
                                 (grids, curves, 2-D fields: the data kinds' writers draw them)
    text                         captions, vocabularies and text encoders (the captioned data use it)
    data                         datasets, each declaring its fields, kind, extractor and modes
    models                       network families and their registry
    metrics                      scores of samples and models
    train                        the Trainer, the algorithms, checkpoints, loading a run
    ganforge                     the package's public API (``ganforge/__init__``)
    latent, translate, predict, augmentation, forensics, watermark, theory, rare, robust
                                 tools over trained runs (`ganforge latent|translate|...`)
    web                          `ganforge play` / `board`
    cli                          the command line
    __main__                     `python -m ganforge`

A package ``__init__`` importing its own submodules (to register them) is the only edge inside
a package that may point back up; any other circle between modules fails.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ganforge

PACKAGE = Path(ganforge.__file__).parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("_io", "_subcommand"),
    ("config",),
    ("registry",),
    ("maths", "weights", "_images", "viz"),
    ("text",),
    ("data",),
    ("models",),
    ("metrics",),
    ("train",),
    ("ganforge",),
    ("latent", "translate", "predict", "augmentation", "forensics", "watermark", "theory", "rare", "robust"),
    ("web",),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(node: ast.AST) -> list[str]:
    """The ganforge modules one import statement loads (``from pkg import sub`` -> ``pkg.sub``
    when ``sub`` is a module, else ``pkg``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                 for a in node.names]
    else:
        return []
    out = []
    for name in names:
        while name and name not in MODULES:  # ``import ganforge.x.y`` names module ganforge.x.y
            name = name.rpartition(".")[0]
        if name.startswith("ganforge"):
            out.append(name)
    return out


def _edges() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first import statement}, every statement counted."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        graph[name] = {}
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _targets(node):
                graph[name].setdefault(target, node.lineno)
    return graph


def _component(module: str) -> str:
    """``ganforge.metrics.fid`` -> ``metrics``; the package's own ``__init__`` -> ``ganforge``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ganforge"


def test_the_layer_table_names_every_top_level_module_and_package():
    assert {_component(m) for m in MODULES} == set(LAYER_OF)


def test_imports_point_down_the_layers():
    """An edge to a layer above, or to a sibling in the same layer, is a layering violation."""
    wrong = []
    for module, imported in _edges().items():
        own = _component(module)
        for target, line in imported.items():
            other = _component(target)
            if other != own and LAYER_OF[other] >= LAYER_OF[own]:
                wrong.append(f"{module}:{line} imports {target} ({other} is not below {own})")
    assert not wrong, "\n".join(wrong)


def _cycle(graph: dict[str, dict[str, int]]) -> list[str]:
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str]:
        state[node] = 1
        for nxt in graph.get(node, {}):
            if nxt == node or nxt.startswith(node + "."):
                continue  # a package's __init__ importing its own submodules
            if state.get(nxt) == 1:
                return [*stack, node, nxt]
            if state.get(nxt) is None and (found := visit(nxt, [*stack, node])):
                return found
        state[node] = 2
        return []

    for module in graph:
        if state.get(module) is None and (found := visit(module, [])):
            return found
    return []


def test_no_import_cycles_between_modules_function_level_imports_included():
    cycle = _cycle(_edges())
    assert not cycle, " -> ".join(cycle)


def test_the_checks_catch_a_function_level_cycle_and_an_upward_import():
    """The graph sees imports inside function bodies and TYPE_CHECKING blocks."""
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ganforge.train.trainer import X\n"
            "def f():\n    from ganforge.metrics import fid\n    import ganforge.models.base\n")
    found = {t for node in ast.walk(ast.parse(code)) for t in _targets(node)}
    assert found == {"ganforge.train.trainer", "ganforge.metrics.fid", "ganforge.models.base"}
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "pkg": {"pkg.sub": 1}, "pkg.sub": {}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"pkg": {"pkg.sub": 1}, "pkg.sub": {"pkg": 1}}) == []


def test_config_imports_nothing_from_the_layers_above_it():
    above = ("ganforge.train", "ganforge.models", "ganforge.metrics")
    imported = _edges()["ganforge.config"]
    assert not [m for m in imported if m.startswith(above)], imported


def test_metrics_do_not_import_the_trainer_and_models_do_not_import_compose_back():
    graph = _edges()
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
