"""Tensor trains (TT, also matrix product states).

* :mod:`~tensorpar.tt.tensor` -- the :class:`TTTensor` container;
* :mod:`~tensorpar.tt.random` -- :func:`random_tt`;
* :mod:`~tensorpar.tt.checks` -- argument checks of TT operands;
* :mod:`~tensorpar.tt.matrix` -- :class:`TTMatrix` (TT-operators) and their products;
* :mod:`~tensorpar.tt.construct` -- TT-SVD and TTs from functions of indices;
* :mod:`~tensorpar.tt.ops` -- sums, scaling and Hadamard products;
* :mod:`~tensorpar.tt.inner` -- dot products and norms;
* :mod:`~tensorpar.tt.orth` -- orthogonalisation and its per-core steps;
* :mod:`~tensorpar.tt.sweeps` -- the sweep primitives of rounding;
* :mod:`~tensorpar.tt.scale` -- exact power-of-two scaling (results independent of magnitude);
* :mod:`~tensorpar.tt.rounding` -- :func:`tt_round` and its variants
  (:mod:`~tensorpar.tt.rounding_gram`, :mod:`~tensorpar.tt.rounding_rand`).
"""

from __future__ import annotations

from .construct import tt_from_function, tt_svd
from .cross import CrossResult, tt_cross
from .entry_sum import tt_entry_mean, tt_entry_sum
from .inner import tt_dot, tt_log_dot, tt_log_norm, tt_norm
from .matrix import TTMatrix, ttm_matmat, ttm_matvec
from .ops import tt_add, tt_hadamard, tt_scale, tt_sub, tt_sum
from .orth import tt_orthogonalize, tt_orthonormalize
from .random import random_tt
from .rounding import tt_round, tt_round_sum
from .tensor import TTTensor

__all__ = [
    "CrossResult", "tt_cross", "tt_entry_mean", "tt_entry_sum",
    "TTMatrix", "TTTensor", "random_tt", "tt_add", "tt_dot", "tt_from_function", "tt_hadamard",
    "tt_log_dot", "tt_log_norm", "tt_norm", "tt_orthogonalize", "tt_orthonormalize", "tt_round",
    "tt_round_sum", "tt_scale", "tt_sub", "tt_sum", "tt_svd", "ttm_matmat", "ttm_matvec",
]
