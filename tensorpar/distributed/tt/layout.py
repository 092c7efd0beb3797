"""Which slices of a distributed tensor train each rank holds, and the local checks of them.

Layout (Al Daas, Ballard and Benner, SIAM J. Sci. Comput. 2022): core ``k`` of
a TT of shape ``(n_0, ..., n_{d-1})`` and ranks ``(r_0, ..., r_d)`` has global
shape ``(r_k, n_k, r_{k+1})``; rank ``p`` of a communicator of ``P`` ranks
holds the slice ``core[:, lo:hi, :]`` with the contiguous blocks of
:func:`tensorpar.distributed.grid.block_sizes` (sizes differ by at most one).
Every mode must have ``n_k >= P`` so that no rank holds an empty slice; a
smaller mode raises a ValueError on every rank.

These checks are rank-local and send nothing; the callers
(:class:`~tensorpar.distributed.tt.tensor.DistTTTensor`'s constructors and the
other entry points) agree on their outcome before any data moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ..._validation import SUPPORTED_DTYPES
from ..grid import block_sizes

__all__ = ["check_modes", "local_cores_problem"]


def check_modes(shape: Sequence[int], size: int) -> None:
    """Raise a ValueError when a mode is smaller than the number of ranks ``size``.

    Examples
    --------
    >>> from tensorpar.distributed.tt.layout import check_modes
    >>> check_modes((4, 2), 3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: shape (4, 2): mode 1 has size 2 < 3 ranks; ...
    """
    small = [(k, n) for k, n in enumerate(shape) if n < size]
    if small:
        k, n = small[0]
        raise ValueError(
            f"shape {tuple(shape)}: mode {k} has size {n} < {size} ranks; DistTTTensor splits "
            "every mode over all ranks and needs n_k >= comm size")


def local_cores_problem(cores: Any, shape: tuple[int, ...], comm: Any) -> str | None:
    """Why this rank's cores do not fit ``shape`` (None when they do).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed.comm import resolve_comm
    >>> from tensorpar.distributed.tt.layout import local_cores_problem
    >>> comm = resolve_comm(None)   # one process: the slices are the whole cores
    >>> local_cores_problem([np.ones((1, 4, 2)), np.ones((2, 5, 1))], (4, 5), comm) is None
    True
    >>> local_cores_problem([np.ones((1, 4, 2))], (4, 5), comm)
    'local_cores must be a list of 2 cores, one per mode'
    """
    if not isinstance(cores, (list, tuple)) or len(cores) != len(shape) or not shape:
        return f"local_cores must be a list of {len(shape)} cores, one per mode"
    left = 1
    for k, c in enumerate(cores):
        m = block_sizes(shape[k], comm.Get_size())[comm.Get_rank()]
        if getattr(c, "ndim", None) != 3:
            return f"local_cores[{k}] must be a 3-d array (r_k, m_k, r_k+1)"
        if c.shape[0] != left or c.shape[1] != m:
            return (f"local_cores[{k}] has shape {tuple(c.shape)}; expected ({left}, {m}, r) "
                    f"on rank {comm.Get_rank()}")
        if np.dtype(c.dtype) not in SUPPORTED_DTYPES:
            return f"local_cores[{k}] has dtype {c.dtype}; expected float32/64 or complex64/128"
        if not bool(get_array_module(c).isfinite(c).all()):
            return f"local_cores[{k}] has non-finite entries on rank {comm.Get_rank()}"
        left = c.shape[2]
    if left != 1:
        return f"the last local core has right rank {left}; expected 1"
    return None
