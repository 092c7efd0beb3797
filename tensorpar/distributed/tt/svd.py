"""Parallel TT-SVD of a block-distributed dense tensor (:class:`DistTensor`).

The sweep is the serial one (left to right, one truncated SVD per bond) with
the remainder kept distributed on the tensor's process grid:

1. Step ``k`` holds the remainder ``W_k`` of shape ``(r_k, n_k, ..., n_{d-1})``,
   blocked over grid modes ``k, ..., d-1`` and replicated over modes
   ``< k``. Its mode-``k`` blocks are gathered along the mode-``k`` fibre of
   the grid (one ``Allgatherv``), so every rank holds full rows
   ``(r_k n_k)`` of the unfolding ``W_k<1>`` for its block of columns.
2. The left singular vectors of ``W_k<1>`` come from a flat TSQR of its
   transpose (column blocks of distinct ranks are stacked rows; replicated
   copies contribute nothing): one ``Allgatherv`` of the local ``R`` factors,
   a QR of the stack and a small SVD, identical on every rank. This avoids
   the squared condition number of a Gram matrix, so the rounding bound holds
   down to ``eps`` near machine precision, as in the serial
   :func:`tensorpar.tt_svd`.
3. Truncation at ``eps ||X|| / sqrt(d-1)`` per bond (Oseledets' bound), then
   ``W_{k+1} = U_k^T W_k<1>`` locally -- no reduction is needed because
   every rank holds full rows.

Cores end replicated and are handed to :class:`DistTTTensor`, which keeps
each rank's slice of every mode index (no messages).

Words gathered per rank at step ``k``: ``(P_k - 1)`` times its block of
``W_k`` for the fibre gather, plus ``sum_p min(c_p, r_k n_k) r_k n_k`` for the
``R`` factors, where ``c_p`` is rank ``p``'s column count.
"""

from __future__ import annotations

import math
from typing import Any

from ..._backend import get_array_module
from ..._linalg import truncation_rank
from ..._validation import check_eps, check_max_rank
from ...tt.tensor import TTTensor
from .. import comm as C
from ..dist_tensor import DistTensor
from ..grid import block_sizes
from .tensor import DistTTTensor

__all__ = ["dist_tt_svd"]


def dist_tt_svd(X: DistTensor, eps: float = 1e-12, max_rank: int | None = None) -> DistTTTensor:
    """TT-SVD of a :class:`DistTensor` into a :class:`DistTTTensor` (collective).

    Parameters
    ----------
    X : DistTensor
        Dense tensor of shape ``(n_0, ..., n_{d-1})`` on any process grid.
    eps : float
        Relative accuracy: ``||X - TT|| <= eps ||X||`` when ``max_rank`` does not bind.
    max_rank : int, optional
        Upper bound on every TT rank.

    Returns
    -------
    DistTTTensor
        Over the same communicator as ``X``'s grid; every mode must have at
        least as many indices as there are ranks (a DistTTTensor requirement).

    Notes
    -----
    Equal to the serial :func:`tensorpar.tt_svd` of the gathered tensor up to
    rounding errors and the signs of singular vectors: same ranks, same
    tensor. Memory per rank: its block of ``X`` times the grid size along
    mode 0 for the first fibre gather (then the smaller remainders).
    """
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    eps = check_eps(eps)
    max_rank = check_max_rank(max_rank)
    comm = X.grid.cart
    d = X.ndim
    norm = X.norm()
    delta = eps * norm / math.sqrt(d - 1) if d > 1 else 0.0
    xp = get_array_module(X.local)
    coords = X.grid.coords

    cores: list[Any] = []
    W = X.local[None, ...]  # (r_0 = 1, block of n_0, ..., block of n_{d-1})
    for k in range(d - 1):
        W = _gather_fibre(X, W, k)
        r, n = W.shape[0], W.shape[1]
        rows = W.reshape(r * n, -1)
        # Only the copy with coordinate 0 in every mode < k contributes columns.
        owner = all(c == 0 for c in coords[:k])
        if owner and rows.shape[1] > 0:
            local_r = xp.linalg.qr(rows.T, mode="r")  # (min(columns, r n), r n)
        else:
            local_r = xp.zeros((0, r * n), dtype=rows.dtype)
        stacked = C.allgatherv(comm, local_r)
        R = xp.linalg.qr(stacked, mode="r") if stacked.shape[0] > 0 else stacked
        U, s, _ = xp.linalg.svd(R.T, full_matrices=False)
        rank = max(1, truncation_rank(s, delta, max_rank))
        U = U[:, :rank]
        cores.append(U.reshape(r, n, rank))
        W = (U.T.conj() @ rows).reshape((rank,) + W.shape[2:])
    W = _gather_fibre(X, W, d - 1)
    cores.append(W.reshape(W.shape[0], W.shape[1], 1))
    full = TTTensor(cores)
    return DistTTTensor.from_core_function(lambda k, idx: full.cores[k][:, idx, :],
                                           full.shape, comm=X.grid.comm)


def _gather_fibre(X: DistTensor, W: Any, k: int) -> Any:
    """Gather ``W``'s axis ``k + 1`` (mode ``k``) along the grid fibre of mode ``k``."""
    if X.grid.dims[k] == 1:
        return W
    cart = X.grid.cart
    fibre = cart.Sub([j == k for j in range(X.ndim)])
    try:
        xp = get_array_module(W)
        counts = block_sizes(X.shape[k], X.grid.dims[k])
        full = C.allgatherv(fibre, xp.ascontiguousarray(xp.moveaxis(W, 1, 0)), counts, axis=0)
        return xp.ascontiguousarray(xp.moveaxis(full, 0, 1))
    finally:
        fibre.Free()
