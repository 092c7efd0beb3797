"""Conversion between :class:`~tensorpar.TTTensor` and the peers' tensor trains.

TensorLy's ``TTTensor`` and teneva's lists of cores use tensorpar's core
layout (core ``k`` of shape ``(r_k, n_k, r_{k+1})``, ``r_0 = r_d = 1``), so
conversion only copies the cores into the other container. Each peer is
imported when needed; a missing one raises an ImportError naming the
``peers`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import require, to_numpy
from .checks import check_tt
from .tensor import TTTensor

__all__ = ["tt_from_tensorly", "tt_to_tensorly", "tt_from_teneva", "tt_to_teneva"]


def tt_from_tensorly(tt: Any) -> TTTensor:
    """A :class:`~tensorpar.TTTensor` from a TensorLy TT (``tensorly.tt_tensor.TTTensor``).

    Parameters
    ----------
    tt : tensorly TTTensor or a list of cores
        Cores of shape ``(r_k, n_k, r_{k+1})`` (TensorLy's ``tensor_train``
        returns them so).

    Returns
    -------
    TTTensor
        Holding copies of the cores as numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorly as tl
    >>> from tensorly.decomposition import tensor_train
    >>> from tensorpar import tt_from_tensorly
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> tt = tt_from_tensorly(tensor_train(X, rank=[1, 2, 2, 1]))
    >>> tt.ranks, bool(np.allclose(tt.to_dense(), X))
    ((1, 2, 2, 1), True)
    """
    if isinstance(tt, TTTensor):
        return tt.copy()
    cores = getattr(tt, "factors", tt)
    if not isinstance(cores, (list, tuple)):
        raise TypeError(f"tt must be a tensorly TTTensor or a list of cores, got {type(tt).__name__}")
    return TTTensor([np.array(to_numpy(c)) for c in cores])


def tt_to_tensorly(tt: TTTensor) -> Any:
    """A ``tensorly.tt_tensor.TTTensor`` with copies of the cores (needs the ``peers`` extra).

    Examples
    --------
    >>> import numpy as np
    >>> import tensorly as tl
    >>> from tensorpar import random_tt, tt_to_tensorly
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> bool(np.allclose(tl.tt_to_tensor(tt_to_tensorly(x)), x.to_dense()))
    True
    """
    check_tt(tt, "tt")
    tl_tt = require("tensorly.tt_tensor", "conversion to tensorly")
    return tl_tt.TTTensor([np.array(to_numpy(c)) for c in tt.cores])


def tt_from_teneva(cores: Any) -> TTTensor:
    """A :class:`~tensorpar.TTTensor` from teneva's list of cores (copied).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import tt_from_teneva
    >>> tt_from_teneva([np.ones((1, 2, 2)), np.ones((2, 3, 1))]).ranks
    (1, 2, 1)
    """
    if not isinstance(cores, (list, tuple)):
        raise TypeError(f"cores must be a list of 3-D arrays, got {type(cores).__name__}")
    return TTTensor([np.array(c) for c in cores])


def tt_to_teneva(tt: TTTensor) -> list[np.ndarray]:
    """teneva's representation: a list of numpy cores ``(r_k, n_k, r_{k+1})`` (copied).

    Examples
    --------
    >>> from tensorpar import random_tt, tt_to_teneva
    >>> [c.shape for c in tt_to_teneva(random_tt((3, 4), 2, seed=0))]
    [(1, 3, 2), (2, 4, 1)]
    """
    check_tt(tt, "tt")
    return [np.array(to_numpy(c)) for c in tt.cores]
