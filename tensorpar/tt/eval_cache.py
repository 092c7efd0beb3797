"""A vectorised memo of function values at multi-indices, for TT-cross.

Cross approximation asks for the same multi-indices again and again (each
sweep re-reads the fibres of the previous one, and a converged sweep asks only
for known entries). :class:`EvalCache` keeps the values in a few sorted runs
of ``int64`` keys and looks up a whole batch with one :func:`numpy.searchsorted`
per run, instead of one Python dictionary access per index.

Keys: when ``prod(shape) < 2**63`` a multi-index is encoded by its C-order
linear index. Otherwise by a 64-bit hash (the row times odd random
multipliers, modulo ``2**64``), and the rows are stored beside the values so
that every hash match is verified; at the first collision (two rows, one
hash) the cache switches for good to the raw bytes of the rows as keys (numpy
``void`` scalars of ``8 d`` bytes), which are exact but sort and compare ten
times slower than integers (measured: searchsorted of 800 ``V160`` keys in
4e4 took ~1 ms, of ``int64`` keys ~30 us).

Storage: every batch of new keys becomes a sorted run; the last two runs are
merged while the older one is at most :data:`MERGE_FACTOR` times as long, so
there are ``O(log N)`` runs and every key is merged ``O(log N)`` times.
Inserting into one sorted array instead costs ``O(N)`` per batch.
Cost per batch of ``m`` indices with ``N`` entries stored: ``O(m log m)`` to
remove duplicates (skipped with ``distinct=True``), ``O(m log N)`` per run to
look up, and ``O(m log N)`` amortized to store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["EvalCache"]

#: Runs are merged while the older is at most this many times longer than the newer:
#: fewer, longer runs to search against more merging (measured on tt_cross d = 20,
#: n = 32: 4 and 8 ~8% faster than 2, the binary counter).
MERGE_FACTOR = 4

#: log2 of the number of flags of the filter in front of the binary searches (4 MiB,
#: allocated lazily): false positives (wasted searches) are a fraction N / 2**22.
FILTER_BITS = 22

_Run = tuple[np.ndarray, np.ndarray]  # sorted keys, their slots in the value store


class _Collision(Exception):
    """Two distinct rows with one hash key."""


class EvalCache:
    """Values of a function at multi-indices of a fixed shape.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    hash_weights : array_like of int, optional
        Multipliers (``d`` of them, reduced modulo ``2**64``) of the hash keys
        used when ``prod(shape) >= 2**63``; default fixed random odd numbers.
        Given to test the collision fallback.

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

    def __init__(self, shape: Sequence[int], hash_weights: Any = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        d = len(self.shape)
        self.linear = math.prod(self.shape) < 2**63
        if self.linear:
            weights = np.asarray([math.prod(self.shape[k + 1:]) for k in range(d)])
        elif hash_weights is None:
            weights = np.random.default_rng(0x7E4C).integers(0, 2**63, size=d) * 2 + 1
        else:
            weights = np.asarray(hash_weights, dtype=object) % 2**64
            if weights.shape != (d,):
                raise ValueError(f"hash_weights must have {d} entries, got shape {weights.shape}")
        self._weights = weights.astype(np.uint64)
        #: raw row bytes as keys: exact, the fallback after a hash collision
        self.byte_keys = False
        self._runs: list[_Run] = []  # longest first
        # values (and rows, for hash keys) in insertion order, grown by doubling; runs
        # hold slots into them, so that merging runs moves 16 bytes per entry, not 8 d
        self._size = 0
        self._values = np.empty(0, dtype=np.float64)
        # the smallest unsigned type that holds every index: copies 8x smaller for n <= 256
        self._rows = np.empty((0, d), dtype=np.min_scalar_type(max(self.shape, default=1)))
        self._filter: np.ndarray | None = None  # see _candidates
        self.n_hits = 0

    def __len__(self) -> int:
        return self._size

    def encode(self, idx: np.ndarray) -> np.ndarray:
        """One sortable key per row of ``idx`` (shape (m, d), in range).

        Examples
        --------
        >>> import numpy as np
        >>> EvalCache((4, 5)).encode(np.array([[0, 0], [1, 2], [3, 4]])).tolist()   # linear indices
        [0, 7, 19]
        """
        if self.byte_keys:
            rows = np.ascontiguousarray(idx, dtype=np.int64)
            return rows.view(f"V{8 * len(self.shape)}").ravel()
        # unsigned products wrap modulo 2**64: exact linear indices, or hashes
        return (np.asarray(idx).astype(np.uint64) @ self._weights).view(np.int64)

    def _verify(self) -> bool:
        return not (self.linear or self.byte_keys)

    def _filter_slots(self, keys: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: the top bits of key * (2**64 / golden ratio) spread any keys
        product = keys.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return np.asarray(product >> np.uint64(64 - FILTER_BITS)).astype(np.intp)

    def _candidates(self, keys: np.ndarray) -> np.ndarray:
        """Positions of the keys that may be stored: a one-hash Bloom filter of ``2**FILTER_BITS`` flags.

        Cross sweeps mostly ask for new entries (6% hits on sin(s) + cos(2 s), d = 20,
        n = 32), so the filter saves most of the binary searches.
        """
        if self._filter is None:
            return np.arange(keys.shape[0]) if self.byte_keys else np.empty(0, np.intp)
        return np.flatnonzero(self._filter[self._filter_slots(keys)])

    def _lookup(self, keys: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values of the stored ``keys`` and which keys are stored (rows of ``idx``)."""
        vals = np.empty(keys.shape, dtype=np.float64)
        hit = np.zeros(keys.shape, dtype=bool)
        where = self._candidates(keys)
        if where.shape[0] == 0:
            return vals, hit
        keys, idx = keys[where], idx[where]
        for run_keys, run_slots in self._runs:
            pos = np.searchsorted(run_keys, keys)
            np.minimum(pos, run_keys.shape[0] - 1, out=pos)
            found = run_keys[pos] == keys
            slots = run_slots[pos[found]]
            if self._verify() and not (self._rows[slots] == idx[found]).all():
                raise _Collision
            vals[where[found]] = self._values[slots]
            hit[where[found]] = True
        return vals, hit

    def _new_run(self, keys: np.ndarray) -> _Run:
        """The sorted run of new distinct rows' ``keys`` (checked distinct), slots from the end."""
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if self._verify() and keys.shape[0] > 1 and bool((keys[1:] == keys[:-1]).any()):
            raise _Collision
        return keys, order + self._size

    def _append(self, vals: np.ndarray, rows: np.ndarray) -> None:
        end = self._size + vals.shape[0]
        if end > self._values.shape[0]:
            cap = max(2 * self._values.shape[0], end, 1024)
            values = np.empty(cap, dtype=np.float64)
            values[:self._size] = self._values[:self._size]
            self._values = values
            if self._verify():
                grown = np.empty((cap, len(self.shape)), dtype=self._rows.dtype)
                grown[:self._size] = self._rows[:self._size]
                self._rows = grown
        self._values[self._size:end] = vals
        if self._verify():
            self._rows[self._size:end] = rows
        self._size = end

    def _store(self, run: _Run) -> None:
        """Add a sorted run of new keys, then merge runs while the older one is not longer than twice."""
        if not self.byte_keys:
            if self._filter is None:
                self._filter = np.zeros(1 << FILTER_BITS, dtype=bool)
            self._filter[self._filter_slots(run[0])] = True
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and runs[-2][0].shape[0] <= MERGE_FACTOR * runs[-1][0].shape[0]:
            (k1, s1), (k2, s2) = runs.pop(), runs.pop()
            # merge two sorted runs in O(len): place the shorter one by searchsorted
            at = np.searchsorted(k2, k1) + np.arange(k1.shape[0])
            rest = np.ones(k1.shape[0] + k2.shape[0], dtype=bool)
            rest[at] = False
            keys, slots = np.empty(rest.shape, dtype=k1.dtype), np.empty(rest.shape, np.int64)
            keys[at], keys[rest] = k1, k2
            slots[at], slots[rest] = s1, s2
            runs.append((keys, slots))

    def _to_byte_keys(self) -> None:
        """After a hash collision: re-key everything stored by the rows' bytes."""
        self.byte_keys = True
        self._filter = None
        self._runs = []
        if self._size:
            keys = self.encode(self._rows[:self._size])
            order = np.argsort(keys)
            self._runs = [(keys[order], order)]

    def get(self, idx: np.ndarray, evaluate: Callable[[np.ndarray], Any],
            distinct: bool = False) -> np.ndarray | None:
        """Values at the rows of ``idx``, calling ``evaluate`` once on the unknown distinct rows.

        ``evaluate(rows)`` returns their values (shape ``(len(rows),)``), or None
        to decline (then nothing is stored and None is returned). With
        ``distinct=True`` the caller promises that the rows of ``idx`` are
        distinct (the fibres of a cross sweep are), which saves sorting them.

        Examples
        --------
        >>> import numpy as np
        >>> cache = EvalCache((3, 3))
        >>> f = lambda rows: rows[:, 0] * 10.0 + rows[:, 1]
        >>> cache.get(np.array([[1, 2], [2, 0]]), f).tolist(), len(cache)
        ([12.0, 20.0], 2)
        >>> cache.get(np.array([[1, 2]]), f).tolist(), cache.n_hits
        ([12.0], 1)
        """
        idx = np.asarray(idx)
        try:
            return self._get(idx, evaluate, distinct)
        except _Collision:  # raised before evaluate is called: nothing counted twice
            self._to_byte_keys()
            return self._get(idx, evaluate, distinct)

    def _get(self, idx: np.ndarray, evaluate: Callable[[np.ndarray], Any],
             distinct: bool) -> np.ndarray | None:
        keys = self.encode(idx)
        inverse = None
        if distinct:
            rows = idx
        else:
            keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            rows = idx[first]
            if self._verify() and not (rows[inverse.ravel()] == idx).all():
                raise _Collision
        vals, hit = self._lookup(keys, rows)
        new = ~hit
        n_new = int(np.count_nonzero(new))
        if n_new:
            rows_new = rows[new] if n_new < len(keys) else rows
            run = self._new_run(keys[new])
            fresh = evaluate(rows_new)
            if fresh is None:
                return None
            vals[new] = fresh
            self._append(vals[new], rows_new)
            self._store(run)
        self.n_hits += int(idx.shape[0]) - n_new
        return vals if inverse is None else vals[inverse.ravel()]
