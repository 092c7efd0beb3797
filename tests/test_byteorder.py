"""Big-endian input (FITS, some HDF5 and .npy files) is converted to native byte order.

The numba kernels cannot type non-native arrays, so the conversion happens
at the boundary (``_validation.as_float_array``); results must equal those
for the same values in native order.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._validation import as_float_array

BIG = {np.float64: ">f8", np.float32: ">f4"}


def _data(shape, rank, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape).astype(dtype)
    fs = [rng.standard_normal((n, rank)).astype(dtype) for n in shape]
    return X, fs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_as_float_array_returns_native_order(dtype):
    x = np.arange(6, dtype=BIG[dtype]).reshape(2, 3)
    y = as_float_array(x, "x")
    assert y.dtype.isnative and y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mttkrp_numba_on_big_endian_input(dtype):
    X, fs = _data((5, 4, 6), 3, dtype)
    Xb, fb = X.astype(BIG[dtype]), [f.astype(BIG[dtype]) for f in fs]
    for n in range(3):
        M = tp.mttkrp(Xb, fb, n, engine="numba")
        assert M.dtype == np.dtype(dtype) and M.dtype.isnative
        np.testing.assert_array_equal(M, tp.mttkrp(X, fs, n, engine="numba"))
        ref = tp.mttkrp_reference(X.astype(np.float64), [f.astype(np.float64) for f in fs], n)
        np.testing.assert_allclose(M, ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)
    seen = []
    tp.mttkrp_sweep(Xb, list(fb), lambda n, M: seen.append(M) or fb[n], engine="numba")
    assert all(M.dtype.isnative for M in seen)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cp_als_on_big_endian_input(dtype):
    X = tp.random_cp((6, 5, 4), 2, seed=3).to_dense().astype(dtype)
    cp_n, res_n = tp.cp_als(X, 2, seed=1, max_iter=20)
    cp_b, res_b = tp.cp_als(X.astype(BIG[dtype]), 2, seed=1, max_iter=20)
    assert res_b.fits == res_n.fits
    for a, b in zip(cp_n.factors, cp_b.factors):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tt_svd_on_big_endian_input(dtype):
    X = np.random.default_rng(2).standard_normal((4, 5, 6)).astype(dtype)
    tt_n = tp.tt_svd(X, 1e-3)
    tt_b = tp.tt_svd(X.astype(BIG[dtype]), 1e-3)
    assert tt_b.ranks == tt_n.ranks
    assert all(c.dtype.isnative for c in tt_b.cores)
    np.testing.assert_array_equal(tt_b.to_dense(), tt_n.to_dense())
