"""Distributed TT at extreme magnitudes: equal to serial, scale invariant, same overflow point."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

import tensorpar as tp  # noqa: E402
from tensorpar.distributed import DistTensor  # noqa: E402
from tensorpar.distributed.tt import (  # noqa: E402
    DistTTTensor,
    dist_tt_dot,
    dist_tt_log_norm,
    dist_tt_norm,
    dist_tt_round,
    dist_tt_svd,
)

pytestmark = pytest.mark.mpi

MAGNITUDES = [1e-300, 1e-170, 1e-30, 1.0, 1e155, 1e200, 1e300]
METHODS = ["qr", "gram", "randomized"]


def _scatter(x, comm):
    return DistTTTensor.scatter(x if comm.rank == 0 else None, comm)


@pytest.mark.parametrize("c", MAGNITUDES)
def test_dot_and_norm_scale_invariant_and_equal_serial(comm, c):
    x = tp.random_tt((7, 5, 6, 4), 3, seed=1)
    y = tp.random_tt((7, 5, 6, 4), 2, seed=2)
    cx = tp.tt_scale(x, c)
    X, Y = _scatter(cx, comm), _scatter(y, comm)
    assert dist_tt_log_norm(X) == pytest.approx(tp.tt_log_norm(cx), abs=1e-12)
    assert dist_tt_log_norm(X) == pytest.approx(math.log(c) + tp.tt_log_norm(x), abs=1e-12)
    assert dist_tt_norm(X) == pytest.approx(c * tp.tt_norm(x), rel=1e-12)
    assert dist_tt_dot(X, Y) == pytest.approx(c * tp.tt_dot(x, y), rel=1e-12)
    assert dist_tt_dot(X, Y) == pytest.approx(tp.tt_dot(cx, y), rel=1e-12)


@pytest.mark.parametrize("logv", [709.2, 709.5, 709.75])
def test_dot_just_below_overflow_is_finite_like_serial(comm, logv):
    # Regression: the distributed dot returned inf for log <x, x> > 709.0 while
    # the serial one overflows only past 709.78.
    x = tp.random_tt((5, 6, 7), 2, seed=3)
    x = tp.tt_scale(x, math.exp(0.5 * logv - tp.tt_log_norm(x)))
    X = _scatter(x, comm)
    serial = tp.tt_dot(x, x)
    assert math.isfinite(serial)
    assert dist_tt_dot(X, X) == pytest.approx(serial, rel=1e-12)
    assert dist_tt_norm(X) == pytest.approx(tp.tt_norm(x), rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c", MAGNITUDES)
def test_round_scale_invariant_and_equal_serial(comm, c, method):
    x = tp.random_tt((7, 5, 6, 4), 3, seed=1)
    y = tp.tt_scale(tp.tt_add(x, x), c)
    kw = dict(max_rank=3, seed=4)
    ser = tp.tt_round(y, 1e-10, method=method, **kw)
    Z = dist_tt_round(_scatter(y, comm), 1e-10, method=method, **kw)
    assert Z.ranks == ser.ranks == x.ranks
    z = Z.gather()
    assert tp.tt_log_norm(z) == pytest.approx(math.log(2 * c) + tp.tt_log_norm(x), abs=1e-12)
    diff = tp.tt_sub(tp.tt_scale(z, 1.0 / c), tp.tt_scale(ser, 1.0 / c))
    assert tp.tt_norm(diff, method="qr") <= 1e-9 * tp.tt_norm(x)


@pytest.mark.parametrize("c", MAGNITUDES)
def test_tt_svd_scale_invariant_and_equal_serial(comm, c):
    rng = np.random.default_rng(0)
    X = tp.random_tt((8, 7, 6), 3, seed=1).to_dense()
    X = X + 1e-6 * rng.standard_normal(X.shape)
    ser = tp.tt_svd(c * X, eps=1e-4)
    D = DistTensor.scatter(c * X if comm.rank == 0 else None, comm=comm)
    tt = dist_tt_svd(D, eps=1e-4)
    assert tt.ranks == ser.ranks == (1, 3, 3, 1)
    g = tt.gather()
    dense = tp.TTTensor(g.cores[:-1] + [g.cores[-1] / c]).to_dense()
    assert np.linalg.norm(dense - X) <= 1e-4 * np.linalg.norm(X)
    assert tp.tt_log_norm(g) == pytest.approx(tp.tt_log_norm(ser), abs=1e-12)
    D.free()
