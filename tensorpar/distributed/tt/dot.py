"""Inner products and norms of distributed tensor trains: the serial contraction, reduced.

:func:`dist_tt_dot` and :func:`dist_tt_norm` run the serial
:func:`tensorpar.tt.inner.scaled_chain` on the local slices and pass it an
allreduce: each core's partial contraction over the local slice of the mode
index is completed by one ``Allreduce`` of the ``r_{k+1}(x) x r_{k+1}(y)``
partial result -- ``d`` messages, ``sum_k r_{k+1}(x) r_{k+1}(y)`` words --
and the result is finished by the serial code too
(:func:`tensorpar.tt.inner.dot_from_chain`), so serial and distributed
results overflow at the same point. Data far from 1 costs one more
``Allreduce`` of ``2 d`` magnitudes (only when a step leaves the safe range).
"""

from __future__ import annotations

from typing import Any

from ..._typing import Array
from ...tt.inner import dot_from_chain, exp_or_inf, log_norm_from_chain, scaled_chain
from ..comm import allreduce
from .agreement import agree_checked
from .checks import agree_pair, check_dist_tt, describe, operand_comm
from .tensor import DistTTTensor

__all__ = ["dist_tt_dot", "dist_tt_log_norm", "dist_tt_norm"]


def _chain(x: DistTTTensor, y: DistTTTensor) -> tuple[Any, float]:
    comm = x.comm

    def reduce(W: Array) -> Array:  # partial sums over the local slice of the mode index add up
        return allreduce(comm, W)

    def reduce_max(m: Array) -> Array:  # every rank divides by the same powers of two
        return allreduce(comm, m, op="max")

    y_cores = x.local_cores if y is x else y.local_cores
    return scaled_chain(x.local_cores, y_cores, reduce=reduce, reduce_max=reduce_max)


def dist_tt_dot(x: DistTTTensor, y: DistTTTensor) -> float | complex:
    """``<x, y> = sum conj(x) y`` on every rank.

    ``d`` ``Allreduce`` calls of ``r_{k+1}(x) r_{k+1}(y)`` entries each; the
    running contraction is rescaled after each core (as in
    :func:`tensorpar.tt_dot`), so only a result outside the floating-point
    range overflows -- at the same point as the serial one.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_dot
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_dot
    >>> x = random_tt((4, 5, 6), 2, seed=0)
    >>> X = DistTTTensor.scatter(x)
    >>> bool(np.isclose(dist_tt_dot(X, X), tt_dot(x, x)))
    True

    Under ``mpiexec -n 2 python script.py`` both ranks return the same
    value: each contracts its slices and one ``Allreduce`` per core sums the
    ``r x r`` partial results.
    """
    agree_pair(x, y)
    return dot_from_chain(*_chain(x, y))


def dist_tt_log_norm(x: DistTTTensor) -> float:
    """``log ||x||_F`` on every rank; finite for any ``d`` (``-inf`` for zero).

    Same messages as :func:`dist_tt_dot` of ``x`` with itself.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_log_norm
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_log_norm
    >>> x = 1e300 * random_tt((4, 5, 6), 2, seed=0)
    >>> bool(np.isclose(dist_tt_log_norm(DistTTTensor.scatter(x)), tt_log_norm(x)))
    True

    Under ``mpiexec -n 2 python script.py`` both ranks return the same value.
    """
    agree_checked(operand_comm(x), lambda: check_dist_tt(x), {"x": describe(x)})
    return log_norm_from_chain(*_chain(x, x))


def dist_tt_norm(x: DistTTTensor) -> float:
    """``||x||_F`` on every rank (see :func:`dist_tt_log_norm`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_norm
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_norm
    >>> x = random_tt((4, 5, 6), 2, seed=0)
    >>> bool(np.isclose(dist_tt_norm(DistTTTensor.scatter(x)), tt_norm(x)))
    True

    Under ``mpiexec -n 2`` both ranks return the same norm (one
    ``Allreduce`` per core).
    """
    return exp_or_inf(dist_tt_log_norm(x))
