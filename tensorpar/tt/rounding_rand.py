"""Randomized TT rounding: randomize-then-orthogonalize.

Al Daas, Ballard, Cazeaux, Hallman, Miedlar, Pasha, Reid and Saibaba,
"Randomized algorithms for rounding in the tensor-train format", SIAM J.
Sci. Comput. 45 (2023). A Gaussian TT ``S`` with ranks ``l`` sketches the
right parts of ``X``: ``W_k`` is the contraction of cores ``k..d-1`` of ``X``
with those of ``S`` (``r_k x l_k``, one right-to-left sweep). Left to right,
the current core times ``W_{k+1}`` is a sketch of the unfolding's range;
its QR factor ``Q`` becomes the new core and ``Q^H`` times the current core
is carried to the next one. The result has ranks ``<= l`` and
left-orthogonal cores, so a single right-to-left SVD sweep truncates it to
``eps`` at the cost of ``O(d n l^3)``.

For a sum ``sum_j w_j X_j`` every step is done per summand and added: the
block-diagonal cores of the sum are never formed, and the cost is
``O(J d n r l (r + l))`` for ``J`` summands of rank ``r`` instead of
``O(d n (J r)^3)``.

The distributed code runs :func:`round_randomized` on its local slices and
passes its communication as hooks: ``reduce=`` sums the partial sketches and
carried factors over the ranks, ``orth=`` is a TSQR of the row-distributed
sketched core, and ``truncate=`` the distributed final sweep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._linalg import ct, matmul, norm, orth
from .._typing import Array
from .orth import MaxRank, absorb_left, apply_log_scale, bond_limit
from .random import random_tt
from .sweeps import truncate_sweep
from .tensor import TTTensor

__all__ = ["round_randomized", "sketch_step_right", "draw_sketch", "truncate_right"]

#: ``orth(k, Y)``: orthonormal basis ``Q`` of the (row-split) sketched unfolding ``Y`` of core ``k``.
OrthHook = Callable[[int, Array], Array]
#: ``truncate(left_orth_cores, last, delta, max_rank)``: ``(cores, log_scale)`` or None.
TruncateHook = Callable[[list[Array], Array, float, MaxRank],
                        "tuple[list[Array], float] | None"]


def sketch_step_right(W: Array, core: Array, sketch_core: Array) -> Array:
    """One right-to-left step of the sketch: ``sum_m core_m W sketch_core_m^T``.

    Parameters
    ----------
    W : ndarray, shape (q, p)
        Sketch of the part to the right.
    core : ndarray, shape (r, n, q)
    sketch_core : ndarray, shape (l, n, p)

    Returns
    -------
    ndarray, shape (r, l)
        Partial sums over slices of the mode index add up to the result.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_rand import sketch_step_right
    >>> sketch_step_right(np.ones((1, 1)), np.ones((2, 3, 1)), np.ones((4, 3, 1))).shape
    (2, 4)
    """
    r, n, q = core.shape
    l, _, p = sketch_core.shape
    t = matmul(core.reshape(r * n, q), W).reshape(r, n * p)
    return matmul(t, sketch_core.reshape(l, n * p).T)


def draw_sketch(shape: Sequence[int], ranks: Sequence[Sequence[int]],
                max_rank: int | Sequence[int], oversample: int, seed: Any, dtype: Any,
                xp: Any) -> TTTensor:
    """The Gaussian sketch TT for summands of TT ranks ``ranks[j]``.

    Its rank at bond ``k`` is ``min(m_k + oversample, sum_j ranks[j][k + 1])``
    with ``m_k`` the bound of that bond (``max_rank``, or ``max_rank[k]`` for
    per-bond bounds); the same ``seed`` gives the same sketch on every process.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_rand import draw_sketch
    >>> draw_sketch((4, 5, 6), [(1, 3, 3, 1)], 2, 10, 0, np.float64, np).ranks
    (1, 3, 3, 1)
    >>> draw_sketch((4, 5, 6), [(1, 9, 9, 1)], (2, 4), 1, 0, np.float64, np).ranks
    (1, 3, 5, 1)
    """
    d = len(shape)
    summed = [sum(int(r[k]) for r in ranks) for k in range(1, d)]
    ell = [min(int(bond_limit(max_rank, k) or 0) + oversample, r) for k, r in enumerate(summed)]
    sketch = random_tt(shape, ell, seed=seed, dtype=dtype)
    if xp is not np:
        sketch = TTTensor([xp.asarray(c) for c in sketch.cores])
    return sketch


def _sketches(tensors: Sequence[Sequence[Array]], sketch: Sequence[Array], xp: Any,
              red: Callable[[Array], Array]) -> list[list[Any]]:
    """``W[j][k]`` for every summand, rescaled per ``k`` by one common factor."""
    d = len(sketch)
    W: list[list[Any]] = [[None] * (d + 1) for _ in tensors]
    dtype = np.result_type(*[c.dtype for c in sketch])
    for Wj in W:
        Wj[d] = xp.ones((1, 1), dtype=dtype)
    for k in range(d - 1, 0, -1):
        for Wj, t in zip(W, tensors):
            Wj[k] = red(sketch_step_right(Wj[k + 1], t[k], sketch[k]))
        s = max(float(xp.abs(Wj[k]).max()) for Wj in W)
        if s > 0.0:  # a common factor keeps the summands' relative weights
            for Wj in W:
                Wj[k] = Wj[k] / s
    return W


def truncate_right(cores: list[Array], last: Array, delta: float,
                   max_rank: MaxRank) -> tuple[list[Array], float] | None:
    """Serial final sweep: normalize ``last`` and truncate right to left.

    ``cores`` are left-orthonormal; returns the truncated cores and the log
    of the norm taken off, or None for the zero tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_rand import truncate_right
    >>> cores, log_s = truncate_right([np.eye(2).reshape(1, 2, 2)], np.ones((2, 3, 1)), 1e-12, None)
    >>> [c.shape for c in cores], round(float(np.exp(log_s)), 6)
    ([(1, 2, 1), (1, 3, 1)], 2.44949)
    """
    s = norm(last)
    if s == 0.0:
        return None
    return truncate_sweep(cores + [last / s], "right", delta, max_rank), math.log(s)


def round_randomized(tensors: Sequence[Sequence[Array]], weights: Sequence[Any] | None,
                     eps: float, max_rank: MaxRank, sketch: TTTensor | Sequence[Array], *,
                     reduce: Callable[[Array], Array] | None = None,
                     orth_hook: OrthHook | None = None,
                     truncate: TruncateHook | None = None) -> list[Array] | None:
    """Randomized rounding of ``sum_j weights[j] * tensors[j]`` given by their cores.

    Called by :func:`tensorpar.tt_round` and :func:`tensorpar.tt_round_sum`
    (which check the arguments and draw the sketch with :func:`draw_sketch`).

    Parameters
    ----------
    tensors : sequence of sequences of ndarray
        The cores of every summand (``d >= 2``); in the distributed code
        this rank's slices along the mode index.
    weights : sequence of scalars, optional
    eps : float
    max_rank : int or sequence of int, optional
        Rank bound of the final truncation (one for every bond, or ``d - 1``).
    sketch : TTTensor or sequence of ndarray
        The Gaussian sketch (its slices, matching ``tensors``).
    reduce : callable, optional
        Sums partial sketches and carried factors over the mode index (an allreduce).
    orth_hook : callable, optional
        ``orth_hook(k, Y)`` returns ``Q`` with orthonormal columns spanning
        ``Y`` (default :func:`tensorpar._linalg.orth`; a TSQR when the rows
        of ``Y`` are split over ranks).
    truncate : callable, optional
        The final right-to-left sweep (default :func:`truncate_right`).

    Returns
    -------
    list of ndarray or None
        The rounded cores; None for the zero tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.rounding_rand import draw_sketch, round_randomized
    >>> x = random_tt((4, 5, 6), 3, seed=0)
    >>> s = draw_sketch(x.shape, [x.ranks], 3, 2, 0, x.dtype, np)
    >>> [c.shape[2] for c in round_randomized([x.cores], [2.0], 1e-10, 3, s)]
    [3, 3, 1]
    """
    red = reduce if reduce is not None else (lambda a: a)
    basis = orth_hook if orth_hook is not None else (lambda k, Y: orth(Y)[0])
    S = list(sketch.cores) if isinstance(sketch, TTTensor) else list(sketch)
    xp = get_array_module(*S)
    weights = [1.0] * len(tensors) if weights is None else list(weights)
    dtype = np.result_type(*[c.dtype for c in S])
    d = len(S)
    W = _sketches(tensors, S, xp, red)
    M = [xp.full((1, 1), w, dtype=dtype) for w in weights]
    out: list[Array] = []
    log_scale = 0.0
    for k in range(d - 1):
        Z = [absorb_left(Mj, t[k]) for Mj, t in zip(M, tensors)]
        l, n = Z[0].shape[:2]
        Y = sum(matmul(Zj.reshape(l * n, -1), Wj[k + 1]) for Zj, Wj in zip(Z, W))
        Q = basis(k, Y)
        out.append(Q.reshape(l, n, Q.shape[1]))
        Qh = ct(Q)
        M = [red(matmul(Qh, Zj.reshape(l * n, -1))) for Zj in Z]
        s = math.sqrt(sum(norm(Mj) ** 2 for Mj in M))
        if s == 0.0:
            return None
        M = [Mj / s for Mj in M]
        log_scale += math.log(s)
    last = sum(absorb_left(Mj, t[-1]) for Mj, t in zip(M, tensors))
    res = (truncate or truncate_right)(out, last, eps / math.sqrt(d - 1), max_rank)
    if res is None:
        return None
    cores, log_last = res
    return apply_log_scale(cores, log_scale + log_last, 0)
