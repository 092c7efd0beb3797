"""CPTensor and TTTensor against dense computations; conversions to the peers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy

pytestmark = pytest.mark.mpi  # cheap; also run at 2-4 ranks with per-rank data


def _rank_seed() -> int:
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD.rank
    except ImportError:
        return 0


def test_cp_dense_norm_inner(xp):
    rng = np.random.default_rng(10 + _rank_seed())
    cp = tp.CPTensor([xp.asarray(rng.standard_normal((n, 3))) for n in (4, 5, 6)],
                     xp.asarray(rng.uniform(1, 2, 3)))
    X = cp.to_dense()
    ref = np.einsum("r,ir,jr,kr->ijk", *[to_numpy(a) for a in [cp.weights] + cp.factors])
    np.testing.assert_allclose(to_numpy(X), ref, rtol=1e-12)
    assert cp.norm() == pytest.approx(np.linalg.norm(ref), rel=1e-12)
    Y = xp.asarray(rng.standard_normal(cp.shape))
    assert cp.inner(Y) == pytest.approx(float(np.sum(to_numpy(Y) * ref)), rel=1e-12)


def test_cp_normalize_and_fms():
    rng = np.random.default_rng(2 + _rank_seed())
    cp = tp.random_cp((4, 5, 6), 3, seed=rng)
    nc = cp.normalize()
    for f in nc.factors:
        np.testing.assert_allclose(np.linalg.norm(f, axis=0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(nc.to_dense(), cp.to_dense(), rtol=1e-12, atol=1e-12)
    # permuted, rescaled and sign-flipped components still score 1
    perm = [2, 0, 1]
    flipped = tp.CPTensor([cp.factors[0][:, perm] * -2.0, cp.factors[1][:, perm] * -0.5,
                           cp.factors[2][:, perm]], cp.weights[perm])
    assert cp.factor_match_score(flipped) == pytest.approx(1.0, abs=1e-12)
    other = tp.random_cp((4, 5, 6), 3, seed=99)
    assert cp.factor_match_score(other) < 0.9
    assert cp.factor_match_score(other, weight_penalty=False) <= 1.0


def test_cp_bad_input():
    with pytest.raises(ValueError, match="columns"):
        tp.CPTensor([np.ones((2, 3)), np.ones((3, 2))])
    with pytest.raises(ValueError, match="weights has length 2"):
        tp.CPTensor([np.ones((2, 3))], np.ones(2))
    with pytest.raises(TypeError, match="non-empty list"):
        tp.CPTensor([])
    with pytest.raises(TypeError, match="dtype"):
        tp.CPTensor([np.ones((2, 3), dtype=np.float16)])
    cp = tp.random_cp((2, 3), 2, seed=0)
    with pytest.raises(ValueError, match="expected shape"):
        cp.factor_match_score(tp.random_cp((2, 4), 2, seed=0))
    with pytest.raises(ValueError, match="X has shape"):
        cp.inner(np.ones((3, 2)))


def test_tt_dense_and_entries(xp):
    rng = np.random.default_rng(3 + _rank_seed())
    shape, ranks = (3, 4, 2, 5), (1, 2, 3, 2, 1)
    cores = [xp.asarray(rng.standard_normal((ranks[k], shape[k], ranks[k + 1]))) for k in range(4)]
    tt = tp.TTTensor(cores)
    assert tt.shape == shape and tt.ranks == ranks and tt.ndim == 4
    X = to_numpy(tt.to_dense())
    hc = [to_numpy(c) for c in cores]
    for idx in itertools.product(*map(range, shape)):
        v = hc[0][:, idx[0], :]
        for k in range(1, 4):
            v = v @ hc[k][:, idx[k], :]
        assert X[idx] == pytest.approx(v[0, 0], rel=1e-12, abs=1e-12)
    idx = np.array([[0, 1, 1, 4], [2, 3, 0, 0], [-1, -1, -1, -1]])
    np.testing.assert_allclose(to_numpy(tt.entries(idx)), X[tuple(idx.T)], rtol=1e-12)
    assert float(tt.entries([1, 2, 1, 3])) == pytest.approx(X[1, 2, 1, 3], rel=1e-12)


def test_tt_bad_input():
    with pytest.raises(ValueError, match="do not chain"):
        tp.TTTensor([np.ones((1, 2, 3)), np.ones((2, 2, 1))])
    with pytest.raises(ValueError, match="left rank 1"):
        tp.TTTensor([np.ones((2, 2, 1))])
    with pytest.raises(ValueError, match="3 dimensions"):
        tp.TTTensor([np.ones((1, 2))])
    tt = tp.TTTensor([np.ones((1, 2, 1)), np.ones((1, 3, 1))])
    with pytest.raises(ValueError, match="out of range"):
        tt.entries([[2, 0]])
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        tt.entries([[0, 0, 0]])
    with pytest.raises(TypeError, match="integers"):
        tt.entries([[0.5, 0]])


def test_mixed_numpy_cupy_rejected():
    class FakeCupy:  # an object whose type lives in a module named cupy
        pass

    FakeCupy.__module__ = "cupy._core"
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        tp.get_array_module(np.ones(2), FakeCupy())


def test_engine_resolution(monkeypatch):
    import tensorpar.kernels as K

    assert tp.resolve_engine("numpy", np, op="mttkrp") == "numpy"
    with pytest.raises(ValueError, match="engine must be one of"):
        tp.resolve_engine("fortran", np, op="mttkrp")
    with pytest.raises(TypeError, match="needs cupy arrays"):
        tp.resolve_engine("cupy", np, op="mttkrp")
    # "auto" follows the registry: an operation without a numba kernel runs its reference
    monkeypatch.setattr(K, "_REGISTRY", dict(K._REGISTRY))
    K.register("only_numpy", "numpy", "tensorpar.mttkrp:mttkrp_reference")
    assert K.engines("only_numpy") == ("numpy",)
    assert tp.resolve_engine("auto", np, op="only_numpy") == "numpy"
    with pytest.raises(ValueError, match="only_numpy has no 'numba' engine"):
        tp.resolve_engine("numba", np, op="only_numpy")


def test_engine_cupy_without_cupy_names_the_extra():
    from tensorpar._backend import EngineUnavailableError, has_module

    if has_module("cupy"):
        pytest.skip("cupy is installed here")
    for call in (lambda: tp.resolve_engine("cupy", np, op="mttkrp"),
                 lambda: tp.mttkrp(np.ones((2, 3)), [np.ones((2, 1)), np.ones((3, 1))], 0,
                                   engine="cupy")):
        with pytest.raises(ImportError, match=r"pip install 'tensorpar\[gpu\]'") as info:
            call()
        assert isinstance(info.value, EngineUnavailableError)


def test_tensorly_roundtrip():
    tl = pytest.importorskip("tensorly")
    cp = tp.random_cp((3, 4, 5), 2, seed=4)
    tlcp = cp.to_tensorly()
    np.testing.assert_allclose(tl.cp_to_tensor(tlcp), cp.to_dense(), rtol=1e-13)
    back = tp.CPTensor.from_tensorly(tlcp)
    np.testing.assert_allclose(back.to_dense(), cp.to_dense(), rtol=1e-13)


def test_pyttb_roundtrip():
    pytest.importorskip("pyttb")
    cp = tp.random_cp((3, 4, 5), 2, seed=5)
    kt = cp.to_pyttb()
    np.testing.assert_allclose(kt.full().data, cp.to_dense(), rtol=1e-13)
    back = tp.CPTensor.from_pyttb(kt)
    np.testing.assert_allclose(back.to_dense(), cp.to_dense(), rtol=1e-13)
    with pytest.raises(TypeError, match="pyttb.ktensor"):
        tp.CPTensor.from_pyttb(object())
