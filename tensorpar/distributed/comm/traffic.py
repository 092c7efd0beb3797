"""Calls and bytes per collective, counted by every message of the comm modules.

The tests compare these counts with the cost formulas in the docstrings, and
the benchmarks feed the event lists to the alpha-beta model. Counted bytes
are the array payload this rank sees (the table in
:mod:`tensorpar.distributed.comm`); metadata messages count as calls under
``"meta"`` with no bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CommCounter", "traffic", "count_traffic", "record"]


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

    Examples
    --------
    >>> c = CommCounter()
    >>> c.record("Allreduce", "world", 2, 64)
    >>> c.total_bytes, c.total_calls
    (64, 1)
    """

    calls: dict[str, int] = field(default_factory=dict)
    nbytes: dict[str, int] = field(default_factory=dict)
    by_comm: dict[str, dict[str, int]] = field(default_factory=dict)
    events: list[tuple[str, int, int]] = field(default_factory=list)
    keep_events: bool = True

    def record(self, op: str, comm_name: str, size: int, nbytes: int) -> None:
        """Count one call of ``op`` moving ``nbytes`` on a communicator of ``size`` ranks.

        Examples
        --------
        >>> c = CommCounter()
        >>> c.record("Allgatherv", "tensorpar.slice0", 2, 128)
        >>> c.record("meta", "world", 2, 0)
        >>> c.calls, c.by_comm["tensorpar.slice0"], c.events[0]
        ({'Allgatherv': 1, 'meta': 1}, {'Allgatherv': 128}, ('Allgatherv', 2, 128))
        """
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
        """Zero every count.

        Examples
        --------
        >>> c = CommCounter()
        >>> c.record("Allreduce", "world", 2, 64)
        >>> c.reset()
        >>> c.total_bytes, c.events
        (0, [])
        """
        self.calls.clear()
        self.nbytes.clear()
        self.by_comm.clear()
        self.events.clear()


_GLOBAL = CommCounter(keep_events=False)
_SCOPED: list[CommCounter] = []


def traffic() -> CommCounter:
    """The process-wide counter (every call since import or the last ``reset()``).

    Examples
    --------
    >>> traffic().total_bytes >= 0
    True
    """
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


def record(comm: Any, op: str, nbytes: int) -> None:
    """Count one call of ``op`` on ``comm`` in the global and every active scoped counter."""
    name = comm.Get_name()
    for c in (_GLOBAL, *_SCOPED):
        c.record(op, name, comm.Get_size(), int(nbytes))
