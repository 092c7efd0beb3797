"""Orthogonalization and rounding: exactness, the error bound, long trains, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy
from tensorpar.tt.orth import absorb_left, lq_right, qr_left

METHODS = ["qr", "gram", "randomized"]


def _on(xp, x):
    return tp.TTTensor([xp.asarray(c) for c in x.cores])


def _dense(x):
    return to_numpy(x.to_dense())


def _round(x, eps, method, max_rank=None, seed=0):
    if method == "randomized" and max_rank is None:
        max_rank = max(x.ranks)
    return tp.tt_round(x, eps, max_rank, method=method, seed=seed)


def _left_orthogonal(core, tol=1e-12):
    c = to_numpy(core).reshape(-1, core.shape[2])
    return np.abs(c.conj().T @ c - np.eye(c.shape[1])).max() < tol


def _right_orthogonal(core, tol=1e-12):
    c = to_numpy(core).reshape(core.shape[0], -1)
    return np.abs(c @ c.conj().T - np.eye(c.shape[0])).max() < tol


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("shape", [(6,), (4, 7), (3, 5, 2, 6)])
def test_orthogonalize_both_directions(xp, shape, dtype):
    x = _on(xp, tp.random_tt(shape, 3, seed=1, dtype=dtype))
    X = _dense(x)
    left, right = tp.tt_orthogonalize(x, "left"), x.orthogonalize("right")
    for y in (left, right):
        np.testing.assert_allclose(_dense(y), X, rtol=0, atol=1e-13 * np.abs(X).max())
        assert all(a <= b for a, b in zip(y.ranks, x.ranks))
    assert all(_left_orthogonal(c) for c in left.cores[:-1])
    assert all(_right_orthogonal(c) for c in right.cores[1:])
    unit, log_norm = tp.tt_orthonormalize(x, "left")
    assert log_norm == pytest.approx(math.log(np.linalg.norm(X)), rel=1e-13)
    assert np.linalg.norm(to_numpy(unit.cores[-1])) == pytest.approx(1.0, rel=1e-14)


def test_core_steps_reconstruct():
    rng = np.random.default_rng(0)
    core = rng.standard_normal((3, 4, 5))
    q, R = qr_left(core)
    np.testing.assert_allclose(absorb_left(np.eye(3), core), core)
    np.testing.assert_allclose(np.einsum("rnt,tq->rnq", q, R), core, atol=1e-14)
    L, q2 = lq_right(core)
    assert q2.shape == (3, 4, 5) and _right_orthogonal(q2)
    np.testing.assert_allclose(np.einsum("rt,tnq->rnq", L, q2), core, atol=1e-14)
    wide = rng.standard_normal((2, 2, 7))  # left unfolding 4 x 7: the rank drops to 4
    q3, R3 = qr_left(wide)
    assert q3.shape == (2, 2, 4) and R3.shape == (4, 7)


def test_orthogonalize_2000_cores_no_nan():
    x = tp.random_tt((2,) * 2000, 3, seed=3)
    x = tp.TTTensor([10.0 * c for c in x.cores])  # ||x|| ~ 10^2000: overflows float64
    expect = tp.tt_log_norm(x)
    assert math.isfinite(expect) and expect > 4000
    for direction in ("left", "right"):
        unit, log_norm = tp.tt_orthonormalize(x, direction)
        assert all(np.isfinite(c).all() for c in unit.cores)
        assert log_norm == pytest.approx(expect, rel=1e-10)
        assert tp.tt_log_norm(unit) == pytest.approx(0.0, abs=1e-9)
        inner = unit.cores[:-1] if direction == "left" else unit.cores[1:]
        test = _left_orthogonal if direction == "left" else _right_orthogonal
        assert all(test(c, 1e-10) for c in inner[::97])
        y = tp.tt_orthogonalize(x, direction)  # the norm is spread over the cores
        assert all(np.isfinite(c).all() for c in y.cores)
        assert tp.tt_log_norm(y) == pytest.approx(expect, rel=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_long_train_rounding(method):
    x = tp.random_tt((2,) * 2000, 2, seed=4)
    x = tp.TTTensor([5.0 * c for c in x.cores])
    y = _round(x + x, 1e-8, method, max_rank=2)
    assert y.ranks == x.ranks
    assert all(np.isfinite(c).all() for c in y.cores)
    assert tp.tt_log_norm(y) == pytest.approx(tp.tt_log_norm(x) + math.log(2), rel=1e-9)
    sign, log_dot = tp.tt_log_dot(y, x)  # y = 2x: cos(angle) = 1
    assert sign == 1.0
    assert log_dot == pytest.approx(tp.tt_log_norm(x) + tp.tt_log_norm(y), rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_exact_rank_recovery(xp, method, dtype):
    x = _on(xp, tp.random_tt((4, 5, 3, 6), 3, seed=5, dtype=dtype))
    y = _round(x + x, 1e-10, method)
    assert y.ranks == x.ranks
    np.testing.assert_allclose(_dense(y), 2 * _dense(x), atol=1e-12 * np.abs(_dense(x)).max())
    ones = _on(xp, tp.TTTensor([np.ones((1, n, 1)) for n in (3, 4, 5, 2)]))
    two = _round(ones + ones, 1e-10, method)
    assert two.ranks == (1, 1, 1, 1, 1)
    np.testing.assert_allclose(_dense(two), 2.0, rtol=1e-12)
    z = _round(0.0 * x, 1e-10, method)
    assert z.ranks == (1,) * 5 and not np.abs(_dense(z)).max()


def _decaying_tt(rng, dtype):
    """A sum of TTs with geometrically decaying weights: many ranks to drop at any eps."""
    d = int(rng.integers(2, 6))
    shape = tuple(int(n) for n in rng.integers(3, 7, d))
    terms = [tp.random_tt(shape, 1, seed=rng, dtype=dtype) for _ in range(12)]
    decay = 10.0 ** -rng.uniform(0.5, 2.0)
    return tp.tt_sum(terms, weights=[decay**j for j in range(len(terms))])


@pytest.mark.parametrize("method,trials,eps_range", [
    ("qr", 300, (-10, -2)),
    ("gram", 150, (-6, -2)),        # the Gram method's accuracy floor is ~1e-8
    ("randomized", 150, (-10, -2)),  # sketch rank >= the TT rank of x
])
def test_rounding_bound_random_trials(method, trials, eps_range):
    rng = np.random.default_rng({"qr": 11, "gram": 12, "randomized": 13}[method])
    dropped = 0
    for trial in range(trials):
        dtype = np.complex128 if trial % 4 == 3 else np.float64
        x = _decaying_tt(rng, dtype)
        eps = 10.0 ** rng.uniform(*eps_range)
        y = _round(x, eps, method, seed=trial)
        X = x.to_dense()
        err = np.linalg.norm(y.to_dense() - X)
        assert err <= (eps + 1e-13) * np.linalg.norm(X), (trial, eps, err / np.linalg.norm(X))
        assert all(a <= b for a, b in zip(y.ranks, x.ranks))
        dropped += y.ranks != tp.tt_round(x, 0.0).ranks
    assert dropped > trials // 2  # the tolerance is used, not ignored


def test_rounding_is_optimal_for_d2():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((8, 9)) @ np.diag(2.0 ** -np.arange(9)) @ rng.standard_normal((9, 9))
    x = tp.tt_svd(A, eps=0.0)
    s = np.linalg.svd(A, compute_uv=False)
    for eps in (1e-1, 1e-2, 1e-3):
        y = tp.tt_round(x, eps)
        t = y.ranks[1]
        tails = np.sqrt(np.cumsum(s[::-1] ** 2)[::-1])  # tails[k]: error of rank k
        assert tails[t] <= eps * np.linalg.norm(A) < tails[t - 1]
        assert np.linalg.norm(y.to_dense() - A) == pytest.approx(tails[t], rel=1e-8)


def test_max_rank_caps_and_gram_floor():
    x = tp.random_tt((4, 5, 6, 3), 4, seed=8)
    for method in METHODS:
        assert max(_round(x, 0.0, method, max_rank=2).ranks) == 2
    # below its floor the Gram method still lands near sqrt(machine eps), not worse
    y = tp.tt_round(x + x, 1e-14, method="gram")
    err = np.linalg.norm(y.to_dense() - 2 * x.to_dense()) / np.linalg.norm(2 * x.to_dense())
    assert err < 1e-7


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_round_sum_without_forming_it(xp, dtype):
    rng = np.random.default_rng(9)
    base = _on(xp, tp.random_tt((4, 5, 6, 3), 3, seed=rng, dtype=dtype))
    terms = [base + 1e-9 * _on(xp, tp.random_tt((4, 5, 6, 3), 2, seed=rng, dtype=dtype))
             for _ in range(10)]
    weights = list(rng.uniform(0.5, 1.5, 10))
    S = sum(w * _dense(t) for w, t in zip(weights, terms))
    for method in METHODS:
        y = tp.tt_round_sum(terms, 1e-6, max_rank=3, method=method, weights=weights, seed=1)
        assert y.ranks == (1, 3, 3, 3, 1)
        assert np.linalg.norm(_dense(y) - S) <= 1e-6 * np.linalg.norm(S)
    exact = tp.tt_round_sum(terms[:3], 1e-13, max_rank=40, seed=2)  # sketch rank covers the sum
    S3 = sum(_dense(t) for t in terms[:3])
    assert np.linalg.norm(_dense(exact) - S3) <= 1e-12 * np.linalg.norm(S3)


def test_rounding_errors():
    x = tp.random_tt((3, 4, 5), 2, seed=0)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        tp.tt_round(x, -1e-3)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        tp.tt_round(x, float("nan"))
    with pytest.raises(TypeError, match="eps must be a real number"):
        tp.tt_round(x, "small")
    with pytest.raises(ValueError, match="max_rank must be >= 1, got 0"):
        tp.tt_round(x, 1e-3, max_rank=0)
    with pytest.raises(TypeError, match="max_rank must be an integer"):
        tp.tt_round(x, 1e-3, max_rank=2.5)
    with pytest.raises(ValueError, match="method must be one of"):
        tp.tt_round(x, method="svd")
    with pytest.raises(ValueError, match="needs max_rank"):
        tp.tt_round(x, 1e-3, method="randomized")
    with pytest.raises(ValueError, match="oversample must be >= 0"):
        tp.tt_round(x, 1e-3, 2, method="randomized", oversample=-1)
    with pytest.raises(TypeError, match="must be a TTTensor"):
        tp.tt_round(x.to_dense(), 1e-3)
    with pytest.raises(ValueError, match="same mode sizes"):
        tp.tt_round_sum([x, tp.random_tt((3, 4, 6), 2)], 1e-3, 2)
    with pytest.raises(ValueError, match="direction must be"):
        tp.tt_orthogonalize(x, "up")
