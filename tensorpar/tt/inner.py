"""Inner products and norms of tensor trains, by left-to-right contraction.

:func:`dot_step` is the per-core step; it is public so that the
distributed TT code, which holds each core split along its mode index, can
apply it to its local slices: the partial contractions over slices add up,
and :func:`scaled_chain` takes the reduction as a hook (``reduce=``).
Cost O(d n r^3) in two matrix products per core.

Large ``d``: the running contraction is rescaled after every core and the
scale kept as a logarithm, so intermediate values never overflow or
underflow; only a final result outside the floating-point range does.
:func:`tt_log_norm` and :func:`tt_log_dot` return logarithms and stay finite
for any ``d``. Extreme magnitudes: when a step leaves the safe range, the
cores far from 1 are divided by powers of two and the contraction is
repeated (:func:`tensorpar.tt.scale.normalize_cores`), so a train whose norm
is representable never gives NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array, NormMethod
from .checks import check_tt, check_tt_pair
from .orth import tt_orthonormalize
from .scale import normalize_cores
from .tensor import TTTensor

__all__ = ["tt_dot", "tt_norm", "tt_log_dot", "tt_log_norm", "dot_step", "scaled_chain",
           "log_dot_from_chain", "dot_from_chain", "log_norm_from_chain", "exp_or_inf"]


def _dot_step_ab(W: Any, a: Any, b: Any) -> Any:
    ra, n, qa = a.shape
    rb, _, qb = b.shape
    t = (W @ b.reshape(rb, n * qb)).reshape(ra * n, qb)
    al = a.reshape(ra * n, qa)
    return (al.conj() if al.dtype.kind == "c" else al).T @ t


def dot_step(W: Any, a: Any, b: Any) -> Any:
    """One step of the left-to-right contraction of ``<x, y>``.

    ``W_new = sum_m a[:, m, :]^H @ W @ b[:, m, :]`` (``a`` conjugated).

    Parameters
    ----------
    W : ndarray, shape (r, s)
        Contraction of the cores to the left.
    a : ndarray, shape (r, n, q)
        Core of ``x``.
    b : ndarray, shape (s, n, t)
        Core of ``y``.

    Returns
    -------
    ndarray, shape (q, t)
        Two matrix products, ``2 n (r s t + r q t)`` flops (or the cheaper
        mirrored order ``2 n (r s q + s q t)``). Summing the results of
        slices of the mode index gives the result for the whole core.

    Examples
    --------
    Chaining the steps over all cores gives ``<x, y>``:

    >>> from tensorpar import random_tt
    >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
    >>> W = np.ones((1, 1))
    >>> for a, b in zip(x.cores, y.cores):
    ...     W = dot_step(W, a, b)
    >>> W.shape, bool(np.isclose(W[0, 0], np.sum(x.to_dense() * y.to_dense())))
    ((1, 1), True)
    """
    ra, n, qa = a.shape
    rb, _, qb = b.shape
    if ra * rb * qb + ra * qa * qb <= ra * rb * qa + rb * qa * qb:
        return _dot_step_ab(W, a, b)
    # W_new^H = sum_m b_m^H W^H a_m: contract b first when that is cheaper.
    return _dot_step_ab(W.conj().T, b, a).conj().T


def scaled_chain(x_cores: Sequence[Array], y_cores: Sequence[Array],
                 reduce: Callable[[Array], Array] | None = None,
                 reduce_max: Callable[[Array], Array] | None = None) -> tuple[Any, float]:
    """Contract ``<x, y>`` core by core, rescaling after every core.

    Parameters
    ----------
    x_cores, y_cores : sequences of ndarray
        Cores (or, in the distributed code, local slices of cores along the
        mode index) of the two trains.
    reduce : callable, optional
        Applied to each step's ``r x s`` partial result before rescaling; the
        distributed code passes an allreduce, since :func:`dot_step` results
        over slices of the mode index add up.
    reduce_max : callable, optional
        Applied to the per-core largest magnitudes before cores far from 1
        are divided by powers of two (an allreduce(max) in the distributed
        code, so that every rank divides by the same power).

    Returns
    -------
    (value, log_scale)
        ``<x, y> = value * exp(log_scale)``; ``(0, 0)`` for a zero product and
        ``(nan, 0)`` when a step overflows to infinity or NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.inner import scaled_chain
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> value, log_scale = scaled_chain(x.cores, x.cores)
    >>> bool(np.isclose(value * np.exp(log_scale), np.linalg.norm(x.to_dense()) ** 2))
    True
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # detected and retried
        res = _chain(x_cores, y_cores, reduce)
    if res is not None:
        return res
    # A step left the safe range (overflow, or products near the underflow
    # threshold): divide the cores far from 1 by powers of two and contract
    # again. The decision depends on replicated values only, so every rank of
    # the distributed code retries together; ordinary data never retries.
    same = x_cores is y_cores
    xs, ex = normalize_cores(x_cores, reduce_max)
    ys, ey = (xs, ex) if same else normalize_cores(y_cores, reduce_max)
    res = _chain(xs, ys, reduce, check=False)
    assert res is not None  # check=False always returns a result
    value, log_scale = res
    return value, (log_scale + (ex + ey) * math.log(2.0) if value != 0 else 0.0)


