"""TT-SVD: compress a dense tensor (or a function sampled on a grid) into a tensor train.

Oseledets' algorithm (SIAM J. Sci. Comput. 33, 2011): sweep over the modes,
take a truncated SVD of the current unfolding and carry ``S V^H`` to the
next mode. Truncating each of the ``d - 1`` SVDs at
``delta = eps ||X||_F / sqrt(d - 1)`` (in the 2-norm of the discarded
singular values) gives ``||X - TT|| <= eps ||X||_F``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .._backend import get_array_module
from .._linalg import left_svd
from .._validation import as_float_array, check_eps, check_finite, check_max_rank
from .orth import bond_limit
from .scale import restore_pow2, scale_exponent, times_pow2
from .tensor import TTTensor

__all__ = ["tt_svd", "tt_from_function"]

#: Largest grid tt_from_function samples densely (2^28 entries, 2 GiB in float64).
MAX_DENSE_ENTRIES = 2**28


def tt_svd(X: Any, eps: float = 1e-12, max_rank: int | Sequence[int] | None = None) -> TTTensor:
    """Tensor train of a dense tensor by sequential truncated SVDs (TT-SVD).

    Parameters
    ----------
    X : ndarray, shape (n_0, ..., n_{d-1})
        Dense tensor, numpy or cupy, real or complex.
    eps : float
        Relative accuracy, ``>= 0``: ``||X - TT||_F <= eps ||X||_F`` when no
        rank is capped by ``max_rank``.
    max_rank : int or sequence of int, optional
        Upper bound on every TT rank, or one bound per bond: ``d - 1`` ints
        (``max_rank[k]`` bounds the rank between cores ``k`` and ``k + 1``),
        or TensorLy's ``rank`` list of ``d + 1`` TT ranks with ones at the
        ends (:func:`tensorpar._validation.check_max_rank`). Where a bound
        binds, the error bound no longer holds.

    Returns
    -------
    TTTensor
        Cores ``0..d-2`` are left-orthogonal; the ranks are the smallest the
        per-mode threshold ``eps ||X|| / sqrt(d - 1)`` allows. Data far from 1
        is divided by a power of two first and the factor restored exactly,
        so ``tt_svd(c X)`` is ``c tt_svd(X)`` for any representable ``c``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import tt_svd
    >>> x = np.add.outer(np.arange(4.0), np.arange(5.0))[:, :, None] * np.ones(3)
    >>> tt_svd(x).ranks
    (1, 2, 1, 1)
    >>> tt_svd(np.random.default_rng(0).standard_normal((3, 4, 5, 2)), max_rank=[2, 6, 1]).ranks
    (1, 2, 6, 1, 1)
    """
    X = as_float_array(X, "X", min_ndim=1)
    check_finite(X, "X")
    eps = check_eps(eps)
    bounds = check_max_rank(max_rank, ndim=X.ndim)
    xp = get_array_module(X)
    shape = tuple(int(s) for s in X.shape)
    if min(shape) < 1:
        raise ValueError(f"X has an empty dimension: shape {shape}")
    d = len(shape)
    if d == 1:
        return TTTensor([xp.array(X).reshape(1, shape[0], 1)])
    # Far from 1 the Gram matrices inside the SVDs overflow or underflow:
    # divide by a power of two (exact) and multiply it back into the last core.
    e2 = scale_exponent(float(xp.abs(X).max()), X.dtype)
    X = times_pow2(X, -e2)
    delta = eps * float(xp.linalg.norm(X.ravel())) / math.sqrt(d - 1)
    cores = []
    rest = xp.reshape(X, (shape[0], -1))
    r = 1
    for k in range(d - 1):
        rest = xp.reshape(rest, (r * shape[k], -1))
        u, _, rest = left_svd(rest, delta, bond_limit(bounds, k))
        cores.append(xp.reshape(u, (r, shape[k], u.shape[1])))
        r = u.shape[1]
    cores.append(xp.reshape(rest, (r, shape[-1], 1)))
    return TTTensor(restore_pow2(cores, e2, -1))


def tt_from_function(f: Callable[..., Any], grids: Sequence[Any], eps: float = 1e-12,
                     max_rank: int | Sequence[int] | None = None) -> TTTensor:
    """Sample ``f`` on a tensor-product grid and compress it by :func:`tt_svd`.

    Parameters
    ----------
    f : callable
        Called once as ``f(x_0, ..., x_{d-1})`` with open (sparse) meshgrid
        arrays, ``x_k`` of shape ``(1, ..., n_k, ..., 1)``; must return an
        array broadcastable to ``(n_0, ..., n_{d-1})`` (numpy ufunc
        expressions do).
    grids : sequence of 1-D arrays
        Grid points of each mode (numpy or cupy).
    eps, max_rank
        As in :func:`tt_svd`.

    Returns
    -------
    TTTensor
        ``T[i_0, ..., i_{d-1}] ~ f(grids[0][i_0], ..., grids[d-1][i_{d-1}])``.

    Notes
    -----
    The full grid is formed, so this is for small grids (at most
    ``2**28`` points); larger problems need cross approximation.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import tt_from_function
    >>> g = np.linspace(0.0, 1.0, 16)
    >>> tt = tt_from_function(lambda *x: np.sin(sum(x)), [g] * 4)
    >>> tt.ranks
    (1, 2, 2, 2, 1)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(grids, (list, tuple)) or len(grids) == 0:
        raise TypeError("grids must be a non-empty list of 1-D arrays")
    xp = get_array_module(*grids)
    grids = [as_float_array(xp.asarray(g), f"grids[{k}]", min_ndim=1, max_ndim=1)
             for k, g in enumerate(grids)]
    shape = tuple(int(g.shape[0]) for g in grids)
    if min(shape) < 1:
        raise ValueError(f"every grid needs at least one point, got sizes {shape}")
    size = math.prod(shape)
    if size > MAX_DENSE_ENTRIES:
        raise ValueError(
            f"the grid has {size} points; tt_from_function samples densely and accepts at "
            f"most {MAX_DENSE_ENTRIES} (use coarser grids or fewer modes)")
    mesh = xp.meshgrid(*grids, indexing="ij", sparse=True)
    values = xp.asarray(f(*mesh))
    try:
        values = xp.broadcast_to(values, shape)
    except ValueError:
        raise ValueError(
            f"f returned shape {tuple(values.shape)}, not broadcastable to the grid {shape}"
        ) from None
    return tt_svd(xp.ascontiguousarray(values), eps=eps, max_rank=max_rank)
