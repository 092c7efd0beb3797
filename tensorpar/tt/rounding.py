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
logarithm, so it works for thousands of cores. Extreme magnitudes: cores
far from 1 are divided by a power of two first and the result is multiplied
back exactly (:func:`tensorpar.tt.scale.normalize_cores`), so rounding
``c x`` gives ``c`` times the rounding of ``x`` for any representable ``c``.

The variants work on lists of cores and take the distributed code's
reductions as hooks (``reduce=``), so :mod:`tensorpar.distributed.tt`
calls them instead of copying them. Module layering: this dispatcher
imports the variants; the variants import only :mod:`~tensorpar.tt.orth`,
:mod:`~tensorpar.tt.sweeps`, :mod:`~tensorpar.tt.tensor`,
:mod:`~tensorpar.tt.random` and :mod:`tensorpar._linalg`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._linalg import matmul, truncated_svd
from .._typing import Array, RoundMethod
from .._validation import check_eps, check_max_rank, check_positive_int
from .ops import check_summands, tt_sum
from .orth import (
    MaxRank,
    absorb_right,
    apply_log_scale,
    bond_limit,
    zero_train,
)
from .rounding_gram import round_gram
from .rounding_rand import draw_sketch, round_randomized
from .scale import normalize_cores, restore_pow2
from .sweeps import implicit_left_sweep
from .tensor import TTTensor

__all__ = ["tt_round", "tt_round_sum", "round_qr", "check_round_options"]

_METHODS = ("qr", "gram", "randomized")


def round_qr(cores: Sequence[Array], eps: float, max_rank: MaxRank) -> list[Array] | None:
    """QR rounding of a train given by its cores (None for the zero tensor).

    Left-orthogonalize (:func:`tensorpar.tt.sweeps.implicit_left_sweep`), then
    truncate right to left: both sweeps work on C-ordered unfoldings and
    their transposed views, without copies.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.rounding import round_qr
    >>> x = random_tt((4, 5, 6), 3, seed=0)
    >>> [c.shape[2] for c in round_qr((x + x).cores, 1e-12, None)]
    [3, 3, 1]
    """
    d = len(cores)
    factors, last, log_norm = implicit_left_sweep(cores)
    if last is None:
        return None
    delta = eps / math.sqrt(d - 1)
    out: list[Any] = [None] * d
    cur = last
    for k in range(d - 1, 0, -1):
        r, n, q = cur.shape
        u, s, vh = truncated_svd(cur.reshape(r, n * q), delta, bond_limit(max_rank, k - 1))
        out[k] = vh.reshape(vh.shape[0], n, q)
        a, inv = factors[k - 1]
        carry = u * s[None, :] if inv is None else matmul(inv, u * s[None, :])
        cur = absorb_right(a, carry)
    out[0] = cur
    return apply_log_scale(out, log_norm, 0)


def check_round_options(eps: Any, max_rank: Any, method: Any, oversample: Any = 10,
                        ndim: int | None = None) -> tuple[float, MaxRank, int]:
    """Check the options of :func:`tt_round`; return ``(eps, max_rank, oversample)``.

    With ``ndim`` (the number of cores) ``max_rank`` may also be a list of
    per-bond limits, returned as a tuple of ``ndim - 1`` ints
    (:func:`tensorpar._validation.check_max_rank`).

    Examples
    --------
    >>> from tensorpar.tt.rounding import check_round_options
    >>> check_round_options(1e-8, None, "qr")
    (1e-08, None, 10)
    >>> check_round_options(0.0, [1, 4, 2, 1], "qr", ndim=3)
    (0.0, (4, 2), 10)
    """
    eps = check_eps(eps)
    max_rank = check_max_rank(max_rank) if ndim is None else check_max_rank(max_rank, ndim=ndim)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if method == "randomized" and max_rank is None:
        raise ValueError("method='randomized' needs max_rank (the rank the sketch targets)")
    oversample = check_positive_int(oversample, "oversample", minimum=0)
    return eps, max_rank, oversample


