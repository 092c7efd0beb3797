"""Sweep primitives of TT rounding: truncation and implicit orthonormalization.

Every rounding variant (:mod:`tensorpar.tt.rounding`,
:mod:`tensorpar.tt.rounding_gram`, :mod:`tensorpar.tt.rounding_rand`) imports
its sweeps from here or from :mod:`tensorpar.tt.orth`, so that none imports
another variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._linalg import gram_cholesky, norm, orth, truncated_svd
from .._typing import Array, Direction
from .orth import MaxRank, absorb_left, absorb_right, bond_limit

__all__ = ["truncate_sweep", "implicit_left_sweep"]

#: Largest cond_1 of the Cholesky factor for which the QR sweep keeps Q implicit.
IMPLICIT_COND = 100.0


def truncate_sweep(cores: Sequence[Array], direction: Direction, delta: float,
                   max_rank: MaxRank = None) -> list[Array]:
    """Truncate an orthogonalized train by one sweep of truncated SVDs.

    Parameters
    ----------
    cores : sequence of ndarray
        For ``direction="left"`` cores ``1..d-1`` must be right-orthogonal
        (the sweep runs left to right); for ``"right"`` cores ``0..d-2``
        left-orthogonal (the sweep runs right to left).
    delta : float
        Absolute threshold per bond: the discarded singular values of each
        unfolding have 2-norm at most ``delta``.
    max_rank : int or sequence of int, optional
        One bound for every bond, or ``d - 1`` (``max_rank[k]`` for the bond
        between cores ``k`` and ``k + 1``).

    Returns
    -------
    list of ndarray
        Cores of the truncated train, orthogonal in the sweep direction
        except the last one visited.

    Examples
    --------
    >>> from tensorpar import random_tt, tt_orthogonalize
    >>> from tensorpar.tt.sweeps import truncate_sweep
    >>> x = tt_orthogonalize(random_tt((4, 5, 6), 3, seed=0) * 2.0, "left")
    >>> [c.shape[2] for c in truncate_sweep(x.cores, "right", 1e-12)]
    [3, 3, 1]
    """
    cores = list(cores)
    d = len(cores)
    if direction == "left":
        for k in range(d - 1):
            r, n, q = cores[k].shape
            u, s, vh = truncated_svd(cores[k].reshape(r * n, q), delta, bond_limit(max_rank, k))
            cores[k] = u.reshape(r, n, u.shape[1])
            cores[k + 1] = absorb_left(s[:, None] * vh, cores[k + 1])
    else:
        for k in range(d - 1, 0, -1):
            r, n, q = cores[k].shape
            u, s, vh = truncated_svd(cores[k].reshape(r, n * q), delta,
                                     bond_limit(max_rank, k - 1))
            cores[k] = vh.reshape(vh.shape[0], n, q)
            cores[k - 1] = absorb_right(cores[k - 1], u * s[None, :])
    return cores


def implicit_left_sweep(cores: Sequence[Array]) -> tuple[list[Any], Array | None, float]:
    """Left-orthonormalize, keeping well-conditioned ``Q_k = A_k inv(R_k)`` implicit.

    ``A_k`` is core ``k`` with the previous (normalized) triangular factor
    absorbed and ``R_k`` the Cholesky factor of its Gram matrix. When
    ``cond(R_k) <= IMPLICIT_COND`` the pair is kept and ``Q_k`` is never
    formed -- the truncation sweep multiplies ``inv(R_k)`` into its small
    carry first -- which saves a third of the sweep's flops. A single
    Cholesky pass leaves ``Q_k`` orthonormal to ``O(eps cond^2) <= 1e-11``,
    which changes the singular values the truncation sees by that relative
    amount and the tensor not at all. Otherwise ``Q_k`` is formed by
    :func:`tensorpar._linalg.orth`.

    Returns
    -------
    (factors, last, log_norm)
        The per-core factors (``(A_k, inv(R_k))`` or ``(Q_k, None)``), the
        unit-norm last core (None for the zero tensor) and ``log ||x||``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.sweeps import implicit_left_sweep
    >>> x = random_tt((4, 5, 6), 3, seed=0)
    >>> factors, last, log_norm = implicit_left_sweep(x.cores)
    >>> bool(np.isclose(np.exp(log_norm), np.linalg.norm(x.to_dense())))
    True
    """
    factors: list[Any] = []
    log_norm = 0.0
    carry = None
    for k in range(len(cores) - 1):
        a = cores[k] if carry is None else absorb_left(carry, cores[k])
        r, n, q = a.shape
        am = a.reshape(r * n, q)
        chol = gram_cholesky(am) if r * n >= 2 * q else None
        if chol is not None and chol[2] <= IMPLICIT_COND:
            carry, inv, _ = chol
            factors.append((a, inv))
        else:
            qm, carry = orth(am)
            factors.append((qm.reshape(r, n, qm.shape[1]), None))
        s = norm(carry)
        if s == 0.0:
            return factors, None, -math.inf
        carry = carry / s
        log_norm += math.log(s)
    last = cores[-1] if carry is None else absorb_left(carry, cores[-1])
    s = norm(last)
    if s == 0.0:
        return factors, None, -math.inf
    return factors, last / s, log_norm + math.log(s)
