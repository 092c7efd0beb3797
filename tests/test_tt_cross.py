"""TT-cross: maxvol, the evaluation cache, recovery of known-rank functions, counts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import TTTensor, tt_svd
from tensorpar.tt.cross import CrossResult, tt_cross
from tensorpar.tt.eval_cache import EvalCache
from tensorpar.tt.maxvol import maxvol, maxvol_rect


# -- maxvol ------------------------------------------------------------------
@pytest.mark.parametrize("n, r, k", [(50, 4, 4), (50, 4, 9), (7, 7, 7), (30, 1, 5), (12, 3, 12)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_maxvol_rect_coefficients_match_pinv(n, r, k, dtype):
    rng = np.random.default_rng(n + r + k)
    A = rng.standard_normal((n, r)).astype(dtype)
    if dtype == np.complex128:
        A = A + 1j * rng.standard_normal((n, r))
    rows, C = maxvol_rect(A, k)
    assert len(set(rows.tolist())) == k
    np.testing.assert_allclose(C, A @ np.linalg.pinv(A[rows]), atol=1e-12)


def test_maxvol_is_dominant_and_beats_random_rows():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 6))
    rows, C = maxvol(A, tol=1.01)
    np.testing.assert_allclose(C, A @ np.linalg.inv(A[rows]), atol=1e-12)
    np.testing.assert_allclose(C[rows], np.eye(6), atol=1e-12)
    assert np.abs(C).max() <= 1.01 + 1e-12
    vol = abs(np.linalg.det(A[rows]))
    for _ in range(50):
        other = rng.choice(200, 6, replace=False)
        assert abs(np.linalg.det(A[other])) <= vol * 1.01 ** 6


def test_maxvol_rank_deficient_rows_stay_distinct():
    A = np.zeros((6, 2))
    A[0] = [1.0, 0.0]
    A[1] = [2.0, 1.0]
    rows, _ = maxvol(A)
    assert sorted(rows.tolist()) == [0, 1]


def test_maxvol_bad_input():
    with pytest.raises(ValueError, match="A must be a tall"):
        maxvol(np.ones((2, 3)))
    with pytest.raises(ValueError, match="tol"):
        maxvol(np.eye(3), tol=0.5)
    with pytest.raises(ValueError, match="k must be <= n"):
        maxvol_rect(np.eye(3), 4)
    with pytest.raises(ValueError, match="k must be >= 3"):
        maxvol_rect(np.eye(3), 2)
    with pytest.raises(TypeError, match="A must be a float"):
        maxvol(np.eye(3, dtype=int))


# -- cache ---------------------------------------------------------------------
@pytest.mark.parametrize("shape, weights", [
    ((5, 6, 7), None),                  # linear keys
    ((10,) * 30, None),                 # hash keys
    ((10,) * 30, [0] * 30),             # every hash collides: byte keys from the second row
    ((10,) * 30, [1] * 29 + [2**64]),   # rows of equal sums (last index ignored) collide
])
@pytest.mark.parametrize("distinct", [False, True])
def test_cache_answers_like_the_function_and_counts(shape, weights, distinct):
    rng = np.random.default_rng(1)
    seen: list[np.ndarray] = []

    def f(idx):
        seen.append(idx.copy())
        return (idx * np.arange(1, len(shape) + 1)).sum(axis=1).astype(float)

    cache = EvalCache(shape, hash_weights=weights)
    total = 0
    for _ in range(5):
        idx = rng.integers(0, 3, size=(40, len(shape)))
        if distinct:
            idx = np.unique(idx, axis=0)[rng.permutation(len(np.unique(idx, axis=0)))]
        np.testing.assert_array_equal(cache.get(idx, f, distinct=distinct), f(idx))
        seen.pop()  # the reference call above
        total += len(idx)
    asked = np.concatenate(seen)
    assert len(np.unique(asked, axis=0)) == len(asked) == len(cache)  # nothing twice
    assert cache.n_hits == total - len(asked)
    assert cache.byte_keys == (weights is not None)


def test_cache_hash_collision_with_a_stored_row_switches_to_byte_keys():
    calls = []

    def f(idx):
        calls.append(idx.copy())
        return idx[:, 0] + 10.0 * idx[:, 1]

    cache = EvalCache((10,) * 30, hash_weights=[1] * 30)  # hash = sum of the indices
    a, b = np.zeros((1, 30), dtype=np.int64), np.zeros((1, 30), dtype=np.int64)
    a[0, 0], b[0, 1] = 1, 1
    assert cache.get(a, f, distinct=True).tolist() == [1.0]
    assert not cache.byte_keys
    assert cache.get(np.concatenate([b, a]), f, distinct=True).tolist() == [10.0, 1.0]
    assert cache.byte_keys and len(cache) == 2 and cache.n_hits == 1
    assert [c.tolist() for c in calls] == [a.tolist(), b.tolist()]  # nothing evaluated twice


def test_cache_declined_evaluation_stores_nothing():
    cache = EvalCache((4, 4))
    assert cache.get(np.array([[1, 2]]), lambda rows: None) is None
    assert len(cache) == 0


# -- recovery of functions with known TT ranks -------------------------------------
GRID = np.linspace(0.0, 1.0, 10)


def sin_sum(idx):
    return np.sin(GRID[idx].sum(axis=1))


def rank1_product(idx):
    return np.prod(1.0 + GRID[idx], axis=1)


def separable_sum(idx):  # sum_k g(x_k) + prod_k h(x_k): TT rank 3
    x = GRID[idx]
    return np.exp(-x).sum(axis=1) + np.prod(1.0 + 0.5 * x, axis=1)


def rank4(idx):  # sin(s) + cos(2 s), s = sum_k x_k: TT rank 4
    s = GRID[idx].sum(axis=1)
    return np.sin(s) + np.cos(2.0 * s)


FUNCTIONS = [(sin_sum, 2), (rank1_product, 1), (separable_sum, 3), (rank4, 4)]


def _dense(f, shape):
    idx = np.stack(np.unravel_index(np.arange(np.prod(shape)), shape), axis=1)
    return f(idx).reshape(shape)


class Counted:
    """A function that records every multi-index it is asked for."""

    def __init__(self, f):
        self.f = f
        self.calls: list[np.ndarray] = []

    def __call__(self, idx):
        assert idx.dtype == np.int64 and idx.ndim == 2
        self.calls.append(idx.copy())
        return self.f(idx)

    @property
    def n(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.mark.parametrize("f, r", FUNCTIONS)
def test_known_ranks_against_dense(f, r):
    shape = (10, 10, 10, 10, 10)
    g = Counted(f)
    res = tt_cross(g, shape, eps=1e-10, seed=0)
    dense = _dense(f, shape)
    assert isinstance(res, CrossResult) and res.converged and res.stop == "converged"
    assert res.tt.ranks == tt_svd(dense, eps=1e-12).ranks
    assert max(res.tt.ranks) == r
    err = np.linalg.norm(res.tt.to_dense() - dense) / np.linalg.norm(dense)
    assert err <= 1e-10
    # counted: every evaluation went through f once, and only distinct indices were asked
    assert res.n_evals == g.n
    asked = np.concatenate(g.calls)
    assert len(np.unique(asked, axis=0)) == len(asked)
    assert res.n_requests >= res.n_evals
    # bounded: a few half-sweeps of sum_k (r + 2)^2 n_k fibre entries
    assert res.n_evals <= res.n_sweeps * len(shape) * 10 * (r + 2) ** 2


@pytest.mark.parametrize("f, r", FUNCTIONS)
def test_known_ranks_large_d_random_entries(f, r):
    shape = (10,) * 24
    res = tt_cross(f, shape, eps=1e-10, seed=3)
    assert res.converged and max(res.tt.ranks) == r
    idx = np.random.default_rng(7).integers(0, 10, size=(3000, 24))
    y = f(idx)
    assert np.linalg.norm(res.tt.entries(idx) - y) <= 1e-10 * np.linalg.norm(y)


def test_smooth_function_reaches_eps():
    x = np.linspace(0.0, 1.0, 16)

    def f(idx):
        return 1.0 / (1.0 + x[idx].sum(axis=1))

    res = tt_cross(f, (16,) * 8, eps=1e-8, seed=0)
    idx = np.random.default_rng(0).integers(0, 16, size=(4000, 8))
    y = f(idx)
    assert res.converged
    assert np.linalg.norm(res.tt.entries(idx) - y) <= 1e-7 * np.linalg.norm(y)


def test_kink_is_not_mistaken_for_low_rank():
    """sqrt(sum x^2) on [-1, 1]^6: spare indices chosen by maxvol alone stop at rank 2 (9% error)."""
    g = np.linspace(-1.0, 1.0, 32)

    def f(idx):
        return np.sqrt((g[idx] ** 2).sum(axis=1))

    idx = np.random.default_rng(0).integers(0, 32, size=(4000, 6))
    y = f(idx)
    for seed in range(3):
        res = tt_cross(f, (32,) * 6, eps=1e-6, seed=seed)
        assert res.converged
        assert np.linalg.norm(res.tt.entries(idx) - y) <= 1e-5 * np.linalg.norm(y)


def test_small_modes_respect_unfolding_limits():
    # binary modes: the bonds next to the ends cannot exceed rank 2, which must not
    # count as "the bond wants to grow" (that would prevent convergence)
    def f(idx):
        return np.sin(0.1 * idx.sum(axis=1))

    res = tt_cross(f, (2,) * 50, eps=1e-10, seed=1)
    assert res.converged and res.n_sweeps <= 6 and max(res.tt.ranks) == 2
    idx = np.random.default_rng(2).integers(0, 2, size=(2000, 50))
    assert np.abs(res.tt.entries(idx) - f(idx)).max() <= 1e-10


def test_one_mode_and_zero_function():
    res = tt_cross(lambda i: i[:, 0] ** 2.0, (7,), eps=1e-12, seed=0)
    np.testing.assert_array_equal(res.tt.to_dense(), np.arange(7.0) ** 2)
    assert res.n_evals == 7 and res.converged
    zero = tt_cross(lambda i: np.zeros(len(i)), (4, 5, 6), eps=1e-10, seed=0)
    assert zero.converged and not zero.tt.to_dense().any()


def test_fixed_rank_and_rank_cap():
    shape = (8,) * 6
    res = tt_cross(sin_sum, shape, rank=3, seed=0, max_sweeps=6)
    assert max(res.tt.ranks) <= 3
    dense = _dense(sin_sum, shape)
    assert np.linalg.norm(res.tt.to_dense() - dense) <= 1e-10 * np.linalg.norm(dense)
    capped = tt_cross(rank4, shape, eps=1e-10, rank=2, seed=0, max_sweeps=6)
    assert max(capped.tt.ranks) <= 2


def test_max_evals_budget():
    shape = (10,) * 8
    full = tt_cross(rank4, shape, eps=1e-10, seed=0)
    budget = full.n_evals // 2
    g = Counted(rank4)
    res = tt_cross(g, shape, eps=1e-10, seed=0, max_evals=budget)
    assert res.stop == "max_evals" and not res.converged
    assert res.n_evals == g.n <= budget
    assert isinstance(res.tt, TTTensor) and res.tt.shape == shape
    with pytest.raises(ValueError, match="max_evals = 5 is too small"):
        tt_cross(rank4, shape, eps=1e-10, seed=0, max_evals=5)


def test_seed_reproducible_and_cache_off_same_result():
    shape = (9,) * 6
    a = tt_cross(separable_sum, shape, eps=1e-10, seed=11)
    b = tt_cross(separable_sum, shape, eps=1e-10, seed=11)
    c = tt_cross(separable_sum, shape, eps=1e-10, seed=11, cache=False)
    for x, y, z in zip(a.tt.cores, b.tt.cores, c.tt.cores):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    assert a.n_evals == b.n_evals < c.n_evals == c.n_requests


@pytest.mark.parametrize("c", [1e-300, 2.0**-900, 1e-150, 3.7, 1e150, 2.0**900, 1e300])
def test_scale_invariance(c):
    shape = (10,) * 12
    base = tt_cross(separable_sum, shape, eps=1e-10, seed=2)
    res = tt_cross(lambda i: c * separable_sum(i), shape, eps=1e-10, seed=2)
    assert res.tt.ranks == base.tt.ranks and res.n_evals == base.n_evals
    idx = np.random.default_rng(4).integers(0, 10, size=(500, 12))
    want = c * separable_sum(idx)
    got = res.tt.entries(idx)
    assert np.all(np.isfinite(got))
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
    if np.frexp(c)[0] == 0.5:  # a power of two: the same train bit for bit, times c
        np.testing.assert_array_equal(got, c * base.tt.entries(idx))


def test_bad_input_names_the_argument():
    shape = (4, 4, 4)
    with pytest.raises(TypeError, match="f must be callable"):
        tt_cross(3, shape, eps=1e-8)
    with pytest.raises(TypeError, match="shape must be"):
        tt_cross(sin_sum, 4, eps=1e-8)
    with pytest.raises(ValueError, match=r"shape\[1\] must be >= 1"):
        tt_cross(sin_sum, (4, 0), eps=1e-8)
    with pytest.raises(ValueError, match="give eps"):
        tt_cross(sin_sum, shape)
    with pytest.raises(ValueError, match="eps must be"):
        tt_cross(sin_sum, shape, eps=-1.0)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        tt_cross(sin_sum, shape, rank=0)
    with pytest.raises(TypeError, match="max_evals must be an integer"):
        tt_cross(sin_sum, shape, eps=1e-8, max_evals=1.5)
    with pytest.raises(TypeError, match="cache must be a bool"):
        tt_cross(sin_sum, shape, eps=1e-8, cache="yes")
    with pytest.raises(ValueError, match="f returned shape"):
        tt_cross(lambda i: np.zeros((len(i), 2)), shape, eps=1e-8)
    with pytest.raises(ValueError, match="f returned non-finite"):
        tt_cross(lambda i: np.full(len(i), np.nan), shape, eps=1e-8)
    with pytest.raises(TypeError, match="f must return real"):
        tt_cross(lambda i: np.ones(len(i)) * 1j, shape, eps=1e-8)


# -- against teneva's cross ---------------------------------------------------------
@pytest.mark.parametrize("f, r", FUNCTIONS)
def test_against_teneva_cross(f, r):
    """Same functions and accuracy target: both reach 1e-10; tensorpar needs no more evaluations.

    teneva is run as its documentation suggests: a random rank-2 start, its
    relative-change stop at the same ``eps``, a cache, then ``truncate``.
    """
    teneva = pytest.importorskip("teneva")
    shape = (10,) * 12
    idx = np.random.default_rng(9).integers(0, 10, size=(3000, 12))
    y = f(idx)
    ours = tt_cross(f, shape, eps=1e-10, seed=0)
    info: dict = {}
    Y = teneva.cross(f, teneva.rand(list(shape), 2, seed=0), e=1e-10, nswp=40, info=info,
                     cache={})
    Y = teneva.truncate(Y, 1e-10)
    err_teneva = np.linalg.norm(teneva.get_many(Y, idx) - y) / np.linalg.norm(y)
    err_ours = np.linalg.norm(ours.tt.entries(idx) - y) / np.linalg.norm(y)
    assert err_teneva <= 1e-10 and err_ours <= 1e-10
    assert list(ours.tt.ranks) == [int(v) for v in teneva.ranks(Y)]
    assert ours.n_evals <= info["m"]
