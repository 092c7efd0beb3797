"""Compute kernels of tensorpar, installed as :mod:`tensorpar.kernels`.

One registry maps ``(operation, engine)`` to the function that implements
it, for **every** engine of an operation, the numpy reference included, so
the registry is the one place that knows which engines an operation has
(:func:`engines`); :func:`tensorpar._backend.resolve_engine` reads it to
decide ``engine="auto"``. Operation names say what the kernel computes:

=====================  =====================================================
``khatri_rao_t``       transposed partial Khatri-Rao product ``(R, prod I_k)``
``multi_ttv``          ``MT[r, i] += sum_{a,b} T[r, (a, i, b)] KA[r, a] KB[r, b]``
``mttkrp``             the whole MTTKRP: the numpy reference, or the blocked
                       algorithm assembled from the two kernels above
``tt_hadamard_core``   face-splitting product of two TT cores
``tt_entries``         entries of a tensor train at given multi-indices
=====================  =====================================================

Engine modules are imported lazily, the first time a kernel is asked for, so
``import tensorpar`` never imports numba or cupy:

* ``_<op>_numpy.py`` -- plain numpy references of the kernels (the oracles
  the other engines are tested against); references that belong to an
  algorithm stay with it in :mod:`tensorpar` and are registered by their
  full module path;
* ``_<op>_numba.py`` -- numba CPU kernels (``njit(cache=True, nogil=True)``);
* ``_<op>_cuda.py`` -- thin CuPy launchers around ``<op>.cu`` sources compiled
  by :func:`cuda_module` (one instantiation per dtype, cached per device).

An engine registered as :data:`BUILTIN` has no separate kernel: the calling
algorithm runs it with array-module calls (numpy, or cupy on the GPU).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUILTIN", "CUDA_SOURCE_DIR", "register", "compose", "engines", "has_kernel",
           "get_kernel", "cuda_source", "cuda_sources", "cuda_module"]

#: Target of an engine that the calling algorithm implements with array-module calls.
BUILTIN = "builtin"

#: (operation, engine) -> "module:function" (a leading "_" means a module of
#: this package) or :data:`BUILTIN`.
_REGISTRY: dict[tuple[str, str], str] = {}

#: operation -> the kernel operations it is assembled from (on non-reference engines).
_COMPOSED: dict[str, tuple[str, ...]] = {}

#: Directory holding the ``.cu`` sources.
CUDA_SOURCE_DIR = Path(__file__).resolve().parent

#: Compiled ``cupy.RawModule`` per (device, source file, name expressions, header).
_CUDA_MODULES: dict[tuple[int, str, tuple[str, ...], str], Any] = {}


def register(op: str, engine: str, target: str) -> None:
    """Register ``target`` (``"module:function"`` or :data:`BUILTIN`) as ``op`` on ``engine``.

    Examples
    --------
    >>> "numba" in engines("tt_entries")
    True
    """
    if engine not in ("numpy", "numba", "cupy"):
        raise ValueError(f"engine must be 'numpy', 'numba' or 'cupy', got {engine!r}")
    _REGISTRY[(op, engine)] = target


def compose(op: str, parts: Sequence[str]) -> None:
    """Declare that ``op`` runs, on every engine all of ``parts`` have, from those kernels.

    Examples
    --------
    >>> engines("mttkrp") == tuple(sorted(set(engines("multi_ttv")) & set(engines("khatri_rao_t"))))
    True
    """
    _COMPOSED[op] = tuple(parts)


def engines(op: str) -> tuple[str, ...]:
    """The engines that implement ``op``, sorted; empty for an unknown operation.

    Examples
    --------
    >>> engines("tt_hadamard_core")
    ('cupy', 'numba', 'numpy')
    """
    found = {e for (o, e) in _REGISTRY if o == op}
    parts = _COMPOSED.get(op)
    if parts:
        found |= set.intersection(*({e for (o, e) in _REGISTRY if o == p} for p in parts))
    return tuple(sorted(found))


def has_kernel(op: str, engine: str) -> bool:
    """True when ``op`` has an implementation on ``engine`` (see :func:`engines`).

    Examples
    --------
    >>> has_kernel("multi_ttv", "numba"), has_kernel("multi_ttv", "fortran")
    (True, False)
    """
    return engine in engines(op)


def get_kernel(op: str, engine: str) -> Callable[..., Any]:
    """Return the function implementing ``op`` on ``engine``, importing it lazily.

    Raises
    ------
    ValueError
        If the pair is not registered, or the engine is :data:`BUILTIN` or
        assembled from other kernels (:func:`compose`): then there is no
        single function to return.

    Examples
    --------
    >>> get_kernel("mttkrp", "numpy").__name__
    'mttkrp_reference'
    """
    target = _REGISTRY.get((op, engine))
    if target is None:
        if engine in engines(op):
            raise ValueError(f"{op!r} on {engine!r} is assembled from the kernels "
                             f"{list(_COMPOSED[op])}; ask for those")
        raise ValueError(f"no {engine!r} kernel for operation {op!r}; available: {list(engines(op))}")
    if target == BUILTIN:
        raise ValueError(f"the {engine!r} engine of {op!r} is built into its caller "
                         "(array-module calls); there is no separate kernel")
    module_name, func = target.split(":")
    if module_name.startswith("_"):
        module_name = f"{__name__}.{module_name}"
    module = importlib.import_module(module_name)
    kernel: Callable[..., Any] = getattr(module, func)
    return kernel


def cuda_source(name: str) -> str:
    """Return the text of the CUDA source file ``name`` shipped in this package.

    Examples
    --------
    >>> "mttkrp_multi_ttv" in cuda_source("mttkrp.cu")
    True
    """
    path = CUDA_SOURCE_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"CUDA source {name!r} not found in {CUDA_SOURCE_DIR}")
    return path.read_text()


def cuda_sources() -> list[Path]:
    """Every ``.cu`` file of the package (compiled by nvcc in the test run).

    Examples
    --------
    >>> sorted(p.name for p in cuda_sources())
    ['mttkrp.cu', 'tt.cu']
    """
    return sorted(CUDA_SOURCE_DIR.glob("*.cu"))


def cuda_module(source: str, name_expressions: Sequence[str], header: str = "") -> Any:
    """The ``cupy.RawModule`` of the ``.cu`` file ``source``, compiled once per device.

    Parameters
    ----------
    source : str
        File name in this package (``"mttkrp.cu"``).
    name_expressions : sequence of str
        Template instantiations to compile (``"kernel<double>"``), one per dtype.
    header : str
        Text put before the source (an ``#include``).

    Returns
    -------
    cupy.RawModule
        Compiled with ``-std=c++17`` on first use on the current device and
        kept for the life of the process (compiling takes about a second;
        CuPy also caches the binary on disk).

    Examples
    --------
    >>> callable(cuda_module)   # needs cupy and a GPU to run
    True
    """
    import cupy

    names = tuple(name_expressions)
    key = (int(cupy.cuda.Device().id), source, names, header)
    mod = _CUDA_MODULES.get(key)
    if mod is None:
        mod = cupy.RawModule(code=header + cuda_source(source), options=("-std=c++17",),
                             name_expressions=list(names))
        _CUDA_MODULES[key] = mod
    return mod


# --- registry entries (one line per kernel; engines import lazily) -----------
register("khatri_rao_t", "numpy", "_mttkrp_numpy:khatri_rao_t")
register("khatri_rao_t", "numba", "_mttkrp_numba:khatri_rao_t")
register("khatri_rao_t", "cupy", "_mttkrp_cuda:khatri_rao_t")
register("multi_ttv", "numpy", "_mttkrp_numpy:multi_ttv")
register("multi_ttv", "numba", "_mttkrp_numba:multi_ttv")
register("multi_ttv", "cupy", "_mttkrp_cuda:multi_ttv")
register("mttkrp", "numpy", "tensorpar.mttkrp:mttkrp_reference")
compose("mttkrp", ("khatri_rao_t", "multi_ttv"))
register("tt_hadamard_core", "numpy", "tensorpar.tt.ops:hadamard_core_reference")
register("tt_hadamard_core", "numba", "_tt_numba:hadamard_core")
register("tt_hadamard_core", "cupy", "_tt_cuda:hadamard_core")
register("tt_entries", "numpy", BUILTIN)
register("tt_entries", "numba", "_tt_numba:entries")
register("tt_entries", "cupy", BUILTIN)
