"""Arithmetic of distributed tensor trains that sends no data.

Sums, differences, scaling and Hadamard products act on the local slices
with the serial per-core functions (:func:`tensorpar.tt.ops.add_cores`,
:func:`tensorpar.tt.ops.hadamard_core`) and send no array. Every function
first validates its arguments on every rank and agrees on them
(:func:`tensorpar.distributed.comm.agree`, one small ``Allreduce`` counted as
metadata), so an argument that is wrong or different on one rank raises the
same exception on every rank instead of leaving the others in a collective.
"""

from __future__ import annotations

from typing import Any

from ..._backend import Engine
from ..._validation import check_scalar
from ...tt.ops import add_cores, core_position, hadamard_core
from .agreement import agree_checked
from .checks import agree_pair, check_dist_tt, describe, operand_comm
from .tensor import DistTTTensor

__all__ = ["dist_tt_add", "dist_tt_sub", "dist_tt_scale", "dist_tt_hadamard"]


def _sum(x: DistTTTensor, y: DistTTTensor, weights: list[float]) -> DistTTTensor:
    d = x.ndim
    cores = [add_cores([a, b], core_position(k, d), weights)
             for k, (a, b) in enumerate(zip(x.local_cores, y.local_cores))]
    return DistTTTensor.wrap(cores, x.shape, x.comm)


def dist_tt_add(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x + y``: ranks add; local block-diagonal cores, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_add
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_add(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2 python script.py`` each rank adds its own slices
    (rank 0 holds mode slices 2 and 3 of ``x``, rank 1 2 and 2) and sends no
    array, only the small agreement on the operands.
    """
    agree_pair(x, y)
    return _sum(x, y, [1.0, 1.0])


def dist_tt_sub(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x - y``: ranks add; local block-diagonal cores, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_sub
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_sub(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2`` each rank subtracts its own slices; no array
    is sent, and the result stays split as the operands were.
    """
    agree_pair(x, y)
    return _sum(x, y, [1.0, -1.0])


def dist_tt_scale(x: DistTTTensor, alpha: Any) -> DistTTTensor:
    """``alpha * x``: every rank scales its slice of the first core; no data messages.

    ``alpha`` must be the same on every rank (checked).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_scale
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_scale(x, 2.0).ranks
    (1, 2, 1)

    Under ``mpiexec -n 2`` every rank scales its slice of the first core
    (``alpha`` must be equal on every rank, else every rank raises a ValueError).
    """
    def check() -> complex | float:
        check_dist_tt(x)
        return check_scalar(alpha)

    a = agree_checked(operand_comm(x), check, {"x": describe(x), "alpha": alpha})
    return DistTTTensor.wrap([x.local_cores[0] * a] + list(x.local_cores[1:]), x.shape, x.comm)


def dist_tt_hadamard(x: DistTTTensor, y: DistTTTensor,
                     engine: Engine = "auto") -> DistTTTensor:
    """Entrywise product: ranks multiply; local :func:`tensorpar.tt.ops.hadamard_core`, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_hadamard
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_hadamard(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2`` each rank multiplies its own slices (ranks
    multiply: ``(1, 4, 1)`` on both); no array is sent.
    """
    agree_pair(x, y)
    cores = [hadamard_core(a, b, engine) for a, b in zip(x.local_cores, y.local_cores)]
    return DistTTTensor.wrap(cores, x.shape, x.comm)
