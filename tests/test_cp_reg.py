"""Regularised and constrained cp_als: TensorLy's l2_reg, fixed_modes, nn_modes from one start."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tensorpar import CPTensor, cp_als
from tensorpar.cp.init import initialize_cp

tl = pytest.importorskip("tensorly")
from tensorly.decomposition import non_negative_parafac_hals, parafac  # noqa: E402

R = 3


def _problem(shape=(9, 8, 7), seed=0):
    rng = np.random.default_rng(seed)
    X = CPTensor([rng.random((s, R)) for s in shape]).to_dense() + 0.1 * rng.random(shape)
    return X, [rng.random((s, R)) for s in shape]


def _fit(model, X):
    return 1 - np.linalg.norm(X - model) / np.linalg.norm(X)


def _tl_fits(X, init, iters, fn=parafac, **kw):
    models = []
    if fn is parafac:
        def cb(cp, _err):
            models.append(tl.cp_to_tensor((cp.weights.copy(), [f.copy() for f in cp.factors])))
        fn(X.copy(), R, init=(np.ones(R), [f.copy() for f in init]), n_iter_max=iters, tol=0,
           return_errors=True, callback=cb, **kw)
        return [_fit(m, X) for m in models[1:]]
    out = [fn(X.copy(), R, init=(np.ones(R), [f.copy() for f in init]), n_iter_max=k, tol=0,
              **kw) for k in range(1, iters + 1)]
    return [_fit(tl.cp_to_tensor(cp), X) for cp in out]


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 3.0])
def test_l2_reg_equals_tensorly(lam):
    X, init = _problem()
    ref = _tl_fits(X, init, 10, l2_reg=lam)
    _, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), max_iter=10, tol=0,
                    l2_reg=lam)
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("fixed,lam", [([0], 0.0), ([1], 0.7), ([0, 1], 0.0)])
def test_fixed_modes_equal_tensorly(fixed, lam):
    X, init = _problem(seed=1)
    ref = _tl_fits(X, init, 8, fixed_modes=fixed, l2_reg=lam)
    cp, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), max_iter=8, tol=0,
                     fixed_modes=fixed, l2_reg=lam)
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-10)
    for n in fixed:  # the direction of a fixed factor's columns never moves
        np.testing.assert_allclose(cp.factors[n], init[n] / np.linalg.norm(init[n], axis=0),
                                   rtol=1e-13)


def test_last_mode_can_be_fixed():
    X, init = _problem(seed=2)
    cp, res = cp_als(X, R, init=CPTensor(init), max_iter=5, tol=0, fixed_modes=[-1])
    np.testing.assert_allclose(cp.factors[2], init[2] / np.linalg.norm(init[2], axis=0))
    assert abs(res.fit - _fit(cp.to_dense(), X)) < 1e-12


@pytest.mark.parametrize("nn_modes", ["all", [0, 2], [1]])
def test_nonnegative_modes_equal_tensorly_hals(nn_modes):
    X, init = _problem(seed=3)
    ref = _tl_fits(X, init, 6, fn=non_negative_parafac_hals, nn_modes=nn_modes)
    cp, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), max_iter=6, tol=0,
                     nonnegative=True if nn_modes == "all" else nn_modes, n_inner=5)
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-10)
    modes = range(3) if nn_modes == "all" else nn_modes
    assert all((cp.factors[n] >= 0).all() for n in modes)


def test_more_inner_sweeps_never_lower_the_first_update():
    X, init = _problem(seed=4)
    fits = [cp_als(X, R, init=CPTensor(init), max_iter=1, tol=0, nonnegative=True,
                   n_inner=k)[1].fit for k in (1, 2, 5)]
    assert fits[0] <= fits[1] + 1e-12 <= fits[2] + 2e-12


def test_random_uniform_start():
    X, _ = _problem(seed=5)
    rng = np.random.default_rng(3)
    start = initialize_cp(X, R, "random_uniform", rng=np.random.default_rng(3))
    raw = [rng.random((s, R)) for s in X.shape]  # the same draws, mode by mode
    np.testing.assert_allclose(start.to_dense(), CPTensor(raw).to_dense(), rtol=1e-13)
    _, a = cp_als(X, R, init="random_uniform", seed=3, max_iter=5, tol=0)
    _, b = cp_als(X, R, init=CPTensor(raw), max_iter=5, tol=0)
    ref = _tl_fits(X, raw, 5)  # TensorLy's parafac from the same uniform factors
    np.testing.assert_allclose(a.fits, b.fits, rtol=0, atol=1e-13)
    np.testing.assert_allclose(a.fits, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(fixed_modes=[1]), dict(nonnegative=[0, 2], n_inner=3)])
@pytest.mark.parametrize("c", [2.0**-700, 1e200])
def test_constraints_are_scale_invariant(kw, c):
    X, _ = _problem(seed=6)
    cp, res = cp_als(X, R, seed=1, max_iter=6, tol=0, **kw)
    cpc, resc = cp_als(c * X, R, seed=1, max_iter=6, tol=0, **kw)
    np.testing.assert_allclose(resc.fits, res.fits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpc.weights / c, cp.weights, rtol=1e-10)


@pytest.mark.parametrize("k", [-100, 100])
def test_ridge_is_consistent_in_scale(k):
    # c X with l2_reg * c^(2 - 2/N) is c times the problem for X (N = 3: c = 2^(3k)).
    X, init = _problem(seed=7)
    c = 2.0 ** (3 * k)
    lam = 0.4
    cp, res = cp_als(X, R, init=CPTensor(init), max_iter=6, tol=0, l2_reg=lam)
    scaled = CPTensor([f * 2.0**k for f in init])
    cpc, resc = cp_als(c * X, R, init=scaled, max_iter=6, tol=0, l2_reg=lam * 2.0 ** (4 * k))
    np.testing.assert_allclose(resc.fits, res.fits, rtol=0, atol=1e-12)
    # (the ridge drives one component to ~1e-236, which underflows once multiplied by c)
    np.testing.assert_allclose(cpc.weights / c, cp.weights, rtol=1e-10,
                               atol=1e-10 * cp.weights.max())


def test_resume_keeps_the_variant(tmp_path):
    X, _ = _problem(seed=8)
    path = os.fspath(tmp_path / "r.npz")
    kw = dict(seed=4, tol=0, l2_reg=0.2, fixed_modes=[0], nonnegative=[2], n_inner=2)
    _, full = cp_als(X, R, max_iter=9, **kw)
    cp_als(X, R, max_iter=4, checkpoint=path, **kw)
    _, resumed = cp_als(X, R, max_iter=9, resume=path, **kw)
    assert resumed.fits == full.fits
    for change in (dict(l2_reg=0.3), dict(fixed_modes=None), dict(nonnegative=[1]),
                   dict(n_inner=1)):
        with pytest.raises(ValueError, match="other options"):
            cp_als(X, R, max_iter=9, resume=path, **{**kw, **change})


def test_bad_arguments_name_themselves():
    X, _ = _problem()
    cases = [(dict(l2_reg=-1.0), ValueError, "l2_reg"), (dict(l2_reg="1"), ValueError, "l2_reg"),
             (dict(fixed_modes=[3]), ValueError, "fixed_modes"),
             (dict(fixed_modes=[0, 0]), ValueError, "fixed_modes"),
             (dict(fixed_modes=0), TypeError, "fixed_modes"),
             (dict(nonnegative=[0, 5]), ValueError, "nonnegative"),
             (dict(nonnegative="yes"), TypeError, "nonnegative"),
             (dict(nonnegative=[1.0]), TypeError, "nonnegative"),
             (dict(n_inner=0), ValueError, "n_inner"), (dict(n_inner=1.5), TypeError, "n_inner"),
             (dict(linesearch=1), TypeError, "linesearch"),
             (dict(init="uniform"), ValueError, "init")]
    for kw, exc, name in cases:
        with pytest.raises(exc, match=name):
            cp_als(X, R, **kw)
    with pytest.raises(ValueError, match="mode 0 is nonnegative"):
        cp_als(X, R, init=CPTensor([-np.ones((s, R)) for s in X.shape]), nonnegative=[0])
