"""Accelerated cp_als (linesearch=True): Bro's extrapolation, never below plain ALS."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tensorpar import CPTensor, cp_als
from tensorpar.cp.accel import is_line_iteration


def collinear_problem(shape, rank, congruence, seed=0):
    """The line-search cases of ``benchmarks/cp.py``: factors with a common direction
    (column congruence ``congruence``, the swamps where ALS crawls) plus 5% noise."""
    rng = np.random.default_rng(seed)
    fs = []
    for s in shape:
        base = rng.standard_normal((s, 1))
        fs.append(np.sqrt(congruence) * base + np.sqrt(1 - congruence)
                  * rng.standard_normal((s, rank)))
    X = CPTensor(fs).to_dense()
    return X + 0.05 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(shape)


CASES = [((30, 30, 30), 5, 0.0), ((30, 30, 30), 5, 0.9), ((16, 16, 16, 16), 4, 0.8),
         ((40, 35, 30), 8, 0.95)]


@pytest.mark.parametrize("shape,rank,congruence", CASES)
def test_fit_never_below_plain_als_at_the_same_iteration(shape, rank, congruence):
    X = collinear_problem(shape, rank, congruence)
    for seed in range(2):
        _, plain = cp_als(X, rank, seed=seed, max_iter=120, tol=0)
        _, fast = cp_als(X, rank, seed=seed, max_iter=120, tol=0, linesearch=True)
        assert np.all(np.array(fast.fits) >= np.array(plain.fits) - 1e-12)
    if congruence >= 0.9:
        assert fast.fits[-1] > plain.fits[-1] + 1e-6  # where ALS crawls it helps


def test_recorded_fit_is_the_fit_of_the_returned_model():
    X = collinear_problem((20, 18, 16), 4, 0.9, seed=1)
    for it in (7, 8, 9, 14):  # after a kept or a rejected jump
        cp, res = cp_als(X, 4, seed=0, max_iter=it, tol=0, linesearch=True)
        dense = 1 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)
        assert abs(res.fit - dense) < 1e-11


def test_schedule_and_first_jump_equal_tensorly():
    tl = pytest.importorskip("tensorly")
    from tensorly.decomposition import parafac
    assert [k for k in range(10) if is_line_iteration(k)] == [6, 8]
    X = collinear_problem((20, 18, 16), 4, 0.9, seed=2)
    rng = np.random.default_rng(0)
    init = [rng.random((s, 4)) for s in X.shape]
    models = []
    parafac(X.copy(), 4, init=(np.ones(4), [f.copy() for f in init]), n_iter_max=7, tol=0,
            linesearch=True, return_errors=True,
            callback=lambda cp, _e: models.append(tl.cp_to_tensor(
                (cp.weights.copy(), [f.copy() for f in cp.factors]))))
    ref = [1 - np.linalg.norm(X - m) / np.linalg.norm(X) for m in models[1:]]
    _, fast = cp_als(X, 4, init=CPTensor(init), max_iter=7, tol=0, linesearch=True)
    _, plain = cp_als(X, 4, init=CPTensor(init), max_iter=7, tol=0)
    assert fast.fits[6] > plain.fits[6]  # the jump at iteration 6 was kept (so by TensorLy too)
    np.testing.assert_allclose(fast.fits, ref, rtol=0, atol=1e-10)


def test_with_missing_data_and_ridge():
    X = collinear_problem((20, 18, 16), 4, 0.9, seed=3)
    W = np.random.default_rng(0).random(X.shape) > 0.3
    for kw in (dict(mask=W), dict(mask=W, missing_method="wls"), dict(l2_reg=0.1)):
        _, plain = cp_als(X, 4, seed=0, max_iter=40, tol=0, **kw)
        cp, fast = cp_als(X, 4, seed=0, max_iter=40, tol=0, linesearch=True, **kw)
        assert fast.fits[-1] >= plain.fits[-1] - 1e-12
        if "mask" in kw:
            obs = 1 - np.linalg.norm(W * (X - cp.to_dense())) / np.linalg.norm(W * X)
            assert abs(obs - fast.fit) < 1e-11


@pytest.mark.parametrize("c", [2.0**-800, 5e250])
def test_scale_invariance(c):
    X = collinear_problem((16, 15, 14), 3, 0.9, seed=4)
    cp, res = cp_als(X, 3, seed=1, max_iter=20, tol=0, linesearch=True)
    cpc, resc = cp_als(c * X, 3, seed=1, max_iter=20, tol=0, linesearch=True)
    np.testing.assert_allclose(resc.fits, res.fits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpc.weights / c, cp.weights, rtol=1e-9)


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    X = collinear_problem((16, 15, 14), 3, 0.9, seed=5)
    path = os.fspath(tmp_path / "ls.npz")
    _, full = cp_als(X, 3, seed=2, max_iter=30, tol=0, linesearch=True)
    cp_als(X, 3, seed=2, max_iter=13, tol=0, linesearch=True, checkpoint=path)
    _, resumed = cp_als(X, 3, seed=2, max_iter=30, tol=0, linesearch=True, resume=path)
    np.testing.assert_allclose(resumed.fits, full.fits, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="linesearch"):
        cp_als(X, 3, seed=2, max_iter=30, tol=0, resume=path)


def test_nonnegative_modes_stay_nonnegative_and_fixed_modes_do_not_move():
    rng = np.random.default_rng(6)
    X = CPTensor([0.3 + rng.random((s, 4)) for s in (20, 18, 16)]).to_dense()
    X += 0.05 * rng.random(X.shape)
    for kw in (dict(nonnegative=True), dict(nonnegative=[0, 2], fixed_modes=[1])):
        _, plain = cp_als(X, 4, init="random_uniform", seed=0, max_iter=40, tol=0, **kw)
        cp, fast = cp_als(X, 4, init="random_uniform", seed=0, max_iter=40, tol=0,
                          linesearch=True, **kw)
        modes = range(3) if kw["nonnegative"] is True else kw["nonnegative"]
        assert all((cp.factors[n] >= 0).all() for n in modes)
        assert np.all(np.array(fast.fits) >= np.array(plain.fits) - 1e-12)
        assert fast.fit > plain.fit + 1e-9  # some jump was kept
        dense = 1 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)
        assert abs(fast.fit - dense) < 1e-11
