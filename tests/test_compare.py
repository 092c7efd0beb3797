"""CP helpers (tensorpar.cp.compare), CPTensor unpacking and TT interop, against TensorLy/pyttb."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp
from tensorpar.cp.compare import as_cp


def _model(shape=(6, 5, 4), rank=3, seed=0):
    rng = np.random.default_rng(seed)
    return tp.CPTensor([rng.standard_normal((s, rank)) for s in shape],
                       rng.uniform(0.5, 3.0, rank) * rng.choice([-1, 1], rank))


def test_unpacks_as_weights_factors():
    cp = _model()
    weights, factors = cp
    assert weights is cp.weights and factors is cp.factors
    assert len(cp) == 2 and cp[0] is cp.weights and cp[1] is cp.factors


def test_tensorly_functions_accept_cptensor():
    tl = pytest.importorskip("tensorly")
    cp = _model()
    np.testing.assert_allclose(tl.cp_to_tensor(cp), cp.to_dense(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(tl.cp_norm(cp), cp.norm(), rtol=1e-12)


def test_sort_components_matches_pyttb_arrange():
    ttb = pytest.importorskip("pyttb")
    cp = _model()
    ours = tp.cp_sort_components(cp)
    kt = cp.to_pyttb()
    kt.arrange()
    np.testing.assert_allclose(ours.weights, kt.weights, rtol=1e-13)
    for a, b in zip(ours.factors, kt.factor_matrices):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert np.all(np.diff(ours.weights) <= 0)
    np.testing.assert_allclose(ours.to_dense(), cp.to_dense(), rtol=1e-12, atol=1e-12)
    assert isinstance(ttb.ktensor, type)


def test_fix_signs_largest_matches_pyttb():
    pytest.importorskip("pyttb")
    for seed in range(4):
        cp = _model(seed=seed)
        ours = tp.cp_fix_signs(cp)
        kt = cp.to_pyttb().fixsigns()
        for a, b in zip(ours.factors, kt.factor_matrices):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ours.weights, cp.weights)
        np.testing.assert_allclose(ours.to_dense(), cp.to_dense(), rtol=1e-13, atol=1e-13)


def test_fix_signs_mean_matches_tensorly():
    tl = pytest.importorskip("tensorly")
    from tensorly.cp_tensor import cp_flip_sign

    for mode in range(3):
        cp = _model(seed=mode + 7)
        ours = tp.cp_fix_signs(cp, method="mean", mode=mode)
        w, fs = cp_flip_sign(tl.cp_tensor.CPTensor((cp.weights.copy(),
                                                    [f.copy() for f in cp.factors])), mode=mode)
        np.testing.assert_allclose(ours.weights, w, rtol=0, atol=0)
        for a, b in zip(ours.factors, fs):
            np.testing.assert_allclose(a, b, rtol=0, atol=0)
        for n, f in enumerate(ours.factors):
            if n != mode:
                assert np.all(f.mean(axis=0) >= 0)
        assert np.all(ours.weights >= 0)
    # the input is not modified
    before = [f.copy() for f in cp.factors]
    tp.cp_fix_signs(cp, method="mean")
    for a, b in zip(before, cp.factors):
        np.testing.assert_array_equal(a, b)


def test_fix_signs_rejects_bad_method():
    with pytest.raises(ValueError, match="method"):
        tp.cp_fix_signs(_model(), method="max")
    with pytest.raises(ValueError, match="mode"):
        tp.cp_fix_signs(_model(), method="mean", mode=5)


def test_fms_equal_ranks_agrees_with_method_and_permutation():
    ref = _model()
    perm = np.array([2, 0, 1])
    est = tp.CPTensor([-f[:, perm] * 3 if n == 0 else f[:, perm] for n, f in enumerate(ref.factors)],
                      ref.weights[perm] / 3)
    score, p = tp.factor_match_score(ref, est, return_permutation=True)
    assert score == pytest.approx(1.0, abs=1e-12)
    # estimate component p[r] matches reference component r
    np.testing.assert_array_equal(perm[p], np.arange(3))
    noisy = tp.CPTensor([f + 0.3 * np.random.default_rng(1).standard_normal(f.shape)
                         for f in ref.factors], ref.weights)
    assert tp.factor_match_score(ref, noisy) == pytest.approx(ref.factor_match_score(noisy),
                                                              rel=1e-13)


@pytest.mark.parametrize("weight_penalty", [True, False])
def test_fms_unequal_ranks_matches_pyttb_score(weight_penalty):
    pytest.importorskip("pyttb")
    big = _model(rank=4, seed=3)
    rng = np.random.default_rng(5)
    small = tp.CPTensor([f[:, [2, 0]] + 0.2 * rng.standard_normal((f.shape[0], 2))
                         for f in big.factors], np.abs(big.weights[[2, 0]]) * 1.1)
    want, _, _, want_perm = big.to_pyttb().score(small.to_pyttb(),
                                                 weight_penalty=weight_penalty)
    got, perm = tp.factor_match_score(big, small, weight_penalty=weight_penalty, greedy=True,
                                      return_permutation=True)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_array_equal(perm, want_perm)
    # order of the arguments does not change the score; the optimal one is >= greedy
    assert tp.factor_match_score(small, big, weight_penalty=weight_penalty, greedy=True) \
        == pytest.approx(want, rel=1e-12)
    assert tp.factor_match_score(big, small, weight_penalty=weight_penalty) >= got - 1e-12


def test_fms_rejects_shape_mismatch_and_bad_types():
    with pytest.raises(ValueError, match="shape"):
        tp.factor_match_score(_model(), _model(shape=(6, 5, 3)))
    with pytest.raises(TypeError, match="estimate"):
        tp.factor_match_score(_model(), "not a model")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relative_error_against_dense_reference(dtype, monkeypatch):
    import tensorpar.cp.compare as compare

    monkeypatch.setattr(compare, "BLOCK_ENTRIES", 7)  # several blocks along mode 0
    cp = _model()
    rng = np.random.default_rng(2)
    X = (cp.to_dense() + 0.1 * rng.standard_normal(cp.shape)).astype(dtype)
    Xh = cp.to_dense()
    want = np.linalg.norm(X.astype(np.float64) - Xh) / np.linalg.norm(X.astype(np.float64))
    got = tp.cp_relative_error(cp, X)
    assert got == pytest.approx(want, rel=1e-12)
    assert tp.cp_model_fit(cp, X) == pytest.approx(1 - want, rel=1e-12)
    # scale invariance and the peers' containers
    assert tp.cp_relative_error(tp.CPTensor(cp.factors, cp.weights * 1e30),
                                X.astype(np.float64) * 1e30) == pytest.approx(want, rel=1e-12)
    assert tp.cp_relative_error((cp.weights, cp.factors), X) == pytest.approx(want, rel=1e-12)


def test_relative_error_tensorly_and_pyttb_containers():
    tl = pytest.importorskip("tensorly")
    pytest.importorskip("pyttb")
    cp = _model()
    X = cp.to_dense() + 0.05
    want = np.linalg.norm(X - tl.cp_to_tensor(cp)) / np.linalg.norm(X)
    assert tp.cp_relative_error(cp.to_tensorly(), X) == pytest.approx(want, rel=1e-12)
    assert tp.cp_relative_error(cp.to_pyttb(), X) == pytest.approx(want, rel=1e-12)
    assert isinstance(as_cp(cp.to_pyttb()), tp.CPTensor)
    with pytest.raises(ValueError, match="shape"):
        tp.cp_relative_error(cp, X[:2])


def test_tt_from_tensorly_round_trip():
    pytest.importorskip("tensorly")
    from tensorly.decomposition import tensor_train

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4, 5, 2))
    tl_tt = tensor_train(X, rank=[1, 3, 4, 2, 1])
    tt = tp.TTTensor.from_tensorly(tl_tt)
    import tensorly as tl

    np.testing.assert_allclose(tt.to_dense(), tl.tt_to_tensor(tl_tt), rtol=1e-13, atol=1e-13)
    back = tt.to_tensorly()
    np.testing.assert_allclose(tl.tt_to_tensor(back), tt.to_dense(), rtol=1e-13, atol=1e-13)
    assert tp.tt_from_tensorly(tt).ranks == tt.ranks
    with pytest.raises(TypeError, match="tt must"):
        tp.tt_from_tensorly(3.0)


def test_tt_teneva_round_trip():
    teneva = pytest.importorskip("teneva")
    tt = tp.random_tt((3, 4, 5), [2, 3], seed=1)
    cores = tp.tt_to_teneva(tt)
    np.testing.assert_allclose(teneva.full(cores), tt.to_dense(), rtol=1e-13, atol=1e-13)
    assert tp.tt_from_teneva(cores).ranks == tt.ranks
