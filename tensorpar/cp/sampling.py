"""Sampling pieces of randomized CP-ALS (CPRAND): Khatri-Rao rows, fibres, entries.

Row ``j`` of the Khatri-Rao product ``Z_n`` of the factors other than mode
``n`` (:func:`tensorpar.dense.khatri_rao`, last factor fastest) is addressed by one index
``i_k`` per other mode, and ``Z_n[j] = prod_{k != n} A_k[i_k]`` (elementwise);
the matching column of the unfolding ``X_(n)`` is the mode-``n`` fibre
``X[i_0, ..., :, ..., i_{N-1}]``. Drawing ``S`` multi-indices therefore
samples rows of ``Z_n`` and columns of ``X_(n)`` together without forming
either (Battaglino, Ballard and Kolda, SIMAX 39(2), 2018).

Two distributions (both with replacement, every index drawn on the host from
one numpy Generator, so every process that holds the same Generator draws
the same samples):

* ``"uniform"``: each ``i_k`` uniform on ``[0, I_k)``, so every row of
  ``Z_n`` is equally likely (the paper's CPRAND without its mixing step);
* ``"leverage"``: each ``i_k`` drawn with probability proportional to the
  leverage score of row ``i_k`` of ``A_k`` (squared row norm of an
  orthonormal basis of its column space). The product of these bounds the
  leverage score of the Khatri-Rao row (Larsen and Kolda, SIMAX 43(3), 2022,
  the scheme of TensorLy's ``randomised_parafac``); sampled rows are
  reweighted by ``1 / sqrt(S p_j)`` so that the sampled normal equations are
  unbiased. Here the weights are divided by the uniform ones,
  ``w_j^2 = prod_k 1 / (I_k p_k[i_k])``, which changes no solution (the
  factor cancels in the least-squares problem) and keeps them near 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .._backend import get_array_module, to_numpy
from .._typing import Array

__all__ = ["Sampling", "SAMPLINGS", "leverage_probabilities", "draw_rows", "sampled_kr",
           "gather_fibres", "draw_entries", "model_entries"]

#: How the rows of the Khatri-Rao product are drawn.
Sampling = Literal["uniform", "leverage"]
SAMPLINGS: tuple[str, ...] = ("uniform", "leverage")


def leverage_probabilities(A: Array) -> np.ndarray:
    """Sampling probabilities of the rows of ``A`` proportional to their leverage scores.

    The leverage score of row ``i`` is ``||U[i]||^2`` for ``U`` an
    orthonormal basis of the column space of ``A`` (the left singular vectors
    of the singular values above ``max(I, R) eps s_max``, so a rank-deficient
    factor counts only its true directions); the scores sum to the rank. A
    zero factor gets uniform probabilities.

    Parameters
    ----------
    A : ndarray, shape (I, R)

    Returns
    -------
    numpy.ndarray, shape (I,)
        Nonnegative, summing to 1 (float64, on the host).

    Examples
    --------
    >>> import numpy as np
    >>> leverage_probabilities(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    array([0.5, 0.5, 0. ])
    >>> leverage_probabilities(np.zeros((4, 2)))
    array([0.25, 0.25, 0.25, 0.25])
    """
    xp = get_array_module(A)
    u, sv, _ = xp.linalg.svd(A.astype("float64", copy=False), full_matrices=False)
    sv = to_numpy(sv)
    keep = int(np.count_nonzero(sv > max(A.shape) * np.finfo(np.float64).eps * sv.max(initial=0)))
    if keep == 0 or not math.isfinite(float(sv[0])):
        return np.full(A.shape[0], 1.0 / A.shape[0])
    scores = to_numpy(xp.sum(u[:, :keep] ** 2, axis=1))
    return np.asarray(scores / scores.sum(), dtype=np.float64)


def draw_rows(factors: Sequence[Array], skip: int, n_samples: int, rng: np.random.Generator,
              sampling: Sampling = "uniform") -> tuple[list[np.ndarray | None], np.ndarray | None]:
    """Draw ``n_samples`` rows of the Khatri-Rao product of ``factors`` without mode ``skip``.

    Parameters
    ----------
    factors : sequence of ndarray, each (I_k, R)
    skip : int
        The mode being solved for (no index drawn).
    n_samples : int
    rng : numpy.random.Generator
        Consumed in mode order: ``n_samples`` draws per mode ``k != skip``.
    sampling : {"uniform", "leverage"}

    Returns
    -------
    indices : list of (numpy.ndarray of int64, shape (n_samples,)) or None
        One index array per mode, None at ``skip``.
    sq_weights : numpy.ndarray, shape (n_samples,), or None
        The squared row weights ``w_j^2`` of leverage sampling (see the module
        docstring); None for uniform sampling (all weights equal).

    Examples
    --------
    >>> import numpy as np
    >>> idx, w = draw_rows([np.ones((3, 2)), np.ones((4, 2)), np.ones((5, 2))], 1, 6,
    ...                    np.random.default_rng(0))
    >>> [None if i is None else i.shape for i in idx], w
    ([(6,), None, (6,)], None)
    """
    indices: list[np.ndarray | None] = []
    sq_weights = np.ones(n_samples) if sampling == "leverage" else None
    for k, A in enumerate(factors):
        if k == skip:
            indices.append(None)
            continue
        size = int(A.shape[0])
        if sq_weights is None:
            indices.append(rng.integers(0, size, size=n_samples, dtype=np.int64))
            continue
        p = leverage_probabilities(A)
        i = rng.choice(size, size=n_samples, p=p).astype(np.int64)
        sq_weights /= size * p[i]
        indices.append(i)
    return indices, sq_weights


def sampled_kr(factors: Sequence[Array], indices: Sequence[np.ndarray | None]) -> Array:
    """The sampled Khatri-Rao rows ``Z[j] = prod_{k: indices[k] is not None} factors[k][indices[k][j]]``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.dense import khatri_rao
    >>> A = [np.random.default_rng(k).standard_normal((3 + k, 2)) for k in range(3)]
    >>> i0, i2 = np.array([2, 0]), np.array([4, 1])
    >>> Z = sampled_kr(A, [i0, None, i2])
    >>> bool(np.allclose(Z, khatri_rao(A, skip=1)[i0 * 5 + i2]))
    True
    """
    out: Array = None
    for A, idx in zip(factors, indices):
        if idx is None:
            continue
        xp = get_array_module(A)
        rows = A[xp.asarray(idx)]
        out = rows if out is None else out * rows
    if out is None:
        raise ValueError("indices must name at least one mode")
    return out


def gather_fibres(X: Array, mode: int, indices: Sequence[np.ndarray | None],
                  offsets: Sequence[int] | None = None) -> Array:
    """The mode-``mode`` fibres of ``X`` at the sampled indices of the other modes.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        A tensor, or a block of one whose first index in mode ``k`` is
        ``offsets[k]`` (the caller passes only the samples the block holds).
    mode : int
    indices : sequence of numpy.ndarray or None
        ``indices[k]`` for ``k != mode`` (global indices), as from :func:`draw_rows`.
    offsets : sequence of int, optional
        Subtracted from ``indices[k]`` (a block of a distributed tensor).

    Returns
    -------
    ndarray, shape (S, I_mode)
        Row ``j`` is ``X[indices[0][j], ..., :, ..., indices[N-1][j]]``; only
        these ``S I_mode`` entries are read (a copy; ``X`` is not unfolded).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.dense import unfold
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> F = gather_fibres(X, 1, [np.array([1, 0]), None, np.array([3, 2])])
    >>> bool(np.array_equal(F, unfold(X, 1)[:, [1 * 4 + 3, 0 * 4 + 2]].T))
    True
    """
    xp = get_array_module(X)
    sel = tuple(xp.asarray(i if offsets is None else i - offsets[k])
                for k, i in enumerate(indices) if k != mode and i is not None)
    return xp.moveaxis(X, mode, -1)[sel]


def draw_entries(shape: Sequence[int], count: int,
                 rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], float]:
    """Indices of the entries the fit is estimated from, and the factor ``N_entries / count``.

    ``count`` entries uniformly with replacement (one draw of ``count`` per
    mode, in mode order); when ``count >= prod(shape)`` every entry once
    (nothing drawn; the fit is then exact) and the factor is 1.

    Examples
    --------
    >>> import numpy as np
    >>> idx, factor = draw_entries((2, 3), 100, np.random.default_rng(0))
    >>> len(idx[0]), factor
    (6, 1.0)
    >>> idx, factor = draw_entries((20, 30), 100, np.random.default_rng(0))
    >>> len(idx[0]), factor
    (100, 6.0)
    """
    total = math.prod(int(s) for s in shape)
    if count >= total:
        full = np.unravel_index(np.arange(total, dtype=np.int64), tuple(shape))
        return tuple(np.asarray(i, dtype=np.int64) for i in full), 1.0
    idx = tuple(rng.integers(0, int(s), size=count, dtype=np.int64) for s in shape)
    return idx, total / count


def model_entries(factors: Sequence[Array], weights: Array,
                  indices: Sequence[np.ndarray]) -> Array:
    """Entries of the CP model ``[[weights; factors]]`` at ``indices`` (one array per mode).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> cp = random_cp((3, 4, 5), 2, seed=0)
    >>> idx = (np.array([0, 2]), np.array([3, 1]), np.array([4, 0]))
    >>> bool(np.allclose(model_entries(cp.factors, cp.weights, idx), cp.to_dense()[idx]))
    True
    """
    return sampled_kr(factors, list(indices)) @ weights
