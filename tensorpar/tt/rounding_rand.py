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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._linalg import ct, matmul, norm, orth
from .orth import _zero_train, absorb_left, apply_log_scale
from .rounding import truncate_sweep
from .tensor import TTTensor, random_tt

__all__ = ["round_randomized", "sketch_step_right"]


def sketch_step_right(W: Any, core: Any, sketch_core: Any) -> Any:
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
    """
    r, n, q = core.shape
    l, _, p = sketch_core.shape
    t = matmul(core.reshape(r * n, q), W).reshape(r, n * p)
    return matmul(t, sketch_core.reshape(l, n * p).T)


def _sketches(tensors: Sequence[TTTensor], sketch: TTTensor, xp: Any) -> list[list[Any]]:
    """``W[j][k]`` for every summand, rescaled per ``k`` by one common factor."""
    d = sketch.ndim
    W = [[None] * (d + 1) for _ in tensors]
    for Wj in W:
        Wj[d] = xp.ones((1, 1), dtype=sketch.dtype)
    for k in range(d - 1, 0, -1):
        for Wj, t in zip(W, tensors):
            Wj[k] = sketch_step_right(Wj[k + 1], t.cores[k], sketch.cores[k])
        s = max(float(xp.abs(Wj[k]).max()) for Wj in W)
        if s > 0.0:  # a common factor keeps the summands' relative weights
            for Wj in W:
                Wj[k] = Wj[k] / s
    return W


def round_randomized(tensors: Sequence[TTTensor], weights: Sequence[Any] | None, eps: float,
                     max_rank: int, oversample: int, seed: Any) -> TTTensor:
    """Randomized rounding of ``sum_j weights[j] * tensors[j]``.

    Called by :func:`tensorpar.tt_round` and :func:`tensorpar.tt_round_sum`
    (which check the arguments).
    """
    from .._validation import check_positive_int

    oversample = check_positive_int(oversample, "oversample", minimum=0)
    xp = get_array_module(*[t.cores[0] for t in tensors])
    weights = [1.0] * len(tensors) if weights is None else list(weights)
    dtype = np.result_type(*[t.dtype for t in tensors], *[type(w) for w in weights])
    d = tensors[0].ndim
    if d == 1:
        core = sum(w * t.cores[0] for w, t in zip(weights, tensors))
        return TTTensor([core.astype(dtype, copy=False)])
    summed = [sum(t.ranks[k] for t in tensors) for k in range(1, d)]
    ell = [min(max_rank + oversample, r) for r in summed]
    sketch = random_tt(tensors[0].shape, ell, seed=seed, dtype=dtype)
    if xp is not np:
        sketch = TTTensor([xp.asarray(c) for c in sketch.cores])
    W = _sketches(tensors, sketch, xp)
    M = [xp.full((1, 1), w, dtype=dtype) for w in weights]
    out: list[Any] = []
    log_scale = 0.0
    for k in range(d - 1):
        Z = [absorb_left(Mj, t.cores[k]) for Mj, t in zip(M, tensors)]
        l, n = Z[0].shape[:2]
        Y = sum(matmul(Zj.reshape(l * n, -1), Wj[k + 1]) for Zj, Wj in zip(Z, W))
        Q, _ = orth(Y)
        out.append(Q.reshape(l, n, Q.shape[1]))
        Qh = ct(Q)
        M = [matmul(Qh, Zj.reshape(l * n, -1)) for Zj in Z]
        s = math.sqrt(sum(norm(Mj) ** 2 for Mj in M))
        if s == 0.0:
            return TTTensor(_zero_train(tensors[0], "left"))
        M = [Mj / s for Mj in M]
        log_scale += math.log(s)
    last = sum(absorb_left(Mj, t.cores[-1]) for Mj, t in zip(M, tensors))
    s = norm(last)
    if s == 0.0:
        return TTTensor(_zero_train(tensors[0], "left"))
    out.append(last / s)
    log_scale += math.log(s)
    cores = truncate_sweep(out, "right", eps / math.sqrt(d - 1), max_rank)
    return TTTensor(apply_log_scale(cores, log_scale, 0))
