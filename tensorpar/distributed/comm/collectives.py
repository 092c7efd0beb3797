"""Buffer collectives: every array message between ranks of a communicator.

Arrays move with mpi4py's uppercase buffer methods; only small metadata
(shapes, flags) is pickled (:func:`bcast_object`, :func:`allgather_object`).
Rows, counts and counted bytes are as described in
:mod:`tensorpar.distributed.comm`. On a communicator of size 1 no MPI call
is made and nothing is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import is_cupy_array
from ..._typing import ReduceOp
from .core import (
    check_counts,
    empty_buffer,
    host_buffer,
    mpi_op,
    on_device_of,
    resolve_comm,
    rows_first,
    rows_restored,
    to_device,
)
from .traffic import record

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["allreduce", "reduce_scatter", "reduce_scatter_block", "allgatherv", "bcast",
           "gatherv", "scatterv", "any_true", "bcast_object", "allgather_object"]


def allreduce(comm: MPI.Comm | None, x: Any, op: ReduceOp = "sum") -> Any:
    """Reduce ``x`` over all ranks; every rank gets the result (a new array, same shape).

    Counted bytes: ``x.nbytes``.

    Examples
    --------
    >>> allreduce(None, np.array([1.0, 2.0]))   # one process: a copy
    array([1., 2.])

    Under ``mpiexec -n 2 python script.py``, with
    ``allreduce(None, np.array([comm.rank + 1.0]))`` every rank gets
    ``array([3.])`` (``op="max"``: ``array([2.])``).
    """
    comm = resolve_comm(comm)
    x_arr = x if hasattr(x, "dtype") else np.asarray(x)
    red = mpi_op(op)
    if comm.Get_size() == 1:
        return x_arr.copy()
    send = host_buffer(x_arr)
    out = empty_buffer(send.shape, send.dtype, x_arr)
    comm.Allreduce(send, out, op=red)
    record(comm, "Allreduce", send.nbytes)
    return on_device_of(out, x_arr).reshape(x_arr.shape)


def reduce_scatter(comm: MPI.Comm | None, x: Any, counts: Sequence[int],
                   op: ReduceOp = "sum", axis: int = 0) -> Any:
    """Sum ``x`` over ranks and give rank ``r`` rows ``[sum(counts[:r]), sum(counts[:r+1]))``.

    Parameters
    ----------
    x : ndarray, ``sum(counts)`` rows along ``axis``
        This rank's contribution (same shape on every rank).
    counts : sequence of int, one per rank

    Returns
    -------
    ndarray with ``counts[rank]`` rows along ``axis``.

    Counted bytes: ``x.nbytes`` (the whole input).

    Examples
    --------
    >>> reduce_scatter(None, np.arange(3.0), [3])   # one process: a copy
    array([0., 1., 2.])

    Under ``mpiexec -n 2``, ``reduce_scatter(None, np.arange(3.0), [2, 1])``
    gives rank 0 ``array([0., 2.])`` and rank 1 ``array([4.])`` (the sum of
    both ranks' inputs, split by ``counts``).
    """
    comm = resolve_comm(comm)
    red = mpi_op(op)
    counts = check_counts(counts, comm.Get_size())
    xr, axis = rows_first(x, axis)
    if xr.shape[0] != sum(counts):
        raise ValueError(
            f"x has {xr.shape[0]} rows along axis {axis}; counts sum to {sum(counts)}")
    if comm.Get_size() == 1:
        return x.copy()
    send = host_buffer(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    out = empty_buffer((counts[comm.Get_rank()],) + send.shape[1:], send.dtype, x)
    comm.Reduce_scatter(send, out, [c * row for c in counts], op=red)
    record(comm, "Reduce_scatter", send.nbytes)
    return rows_restored(on_device_of(out, x), axis)


def reduce_scatter_block(comm: MPI.Comm | None, x: Any, op: ReduceOp = "sum",
                         axis: int = 0) -> Any:
    """:func:`reduce_scatter` with equal parts: ``x`` has ``size * m`` rows, each rank gets ``m``.

    Counted bytes: ``x.nbytes`` (under ``"Reduce_scatter_block"``).

    Examples
    --------
    >>> reduce_scatter_block(None, np.ones((2, 3)), axis=1)   # one process
    array([[1., 1., 1.],
           [1., 1., 1.]])

    Under ``mpiexec -n 2``, ``reduce_scatter_block(None, np.arange(4.0))``
    gives rank 0 ``array([0., 2.])`` and rank 1 ``array([4., 6.])``; a row
    count that is not a multiple of 2 raises a ValueError.
    """
    comm = resolve_comm(comm)
    red = mpi_op(op)
    size = comm.Get_size()
    xr, axis = rows_first(x, axis)
    if xr.shape[0] % size:
        raise ValueError(
            f"x has {xr.shape[0]} rows along axis {axis}, not a multiple of {size} ranks")
    if size == 1:
        return x.copy()
    send = host_buffer(xr)
    out = empty_buffer((send.shape[0] // size,) + send.shape[1:], send.dtype, x)
    comm.Reduce_scatter_block(send, out, op=red)
    record(comm, "Reduce_scatter_block", send.nbytes)
    return rows_restored(on_device_of(out, x), axis)


def _gathered_counts(comm: Any, rows: int, counts: Sequence[int] | None) -> list[int]:
    if counts is not None:
        counts = check_counts(counts, comm.Get_size())
        if counts[comm.Get_rank()] != rows:
            raise ValueError(
                f"counts[{comm.Get_rank()}] = {counts[comm.Get_rank()]} but this rank has "
                f"{rows} rows")
        return counts
    return [int(c) for c in allgather_object(comm, rows)]


def allgatherv(comm: MPI.Comm | None, x: Any, counts: Sequence[int] | None = None,
               axis: int = 0) -> Any:
    """Concatenate every rank's ``x`` along ``axis`` in rank order, on every rank.

    Parameters
    ----------
    x : ndarray with ``counts[rank]`` rows along ``axis``
    counts : sequence of int, optional
        Rows per rank; when omitted they are exchanged first (one small
        metadata allgather).

    Counted bytes: the whole output.

    Examples
    --------
    >>> allgatherv(None, np.ones((1, 2)), counts=[1])   # one process
    array([[1., 1.]])

    Under ``mpiexec -n 2``, ``allgatherv(None, np.full(comm.rank + 1, comm.rank))``
    gives every rank ``array([0, 1, 1])`` (counts ``[1, 2]`` exchanged first).
    """
    comm = resolve_comm(comm)
    xr, axis = rows_first(x, axis)
    counts = _gathered_counts(comm, xr.shape[0], counts)
    if comm.Get_size() == 1:
        return x.copy()
    send = host_buffer(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    out = empty_buffer((sum(counts),) + send.shape[1:], send.dtype, x)
    comm.Allgatherv(send, [out, [c * row for c in counts]])
    record(comm, "Allgatherv", out.nbytes)
    return rows_restored(on_device_of(out, x), axis)


def bcast(comm: MPI.Comm | None, x: Any = None, root: int = 0, *,
          shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Broadcast array ``x`` from ``root`` (other ranks' ``x`` is ignored) and return it.

    When every rank passes ``shape`` (and ``dtype``, default float64) no
    metadata is sent and other ranks get a numpy array; otherwise the root's
    shape, dtype and array module (numpy or cupy) are broadcast first. Every
    rank must make the same choice (SPMD call sites do). Counted bytes: the
    array.

    Examples
    --------
    >>> bcast(None, np.arange(3))   # one process: x itself
    array([0, 1, 2])

    Under ``mpiexec -n 2``,
    ``bcast(None, np.arange(3) if comm.rank == 0 else None)`` returns
    ``array([0, 1, 2])`` on both ranks.
    """
    comm = resolve_comm(comm)
    is_root = comm.Get_rank() == root
    if is_root and x is None:
        raise ValueError(f"bcast: the root rank {root} must pass an array")
    if comm.Get_size() == 1:
        return x
    on_device = False
    if shape is None:
        meta = (tuple(x.shape), np.dtype(x.dtype).str, is_cupy_array(x)) if is_root else None
        shape, dtype, on_device = bcast_object(comm, meta, root=root)
    buf = host_buffer(x) if is_root else np.empty(tuple(shape), dtype=dtype or np.float64)
    comm.Bcast(buf, root=root)
    record(comm, "Bcast", buf.nbytes)
    if is_root:
        return on_device_of(buf, x)
    return to_device(buf) if on_device else buf


def gatherv(comm: MPI.Comm | None, x: Any, counts: Sequence[int] | None = None,
            root: int = 0, axis: int = 0) -> Any:
    """Concatenate every rank's ``x`` along ``axis`` on ``root``; None elsewhere.

    Counted bytes: root the whole output, others their part.

    Examples
    --------
    >>> gatherv(None, np.arange(2.0))   # one process: a copy
    array([0., 1.])

    Under ``mpiexec -n 2``, ``gatherv(None, np.full(comm.rank + 1, comm.rank))``
    returns ``array([0, 1, 1])`` on rank 0 and ``None`` on rank 1.
    """
    comm = resolve_comm(comm)
    xr, axis = rows_first(x, axis)
    counts = _gathered_counts(comm, xr.shape[0], counts)
    if comm.Get_size() == 1:
        return x.copy()
    send = host_buffer(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    if comm.Get_rank() == root:
        out = empty_buffer((sum(counts),) + send.shape[1:], send.dtype, x)
        comm.Gatherv(send, [out, [c * row for c in counts]], root=root)
        record(comm, "Gatherv", out.nbytes)
        return rows_restored(on_device_of(out, x), axis)
    comm.Gatherv(send, None, root=root)
    record(comm, "Gatherv", send.nbytes)
    return None


def scatterv(comm: MPI.Comm | None, x: Any, counts: Sequence[int], root: int = 0,
             axis: int = 0) -> Any:
    """Split ``x`` (read on ``root`` only) along ``axis`` in ``counts`` rows per rank.

    The trailing shape, dtype and array module travel as metadata. Counted bytes: root the
    whole input, others their part.

    Examples
    --------
    >>> scatterv(None, np.arange(3.0), [3])   # one process: a copy
    array([0., 1., 2.])

    Under ``mpiexec -n 2``,
    ``scatterv(None, np.arange(3.0) if comm.rank == 0 else None, [2, 1])``
    returns ``array([0., 1.])`` on rank 0 and ``array([2.])`` on rank 1.
    """
    comm = resolve_comm(comm)
    counts = check_counts(counts, comm.Get_size())
    is_root = comm.Get_rank() == root
    if is_root:
        xr, axis = rows_first(x, axis)
        if xr.shape[0] != sum(counts):
            raise ValueError(
                f"x has {xr.shape[0]} rows along axis {axis}; counts sum to {sum(counts)}")
    if comm.Get_size() == 1:
        return x.copy()
    meta = None
    if is_root:
        meta = (tuple(xr.shape[1:]), np.dtype(x.dtype).str, axis, is_cupy_array(x))
    trail, dtype, axis, on_device = bcast_object(comm, meta, root=root)
    row = int(np.prod(trail, dtype=np.int64))
    out = np.empty((counts[comm.Get_rank()],) + tuple(trail), dtype=dtype)
    if is_root:
        send = host_buffer(xr)
        comm.Scatterv([send, [c * row for c in counts]], out, root=root)
        record(comm, "Scatterv", send.nbytes)
        return rows_restored(on_device_of(out, x), axis)
    comm.Scatterv(None, out, root=root)
    record(comm, "Scatterv", out.nbytes)
    return rows_restored(to_device(out) if on_device else out, axis)


def any_true(comm: MPI.Comm | None, flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (a collective decision).

    One one-integer ``Allreduce``, counted as ``"meta"``: use it wherever
    ranks must agree on a branch (stop a loop, raise an error).

    Examples
    --------
    >>> any_true(None, False), any_true(None, True)   # one process
    (False, True)

    Under ``mpiexec -n 2``, ``any_true(None, comm.rank == 1)`` is True on both ranks.
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return bool(flag)
    buf = np.array([1 if flag else 0], dtype=np.int32)
    out = np.empty_like(buf)
    comm.Allreduce(buf, out, op=mpi_op("max"))
    record(comm, "meta", 0)
    return bool(out[0])


def bcast_object(comm: MPI.Comm | None, obj: Any, root: int = 0) -> Any:
    """Broadcast a small picklable object (shapes, flags, an exception); counted as ``"meta"``.

    Never use it for array data: that is what :func:`bcast` is for.

    Examples
    --------
    >>> bcast_object(None, {"shape": (3, 4)})   # one process
    {'shape': (3, 4)}

    Under ``mpiexec -n 2``,
    ``bcast_object(None, (3, 4) if comm.rank == 0 else None)`` is ``(3, 4)``
    on both ranks.
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return obj
    record(comm, "meta", 0)
    return comm.bcast(obj, root=root)


def allgather_object(comm: MPI.Comm | None, obj: Any) -> list[Any]:
    """Every rank's small picklable object, in rank order; counted as ``"meta"``.

    Examples
    --------
    >>> allgather_object(None, "a")   # one process
    ['a']

    Under ``mpiexec -n 2``, ``allgather_object(None, comm.rank)`` is ``[0, 1]``
    on both ranks.
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return [obj]
    record(comm, "meta", 0)
    return comm.allgather(obj)


