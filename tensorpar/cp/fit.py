"""CP fit from the last MTTKRP and the Grams, without forming the model tensor.

For ``X_hat = [[w; A_0, ..., A_{N-1}]]`` and ``M = mttkrp(X, factors, N-1)``
(computed with the factors ``A_0 .. A_{N-2}`` that ``X_hat`` uses):

* ``||X_hat||^2 = w^T (G_0 * ... * G_{N-1}) w`` with ``G_k = A_k^T A_k``;
* ``<X, X_hat> = sum_r w_r sum_i M[i, r] A_{N-1}[i, r]``;
* ``||X - X_hat|| = sqrt(| ||X||^2 + ||X_hat||^2 - 2 <X, X_hat> |)``;
* ``fit = 1 - ||X - X_hat|| / ||X||``.

This is the formula of TensorLy's ``parafac`` and the Tensor Toolbox /
pyttb ``cp_als`` (the absolute value guards against a slightly negative
difference from rounding). The inner product is a sum over the rows of
``M`` and ``A_{N-1}``, so a distributed driver sums
:func:`cp_inner_from_mttkrp` over its row blocks (one allreduce) and calls
:func:`fit_from_terms` with the total.

**Accuracy.** ``||X||`` and the terms are accumulated in float64 (float32
data is converted first), but near an exact fit the residual is the square
root of a difference of nearly equal numbers: an error ``delta`` in the
terms (relative to ``||X||^2``) moves the reported error ``1 - fit`` by
about ``sqrt(delta)``. The MTTKRP ``M`` is computed in the data's precision,
so ``delta`` is a small multiple of ``eps`` and the fit is reliable to about
``sqrt(eps)`` near an exact fit -- for float32 between ``3e-4`` and ``2e-3``
(a constant 40 x 40 x 200 tensor reports 0.9987 for a true 0.999999;
TensorLy's ``parafac``, same formula, reports 0.9983) and for float64 about
``1e-8`` -- and to about ``eps / (1 - fit)`` away from it. Compute
``||X - X_hat||`` densely when more is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._backend import get_array_module
from .update import hadamard_grams

__all__ = ["cp_inner_from_mttkrp", "cp_norm_sq_from_grams", "fit_from_terms", "cp_fit",
           "has_converged"]


def cp_inner_from_mttkrp(M: Any, A: Any, weights: Any) -> float:
    """``<X, X_hat>`` from the MTTKRP ``M`` of a mode and that mode's factor ``A``.

    Parameters
    ----------
    M, A : ndarray, shape (I, R)
        Any block of rows of both (then the result is that block's share).
    weights : ndarray, shape (R,)

    Returns
    -------
    float
        ``sum_r weights[r] * sum_i M[i, r] * A[i, r]``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import mttkrp, random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> X = np.random.default_rng(1).standard_normal((3, 4, 5))
    >>> inner = cp_inner_from_mttkrp(mttkrp(X, cp.factors, 2), cp.factors[2], cp.weights)
    >>> bool(np.isclose(inner, np.sum(X * cp.to_dense())))
    True
    """
    xp = get_array_module(M, A, weights)
    M, A, weights = (_wide(a) for a in (M, A, weights))
    return float(xp.sum(M * A, axis=0) @ weights)


def cp_norm_sq_from_grams(V_all: Any, weights: Any) -> float:
    """``||X_hat||^2 = w^T V_all w`` where ``V_all = hadamard_grams(grams)`` (no mode skipped).

    Accumulated in float64 for float32 input.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> V_all = hadamard_grams([A.T @ A for A in cp.factors])
    >>> bool(np.isclose(cp_norm_sq_from_grams(V_all, cp.weights), np.sum(cp.to_dense() ** 2)))
    True
    """
    V_all, weights = _wide(V_all), _wide(weights)
    return float(weights @ (V_all @ weights))


def _wide(a: Any) -> Any:
    """``a`` in float64 when it is float32 (the fit terms are sums of many products)."""
    return a.astype("float64") if a.dtype == "float32" else a


def fit_from_terms(norm_x: float, inner: float, model_norm_sq: float) -> tuple[float, float]:
    """Fit and residual norm from ``||X||``, ``<X, X_hat>`` and ``||X_hat||^2``.

    Returns
    -------
    fit : float
        ``1 - residual / norm_x`` (see Notes for ``norm_x == 0``).
    residual : float
        ``||X - X_hat||``.

    Notes
    -----
    For an all-zero tensor (``norm_x == 0``) the relative fit is undefined;
    the fit is then ``-residual``, which is 0 for the exact (zero) model and
    decreases as the model moves away from it.

    Examples
    --------
    ``||X||^2 = 25``, ``<X, X_hat> = 24``, ``||X_hat||^2 = 24``: the residual is 1.

    >>> fit_from_terms(5.0, 24.0, 24.0)
    (0.8, 1.0)
    """
    residual = math.sqrt(abs(norm_x * norm_x + model_norm_sq - 2.0 * inner))
    if norm_x == 0.0:
        return -residual, residual
    return 1.0 - residual / norm_x, residual


def cp_fit(norm_x: float, M_last: Any, A_last: Any, weights: Any,
           grams: Sequence[Any]) -> tuple[float, float]:
    """Fit of ``[[weights; factors]]`` to ``X`` (serial convenience of the three above).

    Parameters
    ----------
    norm_x : float
        ``||X||`` (computed once per decomposition).
    M_last : ndarray, shape (I_{N-1}, R)
        MTTKRP of the last mode, from the factors of modes ``0 .. N-2``.
    A_last : ndarray, shape (I_{N-1}, R)
        Factor of the last mode.
    weights : ndarray, shape (R,)
    grams : sequence of ndarray, each (R, R)
        Grams of all factors (``grams[N-1]`` that of ``A_last``).

    Returns
    -------
    fit, residual : float

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import mttkrp, random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> X = cp.to_dense()
    >>> fit, res = cp_fit(float(np.linalg.norm(X)), mttkrp(X, cp.factors, 2), cp.factors[2],
    ...                   cp.weights, [A.T @ A for A in cp.factors])
    >>> round(fit, 6), bool(res < 1e-6)
    (1.0, True)
    """
    inner = cp_inner_from_mttkrp(M_last, A_last, weights)
    return fit_from_terms(norm_x, inner, cp_norm_sq_from_grams(hadamard_grams(grams), weights))


def has_converged(fits: Sequence[float], tol: float) -> bool:
    """Stopping rule: the fit changed by less than ``tol`` in the last iteration.

    Needs at least two fits; ``tol = 0`` never stops (the change is compared
    with ``<``).

    Examples
    --------
    >>> has_converged([0.5, 0.9, 0.9000001], 1e-6), has_converged([0.9], 1.0)
    (True, False)
    """
    return len(fits) >= 2 and abs(fits[-1] - fits[-2]) < tol
