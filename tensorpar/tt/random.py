"""Random TT tensors: test operands and the sketches of randomized rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_positive_int
from .tensor import TTTensor

__all__ = ["random_tt"]


def random_tt(shape: Sequence[int], rank: int | Sequence[int], *, seed: Any = None,
              dtype: Any = np.float64) -> TTTensor:
    """A TTTensor with independent Gaussian cores.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    rank : int or sequence of d - 1 ints
        Internal TT ranks. Each is capped at the largest rank possible for
        its unfolding, ``min(n_0...n_k, n_{k+1}...n_{d-1})``, so that the
        ranks of the result are (with probability one) its exact TT ranks.
    seed : int or numpy.random.Generator, optional
    dtype : float32, float64, complex64 or complex128

    Returns
    -------
    TTTensor
        Core ``k`` has entries of variance ``1 / (n_k r_{k+1})``, which makes
        ``E ||X||^2 = 1`` for every ``d``.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> random_tt((2, 3, 4), 5, seed=0).ranks
    (1, 2, 4, 1)
    """
    shape = [check_positive_int(n, f"shape[{k}]") for k, n in enumerate(shape)]
    d = len(shape)
    if d == 0:
        raise ValueError("shape must have at least one mode")
    if isinstance(rank, (int, np.integer)) and not isinstance(rank, bool):
        inner = [int(rank)] * (d - 1)
    else:
        inner = list(rank)  # type: ignore[arg-type]  # bool was excluded above only for ints
        if len(inner) != d - 1:
            raise ValueError(f"rank must be an int or a sequence of {d - 1} ints, got {rank!r}")
    inner = [check_positive_int(r, f"rank[{k}]") for k, r in enumerate(inner)]
    ranks = [1]
    for k, r in enumerate(inner):
        left = math.prod(shape[:k + 1]) if k < 64 else r  # Python ints: no overflow
        right = math.prod(shape[k + 1:]) if d - k - 1 < 64 else r
        ranks.append(min(r, left, right))
    ranks.append(1)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    cores = []
    for k, n in enumerate(shape):
        size = (ranks[k], n, ranks[k + 1])
        scale = 1.0 / np.sqrt(n * ranks[k + 1])
        c = rng.standard_normal(size)
        if dtype.kind == "c":
            c = (c + 1j * rng.standard_normal(size)) / np.sqrt(2.0)
        cores.append((c * scale).astype(dtype))
    return TTTensor(cores)
