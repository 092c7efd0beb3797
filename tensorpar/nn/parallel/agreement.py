"""Agreement of the parallel layers: every rank raises the same error before any data moves.

Each collective entry point of :mod:`tensorpar.nn.parallel` (a layer's
constructor, ``forward`` and ``backward``, the optimizers' ``step``) runs its
local validation inside :func:`agree_on`, which hands the local exception and
the values that must match to :func:`tensorpar.distributed.comm.agree` (one
small ``Allreduce``): a bad argument on one rank, or an argument that differs
between ranks, raises on every rank instead of leaving the others waiting in
a collective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ...distributed import comm as C

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["agree_on", "agreed_build", "check_serial", "split_size"]

T = TypeVar("T")


def agree_on(comm: MPI.Comm | None, values: dict[str, Any],
             validate: Callable[[], object] | None = None) -> None:
    """Run the local ``validate()`` and agree on it and on ``values`` across ``comm``.

    The collective entry check of every parallel layer: a ValueError or
    TypeError raised by ``validate`` on one rank, or a value of ``values``
    that differs between ranks, raises the same exception on every rank
    (through :func:`tensorpar.distributed.comm.agree`, one small
    ``Allreduce`` counted as ``"meta"``) before any data moves.

    Examples
    --------
    >>> agree_on(None, {"shape": (2, 3)}, lambda: None)   # one process: a local check

    Under ``mpiexec -n 2 python script.py``, ``agree_on(None, {"lr": 0.1 * (1 + rank)})``
    raises on both ranks: ``ValueError: argument 'lr' differs across ranks
    (rank 0: 0.1, rank 1: 0.2); every rank must pass the same value``.
    """
    error: BaseException | None = None
    if validate is not None:
        try:
            validate()
        except Exception as exc:  # noqa: BLE001 - every rank raises it (other types: RuntimeError)
            error = exc
    C.agree(comm, values, error=error)


def agreed_build(comm: MPI.Comm | None, values: dict[str, Any], build: Callable[[], T]) -> T:
    """``build()`` on every rank, agreed: its local error or a differing value raises everywhere.

    Parallel layers construct the serial layer they split this way, so an
    argument the serial constructor rejects on one rank raises on all of
    them. A seed that is a numpy Generator is not compared (its ``repr`` is
    an address); the shards' agreement on the serial weights catches
    generators in different states.

    Examples
    --------
    >>> agreed_build(None, {"n": 3}, lambda: [0] * 3)
    [0, 0, 0]
    """
    out: list[T] = []
    values = {k: ("<generator>" if k == "seed" and v is not None and not isinstance(v, int)
                  else _dtype_name(v) if k == "dtype" else v) for k, v in values.items()}
    agree_on(comm, values, lambda: out.append(build()))
    return out[0]


def _dtype_name(dtype: Any) -> str:
    """``float64`` for ``np.float64``, ``"float64"`` and ``np.dtype("float64")`` alike."""
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return repr(dtype)


def check_serial(comm: MPI.Comm | None, serial: Any, kind: type) -> None:
    """Agreed type check of the serial layer a ``from_serial`` splits (TypeError on every rank).

    Examples
    --------
    >>> check_serial(None, 3, int)
    """
    def validate() -> None:
        if not isinstance(serial, kind):
            raise TypeError(f"serial must be a {kind.__name__}, got {type(serial).__name__}")

    agree_on(comm, {"serial": type(serial).__name__}, validate)


def split_size(n: int, parts: int, name: str) -> int:
    """``n // parts``, or a ValueError naming ``name`` when ``parts`` does not divide ``n``.

    Examples
    --------
    >>> split_size(12, 3, "hidden_dim")
    4
    >>> split_size(10, 4, "hidden_dim")
    Traceback (most recent call last):
    ...
    ValueError: hidden_dim = 10 is not divisible by the 4 tensor-parallel ranks
    """
    if n % parts:
        raise ValueError(f"{name} = {n} is not divisible by the {parts} tensor-parallel ranks")
    return n // parts
