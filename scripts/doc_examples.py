"""List the API reference's public objects whose docstring has no Examples section.

Usage: ``python scripts/doc_examples.py [--quiet] [--mpi]`` from the repository root.
Reads the ``autosummary`` lists in ``docs/api/*.rst`` (with their
``currentmodule``), imports each object, and for a class also checks every
method the class template renders (``:members:``: public, defined on the class
itself, documented). Prints one line per object without ``Examples`` and a
count; exits non-zero when any is missing. With ``--mpi`` it lists instead the
distributed objects (``tensorpar.distributed``, ``tensorpar.nn.parallel``) whose
docstring never mentions ``mpiexec``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

CURRENT = re.compile(r"^\.\. currentmodule:: (\S+)")
ENTRY = re.compile(r"^   ~?([A-Za-z_][\w.]*)\s*$")


def entries(api: Path) -> list[str]:
    """Full dotted names listed by the autosummary directives under ``api``."""
    names = []
    for rst in sorted(api.glob("*.rst")):
        module, inside = "tensorpar", False
        for line in rst.read_text(encoding="utf-8").splitlines():
            if m := CURRENT.match(line):
                module = m.group(1)
            if line.startswith(".. autosummary::"):
                inside = True
                continue
            if inside and line and not line.startswith(" "):
                inside = False
            if inside and (m := ENTRY.match(line)):
                names.append(f"{module}.{m.group(1)}")
    return names


def resolve(name: str) -> Any:
    """Import the object named by the dotted ``name``."""
    parts = name.split(".")
    # an attribute wins over a submodule of the same name (tensorpar.mttkrp)
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def methods(cls: type) -> list[tuple[str, Any]]:
    """Public documented methods defined on ``cls`` itself (what ``:members:`` renders)."""
    out = []
    for attr, raw in vars(cls).items():
        if attr.startswith("_"):
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(func) and func.__doc__:
            out.append((attr, func))
    return out


DISTRIBUTED = ("tensorpar.distributed.", "tensorpar.nn.parallel.")


def missing(mpi: bool = False) -> tuple[int, list[str]]:
    """Number of objects checked and the names of those without an Examples section.

    With ``mpi``, only the distributed API is checked, for a mention of ``mpiexec``
    (how the example runs on several ranks).
    """
    checked, out = 0, []
    for name in entries(Path("docs/api")):
        if mpi and not name.startswith(DISTRIBUTED):
            continue
        obj = resolve(name)
        if inspect.ismodule(obj):
            # autosummary then renders the module, not the function of the same name
            # (a lazily imported package's attribute is replaced by the submodule)
            checked += 1
            out.append(f"{name} (resolves to a module)")
            continue
        todo = [(name, obj)]
        if inspect.isclass(obj):
            todo += [(f"{name}.{attr}", f) for attr, f in methods(obj)]
        for label, item in todo:
            checked += 1
            doc = inspect.getdoc(item) or ""
            if ("mpiexec" not in doc) if mpi else ("Examples\n" not in doc):
                out.append(label)
    return checked, out


if __name__ == "__main__":
    mpi = "--mpi" in sys.argv
    n, names = missing(mpi)
    if "--quiet" not in sys.argv:
        for label in names:
            print(label)
    what = "distributed API objects do not mention mpiexec" if mpi else \
        "API objects have no Examples section"
    print(f"{len(names)} of {n} {what}")
    sys.exit(1 if names else 0)
