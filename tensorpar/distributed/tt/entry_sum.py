"""Sum and mean of all entries of a :class:`DistTTTensor`.

Each process sums its slices of every core along the mode index; those
partial mode sums add up over processes. The serial algorithm
(:func:`tensorpar.tt.entry_sum.scaled_entry_sum`) runs with two reductions
passed in, so the result is exact in scale as in the serial code.

Messages (``P > 1``): one ``Allreduce`` of three 64-bit integers
(:func:`tensorpar.distributed.comm.agree` on shape and ranks), one
``Allreduce`` (maximum) of the ``d`` core exponents and one ``Allreduce``
(sum) of all mode sums at once, ``sum_k r_k r_{k+1}`` words: three messages
in all, independent of ``d``.
"""

from __future__ import annotations

from typing import Any

from ...tt.entry_sum import ldexp_scalar, scaled_entry_sum
from ..comm import agree, allreduce
from .tensor import DistTTTensor

__all__ = ["dist_tt_entry_sum", "dist_tt_entry_mean"]


def _scaled(x: Any, mean: bool) -> tuple[Any, int]:
    if not isinstance(x, DistTTTensor):
        raise TypeError(f"x must be a DistTTTensor, got {type(x).__name__}")
    agree(x.comm, {"shape": x.shape, "ranks": x.ranks})
    return scaled_entry_sum(x.local_cores, mean=mean, shape=x.shape,
                            reduce_exponents=lambda e: allreduce(x.comm, e, "max"),
                            reduce_sums=lambda s: allreduce(x.comm, s))


def dist_tt_entry_sum(x: DistTTTensor) -> float | complex:
    """Sum of all entries of a distributed train, on every process.

    As :func:`tensorpar.tt.entry_sum.tt_entry_sum`, exact in scale. Collective;
    three ``Allreduce`` messages (see :mod:`tensorpar.distributed.tt.entry_sum`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed import DistTTTensor
    >>> from tensorpar.distributed.tt.entry_sum import dist_tt_entry_sum
    >>> x = random_tt((6, 7, 8), 3, seed=0)
    >>> X = DistTTTensor.scatter(x)
    >>> bool(np.isclose(dist_tt_entry_sum(X), x.to_dense().sum()))
    True

    Under ``mpiexec -n 2 python script.py`` both ranks return the same sum.
    """
    return ldexp_scalar(*_scaled(x, mean=False))


def dist_tt_entry_mean(x: DistTTTensor) -> float | complex:
    """Mean of all entries of a distributed train, on every process.

    As :func:`tensorpar.tt.entry_sum.tt_entry_mean`, exact in scale. Collective;
    three ``Allreduce`` messages (see :mod:`tensorpar.distributed.tt.entry_sum`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed import DistTTTensor
    >>> from tensorpar.distributed.tt.entry_sum import dist_tt_entry_mean
    >>> x = random_tt((6, 7, 8), 3, seed=0)
    >>> X = DistTTTensor.scatter(x)
    >>> bool(np.isclose(dist_tt_entry_mean(X), x.to_dense().mean()))
    True

    Under ``mpiexec -n 2 python script.py`` both ranks return the same mean.
    """
    return ldexp_scalar(*_scaled(x, mean=True))
