"""Array-module dispatch and engine selection.

tensorpar keeps no global backend state: the array module (``numpy`` or
``cupy``) is read off the input arrays, and every hot operation takes an
``engine=`` keyword that picks the kernel family.

``engine="auto"`` resolves in one place, :func:`resolve_engine`, from the
data and the kernel registry (:mod:`tensorpar.kernels`), in this order:

1. cupy arrays -> ``"cupy"`` (the only engine that runs on device memory);
2. numpy arrays -> ``"numba"`` when numba is installed and the operation has
   a numba engine in the registry, otherwise ``"numpy"``.

The numpy engine is the reference implementation (the oracle of the tests);
it is always available for numpy input.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any, cast

import numpy as np

from ._typing import ConcreteEngine, Engine
from .kernels import engines

__all__ = ["Engine", "ENGINES", "EngineUnavailableError", "has_module", "require",
           "is_cupy_array", "get_array_module", "to_numpy", "resolve_engine"]

ENGINES: tuple[str, ...] = ("auto", "numpy", "numba", "cupy")

#: pip extra that provides each optional dependency.
_EXTRAS = {
    "cupy": "gpu",
    "numba": "(core dependency, reinstall tensorpar)",
    "mpi4py": "mpi",
    "h5py": "hdf5",
    "tensorly": "peers",
    "pyttb": "peers",
    "teneva": "peers",
}


def has_module(name: str) -> bool:
    """Return True when the top-level module ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None


def require(name: str, feature: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming the extra.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"cupy"``.
    feature : str
        What needs it, used in the error message.
    """
    if not has_module(name):
        extra = _EXTRAS.get(name, name)
        raise ImportError(
            f"{feature} needs the optional dependency '{name}'; "
            f"install it with: pip install 'tensorpar[{extra}]'"
        )
    return importlib.import_module(name)


def is_cupy_array(x: Any) -> bool:
    """True when ``x`` is a cupy ndarray (checked without importing cupy)."""
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays: Any) -> ModuleType:
    """Return the array module (numpy or cupy) shared by ``arrays``.

    ``None`` entries are ignored. Mixing numpy and cupy arrays raises a
    TypeError instead of silently copying between host and device.

    Examples
    --------
    >>> get_array_module(np.zeros(3), None).__name__
    'numpy'
    """
    kinds = set()
    for a in arrays:
        if a is None:
            continue
        kinds.add("cupy" if is_cupy_array(a) else "numpy")
    if len(kinds) > 1:
        raise TypeError(
            "operands mix numpy and cupy arrays; move them to one device first "
            "(cupy.asarray / cupy.asnumpy)"
        )
    if kinds == {"cupy"}:
        return importlib.import_module("cupy")
    return np


def to_numpy(x: Any) -> np.ndarray:
    """Copy a numpy or cupy array to a host numpy array."""
    if is_cupy_array(x):
        return np.asarray(x.get())
    return np.asarray(x)


class EngineUnavailableError(ImportError, TypeError):
    """``engine="cupy"`` was asked for but cupy is not installed.

    An ImportError (a missing optional dependency, the message names the
    ``gpu`` extra) that is also a TypeError: without cupy the inputs cannot
    be cupy arrays either, which is what that engine needs.
    """


def resolve_engine(engine: str, xp: ModuleType, *, op: str) -> ConcreteEngine:
    """Resolve ``engine`` for operation ``op`` on data living in array module ``xp``.

    The one engine rule of tensorpar: every public function with an
    ``engine=`` keyword calls this, and the kernel registry
    (:func:`tensorpar.kernels.engines`) says which engines ``op`` has.

    Parameters
    ----------
    engine : {"auto", "numpy", "numba", "cupy"}
        Requested engine.
    xp : module
        ``numpy`` or ``cupy``, as returned by :func:`get_array_module`.
    op : str
        Registry name of the operation (``"mttkrp"``, ``"tt_hadamard_core"``, ...).

    Returns
    -------
    str
        ``"numpy"``, ``"numba"`` or ``"cupy"``. ``"auto"`` gives ``"cupy"``
        for cupy arrays; for numpy arrays ``"numba"`` when numba is installed
        and ``op`` has a numba engine, else ``"numpy"`` (the reference).

    Raises
    ------
    ValueError
        Unknown ``engine``, or an engine ``op`` does not have.
    TypeError
        ``"cupy"`` with numpy arrays, ``"numpy"``/``"numba"`` with cupy arrays.
    ImportError
        The engine's package is missing (the message names the pip extra);
        for ``"cupy"`` an :class:`EngineUnavailableError`.

    Examples
    --------
    >>> import numpy as np
    >>> resolve_engine("numpy", np, op="mttkrp")
    'numpy'
    >>> resolve_engine("auto", np, op="mttkrp") in ("numba", "numpy")
    True
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    supported = engines(op)
    if not supported:
        raise ValueError(f"unknown operation {op!r} (not in tensorpar.kernels' registry)")
    on_device = xp is not np
    if engine == "auto":
        if on_device:
            engine = "cupy"
        else:
            engine = "numba" if ("numba" in supported and has_module("numba")) else "numpy"
    if engine == "cupy":
        if not has_module("cupy"):
            raise EngineUnavailableError(
                "engine='cupy' needs cupy arrays and the optional dependency 'cupy', which is "
                f"not installed; install it with: pip install 'tensorpar[{_EXTRAS['cupy']}]'")
        if not on_device:
            raise TypeError("engine='cupy' needs cupy arrays; convert the inputs with cupy.asarray")
    elif on_device:
        raise TypeError(
            f"engine={engine!r} runs on the host but the inputs are cupy arrays; "
            "use engine='cupy' or 'auto'")
    if engine not in supported:
        raise ValueError(f"{op} has no {engine!r} engine; it has {list(supported)}")
    if engine == "numba":
        require("numba", "engine='numba'")
    return cast(ConcreteEngine, engine)
