"""Dense-tensor helpers: unfolding, folding, Khatri-Rao and mode-n products.

Index conventions (see :doc:`/conventions`):

* ``unfold(X, n)`` has shape ``(I_n, prod_{k != n} I_k)``; the column index
  runs over the remaining modes in increasing order in **C order** (the last
  remaining mode varies fastest). This is TensorLy's convention.
* ``khatri_rao([A, B, C])[(i*J + j)*K + k, r] = A[i, r] * B[j, r] * C[k, r]``:
  the last matrix varies fastest, matching the unfolding, so that
  ``unfold(cp.to_dense(), n) == A_n @ diag(w) @ khatri_rao([A_k, k != n]).T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._backend import get_array_module
from ._validation import as_float_array, check_mode

__all__ = ["unfold", "fold", "khatri_rao", "mode_dot", "tensor_norm"]


def unfold(X: Any, mode: int) -> Any:
    """Mode-``mode`` unfolding (matricization) of a dense tensor.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Dense tensor, numpy or cupy.
    mode : int
        Mode whose index becomes the row index.

    Returns
    -------
    ndarray, shape (I_mode, prod_{k != mode} I_k)
        Remaining modes in increasing order, C order (last fastest). This is a
        copy unless ``mode == 0`` and ``X`` is C-contiguous.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> unfold(X, 1).shape
    (3, 8)
    >>> bool(unfold(X, 1)[2, 5] == X[1, 2, 1])
    True
    """
    xp = get_array_module(X)
    if X.ndim < 1:
        raise ValueError(f"X must have at least one dimension, got shape {X.shape}")
    mode = check_mode(mode, X.ndim)
    return xp.reshape(xp.moveaxis(X, mode, 0), (X.shape[mode], -1))


def fold(M: Any, mode: int, shape: Sequence[int]) -> Any:
    """Inverse of :func:`unfold`: rebuild the tensor of ``shape`` from its unfolding.

    Parameters
    ----------
    M : ndarray, shape (shape[mode], prod of the other sizes)
    mode : int
    shape : sequence of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> bool((fold(unfold(X, 2), 2, X.shape) == X).all())
    True
    """
    xp = get_array_module(M)
    shape = tuple(int(s) for s in shape)
    mode = check_mode(mode, len(shape))
    rest = tuple(s for k, s in enumerate(shape) if k != mode)
    if M.ndim != 2 or M.shape[0] != shape[mode] or M.shape[1] != int(np.prod(rest, dtype=np.int64)):
        raise ValueError(
            f"M has shape {tuple(M.shape)}; an unfolding of a tensor of shape {shape} "
            f"in mode {mode} has shape ({shape[mode]}, {int(np.prod(rest, dtype=np.int64))})")
    return xp.moveaxis(xp.reshape(M, (shape[mode],) + rest), 0, mode)


def khatri_rao(matrices: Sequence[Any], skip: int | None = None) -> Any:
    """Column-wise Kronecker (Khatri-Rao) product, last matrix fastest.

    Parameters
    ----------
    matrices : sequence of ndarray, each (I_k, R)
        Matrices with the same number of columns.
    skip : int, optional
        Index of a matrix to leave out (as in an MTTKRP).

    Returns
    -------
    ndarray, shape (prod I_k, R)
        ``out[(i_0 * I_1 + i_1) * I_2 + i_2, r] = A_0[i_0, r] A_1[i_1, r] A_2[i_2, r]``.

    Notes
    -----
    Builds the product left to right, so the peak extra memory is the output
    plus one partial product.

    Examples
    --------
    >>> import numpy as np
    >>> A, B = np.array([[1., 2.], [3., 4.]]), np.array([[1., 0.], [1., 1.], [0., 2.]])
    >>> khatri_rao([A, B])[:, 1]
    array([0., 2., 4., 0., 4., 8.])
    """
    mats = [m for k, m in enumerate(matrices) if k != skip]
    if len(mats) == 0:
        raise ValueError("matrices must contain at least one matrix")
    xp = get_array_module(*mats)
    mats = [as_float_array(m, f"matrices[{k}]", min_ndim=2, max_ndim=2) for k, m in enumerate(mats)]
    rank = mats[0].shape[1]
    for k, m in enumerate(mats):
        if m.shape[1] != rank:
            raise ValueError(
                f"matrices[{k}] has {m.shape[1]} columns, expected {rank} like matrices[0]")
    out = mats[0]
    for m in mats[1:]:
        out = xp.reshape(out[:, None, :] * m[None, :, :], (-1, rank))
    return out


def mode_dot(X: Any, M: Any, mode: int, transpose: bool = False) -> Any:
    """Mode-``mode`` product ``X x_mode M``.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
    M : ndarray, shape (J, I_mode), or (I_mode,) for a vector (the mode is contracted away)
    mode : int
    transpose : bool
        Multiply by ``M.T`` instead (``M`` of shape ``(I_mode, J)``).

    Returns
    -------
    ndarray
        Shape of ``X`` with ``I_mode`` replaced by ``J`` (matrix) or removed (vector).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((2, 3, 4)); M = np.ones((5, 3))
    >>> mode_dot(X, M, 1).shape
    (2, 5, 4)
    """
    xp = get_array_module(X, M)
    mode = check_mode(mode, X.ndim)
    if M.ndim == 1:
        if M.shape[0] != X.shape[mode]:
            raise ValueError(
                f"M has length {M.shape[0]} but X has size {X.shape[mode]} in mode {mode}")
        return xp.tensordot(X, M, axes=([mode], [0]))
    if M.ndim != 2:
        raise ValueError(f"M must be a vector or a matrix, got shape {tuple(M.shape)}")
    Mt = M.T if transpose else M
    if Mt.shape[1] != X.shape[mode]:
        raise ValueError(
            f"M has shape {tuple(M.shape)}; its {'rows' if transpose else 'columns'} must "
            f"match X's size {X.shape[mode]} in mode {mode}")
    return xp.moveaxis(xp.tensordot(Mt, X, axes=([1], [mode])), 0, mode)


def tensor_norm(X: Any) -> float:
    """Frobenius norm of a dense tensor, without flattening copies.

    Examples
    --------
    >>> import numpy as np
    >>> tensor_norm(np.full((2, 2, 2), 0.5))
    1.4142135623730951
    """
    xp = get_array_module(X)
    return float(xp.linalg.norm(xp.ravel(X, order="K")))
