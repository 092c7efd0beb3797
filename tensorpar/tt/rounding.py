"""TT rounding: recompress a tensor train to a relative accuracy and/or a rank bound.

Three methods, chosen with ``method=``:

``"qr"`` (default)
    Orthogonalize left-to-right by QR, then truncate right-to-left by SVDs
    of the cores (Oseledets 2011). Each of the ``d - 1``
    truncations discards at most ``eps / sqrt(d - 1)`` of the norm, so
    ``||X - round(X)|| <= eps ||X||`` holds to machine precision for any
    ``eps``. Cost about ``12 d n r^3`` flops, a third of them in QR.
``"gram"``
    Gram-SVD rounding (Al Daas, Ballard and Manning, IPDPS 2022): truncations
    computed from the eigendecompositions of the ``r x r`` Gram matrices of
    the left and right parts, so nearly every flop is a matrix product
    (about ``8 d n r^3``, no QR). Squaring the singular values limits its
    accuracy to about ``sqrt(machine eps) ~ 1e-8`` relative: use it for
    ``eps >= 1e-7``; below that the bound can fail.
``"randomized"``
    Randomize-then-orthogonalize (Al Daas, Ballard, Cazeaux, Hallman,
    Miedlar, Pasha, Reid and Saibaba, SIAM J. Sci. Comput. 2023): sketch
    with a random Gaussian TT of ranks ``max_rank + oversample`` from the
    right, orthogonalize the sketched cores left to right, then truncate the
    small result to ``eps``. Cost ``O(d n r l (r + l))`` for sketch rank
    ``l``, far below QR when ``l << r`` (rounding a sum of many TTs,
    :func:`tt_round_sum`). The sketch error is not controlled by ``eps``:
    it is close to the best rank-``l`` error with high probability, so the
    bound holds when ``max_rank`` is at least the rank ``eps`` requires.

Large ``d``: every method normalizes as it sweeps and keeps the norm as a
logarithm, so it works for thousands of cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from .._linalg import gram_cholesky, matmul, norm, orth, truncated_svd
from .._validation import check_eps, check_max_rank
from .orth import absorb_left, absorb_right, apply_log_scale
from .tensor import TTTensor

__all__ = ["tt_round", "tt_round_sum", "truncate_sweep"]

Method = Literal["qr", "gram", "randomized"]
_METHODS = ("qr", "gram", "randomized")
#: Largest cond_1 of the Cholesky factor for which the QR sweep keeps Q implicit.
_IMPLICIT_COND = 100.0


def truncate_sweep(cores: Sequence[Any], direction: Literal["left", "right"], delta: float,
                   max_rank: int | None = None) -> list[Any]:
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
    max_rank : int, optional

    Returns
    -------
    list of ndarray
        Cores of the truncated train, orthogonal in the sweep direction
        except the last one visited.
    """
    cores = list(cores)
    d = len(cores)
    if direction == "left":
        for k in range(d - 1):
            r, n, q = cores[k].shape
            u, s, vh = truncated_svd(cores[k].reshape(r * n, q), delta, max_rank)
            cores[k] = u.reshape(r, n, u.shape[1])
            cores[k + 1] = absorb_left(s[:, None] * vh, cores[k + 1])
    else:
        for k in range(d - 1, 0, -1):
            r, n, q = cores[k].shape
            u, s, vh = truncated_svd(cores[k].reshape(r, n * q), delta, max_rank)
            cores[k] = vh.reshape(vh.shape[0], n, q)
            cores[k - 1] = absorb_right(cores[k - 1], u * s[None, :])
    return cores


def _implicit_left_sweep(cores: Sequence[Any]) -> tuple[list[Any], Any, float]:
    """Left-orthonormalize, keeping well-conditioned ``Q_k = A_k inv(R_k)`` implicit.

    ``A_k`` is core ``k`` with the previous (normalized) triangular factor
    absorbed and ``R_k`` the Cholesky factor of its Gram matrix. When
    ``cond(R_k) <= _IMPLICIT_COND`` the pair is kept and ``Q_k`` is never
    formed -- the truncation sweep multiplies ``inv(R_k)`` into its small
    carry first -- which saves a third of the sweep's flops. A single
    Cholesky pass leaves ``Q_k`` orthonormal to ``O(eps cond^2) <= 1e-11``,
    which changes the singular values the truncation sees by that relative
    amount and the tensor not at all. Otherwise ``Q_k`` is formed by
    :func:`tensorpar._linalg.orth`.

    Returns the per-core factors (``(A_k, inv(R_k))`` or ``(Q_k, None)``), the
    unit-norm last core and ``log ||x||``.
    """
    factors: list[Any] = []
    log_norm = 0.0
    carry = None
    for k in range(len(cores) - 1):
        a = cores[k] if carry is None else absorb_left(carry, cores[k])
        r, n, q = a.shape
        am = a.reshape(r * n, q)
        chol = gram_cholesky(am) if r * n >= 2 * q else None
        if chol is not None and chol[2] <= _IMPLICIT_COND:
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


