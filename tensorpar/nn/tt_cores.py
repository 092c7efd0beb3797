"""TT-matrix cores as parameters, and the shape and rank rules of the TT layers.

:class:`TTCores` holds the cores of :class:`~tensorpar.nn.TTLinear`,
:class:`~tensorpar.nn.TTEmbedding` and the TT recurrent cells;
:func:`resolve_tt_ranks` turns their ``rank=`` argument into TT ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import Array
from ..tt.matrix import TTMatrix
from .checks import check_positive_int
from .module import Module, Parameter

__all__ = ["TTCores", "check_mode_shape", "resolve_tt_ranks", "tt_num_params"]


class TTCores(Module):
    """The cores of a TT-matrix as parameters named ``"0", "1", ...`` (PyTorch ParameterList style).

    Examples
    --------
    >>> import numpy as np
    >>> c = TTCores([np.ones((1, 2, 2, 3)), np.ones((3, 2, 2, 1))])
    >>> [name for name, _ in c.named_parameters()], len(c)
    (['0', '1'], 2)
    """

    def __init__(self, cores: Sequence[Array]) -> None:
        super().__init__()
        TTMatrix(list(cores))  # checks the shapes and the rank chain
        for k, c in enumerate(cores):
            setattr(self, str(k), Parameter(c))

    def __len__(self) -> int:
        return len(self._parameters)

    def data(self) -> list[Array]:
        """The core arrays, in order.

        Examples
        --------
        >>> from tensorpar.nn import TTLinear
        >>> [c.shape for c in TTLinear((4, 4), (4, 4), rank=2, seed=0).cores.data()]
        [(1, 4, 4, 2), (2, 4, 4, 1)]
        """
        return [p.data for p in self._parameters.values()]

    def grads(self) -> list[Array]:
        """The gradient arrays, in order.

        Examples
        --------
        >>> from tensorpar.nn import TTLinear
        >>> layer = TTLinear((4, 4), (4, 4), rank=2, seed=0)
        >>> [float(g.sum()) for g in layer.cores.grads()]     # zero until a backward pass
        [0.0, 0.0]
        """
        return [p.grad for p in self._parameters.values()]


def check_mode_shape(shape: Any, name: str) -> tuple[int, ...]:
    """Return a tuple of positive ints (a tensorized size).

    Examples
    --------
    >>> check_mode_shape([4, 8], "in_shape")
    (4, 8)
    """
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)) or not shape:
        raise TypeError(f"{name} must be a non-empty sequence of positive ints, got {shape!r}")
    return tuple(check_positive_int(s, f"{name}[{k}]") for k, s in enumerate(shape))


def tt_num_params(row_shape: Sequence[int], col_shape: Sequence[int], ranks: Sequence[int]) -> int:
    """``sum_k r_k m_k n_k r_{k+1}``: parameters of a TT-matrix.

    Examples
    --------
    >>> tt_num_params((12, 4, 4, 4), (8, 20, 20, 18), (1, 4, 4, 4, 1))
    3232
    """
    return sum(ranks[k] * m * n * ranks[k + 1] for k, (m, n) in enumerate(zip(row_shape, col_shape)))


def resolve_tt_ranks(rank: Any, row_shape: Sequence[int], col_shape: Sequence[int]) -> tuple[int, ...]:
    """TT ranks ``(1, r_1, ..., r_{d-1}, 1)`` from an int, a sequence or a fraction.

    Parameters
    ----------
    rank : int, sequence of int, or float
        An int is every inner rank; a sequence gives the ``d - 1`` inner
        ranks (or all ``d + 1`` with ones at the ends); a float in ``(0, 1]``
        is a fraction of the dense parameter count ``M N``: the largest
        uniform rank whose TT-matrix has at most that many parameters (at
        least rank 1), as tensorly-torch does. Ranks are clipped to the
        largest useful ``min(prod_{j<k} m_j n_j, prod_{j>=k} m_j n_j)``.

    Examples
    --------
    >>> resolve_tt_ranks(4, (4, 4, 4), (4, 4, 4))
    (1, 4, 4, 1)
    >>> resolve_tt_ranks(0.1, (8, 8), (8, 8))  # 2 * 64 * 3 = 384 <= 0.1 * 4096 parameters
    (1, 3, 1)
    """
    d = len(row_shape)
    sizes = [m * n for m, n in zip(row_shape, col_shape)]
    cap = [1] + [min(math.prod(sizes[:k]), math.prod(sizes[k:])) for k in range(1, d)] + [1]
    if isinstance(rank, (float, np.floating)) and not isinstance(rank, bool):
        if not 0.0 < float(rank) <= 1.0:
            raise ValueError(f"rank as a float is a fraction of the dense parameters in (0, 1], got {rank}")
        budget = float(rank) * math.prod(row_shape) * math.prod(col_shape)
        r = 1
        while r < max(cap) and tt_num_params(row_shape, col_shape,
                                              [min(r + 1, c) for c in cap]) <= budget:
            r += 1
        return tuple(min(r, c) for c in cap)
    if isinstance(rank, (int, np.integer)) and not isinstance(rank, bool):
        inner = [check_positive_int(rank, "rank")] * (d - 1)
    elif isinstance(rank, (list, tuple)):
        vals = [check_positive_int(r, f"rank[{k}]") for k, r in enumerate(rank)]
        if len(vals) == d + 1:
            if vals[0] != 1 or vals[-1] != 1:
                raise ValueError(f"rank with {d + 1} entries must start and end with 1, got {tuple(vals)}")
            vals = vals[1:-1]
        if len(vals) != d - 1:
            raise ValueError(f"rank must have {d - 1} inner ranks (or {d + 1} with the ones) for "
                             f"{d} modes, got {len(vals)}")
        inner = vals
    else:
        raise TypeError(f"rank must be an int, a sequence of ints or a float, got {type(rank).__name__}")
    return tuple(min(r, c) for r, c in zip([1, *inner, 1], cap))
