"""TT-matrices: dense round trip, TT-matrix x TT vector, TT-matrix x dense matrix, plans, VJPs."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy
from tensorpar.tt.matrix import ttm_matvec_core

ROWS, COLS = (2, 3, 4), (3, 1, 5)


def _random_ttm(xp, rows, cols, rank, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    d = len(rows)
    ranks = [1] + [rank] * (d - 1) + [1]
    cores = []
    for k in range(d):
        c = rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1]))
        if dtype == np.complex128:
            c = c + 1j * rng.standard_normal(c.shape)
        cores.append(xp.asarray(c))
    return tp.TTMatrix(cores)


def _reference_dense(A):
    cores = [to_numpy(c) for c in A.cores]
    d = len(cores)
    full = cores[0]
    for c in cores[1:]:
        full = np.tensordot(full, c, axes=([-1], [0]))
    full = full.reshape(full.shape[1:-1])  # (m0, n0, m1, n1, ...)
    full = full.transpose(list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2)))
    return full.reshape(A.shape)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_dense_round_trip_and_transpose(xp, dtype):
    A = _random_ttm(xp, ROWS, COLS, 3, 0, dtype)
    D = _reference_dense(A)
    assert A.shape == (24, 15) and A.ranks == (1, 3, 3, 1)
    np.testing.assert_allclose(to_numpy(A.to_dense()), D, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(to_numpy(A.T.to_dense()), D.T, rtol=1e-13, atol=1e-13)
    B = tp.TTMatrix.from_dense(xp.asarray(D), ROWS, COLS)
    assert B.ranks[1] <= 3 and B.ranks[2] <= 3
    np.testing.assert_allclose(to_numpy(B.to_dense()), D, rtol=0, atol=1e-12 * np.abs(D).max())
    C = tp.TTMatrix.from_dense(xp.asarray(D), ROWS, COLS, eps=0.2)
    assert np.linalg.norm(to_numpy(C.to_dense()) - D) <= 0.2 * np.linalg.norm(D) * (1 + 1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_matvec_matmat(xp, dtype):
    A = _random_ttm(xp, ROWS, COLS, 3, 1, dtype)
    D = _reference_dense(A)
    x = tp.random_tt(COLS, 2, seed=2, dtype=dtype)
    x = tp.TTTensor([xp.asarray(c) for c in x.cores])
    y = A.matvec(x)
    assert y.shape == ROWS and y.ranks == (1, 6, 6, 1)
    np.testing.assert_allclose(to_numpy(y.to_dense()).ravel(), D @ to_numpy(x.to_dense()).ravel(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy((A @ x).to_dense()), to_numpy(y.to_dense()))
    rng = np.random.default_rng(3)
    X = rng.standard_normal((15, 7))
    for rhs in (X, X[:, 0]):
        got = to_numpy(A.matmat(xp.asarray(rhs)))
        assert got.shape == (D @ rhs).shape
        np.testing.assert_allclose(got, D @ rhs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(A.T @ xp.asarray(rng.standard_normal((24, 2)))).shape,
                               (15, 2))


def test_matvec_core_and_single_core():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 4, 2))
    ref = np.einsum("ipck,jcl->ijpkl", a, b).reshape(6, 3, 10)
    np.testing.assert_allclose(ttm_matvec_core(a, b), ref, rtol=1e-13)
    M = rng.standard_normal((4, 6))
    A = tp.TTMatrix.from_dense(M, (4,), (6,))
    assert A.ranks == (1, 1)
    np.testing.assert_allclose(A @ np.eye(6), M, rtol=1e-13)


def test_rounding_a_ttm():
    A = _random_ttm(np, ROWS, COLS, 2, 5)
    B = tp.TTMatrix.from_tt(A.as_tt() + A.as_tt(), ROWS, COLS)
    assert B.ranks == (1, 4, 4, 1)
    C = B.round(1e-12)
    assert C.ranks == A.ranks
    np.testing.assert_allclose(C.to_dense(), 2 * A.to_dense(), rtol=1e-11, atol=1e-11)


def test_ttm_errors():
    A = _random_ttm(np, ROWS, COLS, 2, 6)
    with pytest.raises(ValueError, match="same mode sizes"):
        A.matvec(tp.random_tt((3, 2, 5), 2))
    with pytest.raises(ValueError, match="X has 14 rows but A has 15 columns"):
        A @ np.ones((14, 2))
    with pytest.raises(TypeError, match="x must be a TTTensor"):
        A.matvec(np.ones(15))
    with pytest.raises(ValueError, match="implementation must be"):
        A.matmat(np.ones((15, 2)), implementation="fast")
    with pytest.raises(ValueError, match="A has shape"):
        tp.TTMatrix.from_dense(np.ones((4, 4)), (2, 3), (2, 2))
    with pytest.raises(ValueError, match="same non-zero length"):
        tp.TTMatrix.from_dense(np.ones((4, 4)), (4,), (2, 2))
    with pytest.raises(ValueError, match="ranks do not chain"):
        tp.TTMatrix([np.ones((1, 2, 2, 3)), np.ones((2, 2, 2, 1))])
    with pytest.raises(ValueError, match="4 dimensions"):
        tp.TTMatrix([np.ones((1, 2, 1))])
    with pytest.raises(TypeError, match="A must be a TTMatrix"), pytest.warns(DeprecationWarning):
        tp.ttm_matmat(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="row_shape x col_shape needs"):
        tp.TTMatrix.from_tt(tp.random_tt((6, 4), 2), (2, 2), (2, 2))


def test_deprecated_aliases_warn_and_agree():
    A = _random_ttm(np, ROWS, COLS, 2, 7)
    x = tp.random_tt(COLS, 2, seed=8)
    X = np.random.default_rng(9).standard_normal((15, 3))
    with pytest.warns(DeprecationWarning, match="use A.matvec"):
        y = tp.ttm_matvec(A, x)
    np.testing.assert_allclose(y.to_dense(), (A @ x).to_dense(), rtol=1e-14)
    with pytest.warns(DeprecationWarning, match="use A.matmat"):
        Y = tp.ttm_matmat(A, X)
    np.testing.assert_allclose(Y, A @ X, rtol=1e-14)
    assert A.__matmul__("not an array") is NotImplemented
