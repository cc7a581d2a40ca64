"""autolr's modules import one way: no circle, no autolr import hidden in a function.

The graph is read from the source with ``ast``. Every import of an autolr module at module
level is an edge, those under ``if TYPE_CHECKING:`` included (they name the types a module
reads, and a circle through them is a circle all the same). An import inside a function is
allowed only for the optional or slow libraries that stay lazy, never for an autolr module. And
every module imports in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autolr"
#: Libraries a function may import lazily: optional extras, or slow to import (and only needed by
#: the code that imports them).
LAZY = frozenset(
    {"torch", "sklearn", "scipy", "joblib", "matplotlib", "optuna_dashboard", "pandas", "pyarrow",
     "sqlalchemy", "tqdm", "ray"}
)
#: Optuna's RDB internals import SQLAlchemy: lazy for the same reason.
LAZY_MODULES = frozenset({"optuna.storages._rdb", "optuna.storages._rdb.storage"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement loads (``from autolr import _x`` loads ``autolr._x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative imports are not used in autolr; resolve them anyway
        raise AssertionError(f"relative import of {base!r}")
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return subs or [base]


def _imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(autolr modules imported at module level, (line, module) of imports inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    inner: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child):
                    if in_function:
                        inner.append((child.lineno, target))
                    elif target == "autolr" or target.startswith("autolr."):
                        top.add(target)
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, nested)

    visit(tree, False)
    return top, inner


GRAPH = {name: _imports(path)[0] for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)) is not None:
            return found
    return None


def test_the_graph_reads_every_module_and_finds_a_circle_when_there_is_one() -> None:
    assert {"autolr", "autolr._tune", "autolr._loop", "autolr.torch._optim"} <= set(GRAPH)
    assert "autolr._schema" in GRAPH["autolr._record"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_autolr_modules() -> None:
    assert set().union(*GRAPH.values()) <= set(GRAPH), "an import of a module that does not exist"
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_the_stored_keys_and_the_reading_of_trials_sit_below_everything_that_uses_them() -> None:
    assert GRAPH["autolr._schema"] == set()
    for leaf in ("autolr._stability", "autolr._pruning", "autolr._space", "autolr._version"):
        assert GRAPH[leaf] == set(), leaf
    # reports, plots and the recommendation read storage; they never reach back into the runner
    runner = {"autolr._tune", "autolr._loop", "autolr._record", "autolr._context", "autolr._scaleout"}
    for reader in ("autolr._reports", "autolr._plots", "autolr._recommend", "autolr._result"):
        assert not GRAPH[reader] & runner, reader


def _layers() -> dict[str, int]:
    """docs/design.md's table of layers: module -> layer (``torch/`` stands for the package)."""
    import re

    layers: dict[str, int] = {}
    for line in (ROOT / "docs" / "design.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| (\d+) \| (.+?) \| ", line)
        if m:
            for name in re.findall(r"`([^`]+)`", m.group(2)):
                layers[name] = int(m.group(1))
    return layers


def _node(module: str) -> str:
    """A module as docs/design.md names it: ``_tune``, ``__init__``, ``torch/``."""
    if module == "autolr":
        return "__init__"
    if module.startswith("autolr.torch"):
        return "torch/"
    return module.removeprefix("autolr.")


def test_the_layers_in_the_design_doc_match_the_imports() -> None:
    layers = _layers()
    assert {_node(m) for m in MODULES} == set(layers), "docs/design.md lists other modules"
    wrong = [
        f"{_node(a)} (layer {layers[_node(a)]}) imports {_node(b)} (layer {layers[_node(b)]})"
        for a, targets in GRAPH.items() for b in targets
        if _node(a) != _node(b) and layers[_node(b)] >= layers[_node(a)]
    ]
    assert not wrong, wrong


def test_every_name_the_design_doc_gives_exists() -> None:
    import importlib
    import re

    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`(_[a-z_]+)\.([A-Za-z_]+)", text))
    assert len(names) > 20
    missing = [
        f"{mod}.{attr}" for mod, attr in sorted(names)
        if not hasattr(importlib.import_module(f"autolr.{mod}"), attr)
    ]
    assert not missing, missing


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_imports_an_autolr_module_or_an_eager_library(name: str) -> None:
    _, inner = _imports(MODULES[name])
    bad = [
        (line, target) for line, target in inner
        if target.split(".")[0] not in LAZY and target not in LAZY_MODULES
    ]
    assert not bad, f"{MODULES[name]}: imports inside functions: {bad}"


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    def fresh(name: str) -> tuple[str, str] | None:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT,
            timeout=120,
        )
        return None if proc.returncode == 0 else (name, proc.stderr.strip()[-500:])

    names = [n for n in sorted(MODULES) if n != "autolr.__main__"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = [f for f in pool.map(fresh, names) if f is not None]
    assert not failed, failed
