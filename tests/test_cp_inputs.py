"""CP-ALS inputs that used to be misread: seed, nonnegative, random_cp rank, resume files."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import CPTensor, cp_als, random_cp
from tensorpar.cp.checkpoint import load_checkpoint


def _X(seed=0):
    rng = np.random.default_rng(seed)
    return random_cp((6, 5, 4), 2, seed=seed + 1).to_dense() + 0.2 * rng.standard_normal((6, 5, 4))


@pytest.mark.parametrize("seed", ["abc", 1.5, True, [1, 2]])
def test_seed_of_the_wrong_type(seed):
    with pytest.raises(TypeError, match="seed must be None, an int"):
        cp_als(_X(), 2, seed=seed)


def test_seed_sequence_accepted():
    a, ra = cp_als(_X(), 2, seed=np.random.SeedSequence(5), max_iter=3, tol=0)
    b, rb = cp_als(_X(), 2, seed=np.random.default_rng(np.random.SeedSequence(5)), max_iter=3,
                   tol=0)
    assert ra.fits == rb.fits


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_nonnegative_must_be_a_bool(value):
    with pytest.raises(TypeError, match="nonnegative must be a bool"):
        cp_als(_X(), 2, nonnegative=value)
    cp, _ = cp_als(np.abs(_X()), 2, nonnegative=np.bool_(True), max_iter=2, seed=0)
    assert all((f >= 0).all() for f in cp.factors)


def test_verbose_must_be_a_bool():
    with pytest.raises(TypeError, match="verbose must be a bool"):
        cp_als(_X(), 2, verbose="yes")


@pytest.mark.parametrize("rank,exc", [(2.7, TypeError), (0, ValueError), ("2", TypeError)])
def test_random_cp_rank_checked(rank, exc):
    with pytest.raises(exc, match="rank must be"):
        random_cp((3, 4), rank)


def test_random_cp_shape_checked():
    with pytest.raises(TypeError, match="shape must hold integers"):
        random_cp((5.7, 6, 7), 2)
    assert random_cp((np.int64(3), 4), 2, seed=0).shape == (3, 4)


def test_resume_from_a_npy_file(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match="single .npy array, not a tensorpar CP-ALS checkpoint"):
        cp_als(_X(), 2, resume=path)


def test_resume_from_an_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not a tensorpar CP-ALS checkpoint"):
        cp_als(_X(), 2, resume=path)


@pytest.mark.parametrize("other", ["flip", "negate", "permute"])
def test_resume_from_a_different_tensor_with_the_same_norm(tmp_path, other):
    X = _X(3)
    path = tmp_path / "c.npz"
    cp_als(X, 2, seed=0, max_iter=2, tol=0, checkpoint=path)
    Y = {"flip": X[::-1, ::-1, ::-1], "negate": -X,
         "permute": X.ravel()[np.random.default_rng(0).permutation(X.size)].reshape(X.shape)}[other]
    assert abs(np.linalg.norm(Y) - np.linalg.norm(X)) <= 1e-12 * np.linalg.norm(X)
    with pytest.raises(ValueError, match="different tensor .*sampled entries differ"):
        cp_als(np.ascontiguousarray(Y), 2, max_iter=4, resume=path)
    _, res = cp_als(X, 2, max_iter=4, tol=0, resume=path)  # the right tensor still resumes
    assert res.n_iter == 4 and res.resumed_from == 2


def test_checkpoint_stores_unscaled_weights(tmp_path):
    X = _X(4) * 1e-170
    path = tmp_path / "tiny.npz"
    cp, _ = cp_als(X, 2, seed=0, max_iter=3, tol=0, checkpoint=path)
    state = load_checkpoint(path)
    np.testing.assert_array_equal(state.weights, cp.weights)
    assert len(state.samples) == 16 and state.samples[0] == float(X[tuple(
        __import__("tensorpar").dense.sample_indices(X.shape)[0])])


def test_init_weights_keep_their_scale():
    X = _X(5) * 1e-200
    init = random_cp(X.shape, 2, seed=1)
    init = CPTensor(init.factors, np.array([3e-200, 1e-200]))
    cp, _ = cp_als(X, 2, init=init, max_iter=0)
    np.testing.assert_array_equal(cp.weights, init.normalize().weights)
