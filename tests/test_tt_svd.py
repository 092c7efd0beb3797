"""TT-SVD and TT from functions: exact ranks, the error bound, known rank-2 functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy


def test_tt_svd_recovers_random_tt_ranks(xp):
    x = tp.random_tt((6,) * 8, 3, seed=0)
    X = xp.asarray(x.to_dense())
    y = tp.tt_svd(X, eps=1e-10)
    assert y.ranks == (1,) + (3,) * 7 + (1,)
    np.testing.assert_allclose(to_numpy(y.to_dense()), to_numpy(X), rtol=0,
                               atol=1e-12 * float(abs(X).max()))


@pytest.mark.parametrize("shape", [(7,), (5, 8), (2, 9, 3, 4), (3, 1, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_tt_svd_exact_and_bounded(xp, shape, dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal(shape)
    if dtype == np.complex128:
        X = X + 1j * rng.standard_normal(shape)
    X = xp.asarray(X)
    y = tp.tt_svd(X, eps=0.0)
    assert y.dtype == dtype
    np.testing.assert_allclose(to_numpy(y.to_dense()), to_numpy(X), rtol=0, atol=1e-12)
    Xh = to_numpy(X)
    for eps in (0.3, 0.1, 0.03):
        z = tp.tt_svd(X, eps=eps)
        assert np.linalg.norm(to_numpy(z.to_dense()) - Xh) <= eps * np.linalg.norm(Xh) * (1 + 1e-12)
    assert max(tp.tt_svd(X, max_rank=1).ranks) == 1


def test_sum_and_sine_of_ten_variables_have_rank_two():
    """x1 + ... + x10 and sin(x1 + ... + x10) on a 32-point grid: TT ranks 2.

    The dense grid has 32^10 = 1.1e15 points, so these tensors are built by
    TT arithmetic (a sum of 10 rank-1 terms; sin(s) = Im exp(i s) with
    exp(i s) a complex rank-1 product) and rounded; the entries are checked
    against the function at random grid points.
    """
    d, g = 10, np.linspace(0.0, 1.0, 32)
    ones = [np.ones((1, 32, 1))] * d

    def rank1(k, v):
        cores = list(ones)
        cores[k] = v.reshape(1, 32, 1).astype(np.result_type(v, float))
        return tp.TTTensor(cores)

    s = tp.tt_round(tp.tt_sum([rank1(k, g) for k in range(d)]), 1e-12)
    assert s.ranks == (1,) + (2,) * (d - 1) + (1,)
    e = tp.TTTensor([np.exp(1j * g).reshape(1, 32, 1)] * d)  # exp(i (x1 + ... + x10))
    e_conj = tp.TTTensor([c.conj() for c in e.cores])
    sine = tp.tt_round(tp.tt_sum([e, e_conj], weights=[-0.5j, 0.5j]), 1e-12)  # (e - e*) / 2i
    assert sine.ranks == (1,) + (2,) * (d - 1) + (1,)
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 32, (200, d))
    np.testing.assert_allclose(s.entries(idx), g[idx].sum(1), rtol=1e-12)
    np.testing.assert_allclose(sine.entries(idx), np.sin(g[idx].sum(1)), atol=1e-12)


def test_from_function_ranks(xp):
    g = xp.linspace(0.0, 1.0, 32)
    for f in (lambda *x: sum(x), lambda *x: xp.sin(sum(x))):
        tt = tp.TTTensor.from_function(f, [g] * 4, eps=1e-12)
        assert tt.ranks == (1, 2, 2, 2, 1)
        idx = np.array([[0, 5, 31, 7], [3, 3, 3, 3]])
        gh = to_numpy(g)
        expect = to_numpy(f(*[gh[idx[:, k]] for k in range(4)]))
        np.testing.assert_allclose(to_numpy(tt.entries(idx)), expect, rtol=1e-12, atol=1e-13)
    # uneven grids and a function of higher rank
    grids = [xp.linspace(0, 1, n) for n in (5, 7, 6)]
    tt = tp.tt_from_function(lambda a, b, c: 1.0 / (1.0 + a + b + c), grids, eps=1e-8)
    A, B, C = np.meshgrid(*[to_numpy(v) for v in grids], indexing="ij")
    ref = 1.0 / (1.0 + A + B + C)
    assert np.linalg.norm(to_numpy(tt.to_dense()) - ref) <= 1e-8 * np.linalg.norm(ref)
    assert 2 < max(tt.ranks) <= 6


def test_tt_svd_and_from_function_errors():
    X = np.ones((3, 4))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0, got -0.1"):
        tp.tt_svd(X, eps=-0.1)
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        tp.tt_svd(X, max_rank=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        tp.tt_svd(np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="X has dtype bool"):
        tp.tt_svd(np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="X must have >= 1 dimensions"):
        tp.tt_svd(np.float64(1.0))
    g = np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="not broadcastable to the grid"):
        tp.tt_from_function(lambda a, b: np.ones(5), [g, g])
    with pytest.raises(TypeError, match="f must be callable"):
        tp.tt_from_function(3.0, [g, g])
    with pytest.raises(ValueError, match="at most"):
        tp.tt_from_function(lambda *x: x[0], [np.arange(2.0)] * 30)
    with pytest.raises(ValueError, match="grids\\[1\\] must have 1 dimensions"):
        tp.tt_from_function(lambda *x: x[0], [g, np.ones((2, 2))])
    assert math.isclose(tp.tt_svd(np.arange(1.0, 4.0)).to_dense()[2], 3.0)
