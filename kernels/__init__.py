"""Compute kernels of tensorpar, installed as :mod:`tensorpar.kernels`.

One registry maps ``(operation, engine)`` to the function that implements
it. Engine modules are imported lazily, the first time a kernel is asked
for, so ``import tensorpar`` never imports numba or cupy:

* ``_<op>_numba.py`` -- numba CPU kernels (``njit(cache=True, nogil=True)``);
* ``_<op>_cuda.py`` -- thin CuPy launchers around ``<op>.cu`` sources compiled
  with ``cupy.RawModule`` (one instantiation per dtype, cached per device).

The numpy reference of each operation lives with the algorithm in
:mod:`tensorpar`, not here: it is the oracle every engine is tested against.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

#: (operation, engine) -> "module:function", relative to this package.
_REGISTRY: dict[tuple[str, str], str] = {}

#: Directory holding the ``.cu`` sources.
CUDA_SOURCE_DIR = Path(__file__).resolve().parent


def register(op: str, engine: str, target: str) -> None:
    """Register ``target`` (``"_module:function"``) as ``op`` for ``engine``."""
    _REGISTRY[(op, engine)] = target


def has_kernel(op: str, engine: str) -> bool:
    """True when a kernel for ``op`` is registered under ``engine``."""
    return (op, engine) in _REGISTRY


def get_kernel(op: str, engine: str) -> Callable:
    """Return the kernel implementing ``op`` on ``engine``, importing it lazily.

    Raises
    ------
    ValueError
        If no kernel is registered for that pair.
    """
    try:
        target = _REGISTRY[(op, engine)]
    except KeyError:
        engines = sorted(e for (o, e) in _REGISTRY if o == op)
        raise ValueError(
            f"no {engine!r} kernel for operation {op!r}; available: {engines}") from None
    module_name, func = target.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, func)


def cuda_source(name: str) -> str:
    """Return the text of the CUDA source file ``name`` shipped in this package."""
    path = CUDA_SOURCE_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"CUDA source {name!r} not found in {CUDA_SOURCE_DIR}")
    return path.read_text()


def cuda_sources() -> list[Path]:
    """Every ``.cu`` file of the package (compiled by nvcc in the test run)."""
    return sorted(CUDA_SOURCE_DIR.glob("*.cu"))


# --- registry entries (one line per kernel; engines import lazily) -----------
register("tt_hadamard_core", "numba", "_tt_numba:hadamard_core")
register("tt_hadamard_core", "cupy", "_tt_cuda:hadamard_core")
register("tt_entries", "numba", "_tt_numba:entries")
register("mttkrp", "numba", "_mttkrp_numba:multi_ttv")
register("mttkrp_kr", "numba", "_mttkrp_numba:khatri_rao_t")
register("mttkrp", "cupy", "_mttkrp_cuda:multi_ttv")
register("mttkrp_kr", "cupy", "_mttkrp_cuda:khatri_rao_t")
