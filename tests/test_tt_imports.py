"""Layering of the TT packages: no import cycles, no private names across modules.

Only module-level imports count: the lazy imports inside :class:`TTTensor`
and :class:`DistTTTensor` methods are the documented container conveniences.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tensorpar"
PACKAGES = ["tt", "distributed/tt"]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            parts = ["tensorpar", *pkg.split("/")]
            if path.stem != "__init__":
                parts.append(path.stem)
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """``(target module, imported names)`` of the module-level imports."""
    tree = ast.parse(path.read_text())
    is_pkg = path.stem == "__init__"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            parent = base[:len(base) - (node.level - 1)]
            target = ".".join(parent + ([node.module] if node.module else []))
            out.append((target, [a.name for a in node.names]))
    return out


def test_no_private_names_imported_across_modules():
    bad = [(mod, target, n) for mod, path in _modules().items()
           for target, names in _imports(mod, path) for n in names if n.startswith("_")]
    assert bad == []


def test_no_import_cycles():
    mods = _modules()
    graph = {m: {t for t, _ in _imports(m, p) if t in mods} for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [m, t]))
            if t not in state:
                visit(t, stack + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_rounding_variants_import_only_the_primitives():
    mods = _modules()
    for variant in ("tensorpar.tt.rounding_gram", "tensorpar.tt.rounding_rand"):
        targets = {t for t, _ in _imports(variant, mods[variant])}
        # tt.random holds random_tt, split out of tt.tensor (the sketch of rand)
        allowed = {"tensorpar._backend", "tensorpar._linalg", "tensorpar._typing",
                   "tensorpar._validation", "tensorpar.tt.orth", "tensorpar.tt.sweeps",
                   "tensorpar.tt.scale", "tensorpar.tt.tensor", "tensorpar.tt.random"}
        assert targets <= allowed, (variant, targets)
