"""TT-matrix times a distributed TT vector."""

from __future__ import annotations

from typing import Any

from ..._validation import check_same_shape
from ...tt.matrix import TTMatrix, ttm_matvec_core
from ..comm import allgatherv
from ..grid import block_bounds
from .agreement import agree_checked
from .checks import check_dist_tt, describe, operand_comm
from .layout import check_modes
from .tensor import DistTTTensor

__all__ = ["dist_ttm_matvec"]


def dist_ttm_matvec(A: TTMatrix, x: DistTTTensor) -> DistTTTensor:
    """``A x`` for a TT-matrix ``A`` replicated on every rank; ranks multiply.

    Each rank gathers the whole core ``k`` of ``x`` (one ``Allgatherv`` of
    ``r_k n_k r_{k+1}`` entries) and forms its slice of the output rows with
    :func:`tensorpar.tt.matrix.ttm_matvec_core`: ``d`` messages of
    ``sum_k r_k(x) n_k r_{k+1}(x)`` words, cheaper than reducing the
    ``r(A)^2``-times larger partial output cores. Every row mode ``m_k`` of
    ``A`` must be ``>= P``.

    Parameters
    ----------
    A : TTMatrix, row_shape (m_k), col_shape (n_k)
        The same on every rank (its shapes and ranks are checked).
    x : DistTTTensor, shape (n_0, ..., n_{d-1})

    Returns
    -------
    DistTTTensor, shape (m_0, ..., m_{d-1}), ranks ``r_k(A) r_k(x)``

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTMatrix, random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_ttm_matvec
    >>> A = TTMatrix([np.eye(4).reshape(1, 4, 4, 1), np.eye(5).reshape(1, 5, 5, 1)])
    >>> dist_ttm_matvec(A, DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))).ranks
    (1, 2, 1)

    Under ``mpiexec -n 2`` every rank passes the same ``A`` (replicated)
    and its slices of ``x``; the result is split like ``x`` (rank 0 holds mode
    slices 2, 3, rank 1 2, 2).
    """
    def check() -> None:
        if not isinstance(A, TTMatrix):
            raise TypeError(f"A must be a TTMatrix, got {type(A).__name__}")
        check_dist_tt(x)
        check_same_shape([A.col_shape, x.shape], ["A's col_shape", "x"])
        check_modes(A.row_shape, x.comm.Get_size())  # output rows are split like any DistTTTensor

    a_meta: Any = ((A.row_shape, A.col_shape, tuple(c.shape[0] for c in A.cores))
                   if isinstance(A, TTMatrix) else type(A).__name__)
    agree_checked(operand_comm(x), check, {"A": a_meta, "x": describe(x)})
    size, rank = x.comm.Get_size(), x.comm.Get_rank()
    cores = []
    for k, (a, c) in enumerate(zip(A.cores, x.local_cores)):
        full = allgatherv(x.comm, c, counts=x.counts[k], axis=1)
        lo, hi = block_bounds(A.row_shape[k], size, rank)
        cores.append(ttm_matvec_core(a[:, lo:hi], full))
    return DistTTTensor.wrap(cores, tuple(A.row_shape), x.comm)
