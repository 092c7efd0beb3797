"""Agreement between ranks before a collective moves data.

:func:`check_all` turns a local validation flag into the same exception on
every rank; :func:`agree` (the check every collective entry point makes)
also compares argument values through their :func:`fingerprint`, in one
small ``Allreduce``. The ``with``-block variant is
:func:`tensorpar.distributed.errors.collective_guard`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import is_cupy_array
from .collectives import allgather_object, any_true
from .core import mpi_op, resolve_comm
from .traffic import record

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["check_all", "fingerprint", "agree"]


def check_all(comm: MPI.Comm | None, ok: bool, msg: str = "",
              exc_type: type[Exception] = ValueError) -> None:
    """Collective check: raise ``exc_type`` on **every** rank when ``ok`` is False on any.

    Call it before a collective whose inputs were validated locally: the ranks
    agree on one flag (a one-integer ``Allreduce``), so a rank with bad input
    never leaves the others waiting. The message names the failing ranks and
    their ``msg``.

    Examples
    --------
    >>> check_all(None, True)   # one process: passes silently
    >>> check_all(None, False, "rank must be positive")
    Traceback (most recent call last):
    ...
    ValueError: rank must be positive

    Under ``mpiexec -n 2`` with ``check_all(comm, comm.rank == 0, "bad block")``
    both ranks raise a ValueError instead of rank 0 entering the next
    collective alone: rank 1 ``bad block``, rank 0
    ``rank(s) [1] of 2 failed: bad block``.
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

    Examples
    --------
    >>> fingerprint((3, 4)) == fingerprint((3, 4)), fingerprint((3, 4)) == fingerprint([3, 4])
    (True, False)
    >>> fingerprint(np.zeros(2)) == fingerprint(np.zeros(2, dtype=np.float32))
    False

    The hash does not depend on the process, so under ``mpiexec -n 2`` equal
    values give equal fingerprints on both ranks.
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

    Under ``mpiexec -n 2 python script.py`` with ``{"rank": 3 + comm.rank}``
    both ranks raise ``ValueError: argument 'rank' differs across ranks
    (rank 0: 3, rank 1: 4); every rank must pass the same value``.
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
    comm.Allreduce(buf, out, op=mpi_op("max"))
    record(comm, "meta", 0)
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
