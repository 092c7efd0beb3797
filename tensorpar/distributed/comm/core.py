"""Communicators, host/device staging and buffer helpers shared by the comm modules.

The functions here make no message themselves; the collectives
(:mod:`~tensorpar.distributed.comm.collectives`), the agreement checks
(:mod:`~tensorpar.distributed.comm.agreement`) and the point-to-point helpers
(:mod:`~tensorpar.distributed.comm.p2p`) build on them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..._backend import get_array_module, is_cupy_array, require
from ..._typing import Array, ReduceOp
from .abort import install_default_hook

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["import_mpi", "resolve_comm", "cuda_aware", "host_buffer", "on_device_of",
           "empty_buffer", "to_device", "mpi_op", "rows_first", "rows_restored", "check_counts"]


def import_mpi() -> Any:
    """The ``mpi4py.MPI`` module, or an ImportError naming the ``mpi`` extra."""
    require("mpi4py", "tensorpar.distributed")
    from mpi4py import MPI

    return MPI


def resolve_comm(comm: MPI.Comm | None = None) -> MPI.Intracomm:
    """Return ``comm``, or ``MPI.COMM_WORLD`` when it is None.

    The world communicator is looked up on every call, never stored at import,
    so importing tensorpar does not pin a communicator. Every distributed
    entry point calls this first, so the first call also installs the
    abort-on-uncaught-exception hook
    (:func:`~tensorpar.distributed.comm.abort.install_default_hook`; opt out
    with ``TENSORPAR_ABORT_HOOK=0``).

    Examples
    --------
    >>> resolve_comm().Get_size() >= 1
    True
    """
    mpi = import_mpi()
    install_default_hook()
    if comm is None:
        return cast("MPI.Intracomm", mpi.COMM_WORLD)
    if not isinstance(comm, mpi.Intracomm):
        raise TypeError(f"comm must be an mpi4py Intracomm or None, got {type(comm).__name__}")
    return cast("MPI.Intracomm", comm)


def cuda_aware() -> bool:
    """Whether cupy arrays are handed to MPI directly instead of staged through the host.

    MPI libraries do not report CUDA-awareness portably, so this reads the
    environment variable ``TENSORPAR_CUDA_AWARE_MPI`` (``1`` to pass device
    pointers); the default is to stage, which works with every MPI.

    Examples
    --------
    >>> isinstance(cuda_aware(), bool)
    True
    """
    return os.environ.get("TENSORPAR_CUDA_AWARE_MPI", "0") == "1"


def host_buffer(x: Array) -> Array:
    """A C-contiguous buffer MPI can read: device arrays go to the host unless CUDA-aware."""
    if is_cupy_array(x):
        import cupy

        if cuda_aware():
            cupy.cuda.get_current_stream().synchronize()
            return cupy.ascontiguousarray(x)
        return cupy.asnumpy(x)
    return np.ascontiguousarray(x)


def on_device_of(y: Array, x: Array) -> Array:
    """Return ``y`` on the device of ``x`` (a host result of a cupy input goes back to the GPU)."""
    if is_cupy_array(x) and not is_cupy_array(y):
        return to_device(y)
    return y


def empty_buffer(shape: Sequence[int], dtype: Any, x: Array) -> Array:
    """A receive buffer for data like ``x``: on the device only when MPI is CUDA-aware."""
    if is_cupy_array(x) and cuda_aware():
        import cupy

        return cupy.empty(tuple(shape), dtype=dtype)
    return np.empty(tuple(shape), dtype=dtype)


def to_device(y: Array) -> Array:
    """Copy the host array ``y`` to the current GPU."""
    import cupy

    return cupy.asarray(y)


def mpi_op(op: ReduceOp | str) -> Any:
    """The ``MPI.Op`` named by ``op``; a ValueError for an unknown name."""
    mpi = import_mpi()
    ops = {"sum": mpi.SUM, "prod": mpi.PROD, "max": mpi.MAX, "min": mpi.MIN,
           "land": mpi.LAND, "lor": mpi.LOR}
    if op not in ops:
        raise ValueError(f"op must be one of {sorted(ops)}, got {op!r}")
    return ops[op]


def rows_first(x: Array, axis: int) -> tuple[Array, int]:
    """``x`` with ``axis`` moved to the front (a view) and the normalised axis."""
    if x.ndim == 0:
        raise ValueError("the array must have at least one dimension to be split in rows")
    axis = axis % x.ndim
    return (x if axis == 0 else get_array_module(x).moveaxis(x, axis, 0)), axis


def rows_restored(y: Array, axis: int) -> Array:
    """Undo :func:`rows_first`: move the leading axis back to ``axis``."""
    return y if axis == 0 else get_array_module(y).moveaxis(y, 0, axis)


def check_counts(counts: Sequence[int], size: int, name: str = "counts") -> list[int]:
    """``counts`` as a list of ``size`` non-negative ints, or a ValueError naming ``name``."""
    out = [int(c) for c in counts]
    if len(out) != size or any(c < 0 for c in out):
        raise ValueError(f"{name} must hold {size} non-negative row counts, got {out}")
    return out
