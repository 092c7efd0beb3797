"""Plain numpy references of the blocked-MTTKRP kernels (the oracles of the tests).

Same contracts as :mod:`tensorpar.kernels._mttkrp_numba`, written as the
definitions: a Khatri-Rao product by broadcasting and the multi-TTV as one
``einsum``. They allocate what the definitions need (a full reshaped copy
of a block), which the compiled kernels avoid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def khatri_rao_t(mats: Sequence[Any], rank: int, dtype: Any) -> np.ndarray:
    """Transposed Khatri-Rao product ``(A_0 (.) ... (.) A_{K-1})^T``, last matrix fastest.

    Examples
    --------
    >>> khatri_rao_t([np.array([[1., 2.]]), np.array([[3., 4.], [5., 6.]])], 2, np.float64)
    array([[ 3.,  5.],
           [ 8., 12.]])
    """
    out = np.ones((rank, 1), dtype=dtype)
    for m in mats:
        mt = np.asarray(m, dtype=dtype).T
        out = (out[:, :, None] * mt[:, None, :]).reshape(rank, -1)
    return np.ascontiguousarray(out)


def multi_ttv(T: np.ndarray, KA: np.ndarray, KB: np.ndarray, a0: int, i0: int, ni: int,
              MT: np.ndarray) -> None:
    """Accumulate ``MT[r, i0 + i] += sum_{a, b} T[r, (a, i, b)] KA[r, a0 + a] KB[r, b]``.

    Examples
    --------
    >>> T = np.arange(8.).reshape(1, 8)            # (a, i, b) = (2, 2, 2)
    >>> MT = np.zeros((1, 2))
    >>> multi_ttv(T, np.ones((1, 2)), np.array([[1., 10.]]), 0, 0, 2, MT)
    >>> MT
    array([[ 64., 108.]])
    """
    R, B = T.shape[0], KB.shape[1]
    na = T.shape[1] // (ni * B) if ni * B else 0
    T4 = T.reshape(R, na, ni, B)
    MT[:, i0:i0 + ni] += np.einsum("raib,ra,rb->ri", T4, KA[:, a0:a0 + na], KB,
                                   dtype=np.float64)
