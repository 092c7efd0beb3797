"""The reusable CP-ALS pieces: init, factor updates, normalisation, fit, checkpoint I/O."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import CPTensor, random_cp, unfold
from tensorpar.cp.checkpoint import CPALSState, load_checkpoint, save_checkpoint
from tensorpar.cp.fit import (
    cp_fit,
    cp_inner_from_mttkrp,
    cp_norm_sq_from_grams,
    fit_from_terms,
    has_converged,
)
from tensorpar.cp.init import initialize_cp, random_factors, svd_factor, unfolding_gram
from tensorpar.cp.update import (
    als_factor_update,
    gram,
    hadamard_grams,
    hals_factor_update,
    inverse_psd,
    normalize_factor,
)
from tensorpar.mttkrp import mttkrp_reference


@pytest.fixture
def X4(rng):
    return rng.standard_normal((5, 4, 6, 3))


# -- init ------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["C", "F", "view"])
@pytest.mark.parametrize("block_bytes", [1, 2**25])
def test_unfolding_gram(X4, xp, layout, block_bytes):
    X = xp.asarray(X4)
    if layout == "F":
        X = xp.asfortranarray(X)
    elif layout == "view":
        X = xp.asarray(np.pad(X4, 1))[1:-1, 1:-1, 1:-1, 1:-1]
    for n in range(4):
        U = unfold(X4, n)
        G = unfolding_gram(X, n, block_bytes=block_bytes)
        np.testing.assert_allclose(xp.asnumpy(G) if xp is not np else G, U @ U.T,
                                   rtol=1e-12, atol=1e-12)


def test_svd_factor_spans_leading_singular_vectors(X4, rng):
    for n in range(4):
        U = svd_factor(X4, n, 2, rng)
        ref = np.linalg.svd(unfold(X4, n), full_matrices=False)[0][:, :2]
        np.testing.assert_allclose(np.abs(U.T @ ref), np.eye(2), atol=1e-10)
        assert np.all(U[np.argmax(np.abs(U), axis=0), [0, 1]] > 0)


def test_svd_factor_pads_when_rank_exceeds_dimension(X4):
    U = svd_factor(X4, 3, 5, np.random.default_rng(0))
    assert U.shape == (3, 5)
    np.testing.assert_allclose(U[:, :3].T @ U[:, :3], np.eye(3), atol=1e-12)
    V = svd_factor(X4, 3, 5, np.random.default_rng(0), nonnegative=True)
    assert np.all(V >= 0)


def test_random_factors_are_seeded_and_ordered():
    a = random_factors((3, 4), 2, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(a[0], rng.standard_normal((3, 2)))
    np.testing.assert_array_equal(a[1], rng.standard_normal((4, 2)))
    b = random_factors((3, 4), 2, np.random.default_rng(1), nonnegative=True,
                       dtype=np.float32)
    assert all(f.dtype == np.float32 and f.min() >= 0 for f in b)


def test_initialize_cp_normalises(X4):
    init = random_cp(X4.shape, 3, seed=0)
    cp = initialize_cp(X4, 3, init)
    np.testing.assert_allclose(cp.to_dense(), init.to_dense(), rtol=1e-12)
    for f in cp.factors:
        np.testing.assert_allclose(np.linalg.norm(f, axis=0), 1.0, rtol=1e-12)
    assert cp.factors[0] is not init.factors[0]


# -- factor updates -----------------------------------------------------------------------

def _problem(rng, shape=(6, 5, 4), rank=3):
    X = rng.standard_normal(shape)
    factors = [rng.standard_normal((s, rank)) for s in shape]
    return X, factors


def test_hadamard_grams(rng):
    _, factors = _problem(rng)
    grams = [gram(f) for f in factors]
    np.testing.assert_allclose(hadamard_grams(grams, skip=1), grams[0] * grams[2], rtol=1e-14)
    np.testing.assert_allclose(hadamard_grams(grams), grams[0] * grams[1] * grams[2],
                               rtol=1e-14)
    with pytest.raises(ValueError, match="at least one"):
        hadamard_grams(grams[:1], skip=0)


def test_als_factor_update_is_least_squares(rng, xp):
    X, factors = _problem(rng)
    grams = [gram(f) for f in factors]
    M, V = mttkrp_reference(X, factors, 0), hadamard_grams(grams, skip=0)
    A = als_factor_update(xp.asarray(M), xp.asarray(V))
    A = A if xp is np else xp.asnumpy(A)
    K = np.einsum("jr,kr->jkr", factors[1], factors[2]).reshape(-1, 3)
    ref = np.linalg.lstsq(K, unfold(X, 0).T, rcond=None)[0].T
    np.testing.assert_allclose(A, ref, rtol=1e-10, atol=1e-12)


def test_als_factor_update_singular_falls_back_to_pinv(rng):
    M = rng.standard_normal((5, 3))
    B = rng.standard_normal((3, 2))
    V = B @ B.T  # rank 2
    np.testing.assert_allclose(als_factor_update(M, V), M @ np.linalg.pinv(V),
                               rtol=1e-8, atol=1e-10)


def test_inverse_psd(rng, xp):
    B = rng.standard_normal((6, 4))
    V = B.T @ B
    got = inverse_psd(xp.asarray(V))
    got = got if xp is np else xp.asnumpy(got)
    np.testing.assert_allclose(got, np.linalg.inv(V), rtol=1e-10)
    S = B[:2].T @ B[:2]  # rank 2 of 4: Cholesky fails (numpy raises, cupy must be caught)
    got = inverse_psd(xp.asarray(S))
    got = got if xp is np else xp.asnumpy(got)
    np.testing.assert_allclose(got, np.linalg.pinv(S), rtol=1e-8, atol=1e-10)


def test_hals_update_decreases_objective_and_is_nonnegative(rng):
    X = np.abs(rng.standard_normal((6, 5, 4)))
    factors = [np.abs(rng.standard_normal((s, 3))) for s in X.shape]
    V = hadamard_grams([gram(f) for f in factors], skip=0)
    M = mttkrp_reference(X, factors, 0)

    def objective(A):  # ||X_(0) - A K^T||^2 up to the constant ||X||^2
        return -2 * np.sum(A * M) + np.sum((A @ V) * A)

    A = factors[0]
    for _ in range(5):
        new = hals_factor_update(A, M, V)
        assert new.min() >= 0 and objective(new) <= objective(A) + 1e-12
        A = new
    # Many passes converge to the nonnegative least-squares solution (KKT conditions).
    A = hals_factor_update(A, M, V, n_inner=500)
    grad = A @ V - M
    assert np.all(grad >= -1e-8) and np.abs(grad * A).max() < 1e-8


def test_hals_leaves_dead_columns_alone(rng):
    A = np.abs(rng.standard_normal((4, 2)))
    V = np.diag([1.0, 0.0])
    out = hals_factor_update(A, np.ones((4, 2)), V)
    np.testing.assert_array_equal(out[:, 1], A[:, 1])


def test_normalize_factor(rng):
    A = rng.standard_normal((7, 3))
    A[:, 1] = 0
    An, G, w = normalize_factor(A, gram(A))
    np.testing.assert_allclose(w, np.linalg.norm(A, axis=0), rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(An, axis=0), [1, 0, 1], rtol=1e-14)
    np.testing.assert_allclose(G, gram(An), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(An * w, A, rtol=1e-14)


# -- fit ---------------------------------------------------------------------------------

def test_fit_pieces_match_dense(rng):
    X = rng.standard_normal((6, 5, 4))
    cp = random_cp(X.shape, 3, seed=1).normalize()
    cp.weights = np.array([2.0, -1.0, 0.5])
    M = mttkrp_reference(X, cp.factors, 2)
    inner = cp_inner_from_mttkrp(M, cp.factors[2], cp.weights)
    assert inner == pytest.approx(np.sum(X * cp.to_dense()), rel=1e-12)
    grams = [gram(f) for f in cp.factors]
    nsq = cp_norm_sq_from_grams(hadamard_grams(grams), cp.weights)
    assert nsq == pytest.approx(np.linalg.norm(cp.to_dense()) ** 2, rel=1e-12)
    fit, res = cp_fit(np.linalg.norm(X), M, cp.factors[2], cp.weights, grams)
    assert res == pytest.approx(np.linalg.norm(X - cp.to_dense()), rel=1e-12)
    assert fit == pytest.approx(1 - res / np.linalg.norm(X), rel=1e-12)
    # Row blocks add up (what a distributed driver relies on).
    blocks = sum(cp_inner_from_mttkrp(M[s], cp.factors[2][s], cp.weights)
                 for s in (slice(0, 2), slice(2, 4)))
    assert blocks == pytest.approx(inner, rel=1e-13)


def test_fit_from_terms_zero_tensor():
    assert fit_from_terms(0.0, 0.0, 4.0) == (-2.0, 2.0)


def test_has_converged():
    assert not has_converged([0.5], 1.0)
    assert has_converged([0.5, 0.5 + 1e-9], 1e-8)
    assert not has_converged([0.5, 0.5], 0.0)


# -- checkpoint ------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path, rng):
    factors = [rng.standard_normal((s, 2)) for s in (3, 4)]
    state = CPALSState(factors=factors, weights=np.array([1.0, 2.0]),
                       grams=[gram(f) for f in factors], fits=[0.1, 0.2],
                       iter_times=[0.01, 0.02], norm_x=3.5, nonnegative=True,
                       init_time=0.5, elapsed=1.5)
    path = save_checkpoint(tmp_path / "ck", state)
    assert path == tmp_path / "ck" and not (tmp_path / "ck.tmp").exists()
    back = load_checkpoint(path)
    assert back.iteration == 2 and back.shape == (3, 4) and back.rank == 2
    assert (back.fits, back.iter_times, back.norm_x, back.nonnegative) == \
        ([0.1, 0.2], [0.01, 0.02], 3.5, True)
    for a, b in zip(back.factors + back.grams, factors + state.grams):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_rejects_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.ones(3))
    with pytest.raises(ValueError, match="not a tensorpar CP-ALS checkpoint"):
        load_checkpoint(path)


def test_cptensor_init_from_other_module_rejected(xp):
    if xp is np:
        pytest.skip("needs cupy to mix array modules")
    X = np.ones((3, 4, 5))
    init = CPTensor([xp.ones((s, 2)) for s in X.shape])
    from tensorpar import cp_als

    with pytest.raises(TypeError, match="mix numpy and cupy"):
        cp_als(X, 2, init=init)
