"""Dense helpers against explicit loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy


def test_unfold_fold_roundtrip(xp, rng):
    X = xp.asarray(rng.standard_normal((2, 3, 4, 5)))
    for n in range(4):
        M = tp.unfold(X, n)
        assert M.shape == (X.shape[n], X.size // X.shape[n])
        assert bool((tp.fold(M, n, X.shape) == X).all())


def test_unfold_index_convention(rng):
    X = rng.standard_normal((2, 3, 4))
    M = tp.unfold(X, 1)
    for i, j, k in itertools.product(range(2), range(3), range(4)):
        assert M[j, i * 4 + k] == X[i, j, k]


def test_khatri_rao_definition(xp, rng):
    A, B, C = (xp.asarray(rng.standard_normal((n, 3))) for n in (2, 4, 3))
    K = tp.khatri_rao([A, B, C])
    for i, j, k in itertools.product(range(2), range(4), range(3)):
        np.testing.assert_allclose(to_numpy(K[(i * 4 + j) * 3 + k]),
                                   to_numpy(A[i] * B[j] * C[k]), rtol=1e-14)
    assert tp.khatri_rao([A, B, C], skip=1).shape == (6, 3)


def test_cp_unfolding_identity(rng):
    cp = tp.random_cp((3, 4, 5), 2, seed=1)
    X = cp.to_dense()
    for n in range(3):
        rest = [f for k, f in enumerate(cp.factors) if k != n]
        np.testing.assert_allclose(tp.unfold(X, n), cp.factors[n] @ tp.khatri_rao(rest).T,
                                   rtol=1e-12, atol=1e-12)


def test_mode_dot(rng):
    X = rng.standard_normal((3, 4, 5))
    M = rng.standard_normal((6, 4))
    Y = tp.mode_dot(X, M, 1)
    np.testing.assert_allclose(Y, np.einsum("ijk,aj->iak", X, M), rtol=1e-13)
    np.testing.assert_allclose(tp.mode_dot(X, M.T, 1, transpose=True), Y, rtol=1e-13)
    v = rng.standard_normal(5)
    np.testing.assert_allclose(tp.mode_dot(X, v, 2), X @ v, rtol=1e-13)


def test_tensor_norm(rng):
    X = np.asfortranarray(rng.standard_normal((3, 4, 5)))
    assert tp.tensor_norm(X[:, ::2]) == pytest.approx(np.sqrt((X[:, ::2] ** 2).sum()), rel=1e-14)


def test_dense_bad_input(rng):
    X = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="mode=3"):
        tp.unfold(X, 3)
    with pytest.raises(TypeError, match="mode must be an integer"):
        tp.unfold(X, 1.0)
    with pytest.raises(ValueError, match="shape"):
        tp.fold(np.ones((3, 7)), 1, (2, 3, 4))
    with pytest.raises(ValueError, match="columns"):
        tp.khatri_rao([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(TypeError, match="dtype"):
        tp.khatri_rao([np.ones((2, 3), dtype=bool)])
    with pytest.raises(ValueError, match="size 3 in mode 1"):
        tp.mode_dot(X, np.ones((5, 4)), 1)
    with pytest.raises(ValueError, match="at least one"):
        tp.khatri_rao([])
