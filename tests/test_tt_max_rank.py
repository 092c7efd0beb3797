"""Per-bond TT rank bounds: the accepted forms of ``max_rank``, tt_svd and tt_round (all three
methods) against dense sequential truncations, and TensorLy's ``tensor_train(X, rank=[...])``."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._validation import check_max_rank
from tensorpar.tt.orth import bond_limit
from tensorpar.tt.rounding_rand import draw_sketch


def _dense_tt_svd(X, bounds):
    """Sequential truncated SVDs left to right, bond k kept at ``bounds[k]`` (the oracle)."""
    shape, d = X.shape, X.ndim
    rest, r, out = X.reshape(shape[0], -1), 1, []
    for k in range(d - 1):
        rest = rest.reshape(r * shape[k], -1)
        u, s, vh = np.linalg.svd(rest, full_matrices=False)
        t = min(bounds[k], len(s))
        out.append(u[:, :t].reshape(r, shape[k], t))
        rest, r = s[:t, None] * vh[:t], t
    out.append(rest.reshape(r, shape[-1], 1))
    return tp.TTTensor(out)


def _reversed(X):
    return np.transpose(X, tuple(range(X.ndim))[::-1])


def _tensor(shape, seed=0):
    # decaying spectrum in every unfolding: distinct singular values, gaps well above rounding
    rng = np.random.default_rng(seed)
    tt = tp.random_tt(shape, 6, seed=rng)
    return tt.to_dense() + 1e-3 * rng.standard_normal(shape)


# --- the accepted forms -------------------------------------------------------------
def test_forms_of_max_rank():
    assert check_max_rank(None, ndim=4) is None
    assert check_max_rank(3, ndim=4) == (3, 3, 3)
    assert check_max_rank(np.int64(3), ndim=2) == (3,)
    assert check_max_rank([2, 5, 3], ndim=4) == (2, 5, 3)
    assert check_max_rank((2, 5, 3), ndim=4) == (2, 5, 3)
    assert check_max_rank(np.array([2, 5, 3]), ndim=4) == (2, 5, 3)
    assert check_max_rank([1, 2, 5, 3, 1], ndim=4) == (2, 5, 3)  # TensorLy's rank list
    assert check_max_rank([], ndim=1) == () and check_max_rank([1, 1], ndim=1) == ()
    assert check_max_rank(4) == 4  # without ndim: the int form only, as before
    assert [bond_limit((2, 5, 3), k) for k in range(3)] == [2, 5, 3]
    assert bond_limit(7, 1) == 7 and bond_limit(None, 0) is None


@pytest.mark.parametrize("value,exc,text", [
    ([2, 5], ValueError, r"max_rank must be an int or a list of d - 1 = 3 bond limits"),
    ([2, 5, 3, 4], ValueError, r"got 4 values"),
    ([2, 2, 5, 3, 1], ValueError, r"must start and end with 1, got 2 and 1"),
    ([2, 0, 3], ValueError, r"max_rank\[1\] must be >= 1, got 0"),
    ([2, -1, 3], ValueError, r"max_rank\[1\] must be >= 1"),
    ([2, 2.5, 3], TypeError, r"max_rank\[1\] must be an integer, got float"),
    ([2, True, 3], TypeError, r"max_rank\[1\] must be an integer"),
    ([1, 2, None, 3, 1], TypeError, r"max_rank\[2\] must be an integer"),
    (0, ValueError, r"max_rank must be >= 1, got 0"),
    (2.0, TypeError, r"max_rank must be an integer"),
    ("3", TypeError, r"max_rank must be an integer"),
    (np.ones((3, 1), dtype=int), ValueError, r"max_rank must be an int or a 1-D list"),
])
def test_errors_name_the_argument(value, exc, text):
    X = np.ones((2, 3, 4, 5))
    with pytest.raises(exc, match=text):
        tp.tt_svd(X, max_rank=value)
    with pytest.raises(exc, match=text):
        tp.tt_round(tp.tt_svd(X), max_rank=value)


# --- tt_svd -------------------------------------------------------------------------
@pytest.mark.parametrize("shape,bounds", [((6, 7, 8), (3, 5)), ((4, 5, 6, 5), (2, 9, 3)),
                                          ((3, 4, 5, 4, 3), (3, 1, 4, 2))])
def test_tt_svd_per_bond_equals_dense_truncation(shape, bounds):
    X = _tensor(shape)
    got = tp.tt_svd(X, eps=0.0, max_rank=list(bounds))
    ref = _dense_tt_svd(X, bounds)
    assert got.ranks == ref.ranks
    assert all(r <= b for r, b in zip(got.ranks[1:-1], bounds))
    np.testing.assert_allclose(got.to_dense(), ref.to_dense(), rtol=0,
                               atol=1e-12 * np.linalg.norm(X))


def test_tt_svd_int_and_list_forms_agree():
    X = _tensor((4, 5, 6, 5))
    a = tp.tt_svd(X, eps=1e-3, max_rank=3)
    for form in ([3, 3, 3], (3, 3, 3), [1, 3, 3, 3, 1], np.array([3, 3, 3])):
        b = tp.tt_svd(X, eps=1e-3, max_rank=form)
        assert all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores))


def test_eps_binds_before_the_bounds():
    X = tp.random_tt((5, 6, 7, 5), [2, 3, 2], seed=1).to_dense()
    assert tp.tt_svd(X, eps=1e-10, max_rank=[4, 8, 4]).ranks == (1, 2, 3, 2, 1)
    assert tp.tt_svd(X, eps=1e-10, max_rank=[4, 1, 4]).ranks == (1, 2, 1, 2, 1)


def test_against_tensorly_tensor_train():
    tld = pytest.importorskip("tensorly.decomposition")
    X = _tensor((5, 6, 7, 6), seed=3)
    rank = [1, 3, 7, 4, 1]
    theirs = tld.tensor_train(X, rank=rank)
    ours = tp.tt_svd(X, eps=0.0, max_rank=rank)
    assert list(ours.ranks) == [f.shape[0] for f in theirs.factors] + [1] == rank
    import tensorly as tl
    np.testing.assert_allclose(ours.to_dense(), tl.tt_to_tensor(theirs), rtol=0,
                               atol=1e-10 * np.linalg.norm(X))
    # a bound above what an unfolding allows: both cap at the unfolding's rank
    theirs = tld.tensor_train(X, rank=[1, 9, 9, 9, 1])
    ours = tp.tt_svd(X, eps=0.0, max_rank=[1, 9, 9, 9, 1])
    assert list(ours.ranks) == [f.shape[0] for f in theirs.factors] + [1] == [1, 5, 9, 6, 1]


# --- tt_round ------------------------------------------------------------------------
@pytest.mark.parametrize("bounds", [(2, 5, 3), (4, 1, 2), (6, 6, 1)])
def test_round_qr_equals_dense_truncation_from_the_right(bounds):
    X = _tensor((4, 5, 6, 5), seed=4)
    x = tp.tt_svd(X, eps=0.0)
    y = tp.tt_round(x, eps=0.0, max_rank=list(bounds), method="qr")
    # QR rounding truncates right to left: TT-SVD of the reversed tensor, bounds reversed
    ref = _reversed(_dense_tt_svd(_reversed(X), bounds[::-1]).to_dense())
    assert y.ranks[1:-1] == tuple(min(b, r) for b, r in zip(bounds, x.ranks[1:-1]))
    np.testing.assert_allclose(y.to_dense(), ref, rtol=0, atol=1e-11 * np.linalg.norm(X))


@pytest.mark.parametrize("bounds", [(2, 5, 3), (4, 1, 2)])
def test_round_gram_equals_dense_truncation_from_the_left(bounds):
    X = _tensor((4, 5, 6, 5), seed=5)
    x = tp.tt_svd(X, eps=0.0)
    y = tp.tt_round(x, eps=1e-7, max_rank=list(bounds), method="gram")
    ref = _dense_tt_svd(X, bounds).to_dense()
    assert y.ranks[1:-1] == tuple(bounds)
    # Gram rounding squares the singular values: accurate to about sqrt(machine eps)
    np.testing.assert_allclose(y.to_dense(), ref, rtol=0, atol=1e-6 * np.linalg.norm(X))


@pytest.mark.parametrize("method", ["qr", "gram", "randomized"])
def test_round_recovers_a_train_of_uneven_ranks(method):
    x = tp.random_tt((5, 6, 7, 6, 5), [2, 5, 3, 4], seed=6)
    y = tp.tt_round(x + x, eps=1e-9, max_rank=[2, 5, 3, 4], method=method, seed=1)
    assert y.ranks == x.ranks
    np.testing.assert_allclose(y.to_dense(), 2 * x.to_dense(), rtol=0,
                               atol=1e-7 * np.linalg.norm(x.to_dense()))
    z = tp.tt_round(x + x, eps=1e-9, max_rank=[1, 2, 5, 3, 4, 1], method=method, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(y.cores, z.cores))


@pytest.mark.parametrize("method", ["qr", "gram", "randomized"])
def test_round_int_bound_unchanged(method):
    x = tp.random_tt((5, 6, 7, 6), 4, seed=7) + tp.random_tt((5, 6, 7, 6), 3, seed=8)
    a = tp.tt_round(x, eps=1e-8, max_rank=3, method=method, seed=2)
    b = tp.tt_round(x, eps=1e-8, max_rank=[3, 3, 3], method=method, seed=2)
    assert a.ranks == (1, 3, 3, 3, 1)
    assert all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores))


def test_randomized_sketch_follows_the_bonds():
    x = tp.random_tt((5, 6, 7, 6), 6, seed=9)
    s = draw_sketch(x.shape, [x.ranks], (1, 4, 2), 2, 0, np.float64, np)
    assert s.ranks == (1, 3, 6, 4, 1)
    y = tp.tt_round(x, eps=0.0, max_rank=[1, 4, 2], method="randomized", oversample=2, seed=3)
    assert y.ranks == (1, 1, 4, 2, 1)


def test_round_sum_per_bond():
    x = tp.random_tt((5, 6, 7), [2, 3], seed=10)
    y = tp.tt_round_sum([x, x, x], eps=1e-10, max_rank=[2, 3], weights=[1.0, 2.0, 3.0], seed=1)
    assert y.ranks == (1, 2, 3, 1)
    np.testing.assert_allclose(y.to_dense(), 6 * x.to_dense(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="max_rank must be an int or a list of d - 1 = 2"):
        tp.tt_round_sum([x, x], max_rank=[2, 3, 4])
