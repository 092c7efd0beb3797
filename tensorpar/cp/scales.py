"""Column scales of the factors, for the variants whose result depends on them.

Plain CP-ALS holds unit-norm factors and one weight vector: the model, the
only thing the iteration depends on, does not care how the scale of a
component is spread over its factors. Two variants do care:

* the ridge ``lambda sum_n ||A_n||^2`` (``l2_reg``) penalises the factors
  themselves;
* the extrapolation (``linesearch``) moves the factors themselves.

For these the loop also keeps ``col_scales[n]``, the column norms of factor
``n`` as TensorLy's ``parafac`` holds it (weights all 1, every factor with
its own scale, the last updated one taking what its solve gives), so that
``A_n = factors[n] * col_scales[n]`` and ``weights = prod_n col_scales[n]``.
The mode-``n`` update then solves TensorLy's system: with
``D = prod_{k != n} col_scales[k]``, the other factors' Gram product is
``D V D`` and the MTTKRP ``M D`` (:func:`tracked_system`).

**Scale.** In the loop's scaled frame (``X 2^-e``) each factor carries
``2^(-e/N)`` of the scale, so the ridge weight becomes
``lambda 2^(-2e(N-1)/N)`` (:func:`frame_l2`): the objective is then the
unscaled one times ``2^-2e``, and the iterates are those of the unscaled
problem. A ridge is not scale-invariant: ``c X`` with ``l2_reg = lambda
c^(2 - 2/N)`` gives ``c`` times the model of ``X`` with ``lambda``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._backend import get_array_module
from .._typing import Array

__all__ = ["column_norms", "others_product", "frame_l2", "tracked_system"]


def column_norms(A: Array) -> Array:
    """2-norms of the columns of ``A`` (shape ``(R,)``).

    Examples
    --------
    >>> import numpy as np
    >>> column_norms(np.array([[3.0, 0.0], [4.0, 2.0]]))
    array([5., 2.])
    """
    xp = get_array_module(A)
    return xp.sqrt((A * A).sum(axis=0))


def others_product(col_scales: Sequence[Array], skip: int) -> Array:
    """``D = prod_{k != skip} col_scales[k]`` (shape ``(R,)``).

    Examples
    --------
    >>> import numpy as np
    >>> others_product([np.array([2.0]), np.array([3.0]), np.array([5.0])], 1)
    array([10.])
    """
    out = None
    for k, s in enumerate(col_scales):
        if k != skip:
            out = s.copy() if out is None else out * s
    if out is None:
        raise ValueError("col_scales must hold at least two modes")
    return out


def frame_l2(l2_reg: float, scale_exp: int, ndim: int) -> float:
    """The ridge weight in the frame of ``X 2^-scale_exp`` (module docstring).

    Examples
    --------
    >>> frame_l2(1.0, 3, 3)
    0.0625
    """
    return l2_reg * 2.0 ** (-2.0 * scale_exp * (ndim - 1) / ndim) if l2_reg else 0.0


def tracked_system(M: Array, V: Array, D: Array, lam: float) -> tuple[Array, Array]:
    """``(M D, D V D + lam I)``: the mode's least-squares system for TensorLy's factors.

    Examples
    --------
    >>> import numpy as np
    >>> MA, VA = tracked_system(np.ones((1, 2)), np.eye(2), np.array([1.0, 2.0]), 0.5)
    >>> MA, VA
    (array([[1., 2.]]), array([[1.5, 0. ],
           [0. , 4.5]]))
    """
    xp = get_array_module(M, V)
    VA = D[:, None] * V * D[None, :]
    if lam:
        VA = VA + lam * xp.eye(V.shape[0], dtype=V.dtype)
    return M * D[None, :], VA
