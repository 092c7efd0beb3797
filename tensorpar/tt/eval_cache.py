"""A vectorised memo of function values at multi-indices, for TT-cross.

Cross approximation asks for the same multi-indices again and again (each
sweep re-reads the fibres of the previous one, and a converged sweep asks only
for known entries). :class:`EvalCache` keeps the values in a sorted array of
integer keys and looks up a whole batch with one :func:`numpy.searchsorted`,
instead of one Python dictionary access per index.

Keys: when ``prod(shape) < 2**63`` a multi-index is encoded by its C-order
linear index (an ``int64``); otherwise by the raw bytes of its row (a numpy
``void`` scalar of ``8 d`` bytes), which sorts and compares just as well.
Cost per batch of ``m`` indices with ``N`` entries stored:
``O(m log m + m log N)`` to look up and ``O(N + m)`` to insert (one
``numpy.insert`` of a sorted block).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["EvalCache"]


class EvalCache:
    """Values of a function at multi-indices of a fixed shape.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.

    Attributes
    ----------
    n_hits : int
        Requested indices answered from the cache (duplicates within one
        batch count as hits).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.eval_cache import EvalCache
    >>> calls = []
    >>> def f(idx):
    ...     calls.append(len(idx))
    ...     return idx.sum(axis=1).astype(float)
    >>> cache = EvalCache((4, 4))
    >>> cache.get(np.array([[0, 1], [2, 3], [0, 1]]), f).tolist()
    [1.0, 5.0, 1.0]
    >>> cache.get(np.array([[2, 3], [3, 3]]), f).tolist()
    [5.0, 6.0]
    >>> calls, len(cache), cache.n_hits
    ([2, 1], 3, 2)
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(n) for n in shape)
        d = len(self.shape)
        linear = math.prod(self.shape) < 2**63
        self._strides: np.ndarray | None = None
        if linear:
            strides = [math.prod(self.shape[k + 1:]) for k in range(d)]
            self._strides = np.asarray(strides, dtype=np.int64)
        self._keys: np.ndarray = np.empty(0, dtype=np.int64 if linear else f"V{8 * d}")
        self._values = np.empty(0, dtype=np.float64)
        self.n_hits = 0

    def __len__(self) -> int:
        return int(self._values.shape[0])

    def encode(self, idx: np.ndarray) -> np.ndarray:
        """One sortable key per row of ``idx`` (shape (m, d), in range)."""
        if self._strides is not None:
            return np.asarray(idx @ self._strides, dtype=np.int64)
        rows = np.ascontiguousarray(idx, dtype=np.int64)
        return rows.view(self._keys.dtype).ravel()

    def get(self, idx: np.ndarray,
            evaluate: Callable[[np.ndarray], Any]) -> np.ndarray | None:
        """Values at the rows of ``idx``, calling ``evaluate`` once on the unknown distinct rows.

        ``evaluate(rows)`` returns their values (shape ``(len(rows),)``), or None
        to decline (then nothing is stored and None is returned).
        """
        keys = self.encode(idx)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        pos = np.searchsorted(self._keys, uniq)
        pos_c = np.minimum(pos, max(len(self) - 1, 0))
        hit = (pos < len(self)) & (self._keys[pos_c] == uniq) if len(self) else \
            np.zeros(uniq.shape, dtype=bool)
        vals = np.empty(uniq.shape, dtype=np.float64)
        vals[hit] = self._values[pos_c[hit]]
        new = ~hit
        if new.any():
            fresh = evaluate(idx[first[new]])
            if fresh is None:
                return None
            vals[new] = fresh
            # uniq is sorted, so the new keys form a sorted block to insert at pos
            self._keys = np.insert(self._keys, pos[new], uniq[new])
            self._values = np.insert(self._values, pos[new], vals[new])
        self.n_hits += int(keys.shape[0]) - int(new.sum())
        return vals[inverse.ravel()]