def _round_qr(x: TTTensor, eps: float, max_rank: int | None) -> TTTensor:
    # Left-orthogonalize, then truncate right to left: both sweeps work on
    # C-ordered unfoldings and their transposed views, without copies.
    if x.ndim == 1:
        return TTTensor([c.copy() for c in x.cores])
    factors, last, log_norm = _implicit_left_sweep(x.cores)
    if last is None:
        from .orth import _zero_train

        return TTTensor(_zero_train(x, "left"))
    delta = eps / math.sqrt(x.ndim - 1)
    out: list[Any] = [None] * x.ndim
    cur = last
    for k in range(x.ndim - 1, 0, -1):
        r, n, q = cur.shape
        u, s, vh = truncated_svd(cur.reshape(r, n * q), delta, max_rank)
        out[k] = vh.reshape(vh.shape[0], n, q)
        a, inv = factors[k - 1]
        carry = u * s[None, :] if inv is None else matmul(inv, u * s[None, :])
        cur = absorb_right(a, carry)
    out[0] = cur
    return TTTensor(apply_log_scale(out, log_norm, 0))


def _check_common(eps: Any, max_rank: Any, method: Any) -> tuple[float, int | None]:
    eps = check_eps(eps)
    max_rank = check_max_rank(max_rank)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if method == "randomized" and max_rank is None:
        raise ValueError("method='randomized' needs max_rank (the rank the sketch targets)")
    return eps, max_rank


def tt_round(x: TTTensor, eps: float = 1e-12, max_rank: int | None = None,
             method: Method = "qr", *, oversample: int = 10, seed: Any = None) -> TTTensor:
    """Round (recompress) a TT to relative accuracy ``eps`` and ranks ``<= max_rank``.

    Parameters
    ----------
    x : TTTensor
    eps : float
        Relative accuracy, ``>= 0``: ``||x - y||_F <= eps ||x||_F`` when no rank
        is capped by ``max_rank`` (for "gram" only when ``eps >= 1e-7``; for
        "randomized" see the module notes).
    max_rank : int, optional
        Upper bound on every rank of the result (required by "randomized").
    method : {"qr", "gram", "randomized"}
        See :mod:`tensorpar.tt.rounding` for the accuracy and cost of each.
    oversample : int
        "randomized" only: the sketch has ranks ``max_rank + oversample``.
    seed : int or numpy.random.Generator, optional
        "randomized" only: seed of the Gaussian sketch.

    Returns
    -------
    TTTensor
        The rounded train; its ranks never exceed ``x``'s.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_round
    >>> x = random_tt((4, 5, 6, 7), 3, seed=0)
    >>> (x + x).ranks
    (1, 6, 6, 6, 1)
    >>> y = tt_round(x + x, eps=1e-12)
    >>> y.ranks
    (1, 3, 3, 3, 1)
    >>> bool(np.allclose(y.to_dense(), 2 * x.to_dense()))
    True
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"x must be a TTTensor, got {type(x).__name__}")
    eps, max_rank = _check_common(eps, max_rank, method)
    if method == "qr":
        return _round_qr(x, eps, max_rank)
    if method == "gram":
        from .rounding_gram import round_gram

        return round_gram(x, eps, max_rank)
    from .rounding_rand import round_randomized

    return round_randomized([x], None, eps, max_rank, oversample, seed)


def tt_round_sum(tensors: Sequence[TTTensor], eps: float = 1e-12, max_rank: int | None = None,
                 method: Method = "randomized", *, weights: Sequence[Any] | None = None,
                 oversample: int = 10, seed: Any = None) -> TTTensor:
    """Round ``sum_j weights[j] * tensors[j]``.

    With ``method="randomized"`` (the default here) the sum is never formed:
    each summand is sketched separately, so the cost grows linearly in the
    number of summands instead of with the cube of the summed ranks. "qr"
    and "gram" form the sum (ranks add) and round it.

    Parameters
    ----------
    tensors : sequence of TTTensor
        Same shape.
    eps, max_rank, method, oversample, seed
        As in :func:`tt_round`.
    weights : sequence of scalars, optional
        Default all ones.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_round_sum
    >>> x = random_tt((4, 5, 6, 7), 3, seed=0)
    >>> y = tt_round_sum([x, x, x], eps=1e-10, max_rank=3, weights=[1.0, 2.0, 3.0], seed=1)
    >>> y.ranks
    (1, 3, 3, 3, 1)
    >>> bool(np.allclose(y.to_dense(), 6 * x.to_dense()))
    True
    """
    from .ops import check_summands, tt_sum

    eps, max_rank = _check_common(eps, max_rank, method)
    if method != "randomized":
        return tt_round(tt_sum(tensors, weights), eps, max_rank, method)
    weights = check_summands(tensors, weights)
    from .rounding_rand import round_randomized

    return round_randomized(list(tensors), weights, eps, max_rank, oversample, seed)
