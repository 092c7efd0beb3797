"""Agreement with teneva (same core layout: a list of (r, n, r') arrays)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp

teneva = pytest.importorskip("teneva", reason="teneva is a test extra: pip install 'tensorpar[peers]'")

SHAPE = (4, 6, 3, 5, 4)


@pytest.fixture
def pair():
    x = tp.random_tt(SHAPE, 3, seed=0)
    y = tp.random_tt(SHAPE, [2, 4, 3, 2], seed=1)
    return x, y


def _same(ours, theirs, tol=1e-12):
    a, b = ours.to_dense(), teneva.full(theirs)
    assert np.abs(a - b).max() <= tol * np.abs(b).max()


def test_add_sub_mul_agree(pair):
    x, y = pair
    _same(x + y, teneva.add(x.cores, y.cores))
    _same(x - y, teneva.sub(x.cores, y.cores))
    _same(x * y, teneva.mul(x.cores, y.cores))
    _same(2.5 * x, teneva.mul(x.cores, 2.5))
    assert (x + y).ranks == tuple(teneva.ranks(teneva.add(x.cores, y.cores)))
    assert (x * y).ranks == tuple(teneva.ranks(teneva.mul(x.cores, y.cores)))


def test_dot_norm_agree(pair):
    x, y = pair
    assert tp.tt_dot(x, y) == pytest.approx(teneva.mul_scalar(x.cores, y.cores), rel=1e-12)
    assert tp.tt_norm(x) == pytest.approx(teneva.norm(x.cores), rel=1e-12)
    assert tp.tt_norm(y, "qr") == pytest.approx(teneva.norm(y.cores), rel=1e-12)


@pytest.mark.parametrize("method", ["qr", "gram", "randomized"])
def test_truncation_agrees(pair, method):
    x, y = pair
    # x + y + x has the exact ranks of x + y (found by TT-SVD of the dense
    # tensor), below those of the sum: both libraries must find them
    s = tp.tt_sum([x, y, x])
    exact = tp.tt_svd(s.to_dense(), 1e-10).ranks
    assert sum(exact) < sum(s.ranks)
    ours = tp.tt_round(s, 1e-10, max_rank=12 if method == "randomized" else None,
                       method=method, seed=0)
    theirs = teneva.truncate(s.cores, 1e-10)
    assert ours.ranks == tuple(teneva.ranks(theirs)) == exact
    _same(ours, theirs, 1e-9)
    # a genuine truncation at a rank bound: same best approximation to rounding accuracy
    ours = tp.tt_round(s, 1e-10, max_rank=3, method=method, seed=0)
    theirs = teneva.truncate(s.cores, 1e-10, 3)
    assert ours.ranks == tuple(teneva.ranks(theirs))
    ref = s.to_dense()
    err_ours = np.linalg.norm(ours.to_dense() - ref)
    err_theirs = np.linalg.norm(teneva.full(theirs) - ref)
    assert err_ours <= err_theirs * 1.05 + 1e-12  # sweeps differ; neither is optimal
