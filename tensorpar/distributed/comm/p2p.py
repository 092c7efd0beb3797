"""Point-to-point messages and binomial reduction trees (the TSQR of the TT code).

Arrays travel with a small header (shape and dtype) so that the receiver
needs no prior knowledge; only float32/64 and complex64/128 arrays are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .core import host_buffer, on_device_of, resolve_comm
from .traffic import record

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["send", "recv", "tree_schedule", "tree_reduce"]

_TYPECHARS = "fdFD"


def send(comm: MPI.Comm | None, x: Any, dest: int, tag: int = 0) -> None:
    """Send array ``x`` to ``dest``; a small header carries its shape and dtype.

    Counted bytes: ``x.nbytes`` under ``"Send"`` (the header as ``"meta"``).

    Examples
    --------
    A message needs two ranks (no doctest: one process would send to
    itself). Run with ``mpiexec -n 2 python script.py``::

        import numpy as np
        from mpi4py import MPI
        from tensorpar.distributed.comm import recv, send
        comm = MPI.COMM_WORLD
        if comm.rank == 0:
            send(comm, np.arange(6.0).reshape(2, 3), dest=1, tag=5)
        else:
            print(recv(comm, source=0, tag=5).shape)   # (2, 3)

    An integer array raises a TypeError on the sending rank.
    """
    comm = resolve_comm(comm)
    buf = host_buffer(x)
    if buf.dtype.char not in _TYPECHARS:
        raise TypeError(f"send supports float32/64 and complex64/128 arrays, got {buf.dtype}")
    header = np.array([buf.ndim, _TYPECHARS.index(buf.dtype.char), *buf.shape], dtype=np.int64)
    comm.Send(np.array([header.size], dtype=np.int64), dest=dest, tag=tag)
    comm.Send(header, dest=dest, tag=tag)
    record(comm, "meta", 0)
    comm.Send(buf, dest=dest, tag=tag)
    record(comm, "Send", buf.nbytes)


def recv(comm: MPI.Comm | None, source: int, tag: int = 0) -> np.ndarray:
    """Receive an array sent by :func:`send` (a host numpy array). Counted bytes: its size.

    Examples
    --------
    See :func:`send`: under ``mpiexec -n 2`` rank 1's ``recv(comm, source=0, tag=5)``
    returns the ``(2, 3)`` float64 array rank 0 sent; shape and dtype come
    in the header, so the receiver needs no prior knowledge.
    """
    comm = resolve_comm(comm)
    n = np.empty(1, dtype=np.int64)
    comm.Recv(n, source=source, tag=tag)
    header = np.empty(int(n[0]), dtype=np.int64)
    comm.Recv(header, source=source, tag=tag)
    record(comm, "meta", 0)
    ndim, code = int(header[0]), int(header[1])
    out = np.empty(tuple(int(s) for s in header[2:2 + ndim]), dtype=_TYPECHARS[code])
    comm.Recv(out, source=source, tag=tag)
    record(comm, "Recv", out.nbytes)
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

    Examples
    --------
    >>> import numpy as np
    >>> tree_reduce(None, np.ones(2), lambda a, b: np.concatenate([a, b]))   # one process
    array([1., 1.])

    Under ``mpiexec -n 2``, with ``x = np.full(1, float(comm.rank))`` and the
    same ``combine``, rank 0 returns ``array([0., 1.])`` and rank 1 ``None``.
    """
    comm = resolve_comm(comm)
    cur = x
    for partner, role in tree_schedule(comm.Get_size(), comm.Get_rank(), root):
        if role == "recv":
            cur = combine(cur, on_device_of(recv(comm, partner, tag), x))
        else:
            send(comm, cur, partner, tag)
            return None
    return cur
