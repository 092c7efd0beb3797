"""CP-ALS with missing entries: the mask, the imputation, the row-wise weighted solve.

``W`` is a boolean tensor of ``X``'s shape, True where ``X`` is observed.
Two methods (``missing_method``):

* ``"em"`` (EM-ALS, TensorLy's masked ``parafac``; Tomasi and Bro 2005):
  the sweep runs on ``Y``, which holds ``X`` at the observed entries and the
  current model at the missing ones. ``Y`` starts with zeros there (TensorLy
  given a zero-filled ``X``) and is refilled after every sweep with the new
  model (:func:`observed_residual` with ``fill=True``). Each sweep costs a
  plain sweep plus one dense model of ``X``'s size.
* ``"wls"``: the exact minimiser of ``||W * (X - X_hat)||`` over each
  factor in turn: row ``i`` of mode ``n`` solves
  ``a_i (sum_j w_ij k_j k_j^T) = sum_j w_ij x_ij k_j`` (``k_j`` the rows of
  the Khatri-Rao product of the other factors). The right side is the
  MTTKRP of the zero-filled ``X``; the ``I_n`` matrices
  (:func:`row_grams`) cost ``|X| R^2`` flops and ``J_n R^2`` words of
  memory per mode (``J_n = prod_{k != n} I_k``), the solves ``I_n R^3``:
  about ``R`` times an EM sweep. It converges in fewer iterations when many
  entries are missing.

**Fit.** Both report the fit on the observed entries,
``1 - ||W * (X - X_hat)|| / ||W * X||``, computed densely from the model
(the MTTKRP shortcut of :mod:`tensorpar.cp.fit` does not apply). TensorLy's
masked ``parafac`` divides by the norm of the imputed tensor instead; its
models are the same (the tests compare the models' fits from one start).
All functions here act on one block of ``X`` (the whole tensor in the
serial driver, the rank's block in the distributed one), with the factor
rows of that block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from ..dense import check_memory, khatri_rao, sum_squares, unfold
from .state import ldexp_array
from .tensor import CPTensor

__all__ = ["check_missing_memory", "observed_data", "observed_residual", "fit_from_residual", "row_grams",
           "wls_factor_update", "check_mask_values"]


def check_mask_values(mask: Any, shape: tuple[int, ...], xp: Any) -> Array:
    """``mask`` as a boolean array of ``shape`` (bool, or numbers that are all 0 or 1).

    Examples
    --------
    >>> import numpy as np
    >>> check_mask_values(np.array([[1.0, 0.0]]), (1, 2), np)
    array([[ True, False]])
    >>> check_mask_values(np.array([[2.0, 0.0]]), (1, 2), np)
    Traceback (most recent call last):
    ...
    ValueError: mask must be boolean (True = observed) or hold only 0 and 1
    """
    if not hasattr(mask, "dtype"):
        try:
            mask = xp.asarray(mask)
        except Exception as exc:  # noqa: BLE001 - rewrap as a user-facing error
            raise TypeError(f"mask must be an array, got {type(mask).__name__}") from exc
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, X has shape {tuple(shape)}")
    if mask.dtype.kind == "b":
        return xp.asarray(mask)
    if mask.dtype.kind not in "iuf":
        raise TypeError(f"mask must be boolean, got dtype {mask.dtype}")
    W = xp.asarray(mask != 0)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must be boolean (True = observed) or hold only 0 and 1")
    return W


def check_missing_memory(shape: Sequence[int], rank: int, itemsize: int, method: str) -> None:
    """Raise a ValueError naming ``missing_method`` when the missing-data work would not fit.

    Bytes beside ``X`` and the factors (``shape`` is the block a process
    holds): ``Y``, the model and the masked difference (``3 |X|`` words), the
    mask (``|X|`` bytes); for ``"wls"`` also the unfolded mask in the data's
    dtype (``|X|`` words) and the largest mode's outer products and row
    matrices, ``max_n (J_n + I_n) R^2`` words.

    Examples
    --------
    >>> check_missing_memory((10**4, 10**4, 10**3), 4, 8, "em")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: missing_method: CP-ALS with missing entries (missing_method='em') on ...
    """
    size = math.prod(int(s) for s in shape)
    need = itemsize * 3 * size + size
    if method == "wls":
        R2 = int(rank) ** 2
        need += itemsize * (size + max((size // max(int(s), 1) + int(s)) * R2 for s in shape))
    check_memory(need, "missing_method", f"CP-ALS with missing entries (missing_method="
                 f"{method!r}) on shape {tuple(int(s) for s in shape)}")


def observed_data(X: Array, mask: Any, missing: Any) -> tuple[Array, Array]:
    """``(Y, W)``: ``X`` with zeros at the missing entries (a copy) and the boolean mask.

    ``missing="nan"`` marks the NaN entries of ``X`` missing (also where
    ``mask`` is True); infinite observed entries raise a ValueError.

    Examples
    --------
    >>> import numpy as np
    >>> Y, W = observed_data(np.array([[1.0, np.nan]]), None, "nan")
    >>> Y, W
    (array([[1., 0.]]), array([[ True, False]]))
    """
    xp = get_array_module(X)
    if missing not in (None, "nan"):
        raise ValueError(f"missing must be None or 'nan', got {missing!r}")
    W = xp.ones(X.shape, dtype=bool) if mask is None else check_mask_values(mask, X.shape, xp)
    if missing == "nan":
        W = W & ~xp.isnan(X)
    Y = xp.where(W, X, xp.zeros((), dtype=X.dtype))
    if not bool(xp.isfinite(Y).all()):
        raise ValueError("X contains NaN or infinite values at observed entries (use "
                         "missing='nan' to treat NaN as missing)")
    return Y, W


def observed_residual(Y: Array, W: Array, factors: Sequence[Array], weights: Array,
                      scale_exp: int, fill: bool) -> float:
    """``||W * (Y - X_hat)||^2 2^(-2 scale_exp)`` for the block; with ``fill`` refill ``Y``.

    ``weights`` are in the scaled frame (``X_hat 2^-scale_exp`` is formed,
    so nothing leaves the floating-point range); ``fill`` writes the model
    into ``Y``'s missing entries (exact power-of-two rescaling). Returns a
    float64 sum (this block's share).

    Examples
    --------
    >>> import numpy as np
    >>> Y, W = np.array([[1.0, 0.0]]), np.array([[True, False]])
    >>> observed_residual(Y, W, [np.ones((1, 1)), np.ones((2, 1))], np.array([3.0]), 0, True)
    4.0
    >>> Y
    array([[1., 3.]])
    """
    xp = get_array_module(Y)
    model = CPTensor(list(factors), weights).to_dense()
    scaled = ldexp_array(Y, -scale_exp) if scale_exp else Y
    res = sum_squares(xp.where(W, scaled - model, xp.zeros((), dtype=Y.dtype)))
    if fill:
        xp.copyto(Y, ldexp_array(model, scale_exp) if scale_exp else model, where=~W)
    return res


def fit_from_residual(norm_scaled: float, residual_sq: float) -> float:
    """``1 - sqrt(residual_sq) / norm_scaled`` (``-sqrt(residual_sq)`` for a zero norm).

    Examples
    --------
    >>> fit_from_residual(0.5, 0.01)
    0.8
    """
    r = math.sqrt(max(residual_sq, 0.0))
    return -r if norm_scaled == 0.0 else 1.0 - r / norm_scaled


def row_grams(W: Array, factors: Sequence[Array], mode: int) -> Array:
    """``G[i] = sum_j w_ij k_j k_j^T`` for the rows ``i`` of mode ``mode`` (``(I, R, R)``).

    ``k_j`` are the rows of the Khatri-Rao product of the other factors
    (their block rows); one GEMM of ``W_(n)`` with the ``J x R^2`` matrix of
    the rows' outer products.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[True, False], [True, True]])
    >>> row_grams(W, [np.ones((2, 1)), np.array([[1.0], [2.0]])], 0)[:, 0, 0]
    array([1., 5.])
    """
    xp = get_array_module(*factors)
    K = khatri_rao(list(factors), skip=mode)
    R = K.shape[1]
    outer = (K[:, :, None] * K[:, None, :]).reshape(K.shape[0], R * R)
    Wn = unfold(W, mode).astype(K.dtype)
    return xp.reshape(Wn @ outer, (Wn.shape[0], R, R))


def wls_factor_update(M: Array, G: Array, D: Array | None = None, lam: float = 0.0) -> Array:
    """Rows ``a_i = M_i (D G_i D + lam I)^{-1}`` (``D`` None: the identity).

    ``M`` is the right side as the loop holds it (already multiplied by
    ``D`` when ``D`` is given, :func:`~tensorpar.cp.scales.tracked_system`).
    A row whose matrix is singular (too few observed entries) gets the
    minimum-norm solution through a pseudo-inverse.

    Examples
    --------
    >>> import numpy as np
    >>> wls_factor_update(np.array([[2.0], [3.0]]), np.array([[[4.0]], [[0.0]]]))
    array([[0.5],
           [0. ]])
    """
    xp = get_array_module(M, G)
    if D is not None:
        G = D[None, :, None] * G * D[None, None, :]
    if lam:
        G = G + lam * xp.eye(G.shape[1], dtype=G.dtype)[None]
    try:
        out = xp.linalg.solve(G, M[:, :, None])[:, :, 0]
        if bool(xp.isfinite(out).all()):
            return out
    except np.linalg.LinAlgError:
        pass
    w, Q = xp.linalg.eigh(G)
    cutoff = G.shape[1] * np.finfo(G.dtype).eps * xp.abs(w).max(axis=1, keepdims=True)
    inv = xp.where(w > cutoff, 1.0 / xp.where(w > cutoff, w, 1.0), 0.0).astype(G.dtype)
    coef = xp.einsum("irk,ir->ik", Q, M) * inv
    return xp.einsum("irk,ik->ir", Q, coef)
