"""Randomized CP-ALS (cp_rand): recovery, the sampled pieces against dense references,
the estimated fit against the true one, scale invariance, TensorLy's randomised_parafac,
and errors naming the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tensorpar import cp_rand, khatri_rao, random_cp, unfold
from tensorpar.cp.rand import check_rand_options, default_n_samples
from tensorpar.cp.sampling import (
    draw_entries,
    draw_rows,
    gather_fibres,
    leverage_probabilities,
    model_entries,
    sampled_kr,
)
from tensorpar.cp.tensor import CPTensor


def _noisy(shape, rank, noise, seed=0):
    X = random_cp(shape, rank, seed=seed).to_dense()
    rng = np.random.default_rng(seed + 100)
    N = rng.standard_normal(shape)
    return X + noise * np.linalg.norm(X) / np.linalg.norm(N) * N


def _true_fit(X, cp):
    return 1.0 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)


# --- the sampled pieces against dense references ------------------------------------
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_sampled_rows_and_fibres_match_the_unfolding(mode):
    rng = np.random.default_rng(0)
    shape = (3, 4, 5, 2)
    X = rng.standard_normal(shape)
    A = [rng.standard_normal((s, 3)) for s in shape]
    idx, w = draw_rows(A, mode, 7, rng)
    assert w is None and idx[mode] is None
    others = [k for k in range(4) if k != mode]
    # column of the C-order unfolding (remaining modes in order, last fastest)
    col = np.ravel_multi_index(tuple(idx[k] for k in others), tuple(shape[k] for k in others))
    np.testing.assert_array_equal(gather_fibres(X, mode, idx), unfold(X, mode)[:, col].T)
    np.testing.assert_allclose(sampled_kr(A, idx), khatri_rao(A, skip=mode)[col],
                               rtol=1e-15, atol=0)


def test_fibres_of_a_block_with_offsets():
    X = np.random.default_rng(1).standard_normal((6, 5, 4))
    idx = [np.array([3, 5, 4]), None, np.array([2, 3, 2])]
    block = X[3:6, 1:4, 2:4]
    got = gather_fibres(block, 1, idx, offsets=[3, 1, 2])
    np.testing.assert_array_equal(got, gather_fibres(X, 1, idx)[:, 1:4])


def test_leverage_probabilities_and_weights():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((9, 3))
    p = leverage_probabilities(A)
    Q = np.linalg.qr(A)[0]
    np.testing.assert_allclose(p, (Q**2).sum(1) / 3, rtol=1e-13)
    np.testing.assert_allclose(leverage_probabilities(np.zeros((4, 2))), np.full(4, 0.25))
    factors = [A, rng.standard_normal((5, 3)), rng.standard_normal((7, 3))]
    idx, w = draw_rows(factors, 1, 50, np.random.default_rng(3), "leverage")
    p0, p2 = leverage_probabilities(factors[0]), leverage_probabilities(factors[2])
    np.testing.assert_allclose(w, 1.0 / (9 * p0[idx[0]] * 7 * p2[idx[2]]), rtol=1e-13)


def test_leverage_weights_make_the_sampled_gram_unbiased():
    # E[Z^T W Z] / S over the leverage distribution is Z_full^T Z_full / prod_k I_k.
    rng = np.random.default_rng(4)
    factors = [rng.standard_normal((6, 2)) ** 3, rng.standard_normal((8, 2)) ** 3]
    S = 200_000
    idx, w = draw_rows(factors + [np.ones((3, 2))], 2, S, np.random.default_rng(5), "leverage")
    Z = sampled_kr(factors, idx[:2])
    est = (Z * w[:, None]).T @ Z / S
    full = khatri_rao(factors)
    np.testing.assert_allclose(est, full.T @ full / full.shape[0], rtol=0.05)


def test_draw_entries_and_model_entries():
    cp = random_cp((4, 5, 6), 2, seed=3)
    idx, factor = draw_entries(cp.shape, 10, np.random.default_rng(0))
    assert factor == 12.0 and all(len(i) == 10 for i in idx)
    np.testing.assert_allclose(model_entries(cp.factors, cp.weights, idx), cp.to_dense()[idx],
                               rtol=1e-13)
    idx, factor = draw_entries(cp.shape, 120, np.random.default_rng(0))
    assert factor == 1.0
    np.testing.assert_array_equal(np.ravel_multi_index(idx, cp.shape), np.arange(120))


# --- the solver ----------------------------------------------------------------------
@pytest.mark.parametrize("sampling", ["uniform", "leverage"])
def test_recovers_planted_low_rank(sampling):
    true = random_cp((40, 50, 60), 4, seed=5)
    X = true.to_dense()
    cp, res = cp_rand(X, 4, n_samples=80, seed=1, tol=1e-12, max_iter=300, sampling=sampling)
    assert cp.factor_match_score(true) >= 0.99
    assert _true_fit(X, cp) > 1 - 1e-8
    assert res.n_iter == len(res.fits) and res.engine == "numpy"


def test_recovers_four_way_noisy():
    true = random_cp((12, 14, 10, 16), 3, seed=8)
    X = true.to_dense()
    X = X + 1e-3 * np.linalg.norm(X) / math.sqrt(X.size) * np.random.default_rng(0).standard_normal(X.shape)
    cp, res = cp_rand(X, 3, seed=2, tol=1e-9, max_iter=300)
    assert cp.factor_match_score(true) >= 0.99
    assert res.converged


@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_estimated_fit_close_to_true_fit(noise):
    X = _noisy((40, 45, 50), 4, noise)
    F = 2**14
    cp, res = cp_rand(X, 4, n_samples=100, seed=3, tol=1e-7, max_iter=60, n_fit_samples=F)
    true = _true_fit(X, cp)
    # relative std of the squared-residual estimate ~ sqrt(2/F) for Gaussian residuals;
    # the error of 1 - fit is half that; allow 5 standard deviations.
    assert abs(res.fit - true) <= 5 * math.sqrt(0.5 / F) * (1 - true)
    assert abs(res.fit - true) > 0  # an estimate, not the exact fit


def test_fit_is_exact_when_every_entry_is_sampled():
    X = _noisy((8, 9, 10), 2, 0.2)
    cp, res = cp_rand(X, 2, n_samples=30, seed=3, max_iter=15, tol=0, n_fit_samples=720)
    assert res.fit == pytest.approx(_true_fit(X, cp), abs=1e-13)
    assert res.n_iter == 15 and res.stop_reason == "max_iter"


def test_seeded_runs_repeat_and_differ_by_seed():
    X = _noisy((20, 21, 22), 3, 0.1)
    a, ra = cp_rand(X, 3, seed=7, max_iter=10, tol=0)
    b, rb = cp_rand(X, 3, seed=7, max_iter=10, tol=0)
    c, rc = cp_rand(X, 3, seed=8, max_iter=10, tol=0)
    assert ra.fits == rb.fits and all(np.array_equal(x, y) for x, y in zip(a.factors, b.factors))
    assert ra.fits != rc.fits


@pytest.mark.parametrize("c", [2.0**-700, 3.7e-200, 1.3e250, 5.0])
def test_scale_invariance(c):
    X = _noisy((15, 16, 17), 3, 0.1)
    cp, res = cp_rand(X, 3, seed=4, max_iter=12, tol=0)
    cq, rq = cp_rand(c * X, 3, seed=4, max_iter=12, tol=0)
    np.testing.assert_allclose(rq.fits, res.fits, rtol=0, atol=1e-10)
    for a, b in zip(cq.factors, cp.factors):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cq.weights, c * cp.weights, rtol=1e-9)


def test_float32_and_given_start():
    true = random_cp((20, 22, 24), 2, seed=9)
    X = true.to_dense().astype(np.float32)
    start = random_cp(X.shape, 2, seed=1)
    start = CPTensor([f.astype(np.float32) for f in start.factors], start.weights.astype(np.float32))
    cp, res = cp_rand(X, 2, init=start, n_samples=100, seed=0, max_iter=100, tol=1e-7)
    assert cp.factors[0].dtype == np.float32
    assert res.fit > 0.999 and cp.factor_match_score(true) > 0.99


def test_callback_stops_and_sees_estimated_fit():
    X = _noisy((20, 21, 22), 3, 0.1)
    seen = []

    def cb(it, cp, fit):
        seen.append((it, fit, cp.rank))
        return fit > 0.8

    _, res = cp_rand(X, 3, seed=1, max_iter=100, tol=0, callback=cb)
    assert res.stop_reason == "callback" and res.fits[-1] > 0.8
    assert [s[1] for s in seen] == res.fits and seen[-1][2] == 3


def test_stagnation_stops_as_converged():
    X = np.random.default_rng(0).standard_normal((10, 11, 12))  # pure noise: no plateau at 1
    _, res = cp_rand(X, 3, n_samples=12, seed=1, max_iter=500, tol=0, max_stagnation=5)
    assert res.converged and res.n_iter < 500
    best = int(np.argmax(res.fits))
    assert res.n_iter - 1 - best == 5


def test_verbose_prints_one_line_per_iteration(capsys):
    cp_rand(_noisy((8, 9, 10), 2, 0.1), 2, seed=0, max_iter=3, tol=0, verbose=True)
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


# --- against TensorLy's randomised_parafac --------------------------------------------
@pytest.mark.parametrize("sampling", ["uniform", "leverage"])
def test_quality_comparable_to_tensorly(sampling):
    tl_cp = pytest.importorskip("tensorly.decomposition._cp")
    X = _noisy((30, 35, 40), 5, 0.05, seed=11)
    S, iters = 150, 40
    cp, _ = cp_rand(X, 5, n_samples=S, seed=0, max_iter=iters, tol=0, max_stagnation=0,
                    sampling=sampling)
    tl_fits = []
    for seed in range(3):
        w, f = tl_cp.randomised_parafac(X, 5, S, n_iter_max=iters, tol=0, max_stagnation=0,
                                        random_state=seed, sampling=sampling)
        tl_fits.append(_true_fit(X, CPTensor(list(f), np.asarray(w))))
    ours = _true_fit(X, cp)
    best = 1 - 0.05  # the noise floor: no rank-5 model fits better than about this
    assert ours > best - 0.01
    assert (1 - ours) <= 1.5 * (1 - np.median(tl_fits))


# --- errors name the argument --------------------------------------------------------
@pytest.mark.parametrize("kwargs,exc,text", [
    (dict(n_samples=2), ValueError, "n_samples=2 is smaller than rank=3"),
    (dict(n_samples=0), ValueError, "n_samples must be >= 1"),
    (dict(n_samples=5.0), TypeError, "n_samples must be an integer"),
    (dict(sampling="lev"), ValueError, "sampling must be one of"),
    (dict(n_fit_samples=0), ValueError, "n_fit_samples must be >= 1"),
    (dict(max_stagnation=-1), ValueError, "max_stagnation must be >= 0"),
    (dict(max_iter=-1), ValueError, "max_iter must be >= 0"),
    (dict(tol=-1.0), ValueError, "tol must be a number >= 0"),
    (dict(seed="x"), TypeError, "seed must be"),
    (dict(init="hosvd"), ValueError, "init"),
    (dict(callback=3), TypeError, "callback must be callable"),
])
def test_errors_name_the_argument(kwargs, exc, text):
    X = np.ones((4, 5, 6))
    with pytest.raises(exc, match=text):
        cp_rand(X, 3, **kwargs)


def test_bad_tensor_and_rank():
    with pytest.raises(ValueError, match="X"):
        cp_rand(np.ones(5), 2)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        cp_rand(np.ones((3, 3)), 0)
    with pytest.raises(ValueError, match="X"):
        cp_rand(np.full((3, 3), np.nan), 1)


def test_default_sample_count():
    assert default_n_samples(1) == 2 and default_n_samples(16) == 444
    assert check_rand_options(16, n_samples=None).n_samples == 444
