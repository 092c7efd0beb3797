"""Initialisation of TT-matrix cores so that the full matrix has Glorot or He variance.

An entry of a TT-matrix is a sum over ``prod_{k=1}^{d-1} r_k`` rank paths of
products of one entry per core. With independent zero-mean cores of
variance ``s_k^2`` its variance is ``prod_k s_k^2 prod_{k=1}^{d-1} r_k``. To
reach a target ``sigma^2`` we take every core with the same

``s^2 = (sigma^2 / prod_{k=1}^{d-1} r_k) ** (1 / d)``

(t3f's ``glorot_initializer``/``he_initializer`` do the same). Targets:
Glorot ``sigma^2 = 2 / (fan_in + fan_out)``, He ``sigma^2 = 2 / fan_in``,
LeCun ``1 / fan_in``, with ``fan_in = prod n_k`` (columns) and
``fan_out = prod m_k`` (rows). The entries are not Gaussian (products of
Gaussians) but their variance is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal, TypeAlias

import numpy as np

from .._typing import Array
from .linear import check_dtype_arg

__all__ = ["TTInit", "tt_core_std", "tt_matrix_init", "tt_target_variance"]

#: Target variance rule of the full matrix.
TTInit: TypeAlias = Literal["glorot", "he", "lecun"]


def tt_target_variance(fan_in: int, fan_out: int, init: TTInit) -> float:
    """Variance of the full matrix's entries for the rule ``init``.

    Examples
    --------
    >>> tt_target_variance(100, 300, "glorot"), tt_target_variance(100, 300, "he")
    (0.005, 0.02)
    """
    if init == "glorot":
        return 2.0 / (fan_in + fan_out)
    if init == "he":
        return 2.0 / fan_in
    if init == "lecun":
        return 1.0 / fan_in
    raise ValueError(f"init must be 'glorot', 'he' or 'lecun', got {init!r}")


def tt_core_std(ranks: Sequence[int], variance: float) -> float:
    """Standard deviation of every core's entries giving the full matrix ``variance``.

    Examples
    --------
    >>> round(tt_core_std((1, 4, 1), 0.01) ** 4 * 4, 12)
    0.01
    """
    d = len(ranks) - 1
    paths = math.prod(int(r) for r in ranks[1:-1])
    return float((variance / paths) ** (1.0 / (2 * d)))


def tt_matrix_init(row_shape: Sequence[int], col_shape: Sequence[int], ranks: Sequence[int],
                   init: TTInit = "glorot", *, rng: np.random.Generator | int | None = None,
                   dtype: Any = np.float64, xp: ModuleType = np) -> list[Array]:
    """Gaussian TT-matrix cores whose full matrix has the ``init`` variance.

    Parameters
    ----------
    row_shape, col_shape : sequence of int
        ``(m_k)`` (output modes) and ``(n_k)`` (input modes).
    ranks : sequence of int
        ``(1, r_1, ..., r_{d-1}, 1)``.
    init : {"glorot", "he", "lecun"}
    rng : numpy Generator or int, optional
        Drawn on the host, so numpy and cupy layers agree.
    dtype, xp
        Core dtype (float32/float64) and array module.

    Returns
    -------
    list of ndarray
        Cores of shape ``(r_k, m_k, n_k, r_{k+1})``.

    Examples
    --------
    >>> import numpy as np
    >>> cores = tt_matrix_init((4, 4), (8, 8), (1, 3, 1), "he", rng=0)
    >>> [c.shape for c in cores]
    [(1, 4, 8, 3), (3, 4, 8, 1)]
    """
    gen = np.random.default_rng(rng)
    var = tt_target_variance(math.prod(col_shape), math.prod(row_shape), init)
    std = tt_core_std(ranks, var)
    dt = check_dtype_arg(dtype)
    cores = []
    for k, (m, n) in enumerate(zip(row_shape, col_shape)):
        host = (std * gen.standard_normal((ranks[k], m, n, ranks[k + 1]))).astype(dt)
        cores.append(host if xp is np else xp.asarray(host))
    return cores