def tt_round(x: TTTensor, eps: float = 1e-12, max_rank: int | Sequence[int] | None = None,
             method: RoundMethod = "qr", *, oversample: int = 10, seed: Any = None) -> TTTensor:
    """Round (recompress) a TT to relative accuracy ``eps`` and ranks ``<= max_rank``.

    Parameters
    ----------
    x : TTTensor
    eps : float
        Relative accuracy, ``>= 0``: ``||x - y||_F <= eps ||x||_F`` when no rank
        is capped by ``max_rank`` (for "gram" only when ``eps >= 1e-7``; for
        "randomized" see the module notes).
    max_rank : int or sequence of int, optional
        Upper bound on every rank of the result (required by "randomized"),
        or one bound per bond: ``d - 1`` ints (``max_rank[k]`` bounds the rank
        between cores ``k`` and ``k + 1``) or TensorLy's ``rank`` list of
        ``d + 1`` TT ranks with ones at the ends
        (:func:`tensorpar._validation.check_max_rank`).
    method : {"qr", "gram", "randomized"}
        See :mod:`tensorpar.tt.rounding` for the accuracy and cost of each.
    oversample : int
        "randomized" only: the sketch has ranks ``max_rank + oversample``
        (per bond, with per-bond bounds; never above ``x``'s rank there).
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
    >>> tt_round(x + x, eps=0.0, max_rank=[2, 3, 1]).ranks
    (1, 2, 3, 1, 1)
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"x must be a TTTensor, got {type(x).__name__}")
    eps, max_rank, oversample = check_round_options(eps, max_rank, method, oversample, x.ndim)
    if x.ndim == 1:
        return x.copy()
    cores, e2 = normalize_cores(x.cores)
    out: list[Array] | None
    if method == "qr":
        out = round_qr(cores, eps, max_rank)
    elif method == "gram":
        out = round_gram(cores, eps, max_rank)
    else:
        assert max_rank is not None  # checked above; narrows the type
        # the sketch's dtype promotes with Python floats, as for tt_round_sum's weights
        sketch = draw_sketch(x.shape, [x.ranks], max_rank, oversample, seed,
                             np.result_type(x.dtype, float), get_array_module(*cores))
        out = round_randomized([cores], None, eps, max_rank, sketch)
    return _finish(out, e2, x.shape, x.dtype, cores, -1 if method == "gram" else 0)


def _finish(out: list[Array] | None, e2: int, shape: tuple[int, ...], dtype: Any,
            like: Sequence[Array], position: int) -> TTTensor:
    if out is None:
        return TTTensor(zero_train(shape, dtype, get_array_module(*like)))
    return TTTensor(restore_pow2(out, e2, position))


def tt_round_sum(tensors: Sequence[TTTensor], eps: float = 1e-12,
                 max_rank: int | Sequence[int] | None = None,
                 method: RoundMethod = "randomized", *, weights: Sequence[Any] | None = None,
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
    first_ndim = tensors[0].ndim if tensors and isinstance(tensors[0], TTTensor) else None
    eps, max_rank, oversample = check_round_options(eps, max_rank, method, oversample, first_ndim)
    if method != "randomized":
        return tt_round(tt_sum(tensors, weights), eps, max_rank, method)
    assert max_rank is not None  # checked above; narrows the type
    checked = check_summands(tensors, weights)
    w = [1.0] * len(tensors) if checked is None else list(checked)
    first = tensors[0]
    if first.ndim == 1:
        return tt_sum(tensors, weights)
    # each summand divided by its own power of two, the relative factors moved into the weights
    scaled = [normalize_cores(t.cores) for t in tensors]
    e2 = max(e for _, e in scaled)
    w = [wj * 2.0 ** (e - e2) for wj, (_, e) in zip(w, scaled)]
    cores = [c for c, _ in scaled]
    # the sketch's dtype: that of the summands and of the Python weights (as numpy promotes)
    dtype = np.result_type(*[t.dtype for t in tensors], *[type(wj) for wj in w])
    sketch = draw_sketch(first.shape, [t.ranks for t in tensors], max_rank, oversample, seed,
                         dtype, get_array_module(*cores[0]))
    out = round_randomized(cores, w, eps, max_rank, sketch)
    return _finish(out, e2, first.shape, dtype, cores[0], 0)
