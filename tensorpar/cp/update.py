"""One CP-ALS factor update: Grams, the R x R solve, HALS, normalisation.

These are the pieces every CP-ALS driver (serial :func:`tensorpar.cp_als`,
the distributed one in :mod:`tensorpar.distributed`) calls in the same order
for mode ``n`` of a sweep, so that both produce the same iterates:

1. ``M = mttkrp(X, factors, n)`` (shape ``(I_n, R)``);
2. ``V = hadamard_grams(grams, skip=n)`` (``R x R``);
3. ``A_raw = als_factor_update(M, V)``, or with ``nonnegative``
   ``A_raw = hals_factor_update(factors[n] * weights, M, V)``;
4. ``G_raw = A_raw^T A_raw`` (a sum over rows: one allreduce when the rows are
   distributed);
5. ``A, G, weights = normalize_factor(A_raw, G_raw)``; store ``A`` as
   ``factors[n]`` and ``G`` as ``grams[n]``.

Steps 3 and 5 act on each row independently given ``V`` and ``G_raw``
(both ``R x R`` and replicated), so they can be applied to a block of rows.

Normalisation convention: after every mode update the columns of the new
factor have unit 2-norm and the column norms become the weights; the model
after mode ``n`` is ``[[weights; A_0, ..., A_{N-1}]]``. The norms are read
off the diagonal of the Gram (never recomputed from the rows) and the stored
Gram is rescaled, ``G = diag(1/w) G_raw diag(1/w)``. Zero columns keep a
zero weight and are left unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module, to_numpy

__all__ = [
    "gram",
    "hadamard_grams",
    "als_factor_update",
    "inverse_psd",
    "hals_factor_update",
    "normalize_factor",
]


def gram(A: Any) -> Any:
    """Gram matrix ``A^T A`` of a factor of shape ``(I, R)``; shape ``(R, R)``.

    Examples
    --------
    >>> gram(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[10., 14.],
           [14., 20.]])
    """
    return A.T @ A


def hadamard_grams(grams: Sequence[Any], skip: int | None = None) -> Any:
    """Hadamard (element-wise) product of the Gram matrices, leaving out ``skip``.

    Parameters
    ----------
    grams : sequence of ndarray, each (R, R)
        ``grams[k] = A_k^T A_k``.
    skip : int, optional
        Mode to leave out (the mode being solved for); ``None`` multiplies all,
        which gives the matrix of the model norm ``||X_hat||^2 = w^T V w``.

    Returns
    -------
    ndarray, shape (R, R)
        ``V = *_{k != skip} G_k``, symmetric positive semi-definite.

    Examples
    --------
    >>> G = [np.full((2, 2), 2.0), np.full((2, 2), 3.0), np.eye(2)]
    >>> hadamard_grams(G, skip=2)
    array([[6., 6.],
           [6., 6.]])
    >>> hadamard_grams(G)
    array([[6., 0.],
           [0., 6.]])
    """
    out = None
    for k, g in enumerate(grams):
        if k == skip:
            continue
        out = g.copy() if out is None else out * g
    if out is None:
        raise ValueError("grams must hold at least one matrix besides the skipped one")
    return out


def als_factor_update(M: Any, V: Any) -> Any:
    """Least-squares factor update: solve ``A V = M`` for ``A``.

    ``V`` (the Hadamard product of the other modes' Grams, ``R x R``) is
    inverted through its Cholesky factor, ``V^{-1} = L^{-T} L^{-1}``, and the
    ``I x R`` work is a single matrix product ``M V^{-1}``. When ``V`` is not
    numerically positive definite (a rank-deficient model) the pseudo-inverse
    from a symmetric eigendecomposition is used instead, which gives the
    minimum-norm least-squares update.

    Parameters
    ----------
    M : ndarray, shape (I, R)
        MTTKRP of the mode being updated (any block of its rows).
    V : ndarray, shape (R, R)
        ``hadamard_grams(grams, skip=n)``.

    Returns
    -------
    ndarray, shape (I, R)
        The unnormalised new factor ``M V^{-1}``.

    Notes
    -----
    Everything goes through the array module's own ``linalg`` (numpy's or
    cupy's), not scipy: scipy links a second OpenBLAS whose threads compete
    with numpy's still-spinning ones right after the MTTKRP, which cost
    milliseconds per call on a two-core machine.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> M, V = rng.standard_normal((4, 2)), np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> A = als_factor_update(M, V)
    >>> A.shape, bool(np.allclose(A @ V, M))
    ((4, 2), True)
    """
    return M @ inverse_psd(V)


def inverse_psd(V: Any) -> Any:
    """``V^{-1}`` of a symmetric positive (semi-)definite ``R x R`` matrix.

    Cholesky-based; falls back to the eigendecomposition pseudo-inverse when
    the factorisation fails or is inaccurate (a semi-definite ``V``).

    Examples
    --------
    >>> V = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> bool(np.allclose(inverse_psd(V) @ V, np.eye(2)))
    True
    >>> S = np.ones((2, 2))  # singular: the pseudo-inverse
    >>> bool(np.allclose(inverse_psd(S), np.linalg.pinv(S)))
    True
    """
    xp = get_array_module(V)
    R = V.shape[0]
    try:
        L = xp.linalg.cholesky(V)
        Linv = xp.linalg.solve(L, xp.eye(R, dtype=V.dtype))
    except Exception:  # noqa: BLE001 - numpy raises LinAlgError; any failure -> pinv
        return _psd_pinv(V)
    if xp is not np:
        # cupy does not raise on a failed factorisation: check the backward error.
        scale = float(xp.abs(V).max())
        err = float(xp.abs(L @ L.T - V).max())
        if not (math.isfinite(err) and err <= 1e3 * R * np.finfo(V.dtype).eps * scale):
            return _psd_pinv(V)
    Vinv = Linv.T @ Linv
    if not bool(xp.isfinite(Vinv).all()):
        return _psd_pinv(V)
    return Vinv


def _psd_pinv(V: Any) -> Any:
    """Pseudo-inverse of a symmetric positive semi-definite matrix."""
    xp = get_array_module(V)
    w, Q = xp.linalg.eigh(V)
    cutoff = V.shape[0] * np.finfo(V.dtype).eps * float(xp.abs(w).max())
    inv = xp.where(w > cutoff, 1.0 / xp.where(w > cutoff, w, 1.0), 0.0).astype(V.dtype)
    return (Q * inv[None, :]) @ Q.T


def hals_factor_update(A: Any, M: Any, V: Any, n_inner: int = 1) -> Any:
    """Nonnegative factor update by hierarchical ALS (HALS).

    Minimises ``||X_(n) - A K^T||^2`` over ``A >= 0`` one column at a time,
    each column exactly given the others:
    ``a_r <- max(0, a_r + (M[:, r] - A V[:, r]) / V[r, r])``. Every column
    step minimises a convex function of that column, so the model error never
    increases. A column whose ``V[r, r]`` is zero (all other factors have a
    zero column ``r``) does not enter the model and is left unchanged.

    Parameters
    ----------
    A : ndarray, shape (I, R)
        Current factor **with the weights multiplied in** (``A_n * w``), >= 0.
    M : ndarray, shape (I, R)
        MTTKRP of this mode.
    V : ndarray, shape (R, R)
        ``hadamard_grams(grams, skip=n)``.
    n_inner : int
        Passes over the columns.

    Returns
    -------
    ndarray, shape (I, R)
        The unnormalised new factor (a new array; ``A`` is not modified).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> A, M = rng.random((4, 2)), rng.standard_normal((4, 2))
    >>> V = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> B = hals_factor_update(A, M, V, n_inner=3)
    >>> B.shape, bool((B >= 0).all())
    ((4, 2), True)
    """
    xp = get_array_module(A, M, V)
    A = A.copy()
    diag = [float(d) for d in to_numpy(V.diagonal())]
    for _ in range(n_inner):
        for r, d in enumerate(diag):
            if d <= 0.0:
                continue
            col = A[:, r] + (M[:, r] - A @ V[:, r]) / d
            A[:, r] = xp.maximum(col, 0)
    return A


def normalize_factor(A: Any, G: Any) -> tuple[Any, Any, Any]:
    """Scale the columns of a new factor to unit 2-norm, using its Gram.

    Parameters
    ----------
    A : ndarray, shape (I, R)
        Unnormalised factor (or a block of its rows).
    G : ndarray, shape (R, R)
        Its full Gram ``A^T A`` (summed over all rows when distributed).

    Returns
    -------
    A_normalized : ndarray, shape (I, R)
        ``A / w`` (zero columns unchanged).
    G_normalized : ndarray, shape (R, R)
        ``G / (w w^T)``, the Gram of the normalised factor.
    weights : ndarray, shape (R,)
        Column norms ``w = sqrt(diag(G))``.

    Examples
    --------
    >>> A = np.array([[3.0, 0.0], [4.0, 2.0]])
    >>> An, Gn, w = normalize_factor(A, A.T @ A)
    >>> w, bool(np.allclose(np.linalg.norm(An, axis=0), 1)), bool(np.allclose(Gn, An.T @ An))
    (array([5., 2.]), True, True)
    """
    xp = get_array_module(A, G)
    w = xp.sqrt(xp.maximum(G.diagonal().real, 0))
    safe = xp.where(w > 0, w, 1)
    return A / safe[None, :], G / (safe[:, None] * safe[None, :]), w
