"""The one communication module of :mod:`tensorpar.distributed`.

Every message tensorpar sends goes through the functions here, so this is
the single place that

* resolves communicators (:func:`resolve_comm`: ``None`` means
  ``MPI.COMM_WORLD``, looked up at call time, never captured at import);
* moves arrays with mpi4py's **uppercase buffer methods** (``Allreduce``,
  ``Reduce_scatter``, ``Allgatherv``, ...): array data is never pickled, only
  small metadata (shapes, error messages) uses the lowercase methods;
* stages cupy arrays through host memory unless the MPI library is CUDA-aware
  (:func:`cuda_aware`);
* counts calls and bytes per collective (:class:`CommCounter`,
  :func:`count_traffic`, :func:`traffic`), which the tests compare with the
  cost formulas in the docstrings and the benchmarks feed to the alpha-beta
  model;
* lets ranks agree on errors before a collective (:func:`check_all`), so
  bad input on one rank raises on all of them; the ``with`` block variant and
  the abort-on-uncaught-exception hook live in
  :mod:`tensorpar.distributed.errors`.

Collectives take arrays whose parts are **rows along** ``axis`` (default 0);
``counts[r]`` is the number of rows of rank ``r``'s part. The trailing shape
must be the same on every rank. On a communicator of size 1 no MPI call is
made and nothing is counted: a one-rank collective moves no data.

Counted bytes (per rank, per call) are the payload this rank sees:

=====================  ====================================================
``Allreduce``          the array reduced (``x.nbytes``)
``Reduce_scatter``     the whole input, all ranks' parts (``x.nbytes``)
``Allgatherv``         the whole output, all ranks' parts
``Bcast``              the array broadcast
``Gatherv``            root: the whole output; others: their part
``Scatterv``           root: the whole input; others: their part
``Send`` / ``Recv``    the array sent / received
=====================  ====================================================

Small metadata messages (shapes, counts, error flags) are counted as calls
under ``"meta"`` with no bytes, so byte totals are exactly the array payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._backend import get_array_module, is_cupy_array, require

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = [
    "CommCounter", "resolve_comm", "cuda_aware", "traffic", "count_traffic",
    "allreduce", "reduce_scatter", "reduce_scatter_block", "allgatherv", "bcast",
    "gatherv", "scatterv", "send", "recv", "tree_schedule", "tree_reduce", "any_true",
    "bcast_object", "allgather_object", "check_all", "agree", "fingerprint",
]

ReduceOp = Literal["sum", "prod", "max", "min", "land", "lor"]


def _import_mpi() -> Any:
    require("mpi4py", "tensorpar.distributed")
    from mpi4py import MPI

    return MPI


def resolve_comm(comm: MPI.Comm | None = None) -> MPI.Intracomm:
    """Return ``comm``, or ``MPI.COMM_WORLD`` when it is None.

    The world communicator is looked up on every call, never stored at import,
    so importing tensorpar does not pin a communicator.
    """
    MPI = _import_mpi()
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm must be an mpi4py Intracomm or None, got {type(comm).__name__}")
    return comm


def cuda_aware() -> bool:
    """Whether cupy arrays are handed to MPI directly instead of staged through the host.

    MPI libraries do not report CUDA-awareness portably, so this reads the
    environment variable ``TENSORPAR_CUDA_AWARE_MPI`` (``1`` to pass device
    pointers); the default is to stage, which works with every MPI.
    """
    return os.environ.get("TENSORPAR_CUDA_AWARE_MPI", "0") == "1"


# --- counters ------------------------------------------------------------------
@dataclass(eq=False)
class CommCounter:
    """Calls and bytes per collective, as seen by this rank.

    Attributes
    ----------
    calls, nbytes : dict of str to int
        Keyed by the MPI method name (``"Allreduce"``, ``"Reduce_scatter"``, ...)
        and ``"meta"`` for metadata messages.
    by_comm : dict of str to dict of str to int
        Bytes per collective per communicator name (grids name theirs, e.g.
        ``"tensorpar.slice0"``).
    events : list of tuple
        ``(op, comm_size, nbytes)`` per call, in order (scoped counters only),
        the input of the alpha-beta model.
    """

    calls: dict[str, int] = field(default_factory=dict)
    nbytes: dict[str, int] = field(default_factory=dict)
    by_comm: dict[str, dict[str, int]] = field(default_factory=dict)
    events: list[tuple[str, int, int]] = field(default_factory=list)
    keep_events: bool = True

    def record(self, op: str, comm_name: str, size: int, nbytes: int) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        self.nbytes[op] = self.nbytes.get(op, 0) + nbytes
        per = self.by_comm.setdefault(comm_name, {})
        per[op] = per.get(op, 0) + nbytes
        if self.keep_events:
            self.events.append((op, size, nbytes))

    @property
    def total_bytes(self) -> int:
        """Array payload bytes over all collectives (metadata excluded)."""
        return sum(v for k, v in self.nbytes.items() if k != "meta")

    @property
    def total_calls(self) -> int:
        """Calls of array collectives (metadata excluded)."""
        return sum(v for k, v in self.calls.items() if k != "meta")

    def reset(self) -> None:
        """Zero every count."""
        self.calls.clear()
        self.nbytes.clear()
        self.by_comm.clear()
        self.events.clear()


_GLOBAL = CommCounter(keep_events=False)
_SCOPED: list[CommCounter] = []


def traffic() -> CommCounter:
    """The process-wide counter (every call since import or the last ``reset()``)."""
    return _GLOBAL


@contextlib.contextmanager
def count_traffic() -> Iterator[CommCounter]:
    """Count the collectives made inside the ``with`` block (nesting allowed).

    Examples
    --------
    >>> from tensorpar.distributed.comm import count_traffic, allreduce
    >>> import numpy as np
    >>> with count_traffic() as c:
    ...     s = allreduce(None, np.ones(4))
    >>> s.tolist(), c.total_bytes   # one rank: no message, nothing counted
    ([1.0, 1.0, 1.0, 1.0], 0)
    """
    counter = CommCounter()
    _SCOPED.append(counter)
    try:
        yield counter
    finally:
        _SCOPED.remove(counter)


def _record(comm: Any, op: str, nbytes: int) -> None:
    name = comm.Get_name()
    for c in (_GLOBAL, *_SCOPED):
        c.record(op, name, comm.Get_size(), int(nbytes))


# --- staging -------------------------------------------------------------------
def _host(x: Any) -> Any:
    """A C-contiguous buffer MPI can read: device arrays go to the host unless CUDA-aware."""
    if is_cupy_array(x):
        import cupy

        if cuda_aware():
            cupy.cuda.get_current_stream().synchronize()
            return cupy.ascontiguousarray(x)
        return cupy.asnumpy(x)
    return np.ascontiguousarray(x)


def _like(y: Any, x: Any) -> Any:
    """Return ``y`` on the device of ``x``."""
    if is_cupy_array(x) and not is_cupy_array(y):
        import cupy

        return cupy.asarray(y)
    return y


def _empty(shape: Sequence[int], dtype: Any, x: Any) -> Any:
    if is_cupy_array(x) and cuda_aware():
        import cupy

        return cupy.empty(tuple(shape), dtype=dtype)
    return np.empty(tuple(shape), dtype=dtype)


def _op(op: str) -> Any:
    MPI = _import_mpi()
    ops = {"sum": MPI.SUM, "prod": MPI.PROD, "max": MPI.MAX, "min": MPI.MIN,
           "land": MPI.LAND, "lor": MPI.LOR}
    if op not in ops:
        raise ValueError(f"op must be one of {sorted(ops)}, got {op!r}")
    return ops[op]


def _rows_first(x: Any, axis: int) -> tuple[Any, int]:
    if x.ndim == 0:
        raise ValueError("the array must have at least one dimension to be split in rows")
    axis = axis % x.ndim
    return (x if axis == 0 else get_array_module(x).moveaxis(x, axis, 0)), axis


def _restore(y: Any, axis: int) -> Any:
    return y if axis == 0 else get_array_module(y).moveaxis(y, 0, axis)


def _check_counts(counts: Sequence[int], size: int, name: str = "counts") -> list[int]:
    counts = [int(c) for c in counts]
    if len(counts) != size or any(c < 0 for c in counts):
        raise ValueError(f"{name} must hold {size} non-negative row counts, got {counts}")
    return counts


# --- collectives ---------------------------------------------------------------
def allreduce(comm: MPI.Comm | None, x: Any, op: ReduceOp = "sum") -> Any:
    """Reduce ``x`` over all ranks; every rank gets the result (a new array, same shape).

    Counted bytes: ``x.nbytes``.
    """
    comm = resolve_comm(comm)
    x_arr = x if hasattr(x, "dtype") else np.asarray(x)
    mpi_op = _op(op)
    if comm.Get_size() == 1:
        return x_arr.copy()
    send = _host(x_arr)
    out = _empty(send.shape, send.dtype, x_arr)
    comm.Allreduce(send, out, op=mpi_op)
    _record(comm, "Allreduce", send.nbytes)
    return _like(out, x_arr).reshape(x_arr.shape)


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
    """
    comm = resolve_comm(comm)
    mpi_op = _op(op)
    counts = _check_counts(counts, comm.Get_size())
    xr, axis = _rows_first(x, axis)
    if xr.shape[0] != sum(counts):
        raise ValueError(
            f"x has {xr.shape[0]} rows along axis {axis}; counts sum to {sum(counts)}")
    if comm.Get_size() == 1:
        return x.copy()
    send = _host(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    out = _empty((counts[comm.Get_rank()],) + send.shape[1:], send.dtype, x)
    comm.Reduce_scatter(send, out, [c * row for c in counts], op=mpi_op)
    _record(comm, "Reduce_scatter", send.nbytes)
    return _restore(_like(out, x), axis)


def reduce_scatter_block(comm: MPI.Comm | None, x: Any, op: ReduceOp = "sum",
                         axis: int = 0) -> Any:
    """:func:`reduce_scatter` with equal parts: ``x`` has ``size * m`` rows, each rank gets ``m``.

    Counted bytes: ``x.nbytes`` (under ``"Reduce_scatter_block"``).
    """
    comm = resolve_comm(comm)
    mpi_op = _op(op)
    size = comm.Get_size()
    xr, axis = _rows_first(x, axis)
    if xr.shape[0] % size:
        raise ValueError(
            f"x has {xr.shape[0]} rows along axis {axis}, not a multiple of {size} ranks")
    if size == 1:
        return x.copy()
    send = _host(xr)
    out = _empty((send.shape[0] // size,) + send.shape[1:], send.dtype, x)
    comm.Reduce_scatter_block(send, out, op=mpi_op)
    _record(comm, "Reduce_scatter_block", send.nbytes)
    return _restore(_like(out, x), axis)


def _gathered_counts(comm: Any, rows: int, counts: Sequence[int] | None) -> list[int]:
    if counts is not None:
        counts = _check_counts(counts, comm.Get_size())
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
    """
    comm = resolve_comm(comm)
    xr, axis = _rows_first(x, axis)
    counts = _gathered_counts(comm, xr.shape[0], counts)
    if comm.Get_size() == 1:
        return x.copy()
    send = _host(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    out = _empty((sum(counts),) + send.shape[1:], send.dtype, x)
    comm.Allgatherv(send, [out, [c * row for c in counts]])
    _record(comm, "Allgatherv", out.nbytes)
    return _restore(_like(out, x), axis)


def bcast(comm: MPI.Comm | None, x: Any = None, root: int = 0, *,
          shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Broadcast array ``x`` from ``root`` (other ranks' ``x`` is ignored) and return it.

    When every rank passes ``shape`` (and ``dtype``, default float64) no
    metadata is sent and other ranks get a numpy array; otherwise the root's
    shape, dtype and array module (numpy or cupy) are broadcast first. Every
    rank must make the same choice (SPMD call sites do). Counted bytes: the
    array.
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
    buf = _host(x) if is_root else np.empty(tuple(shape), dtype=dtype or np.float64)
    comm.Bcast(buf, root=root)
    _record(comm, "Bcast", buf.nbytes)
    if is_root:
        return _like(buf, x)
    return _to_device(buf) if on_device else buf


def _to_device(y: Any) -> Any:
    import cupy

    return cupy.asarray(y)


def gatherv(comm: MPI.Comm | None, x: Any, counts: Sequence[int] | None = None,
            root: int = 0, axis: int = 0) -> Any:
    """Concatenate every rank's ``x`` along ``axis`` on ``root``; None elsewhere.

    Counted bytes: root the whole output, others their part.
    """
    comm = resolve_comm(comm)
    xr, axis = _rows_first(x, axis)
    counts = _gathered_counts(comm, xr.shape[0], counts)
    if comm.Get_size() == 1:
        return x.copy()
    send = _host(xr)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    if comm.Get_rank() == root:
        out = _empty((sum(counts),) + send.shape[1:], send.dtype, x)
        comm.Gatherv(send, [out, [c * row for c in counts]], root=root)
        _record(comm, "Gatherv", out.nbytes)
        return _restore(_like(out, x), axis)
    comm.Gatherv(send, None, root=root)
    _record(comm, "Gatherv", send.nbytes)
    return None


def scatterv(comm: MPI.Comm | None, x: Any, counts: Sequence[int], root: int = 0,
             axis: int = 0) -> Any:
    """Split ``x`` (read on ``root`` only) along ``axis`` in ``counts`` rows per rank.

    The trailing shape, dtype and array module travel as metadata. Counted bytes: root the
    whole input, others their part.
    """
    comm = resolve_comm(comm)
    counts = _check_counts(counts, comm.Get_size())
    is_root = comm.Get_rank() == root
    if is_root:
        xr, axis = _rows_first(x, axis)
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
        send = _host(xr)
        comm.Scatterv([send, [c * row for c in counts]], out, root=root)
        _record(comm, "Scatterv", send.nbytes)
        return _restore(_like(out, x), axis)
    comm.Scatterv(None, out, root=root)
    _record(comm, "Scatterv", out.nbytes)
    return _restore(_to_device(out) if on_device else out, axis)


def any_true(comm: MPI.Comm | None, flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (a collective decision).

    One one-integer ``Allreduce``, counted as ``"meta"``: use it wherever
    ranks must agree on a branch (stop a loop, raise an error).
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return bool(flag)
    buf = np.array([1 if flag else 0], dtype=np.int32)
    out = np.empty_like(buf)
    comm.Allreduce(buf, out, op=_op("max"))
    _record(comm, "meta", 0)
    return bool(out[0])


def bcast_object(comm: MPI.Comm | None, obj: Any, root: int = 0) -> Any:
    """Broadcast a small picklable object (shapes, flags, an exception); counted as ``"meta"``.

    Never use it for array data: that is what :func:`bcast` is for.
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return obj
    _record(comm, "meta", 0)
    return comm.bcast(obj, root=root)


def allgather_object(comm: MPI.Comm | None, obj: Any) -> list[Any]:
    """Every rank's small picklable object, in rank order; counted as ``"meta"``."""
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        return [obj]
    _record(comm, "meta", 0)
    return comm.allgather(obj)


def check_all(comm: MPI.Comm | None, ok: bool, msg: str = "",
              exc_type: type[Exception] = ValueError) -> None:
    """Collective check: raise ``exc_type`` on **every** rank when ``ok`` is False on any.

    Call it before a collective whose inputs were validated locally: the ranks
    agree on one flag (a one-integer ``Allreduce``), so a rank with bad input
    never leaves the others waiting. The message names the failing ranks and
    their ``msg``.
    """
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        if not ok:
            raise exc_type(msg)
        return
    if not any_true(comm, not ok):
        return
    msgs = allgather_object(comm, None if ok else msg)
    ranks = [r for r, m in enumerate(msgs) if m is not None]
    size = comm.Get_size()
    if not ok:
        raise exc_type(msg if len(ranks) == 1 else f"{msg} (failed on ranks {ranks} of {size})")
    distinct = list(dict.fromkeys(m for m in msgs if m is not None))
    raise exc_type(f"rank(s) {ranks} of {size} failed: " + "; ".join(distinct))


def fingerprint(value: Any) -> int:
    """A 62-bit hash of a small argument value, equal on every rank for equal values.

    Arrays hash their dtype, shape and bytes (after a copy to host);
    sequences and mappings hash their items; everything else its ``repr``.
    """
    h = hashlib.blake2b(digest_size=8)

    def feed(v: Any) -> None:
        if hasattr(v, "dtype") and hasattr(v, "shape") and hasattr(v, "tobytes"):
            a = np.ascontiguousarray(v.get() if is_cupy_array(v) else v)
            h.update(f"array{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(v, (list, tuple)):
            h.update(f"{type(v).__name__}{len(v)}(".encode())
            for item in v:
                feed(item)
            h.update(b")")
        elif isinstance(v, dict):
            h.update(b"dict{")
            for key in sorted(v, key=repr):
                feed(key)
                feed(v[key])
            h.update(b"}")
        else:
            h.update(repr(v).encode())
    feed(value)
    return int.from_bytes(h.digest(), "little") >> 2


def _describe(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def agree(comm: MPI.Comm | None, values: dict[str, Any] | None = None, *,
          error: BaseException | None = None) -> None:
    """Collective entry check: local validation passed everywhere and ranks hold equal values.

    Call it at the start of every collective entry point, after validating the
    arguments locally and before the first message that moves data. Each rank
    passes the exception its own validation raised (or None) and the
    arguments that must be equal on every rank. One ``Allreduce`` of
    ``1 + 2 k`` 64-bit integers (an error flag and the maximum and minimum
    of each argument's :func:`fingerprint`) decides; only when something is
    wrong does a second, small ``allgather`` collect the messages. Then every
    rank raises the **same** exception:

    * a rank's validation failed: the failing rank's exception type (a
      ValueError or TypeError; RuntimeError for other types) with its
      message and the list of failing ranks;
    * values differ: a ValueError naming the argument and each rank's value.

    Parameters
    ----------
    comm : MPI.Comm or None
        Communicator (``None``: ``COMM_WORLD``).
    values : dict, optional
        ``{argument name: value}``; every rank must pass the same names.
    error : Exception, optional
        The exception this rank's local validation raised.

    Examples
    --------
    >>> agree(None, {"rank": 3, "tol": 1e-8})      # one process: nothing to compare
    """
    values = values or {}
    comm = resolve_comm(comm)
    if comm.Get_size() == 1:
        if error is not None:
            raise error
        return
    names = list(values)
    hashes = np.array([fingerprint(values[n]) for n in names], dtype=np.int64)
    buf = np.concatenate([[1 if error is not None else 0], hashes, -hashes]).astype(np.int64)
    out = np.empty_like(buf)
    comm.Allreduce(buf, out, op=_op("max"))
    _record(comm, "meta", 0)
    k = len(names)
    size = comm.Get_size()
    if out[0]:
        info = None if error is None else (type(error).__name__, str(error))
        infos = allgather_object(comm, info)
        failed = [r for r, i in enumerate(infos) if i is not None]
        kind, msg = infos[failed[0]]
        cls = {"ValueError": ValueError, "TypeError": TypeError}.get(kind, RuntimeError)
        where = f"rank {failed[0]}" if len(failed) == 1 else f"ranks {failed}"
        exc = cls(f"{msg} (on {where} of {size})")
        if error is not None and len(failed) == 1 and cls is type(error):
            raise exc from error
        raise exc
    differ = [n for i, n in enumerate(names) if out[1 + i] != -out[1 + k + i]]
    if differ:
        seen = allgather_object(comm, [_describe(values[n]) for n in differ])
        lines = []
        for j, name in enumerate(differ):
            per_rank = ", ".join(f"rank {r}: {s[j]}" for r, s in enumerate(seen))
            lines.append(f"argument {name!r} differs across ranks ({per_rank})")
        raise ValueError("; ".join(lines) + "; every rank must pass the same value")


# --- point to point and trees --------------------------------------------------
_TYPECHARS = "fdFD"


def send(comm: MPI.Comm | None, x: Any, dest: int, tag: int = 0) -> None:
    """Send array ``x`` to ``dest``; a small header carries its shape and dtype.

    Counted bytes: ``x.nbytes`` under ``"Send"`` (the header as ``"meta"``).
    """
    comm = resolve_comm(comm)
    buf = _host(x)
    if buf.dtype.char not in _TYPECHARS:
        raise TypeError(f"send supports float32/64 and complex64/128 arrays, got {buf.dtype}")
    header = np.array([buf.ndim, _TYPECHARS.index(buf.dtype.char), *buf.shape], dtype=np.int64)
    comm.Send(np.array([header.size], dtype=np.int64), dest=dest, tag=tag)
    comm.Send(header, dest=dest, tag=tag)
    _record(comm, "meta", 0)
    comm.Send(buf, dest=dest, tag=tag)
    _record(comm, "Send", buf.nbytes)


def recv(comm: MPI.Comm | None, source: int, tag: int = 0) -> np.ndarray:
    """Receive an array sent by :func:`send` (a host numpy array). Counted bytes: its size."""
    comm = resolve_comm(comm)
    n = np.empty(1, dtype=np.int64)
    comm.Recv(n, source=source, tag=tag)
    header = np.empty(int(n[0]), dtype=np.int64)
    comm.Recv(header, source=source, tag=tag)
    _record(comm, "meta", 0)
    ndim, code = int(header[0]), int(header[1])
    out = np.empty(tuple(int(s) for s in header[2:2 + ndim]), dtype=_TYPECHARS[code])
    comm.Recv(out, source=source, tag=tag)
    _record(comm, "Recv", out.nbytes)
    return out


def tree_schedule(size: int, rank: int, root: int = 0) -> list[tuple[int, Literal["recv", "send"]]]:
    """Steps of a binomial reduction tree towards ``root``, for one rank.

    Returns the list of ``(partner, "recv" | "send")`` in level order: a rank
    receives from partners at distance 1, 2, 4, ... (relative to the root)
    until it sends once to its parent; the root only receives. The tree has
    ``ceil(log2 size)`` levels. Reversing the list (and swapping the roles)
    gives the matching broadcast tree, which is what the second sweep of a
    TSQR needs.

    Examples
    --------
    >>> tree_schedule(4, 0)
    [(1, 'recv'), (2, 'recv')]
    >>> tree_schedule(4, 3)
    [(2, 'send')]
    """
    rel = (rank - root) % size
    steps: list[tuple[int, Literal["recv", "send"]]] = []
    dist = 1
    while dist < size:
        if rel % (2 * dist):
            steps.append((((rel - dist) + root) % size, "send"))
            break
        if rel + dist < size:
            steps.append((((rel + dist) + root) % size, "recv"))
        dist *= 2
    return steps


def tree_reduce(comm: MPI.Comm | None, x: Any, combine: Callable[[Any, Any], Any],
                root: int = 0, tag: int = 77) -> Any:
    """Reduce arrays up a binomial tree with ``combine(mine, partners)`` (e.g. a TSQR step).

    ``combine`` receives this rank's current array and the one from a
    higher-ranked partner (in that order, so an order-dependent combine such
    as stacking two R factors is deterministic) and returns the new current
    array; shapes may change between levels. Returns the result on ``root``
    and None elsewhere. ``ceil(log2 P)`` levels, one array message per edge.
    """
    comm = resolve_comm(comm)
    cur = x
    for partner, role in tree_schedule(comm.Get_size(), comm.Get_rank(), root):
        if role == "recv":
            cur = combine(cur, _like(recv(comm, partner, tag), x))
        else:
            send(comm, cur, partner, tag)
            return None
    return cur
