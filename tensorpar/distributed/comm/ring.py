"""Fixed-shape ring steps and a rooted reduce: the messages of the rotated and 2-D layouts.

:func:`sendrecv` sends an array to one neighbour and receives an array of the
**same shape and dtype** from another in one ``Sendrecv`` (no header: every
rank of a ring holds a block of the same shape, so the receiver knows it).
:func:`ring_shift` is the step of a ring: send to ``rank + 1``, receive from
``rank - 1``. :func:`reduce` sums arrays onto one root (``Reduce``), the
step SUMMA's backward needs. On a communicator of size 1 no MPI call is made
and nothing is counted.

Counted bytes (per rank, per call): ``Sendrecv`` the array sent (which is
also the array received); ``Reduce`` the array reduced, on every rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..._typing import ReduceOp
from .core import empty_buffer, host_buffer, mpi_op, on_device_of, resolve_comm
from .traffic import record

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["sendrecv", "ring_shift", "reduce"]


def sendrecv(comm: MPI.Comm | None, x: Any, dest: int, source: int, tag: int = 0) -> Any:
    """Send ``x`` to ``dest`` and return the same-shaped array received from ``source``.

    Every rank taking part passes an array of the same shape and dtype (the
    fixed-shape contract of a ring; checked by the caller's agreement step).
    Counted bytes: ``x.nbytes`` under ``"Sendrecv"``.

    Examples
    --------
    >>> import numpy as np
    >>> sendrecv(None, np.arange(3.0), dest=0, source=0)   # one rank: a copy
    array([0., 1., 2.])
    """
    comm = resolve_comm(comm)
    x_arr = x if hasattr(x, "dtype") else np.asarray(x)
    if comm.Get_size() == 1:
        return x_arr.copy()
    send = host_buffer(x_arr)
    out = empty_buffer(send.shape, send.dtype, x_arr)
    comm.Sendrecv(send, dest=dest, sendtag=tag, recvbuf=out, source=source, recvtag=tag)
    record(comm, "Sendrecv", send.nbytes)
    return on_device_of(out, x_arr).reshape(x_arr.shape)


def ring_shift(comm: MPI.Comm | None, x: Any, tag: int = 0) -> Any:
    """One ring step: send ``x`` to ``rank + 1``, return the array of ``rank - 1`` (mod size).

    Counted bytes: ``x.nbytes`` under ``"Sendrecv"`` (one call).

    Examples
    --------
    >>> import numpy as np
    >>> ring_shift(None, np.ones(2))
    array([1., 1.])
    """
    comm = resolve_comm(comm)
    size, rank = comm.Get_size(), comm.Get_rank()
    return sendrecv(comm, x, (rank + 1) % size, (rank - 1) % size, tag)


def reduce(comm: MPI.Comm | None, x: Any, root: int = 0, op: ReduceOp = "sum") -> Any:
    """Reduce ``x`` over all ranks onto ``root``; returns the result there and None elsewhere.

    Every rank passes an array of the same shape and dtype. Counted bytes:
    ``x.nbytes`` under ``"Reduce"`` on every rank.

    Examples
    --------
    >>> import numpy as np
    >>> reduce(None, np.ones(2))
    array([1., 1.])
    """
    comm = resolve_comm(comm)
    x_arr = x if hasattr(x, "dtype") else np.asarray(x)
    red = mpi_op(op)
    if comm.Get_size() == 1:
        return x_arr.copy()
    send = host_buffer(x_arr)
    is_root = comm.Get_rank() == root
    out = empty_buffer(send.shape, send.dtype, x_arr) if is_root else None
    comm.Reduce(send, out, op=red, root=root)
    record(comm, "Reduce", send.nbytes)
    return on_device_of(out, x_arr).reshape(x_arr.shape) if is_root else None
