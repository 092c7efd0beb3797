"""CP-ALS memory: SVD init without an I_n x I_n Gram, estimates before allocating, early path checks."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import tensorpar.dense as dense
from tensorpar import cp_als, random_cp
from tensorpar.cp.init import svd_factor, unfolding_gram
from tensorpar.dense import khatri_rao, unfold


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_svd_init_of_a_long_mode_uses_the_small_gram():
    X = random_cp((2, 2, 5000), 2, seed=0).to_dense()
    peak = _peak_bytes(lambda: cp_als(X, 2, init="svd", max_iter=2, tol=0, engine="numpy"))
    # an I_n x I_n Gram alone would be 5000^2 * 8 = 200 MB
    assert peak < 20 * X.nbytes


def test_svd_init_of_shape_2_2_50000():
    X = random_cp((2, 2, 50000), 3, seed=1).to_dense()
    peak = _peak_bytes(lambda: cp_als(X, 3, init="svd", max_iter=3, tol=0, engine="numpy"))
    assert peak < 20 * X.nbytes  # the old I_n x I_n Gram: 18.6 GiB


@pytest.mark.parametrize("shape,mode", [((3, 4, 40), 2), ((30, 2, 3), 0), ((2, 25, 3), 1)])
def test_svd_factor_from_either_side_spans_the_singular_vectors(shape, mode):
    X = np.random.default_rng(2).standard_normal(shape)
    k = min(3, X.shape[mode])
    U = svd_factor(X, mode, k, np.random.default_rng(0))
    ref = np.linalg.svd(unfold(X, mode), full_matrices=False)[0][:, :k]
    ref *= np.sign(ref[np.abs(ref).argmax(axis=0), np.arange(k)])
    np.testing.assert_allclose(U, ref, atol=1e-10)


def test_svd_factor_pads_beyond_the_other_side():
    X = np.random.default_rng(3).standard_normal((2, 2, 50))
    U = svd_factor(X, 2, 6, np.random.default_rng(0))  # only 4 directions exist
    assert U.shape == (50, 6) and np.isfinite(U).all()
    np.testing.assert_allclose(U[:, :4].T @ U[:, :4], np.eye(4), atol=1e-10)


def test_unfolding_gram_scaled():
    X = np.random.default_rng(4).standard_normal((4, 5, 6))
    for mode in range(3):
        G = unfolding_gram(X * 2.0**-700, mode, scale_exp=-700)  # squares of 1e-211 underflow
        np.testing.assert_allclose(G, unfold(X, mode) @ unfold(X, mode).T, rtol=1e-13,
                                   atol=1e-13)


def test_rank_far_beyond_memory_raises_before_allocating(monkeypatch):
    X = np.random.default_rng(5).standard_normal((5, 6, 7))
    with pytest.raises(ValueError, match=r"rank: CP-ALS with rank=1000000 .* GiB"):
        cp_als(X, 10**6)
    monkeypatch.setattr(dense, "available_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"rank: CP-ALS with rank=20000 on shape \(5, 6, 7\)"):
        cp_als(X, 20000)
    cp, _ = cp_als(X, 30, max_iter=2, seed=0)  # small ranks still run
    assert cp.rank == 30


def test_khatri_rao_too_large_raises_before_allocating(monkeypatch):
    mats = [np.ones((1000, 2))] * 5
    with pytest.raises(ValueError, match=r"matrices: the Khatri-Rao product of shape "
                                         r"\(1000000000000000, 2\) need about"):
        khatri_rao(mats)
    monkeypatch.setattr(dense, "available_memory", lambda: 10**6)
    with pytest.raises(ValueError, match="matrices: the Khatri-Rao product"):
        khatri_rao([np.ones((300, 2))] * 2)
    assert khatri_rao([np.ones((30, 2))] * 2).shape == (900, 2)


@pytest.mark.parametrize("bad,exc,match", [
    ("missing_dir/ckpt.npz", ValueError, "does not exist"),
    (".", ValueError, "is a directory"),
    (3, TypeError, "checkpoint must be a path"),
    (["a.npz"], TypeError, "checkpoint must be a path"),
])
def test_checkpoint_path_checked_before_the_first_iteration(tmp_path, bad, exc, match):
    X = np.random.default_rng(6).standard_normal((5, 6, 7))
    calls = []
    path = os.path.join(tmp_path, bad) if isinstance(bad, str) else bad
    with pytest.raises(exc, match=match):
        cp_als(X, 2, max_iter=3, checkpoint=path, callback=lambda *a: calls.append(a))
    assert calls == []
