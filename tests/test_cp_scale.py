"""CP-ALS at extreme magnitudes: results for c*X are c times those for X; float32 accumulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tensorpar import CPTensor, cp_als, random_cp
from tensorpar.dense import tensor_norm

SHAPE = (5, 6, 7)


def _data(seed=0, nonnegative=False):
    rng = np.random.default_rng(seed)
    true = random_cp(SHAPE, 3, seed=seed + 1)
    if nonnegative:
        return CPTensor([np.abs(f) for f in true.factors]).to_dense() + 0.1 * rng.random(SHAPE)
    return true.to_dense() + 0.2 * rng.standard_normal(SHAPE)


def _assert_scaled(cp_c, res_c, cp_1, res_1, c, rtol):
    np.testing.assert_allclose(res_c.fits, res_1.fits, rtol=0, atol=rtol)
    for a, b in zip(cp_c.factors, cp_1.factors):
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol)
    np.testing.assert_allclose(cp_c.weights / c, cp_1.weights, rtol=rtol)
    assert math.isclose(res_c.norm_x / c, res_1.norm_x, rel_tol=1e-14)


MAGNITUDES = [1e-300, 1e-250, 1e-200, 1e-170, 1e-160, 1e-100, 1e-10, 1e10, 1e100, 1e160,
              1e200, 1e250, 1e300]


@pytest.mark.parametrize("c", MAGNITUDES)
@pytest.mark.parametrize("init,nonnegative", [("given", False), ("random", False),
                                              ("svd", False), ("random", True)])
def test_float64_sweep_of_magnitudes(c, init, nonnegative):
    X = _data(nonnegative=nonnegative)
    start = CPTensor([np.abs(f) for f in random_cp(SHAPE, 3, seed=4).factors])
    kw = dict(tol=0, max_iter=8, seed=2, nonnegative=nonnegative)
    cp_1, res_1 = cp_als(X, 3, init=start if init == "given" else init, **kw)
    c_start = CPTensor(start.factors, start.weights * c)
    cp_c, res_c = cp_als(c * X, 3, init=c_start if init == "given" else init, **kw)
    assert res_1.fit > 0.8
    _assert_scaled(cp_c, res_c, cp_1, res_1, c, rtol=1e-9)


@pytest.mark.parametrize("e", [-990, -600, -100, 100, 600, 990])
def test_power_of_two_scale_is_bit_identical(e):
    X = _data(seed=3)
    cp_1, res_1 = cp_als(X, 3, seed=1, tol=0, max_iter=6)
    cp_c, res_c = cp_als(np.ldexp(X, e), 3, seed=1, tol=0, max_iter=6)
    assert res_c.fits == res_1.fits
    for a, b in zip(cp_c.factors, cp_1.factors):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cp_c.weights, np.ldexp(cp_1.weights, e))


def test_tiny_data_is_not_an_all_zero_model():
    X = _data(seed=5) * 1e-170
    cp, res = cp_als(X, 3, seed=0, tol=1e-12, max_iter=200)
    assert np.all(cp.weights > 0) and res.fit > 0.9
    dense_fit = 1 - np.linalg.norm((X - cp.to_dense()) * 1e170) / np.linalg.norm(X * 1e170)
    assert abs(res.fit - dense_fit) < 1e-8


@pytest.mark.parametrize("c", [1e-30, 1e-20, 1e-10, 1e10, 1e20, 1e30])
def test_float32_sweep_of_magnitudes(c):
    X = _data(seed=6)
    X1 = X.astype(np.float32)
    Xc = (c * X).astype(np.float32)
    cp_1, res_1 = cp_als(X1, 3, seed=2, tol=0, max_iter=8)
    cp_c, res_c = cp_als(Xc, 3, seed=2, tol=0, max_iter=8)
    assert np.all(cp_c.weights > 0) and res_c.fit > 0.8
    # c*X rounded to float32 differs from c times X rounded: compare to float32 precision.
    np.testing.assert_allclose(res_c.fits, res_1.fits, rtol=0, atol=2e-4)
    for a, b in zip(cp_c.factors, cp_1.factors):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)
    np.testing.assert_allclose(cp_c.weights / np.float32(c), cp_1.weights, rtol=1e-3)


def test_float32_norm_accumulates_in_float64():
    X = np.full((40, 40, 200), 0.1, dtype=np.float32)
    exact = math.sqrt(X.size) * float(X[0, 0, 0])
    assert abs(tensor_norm(X) / exact - 1) < 1e-12


def _true_fit(X, cp):
    X64 = X.astype(np.float64)
    return 1 - np.linalg.norm(X64 - cp.to_dense().astype(np.float64)) / np.linalg.norm(X64)


def test_float32_fit_of_a_constant_tensor():
    from tensorly.decomposition import parafac

    X = np.full((40, 40, 200), 0.1, dtype=np.float32)
    cp, res = cp_als(X, 1, seed=0, tol=0, max_iter=5)
    true = _true_fit(X, cp)
    assert true > 0.99999
    _, errors = parafac(X, 1, n_iter_max=5, tol=0, return_errors=True, init="random",
                        random_state=0)
    # the documented limit: about sqrt(eps) near an exact fit, like tensorly's
    assert abs(res.fit - true) < 2.5e-3
    assert abs(res.fit - true) <= abs(1 - float(errors[-1]) - true) + 1e-3


def test_float32_fit_near_exact_model():
    rng = np.random.default_rng(0)
    a, b, c = rng.random(40) + 0.5, rng.random(40) + 0.5, rng.random(200) + 0.5
    X = np.einsum("i,j,k->ijk", a, b, c)
    X = (X + 1e-7 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(X.shape))
    X = X.astype(np.float32)
    cp, res = cp_als(X, 1, seed=0, tol=0, max_iter=20)
    assert abs(res.fit - _true_fit(X, cp)) < 1e-3