def _chain(x_cores: Sequence[Array], y_cores: Sequence[Array],
           reduce: Callable[[Array], Array] | None,
           check: bool = True) -> tuple[Any, float] | None:
    """The contraction of :func:`scaled_chain`; None when ``check`` finds a step out of range."""
    xp = get_array_module(x_cores[0], y_cores[0])
    dtype = np.result_type(*[c.dtype for c in x_cores], *[c.dtype for c in y_cores])
    fin = np.finfo(dtype)
    low = float(fin.tiny) * 2.0 ** (2 * (fin.nmant + 1))  # terms below s * eps^2 stay normal
    W = xp.ones((1, 1), dtype=dtype)
    log_scale = 0.0
    for a, b in zip(x_cores, y_cores):
        W = dot_step(W, a, b)
        if reduce is not None:
            W = reduce(W)
        s = float(xp.abs(W).max())
        if check and not low <= s < math.inf:
            return None
        if s == 0.0:
            return 0.0, 0.0
        if not math.isfinite(s):
            return math.nan, 0.0
        W = W / s
        log_scale += math.log(s)
    return W[0, 0].item(), log_scale


def log_dot_from_chain(value: Any, log_scale: float) -> tuple[float | complex, float]:
    """``(sign, logabs)`` of ``value * exp(log_scale)``, the result of :func:`scaled_chain`.

    Examples
    --------
    >>> from tensorpar.tt.inner import log_dot_from_chain
    >>> log_dot_from_chain(-2.0, 1.0)
    (-1.0, 1.6931471805599454)
    """
    if value == 0 or not np.isfinite(value):
        return (0.0, -math.inf) if value == 0 else (value, math.nan)
    sign = value / abs(value)
    return sign, log_scale + math.log(abs(value))


def dot_from_chain(value: Any, log_scale: float) -> float | complex:
    """The inner product ``value * exp(log_scale)``; infinite only past the float64 range.

    Examples
    --------
    >>> from tensorpar.tt.inner import dot_from_chain
    >>> dot_from_chain(1.0, 709.5) < float("inf"), dot_from_chain(1.0, 710.0)
    (True, inf)
    """
    sign, logabs = log_dot_from_chain(value, log_scale)
    return sign * exp_or_inf(logabs) if sign != 0 else sign


def log_norm_from_chain(value: Any, log_scale: float) -> float:
    """``log ||x||`` from the :func:`scaled_chain` of ``x`` with itself (``-inf`` for zero).

    Examples
    --------
    >>> from tensorpar.tt.inner import log_norm_from_chain
    >>> log_norm_from_chain(1.0, 2.0)
    1.0
    """
    value = abs(value.real if isinstance(value, complex) else value)
    return -math.inf if value == 0 else 0.5 * (log_scale + math.log(value))


def tt_log_dot(x: TTTensor, y: TTTensor) -> tuple[float | complex, float]:
    """Inner product as ``(sign, logabs)`` with ``<x, y> = sign * exp(logabs)``.

    Like :func:`numpy.linalg.slogdet`: ``sign`` is ``+-1`` for real data or a
    complex number of modulus 1, and ``(0, -inf)`` for a zero inner product.
    ``x`` is conjugated. Finite for any number of cores.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_log_dot
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> sign, logabs = tt_log_dot(1e200 * x, 1e200 * x)
    >>> sign, bool(np.isclose(logabs, 400 * np.log(10) + 2 * np.log(np.linalg.norm(x.to_dense()))))
    (1.0, True)
    """
    check_tt_pair(x, y)
    return log_dot_from_chain(*scaled_chain(x.cores, y.cores))


def tt_dot(x: TTTensor, y: TTTensor) -> float | complex:
    """Inner product ``<x, y> = sum conj(x) * y`` by left-to-right contraction.

    O(d n r^3) in two matrix products per core; the running contraction is
    rescaled after every core, so only a result outside the floating-point
    range overflows (use :func:`tt_log_dot` then).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_dot
    >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
    >>> bool(np.isclose(tt_dot(x, y), np.vdot(x.to_dense(), y.to_dense())))
    True
    """
    check_tt_pair(x, y)
    return dot_from_chain(*scaled_chain(x.cores, y.cores))


def tt_log_norm(x: TTTensor, method: NormMethod = "gram") -> float:
    """Natural logarithm of the Frobenius norm; finite for any number of cores.

    Parameters
    ----------
    x : TTTensor
    method : {"gram", "qr"}
        "gram" contracts ``<x, x>`` (two matrix products per core, the fast
        default); "qr" orthogonalizes and reads the norm off the last core. The
        Gram route computes ``||x||^2`` as a sum of terms as large as the
        squared norms of the partial contractions, so its relative error grows
        when ``x`` is a nearly cancelling sum (e.g. ``x - round(x)``); the QR
        route is accurate to machine precision relative to ``||x||`` at about
        twice the cost.

    Returns
    -------
    float
        ``log ||x||_F``; ``-inf`` for the zero tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTTensor, tt_log_norm
    >>> x = TTTensor([np.full((1, 4, 1), 10.0)] * 1000)
    >>> bool(np.isclose(tt_log_norm(x), 1000 * np.log(20.0)))
    True
    """
    check_tt(x, "x")
    if method == "qr":
        return tt_orthonormalize(x, "left")[1]
    if method != "gram":
        raise ValueError(f"method must be 'gram' or 'qr', got {method!r}")
    return log_norm_from_chain(*scaled_chain(x.cores, x.cores))


def tt_norm(x: TTTensor, method: NormMethod = "gram") -> float:
    """Frobenius norm ``||x||_F`` (see :func:`tt_log_norm` for ``method``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_norm
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> bool(np.isclose(tt_norm(x), np.linalg.norm(x.to_dense())))
    True
    """
    return exp_or_inf(tt_log_norm(x, method))


def exp_or_inf(t: float) -> float:
    """``exp`` that overflows to ``inf`` (past ``log(max float64) ~ 709.78``) instead of raising.

    Examples
    --------
    >>> from tensorpar.tt.inner import exp_or_inf
    >>> exp_or_inf(709.5) < float("inf"), exp_or_inf(709.8)
    (True, inf)
    """
    try:
        return math.exp(t)
    except OverflowError:
        return math.inf

