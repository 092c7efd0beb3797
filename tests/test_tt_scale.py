"""Scale invariance of the TT algorithms and rejection of non-finite cores.

For any representable ``c``, TT-SVD, the three roundings, dot products and
norms of ``c X`` equal ``c`` (or ``c^2``) times those of ``X``: the
algorithms divide data far from 1 by a power of two (exact) and restore it.
Before that, ``tt_svd`` collapsed to rank 1 around 1e155 and 1e-170,
``tt_norm`` returned NaN for a norm of 9e154, ``tt_round`` returned zero and
Gram rounding raised LinAlgError at 1e200.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorpar as tp
from tensorpar.tt.inner import dot_from_chain

MAGNITUDES = [1e-300, 1e-250, 1e-170, 1e-100, 1e-30, 1.0, 1e30, 1e100, 1e155, 1e200, 1e250,
              1e300]
METHODS = ["qr", "gram", "randomized"]


@pytest.fixture(scope="module")
def x():
    return tp.random_tt((5, 6, 7, 4), 3, seed=3)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("c", MAGNITUDES)
def test_tt_svd_is_scale_invariant(c):
    rng = np.random.default_rng(0)
    X = tp.random_tt((8, 7, 6), 3, seed=1).to_dense()
    X = X + 1e-6 * rng.standard_normal(X.shape)
    ref = tp.tt_svd(X, eps=1e-4)
    got = tp.tt_svd(c * X, eps=1e-4)
    assert got.ranks == ref.ranks == (1, 3, 3, 1)
    dense = tp.TTTensor(got.cores[:-1] + [got.cores[-1] / c]).to_dense()
    assert _rel(dense, ref.to_dense()) <= 1e-12
    assert tp.tt_log_norm(got) == pytest.approx(math.log(c) + tp.tt_log_norm(ref), abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", MAGNITUDES)
def test_round_is_scale_invariant(x, c, method):
    y = tp.tt_scale(x + x, c)  # everything in the first core: the worst case
    ref = tp.tt_round(x + x, 1e-10, max_rank=3, method=method, seed=4)
    got = tp.tt_round(y, 1e-10, max_rank=3, method=method, seed=4)
    assert got.ranks == ref.ranks == x.ranks
    assert tp.tt_log_norm(got) == pytest.approx(math.log(c) + tp.tt_log_norm(ref), abs=1e-12)
    diff = tp.tt_sub(tp.tt_scale(got, 1.0 / c), ref)
    assert tp.tt_norm(diff, method="qr") <= 1e-9 * tp.tt_norm(ref)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_round_sum_is_scale_invariant(x, c, method):
    ref = tp.tt_round_sum([x, x], 1e-10, max_rank=3, method=method, weights=[1.0, 2.0], seed=2)
    got = tp.tt_round_sum([c * x, c * x], 1e-10, max_rank=3, method=method,
                          weights=[1.0, 2.0], seed=2)
    assert got.ranks == ref.ranks
    assert tp.tt_log_norm(got) == pytest.approx(math.log(c) + tp.tt_log_norm(ref), abs=1e-12)


@pytest.mark.parametrize("c", MAGNITUDES)
def test_dot_norm_log_dot_are_scale_invariant(x, c):
    y = tp.random_tt(x.shape, 2, seed=5)
    cx = tp.tt_scale(x, c)
    assert tp.tt_log_norm(cx) == pytest.approx(math.log(c) + tp.tt_log_norm(x), abs=1e-12)
    assert tp.tt_log_norm(cx, method="qr") == pytest.approx(
        math.log(c) + tp.tt_log_norm(x), abs=1e-12)
    sign, logabs = tp.tt_log_dot(cx, y)
    sign0, logabs0 = tp.tt_log_dot(x, y)
    assert sign == sign0 and logabs == pytest.approx(math.log(c) + logabs0, abs=1e-12)
    assert tp.tt_dot(cx, y) == pytest.approx(c * tp.tt_dot(x, y), rel=1e-12)
    assert tp.tt_norm(cx) == pytest.approx(c * tp.tt_norm(x), rel=1e-12)


def test_norm_of_a_representable_train_is_not_nan():
    # the norm 9e154 is representable, its square is not
    x = tp.random_tt((4, 5, 6), 2, seed=0)
    y = tp.tt_scale(x, 9e154 / tp.tt_norm(x))
    assert tp.tt_norm(y) == pytest.approx(9e154, rel=1e-12)
    assert tp.tt_log_dot(y, y)[1] == pytest.approx(2 * math.log(9e154), abs=1e-12)
    z = tp.tt_round(y, 1e-12)
    assert tp.tt_norm(z) == pytest.approx(9e154, rel=1e-12)


def test_dot_overflows_only_past_the_float64_range():
    # <x, x> = exp(709.5) = 1.35e308 is representable; exp(709.9) is not
    for logv, finite in ((709.5, True), (709.75, True), (709.9, False)):
        x = tp.TTTensor([np.full((1, 1, 1), math.exp(logv / 4))] * 2)
        got = tp.tt_dot(x, x)
        assert math.isfinite(got) == finite
        if finite:
            assert got == pytest.approx(math.exp(logv), rel=1e-13)
    assert dot_from_chain(1.0, 709.5) == pytest.approx(math.exp(709.5))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_tt_tensor_rejects_non_finite_cores(bad):
    cores = [np.ones((1, 3, 2)), np.ones((2, 4, 1))]
    cores[1][1, 2, 0] = bad
    with pytest.raises(ValueError, match=r"cores\[1\] contains NaN or infinite values"):
        tp.TTTensor(cores)


def test_float32_extremes():
    x = tp.random_tt((5, 6, 7), 3, seed=1, dtype=np.float32)
    for c in (1e-35, 1e35):
        y = tp.tt_scale(x + x, c)
        assert y.dtype == np.float32
        for method in METHODS:
            z = tp.tt_round(y, 1e-5, max_rank=3, method=method, seed=0)
            assert z.ranks == x.ranks
            assert tp.tt_norm(z) == pytest.approx(2 * c * tp.tt_norm(x), rel=1e-4)
