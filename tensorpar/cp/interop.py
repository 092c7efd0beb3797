"""Conversion to and from the peers' CP containers (tensorly, pyttb).

Both peers are optional: each function imports its peer when called and
raises an ImportError naming the ``peers`` extra when it is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import require, to_numpy
from .tensor import CPTensor

__all__ = ["cp_to_tensorly", "cp_from_tensorly", "cp_to_pyttb", "cp_from_pyttb"]


def cp_to_tensorly(cp: CPTensor) -> Any:
    """Return a :class:`tensorly.cp_tensor.CPTensor` with the same weights and factors.

    Examples
    --------
    >>> import tensorly as tl
    >>> from tensorpar import random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> bool(np.allclose(tl.cp_to_tensor(cp_to_tensorly(cp)), cp.to_dense()))
    True
    """
    tl_cp = require("tensorly.cp_tensor", "conversion to tensorly")
    return tl_cp.CPTensor((to_numpy(cp.weights), [to_numpy(f) for f in cp.factors]))


def cp_from_tensorly(cp: Any) -> CPTensor:
    """Build a :class:`~tensorpar.CPTensor` from a tensorly CP tensor.

    ``cp`` may be a tensorly ``CPTensor`` or a ``(weights, factors)`` pair.

    Examples
    --------
    >>> from tensorly.random import random_cp as tl_random_cp
    >>> tl_cp = tl_random_cp((3, 4, 5), 2, random_state=0)
    >>> cp = cp_from_tensorly(tl_cp)
    >>> cp.rank, bool(np.allclose(cp.to_dense(), tl_cp.to_tensor()))
    (2, True)
    """
    try:
        weights, factors = cp
    except (TypeError, ValueError):
        raise TypeError(
            f"cp must be a tensorly CPTensor or a (weights, factors) pair, got {type(cp).__name__}"
        ) from None
    factors = [np.asarray(f) for f in factors]
    weights = None if weights is None else np.asarray(weights)
    return CPTensor(factors, weights)


def cp_to_pyttb(cp: CPTensor) -> Any:
    """Return a :class:`pyttb.ktensor` (copies; pyttb stores Fortran-ordered factors).

    Examples
    --------
    >>> from tensorpar import random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> kt = cp_to_pyttb(cp)
    >>> bool(np.allclose(kt.full().data, cp.to_dense()))
    True
    """
    ttb = require("pyttb", "conversion to pyttb")
    return ttb.ktensor([np.asfortranarray(to_numpy(f)) for f in cp.factors],
                       np.array(to_numpy(cp.weights)), copy=True)


def cp_from_pyttb(kt: Any) -> CPTensor:
    """Build a :class:`~tensorpar.CPTensor` from a :class:`pyttb.ktensor`.

    Examples
    --------
    >>> import pyttb as ttb
    >>> kt = ttb.ktensor([np.ones((3, 2)), np.ones((4, 2))], np.array([1.0, 2.0]))
    >>> cp = cp_from_pyttb(kt)
    >>> cp.shape, float(cp.to_dense()[0, 0])
    ((3, 4), 3.0)
    """
    if not hasattr(kt, "factor_matrices") or not hasattr(kt, "weights"):
        raise TypeError(f"kt must be a pyttb.ktensor, got {type(kt).__name__}")
    return CPTensor([np.ascontiguousarray(f) for f in kt.factor_matrices],
                    np.array(kt.weights))
