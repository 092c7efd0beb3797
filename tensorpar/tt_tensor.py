"""The tensor-train (TT) container."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._backend import get_array_module
from ._validation import as_float_array

__all__ = ["TTTensor"]


class TTTensor:
    """A tensor in tensor-train form.

    ``X[i_0, ..., i_{d-1}] = G_0[:, i_0, :] @ G_1[:, i_1, :] @ ... @ G_{d-1}[:, i_{d-1}, :]``

    Parameters
    ----------
    cores : sequence of ndarray
        Core ``k`` has shape ``(r_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``;
        neighbouring ranks must chain. numpy or cupy, one dtype family.

    Attributes
    ----------
    shape : tuple of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : tuple of int
        TT ranks ``(r_0, ..., r_d)``, including the boundary ones.

    Examples
    --------
    >>> import numpy as np
    >>> tt = TTTensor([np.ones((1, 2, 2)), np.ones((2, 3, 1))])
    >>> tt.shape, tt.ranks
    ((2, 3), (1, 2, 1))
    >>> tt.to_dense()
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """

    def __init__(self, cores: Sequence[Any]) -> None:
        if not isinstance(cores, (list, tuple)) or len(cores) == 0:
            raise TypeError("cores must be a non-empty list of 3-D arrays")
        get_array_module(*cores)
        cores = [as_float_array(c, f"cores[{k}]", min_ndim=3, max_ndim=3)
                 for k, c in enumerate(cores)]
        if cores[0].shape[0] != 1:
            raise ValueError(f"cores[0] must have left rank 1, got shape {tuple(cores[0].shape)}")
        if cores[-1].shape[2] != 1:
            raise ValueError(
                f"cores[{len(cores) - 1}] must have right rank 1, got shape {tuple(cores[-1].shape)}")
        for k in range(len(cores) - 1):
            if cores[k].shape[2] != cores[k + 1].shape[0]:
                raise ValueError(
                    f"ranks do not chain: cores[{k}] has right rank {cores[k].shape[2]} but "
                    f"cores[{k + 1}] has left rank {cores[k + 1].shape[0]}")
        for k, c in enumerate(cores):
            if min(c.shape) < 1:
                raise ValueError(f"cores[{k}] has an empty dimension: shape {tuple(c.shape)}")
        self.cores: list[Any] = list(cores)

    # -- shape --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def ndim(self) -> int:
        return len(self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        return (1,) + tuple(int(c.shape[2]) for c in self.cores)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[c.dtype for c in self.cores])

    def __repr__(self) -> str:
        return f"TTTensor(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype})"

    def copy(self) -> "TTTensor":
        """Deep copy."""
        return TTTensor([c.copy() for c in self.cores])

    # -- evaluation ---------------------------------------------------------
    def to_dense(self) -> Any:
        """Form the full tensor (``prod n_k`` entries; for small tensors only)."""
        xp = get_array_module(*self.cores)
        out = self.cores[0].reshape(self.shape[0], -1)
        for c in self.cores[1:]:
            r, n, s = c.shape
            out = xp.reshape(out @ xp.reshape(c, (r, n * s)), (-1, s))
        return xp.reshape(out, self.shape)

    def entries(self, indices: Any) -> Any:
        """Entries at given multi-indices.

        Parameters
        ----------
        indices : array_like of int, shape (m, d) or (d,)
            Multi-indices; negative values count from the end as in numpy.

        Returns
        -------
        ndarray of shape (m,) (or a scalar for a single multi-index)
            Computed with ``d`` batched vector-matrix products, O(m d r^2).
        """
        xp = get_array_module(*self.cores)
        idx = np.asarray(indices.get() if hasattr(indices, "get") else indices)
        single = idx.ndim == 1
        idx = np.atleast_2d(idx)
        if idx.ndim != 2 or idx.shape[1] != self.ndim:
            raise ValueError(
                f"indices must have shape (m, {self.ndim}), got {tuple(np.shape(indices))}")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        shape = np.asarray(self.shape)
        if ((idx < -shape) | (idx >= shape)).any():
            raise ValueError(f"indices out of range for a TT tensor of shape {self.shape}")
        idx = idx % shape
        vec = xp.ones((idx.shape[0], 1), dtype=self.dtype)
        for k, c in enumerate(self.cores):
            sel = c[:, xp.asarray(idx[:, k]), :]          # (r, m, s)
            vec = xp.einsum("mr,rms->ms", vec, sel)
        vals = vec[:, 0]
        return vals[0] if single else vals
