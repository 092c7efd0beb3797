"""MTTKRP engines and the all-modes sweep against the einsum reference."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import tensorpar as tp
from tensorpar import _mttkrp_plan as plan
from tensorpar._backend import to_numpy
from tensorpar.kernels import get_kernel
from tensorpar.mttkrp import mttkrp, mttkrp_reference, mttkrp_sweep

SHAPES = [(7, 6), (3, 4, 5), (1, 7, 3), (5, 1, 6, 2), (4, 3, 1, 2, 3), (2, 3, 2, 3, 2, 3), (7, 1, 1),
          (2, 1, 3, 1, 2, 1), (2, 1, 2, 3, 1, 2, 2, 1)]
RANKS = [1, 2, 5, 16, 33, 70]


def _rel_err(M, ref) -> float:
    """Largest entry error relative to the largest entry of the reference."""
    M, ref = to_numpy(M), to_numpy(ref)
    return float(np.abs(M - ref).max() / max(np.abs(ref).max(), 1e-300))


def _layouts(X):
    """Arrays of X's shape: C, F, a permuted memory order, and strided views."""
    N = X.ndim
    roll = tuple(range(1, N)) + (0,)
    yield "C", X
    yield "F", np.asfortranarray(X)
    yield "perm", np.ascontiguousarray(X.transpose(roll)).transpose(np.argsort(roll))
    yield "reversed", X[::-1, ..., ::-1]
    big = np.zeros(tuple(2 * s + 1 for s in X.shape))
    idx = tuple(slice(1, 2 * s + 1, 2) for s in X.shape)
    big[idx] = X
    yield "stepped", big[idx]


def _data(shape, rank, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape).astype(dtype)
    fs = [rng.standard_normal((n, rank)).astype(dtype) for n in shape]
    return X, fs


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("rank", RANKS)
def test_numba_matches_reference(shape, rank):
    X, fs = _data(shape, rank, seed=rank)
    for name, Xv in _layouts(X):
        for n in range(X.ndim):
            ref = mttkrp_reference(np.ascontiguousarray(Xv), fs, n)
            M = mttkrp(Xv, fs, n, engine="numba")
            assert M.shape == (shape[n], rank) and M.dtype == np.float64
            assert _rel_err(M, ref) <= 1e-12, (name, n)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("order", [3, 4, 5, 6])
def test_every_plan_matches_reference(order, kernels):
    # every head/tail GEMM group, not only the chosen one: 1-step and 2-step paths; the
    # numpy kernels (registered references) drive the same plans as the numba ones
    shape = (3, 2, 4, 3, 2, 3)[:order]
    X, fs = _data(shape, 4, seed=order)
    eng = plan.Engine(np, get_kernel("khatri_rao_t", kernels), get_kernel("multi_ttv", kernels), 16)
    for n in range(order):
        ref = mttkrp_reference(X, fs, n)
        cands = [plan.Plan(shape, n, True, s) for s in range(1, n + 1)]
        cands += [plan.Plan(shape, n, False, s) for s in range(n + 1, order)]
        assert any(p.one_step for p in cands) == (n in (0, order - 1))
        for p in cands:
            for block in (None, 4, 1 << 18):  # chunking over a, over i, and none
                eng.block = block
                MT = eng.run(X, fs, p, 4)
                assert _rel_err(MT.T, ref) <= 1e-12, (p, block)


def test_float32():
    for shape in [(6, 5, 4), (3, 4, 2, 5), (2, 3, 1, 4, 2)]:
        X, fs = _data(shape, 9, dtype=np.float32)
        ref_in = [f.astype(np.float64) for f in fs]
        for Xv in (X, np.asfortranarray(X), X[:, ::-1]):
            for n in range(X.ndim):
                M = mttkrp(Xv, fs, n, engine="numba")
                assert M.dtype == np.float32
                ref = mttkrp_reference(np.asarray(Xv, dtype=np.float64), ref_in, n)
                assert _rel_err(M, ref) <= 1e-5


def test_xp_engines_and_out(xp):
    # auto engine: numba for numpy input, cupy for cupy input
    X, _ = _data((5, 4, 3, 6), 7, seed=3)
    Xd = xp.asarray(X)
    for Xv in (Xd, xp.asfortranarray(Xd), Xd[:, ::2]):
        fs = _data(Xv.shape, 7, seed=4)[1]
        fv = [xp.asarray(f) for f in fs]
        for n in range(4):
            ref = mttkrp_reference(to_numpy(Xv), fs, n)
            M = mttkrp(Xv, fv, n)
            assert type(M) is type(Xd) and _rel_err(M, ref) <= 1e-12
            out = xp.empty((Xv.shape[n], 7))
            assert mttkrp(Xv, fv, n, out=out) is out and _rel_err(out, ref) <= 1e-12
            assert _rel_err(mttkrp(Xv, fv, n, engine="numpy" if xp is np else "cupy"),
                            ref) <= 1e-12


def test_output_factor_not_read_and_numpy_engine():
    X, fs = _data((4, 5, 3), 3)
    ref = mttkrp_reference(X, fs, 1)
    for engine in ("numpy", "numba"):
        assert _rel_err(mttkrp(X, [fs[0], None, fs[2]], 1, engine=engine), ref) <= 1e-12
        assert _rel_err(mttkrp(X, fs, -2, engine=engine), ref) <= 1e-12


def test_chunked_slabs_and_blocks(monkeypatch):
    # small slab and block sizes exercise every chunking branch
    monkeypatch.setattr(plan, "SLAB_BYTES", 200)
    monkeypatch.setattr(plan, "HOST_BLOCK", 8)
    X, _ = _data((5, 6, 7, 4), 3, seed=9)
    for Xv in (X, np.asfortranarray(X), X[:, 1:, ::2], np.asfortranarray(X)[::2, :, 1:]):
        fv = _data(Xv.shape, 3, seed=10)[1]
        for n in range(4):
            ref = mttkrp_reference(np.ascontiguousarray(Xv), fv, n)
            assert _rel_err(mttkrp(Xv, fv, n, engine="numba"), ref) <= 1e-12


def test_no_copy_of_tensor():
    # peak extra memory stays far below the tensor for C, F and permuted layouts
    X, fs = _data((40, 50, 60), 8)
    mttkrp(X, fs, 0, engine="numba")  # compile and warm up outside the measurement
    for Xv in (X, np.asfortranarray(X), X.transpose(2, 0, 1)):
        fv = [fs[k] for k in ((2, 0, 1) if Xv.shape == (60, 40, 50) else (0, 1, 2))]
        for n in range(3):
            tracemalloc.start()
            mttkrp(Xv, fv, n, engine="numba")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak < X.nbytes / 4, (n, peak)
        tracemalloc.start()
        mttkrp_sweep(Xv, list(fv), lambda k, M: M, engine="numba")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < X.nbytes / 4, ("sweep", peak)


def test_empty_and_rank_zero():
    X, fs = _data((3, 0, 4), 2)
    for engine in ("numpy", "numba"):
        M = mttkrp(X, fs, 0, engine=engine)
        assert M.shape == (3, 2) and not M.any()
        assert mttkrp(X, fs, 1, engine=engine).shape == (0, 2)
    X, fs = _data((3, 2, 4), 0)
    assert mttkrp(X, fs, 2, engine="numba").shape == (4, 0)


def test_nonfinite_propagates():
    # no scan for NaN (hot path): it reaches the rows it belongs to
    X, fs = _data((4, 5, 6), 3)
    X[1, 2, 3] = np.nan
    for n, row in ((0, 1), (1, 2), (2, 3)):
        M = mttkrp(X, fs, n, engine="numba")
        assert np.isnan(M[row]).all()
        assert np.isfinite(np.delete(M, row, axis=0)).all()


def test_factor_dtype_conversion():
    X, fs = _data((4, 5, 3), 2)
    f32 = [f.astype(np.float32) for f in fs]
    assert _rel_err(mttkrp(X, f32, 0), mttkrp_reference(X, f32, 0)) <= 1e-12
    assert mttkrp(X.astype(np.float32), fs, 0).dtype == np.float32


def test_errors():
    X, fs = _data((4, 5, 3), 2)
    with pytest.raises(ValueError, match=r"factors\[1\] has 4 rows"):
        mttkrp(X, [fs[0], fs[1][:4], fs[2]], 0)
    with pytest.raises(ValueError, match="columns"):
        mttkrp(X, [fs[0], fs[1][:, :1], fs[2]], 0)
    with pytest.raises(ValueError, match="order 3"):
        mttkrp(X, fs[:2], 0)
    with pytest.raises(ValueError, match="out of range"):
        mttkrp(X, fs, 3)
    with pytest.raises(TypeError, match="mode must be an integer"):
        mttkrp(X, fs, 1.0)
    with pytest.raises(TypeError, match="X has dtype complex128"):
        mttkrp(X.astype(complex), fs, 0)
    with pytest.raises(TypeError, match=r"factors\[2\] has dtype float16"):
        mttkrp(X, [fs[0], fs[1], fs[2].astype(np.float16)], 0)
    with pytest.raises(ValueError, match="dimensions"):
        mttkrp(np.ones(4), [np.ones((4, 2))], 0)
    with pytest.raises(ValueError, match=r"out must have shape \(4, 2\)"):
        mttkrp(X, fs, 0, out=np.empty((2, 4)))
    with pytest.raises(TypeError, match="out has dtype float32"):
        mttkrp(X, fs, 0, out=np.empty((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="list"):
        mttkrp(X, np.stack([fs[0], fs[0], fs[0]]), 0)
    with pytest.raises(ValueError, match="engine must be one of"):
        mttkrp(X, fs, 0, engine="fortran")
    with pytest.raises(TypeError, match="needs cupy arrays"):
        mttkrp(X, fs, 0, engine="cupy")


def test_mixed_numpy_cupy_rejected():
    class FakeCupy:  # an object whose type lives in a module named cupy
        ndim, shape, dtype = 2, (5, 2), np.dtype(np.float64)

    FakeCupy.__module__ = "cupy._core"
    X, fs = _data((4, 5, 3), 2)
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        mttkrp(X, [fs[0], FakeCupy(), fs[2]], 0)
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        mttkrp(X, fs, 0, out=FakeCupy())


def test_choose_plan_rule():
    # 300^3: mode 0 contracts mode 2 by GEMM (2-step), modes 1, 2 contract mode 0
    assert plan.choose_plan((300, 300, 300), 0) == plan.Plan((300, 300, 300), 0, False, 2)
    assert plan.choose_plan((300, 300, 300), 1) == plan.Plan((300, 300, 300), 1, True, 1)
    assert plan.choose_plan((300, 300, 300), 2) == plan.Plan((300, 300, 300), 2, True, 1)
    # 60^4: the balanced group of two modes
    for n, (head, s) in enumerate([(False, 2), (False, 2), (True, 2), (True, 2)]):
        assert plan.choose_plan((60,) * 4, n) == plan.Plan((60,) * 4, n, head, s)
    # lopsided: the 1-step algorithm when all other modes make the balanced group
    p = plan.choose_plan((1000, 100, 100), 0)
    assert p.one_step and p.K == 10000


def _sweep_log(X, f0, engine, rank):
    log, fs = [], list(f0)

    def update(n, M):
        log.append((n, to_numpy(M).copy()))
        return M / (1.0 + float(abs(M).max())) - 0.01 * n

    mttkrp_sweep(X, fs, update, engine=engine)
    return log, fs


@pytest.mark.parametrize("shape", [(3, 4, 5), (5, 1, 6, 2), (4, 3, 2, 5), (6, 5, 4, 3, 2, 2),
                                   (3, 2, 2, 3, 2, 2, 2), (2, 2, 2, 2, 2, 2, 2, 2)], ids=str)
@pytest.mark.parametrize("rank", [1, 6])
def test_sweep_matches_loop(shape, rank):
    X, f0 = _data(shape, rank, seed=len(shape))
    big = np.zeros(tuple(s + 1 for s in shape))
    big[tuple(slice(1, None) for _ in shape)] = X
    for Xv in (X, np.asfortranarray(X), big[tuple(slice(1, None) for _ in shape)]):
        ref_log, ref_f = _sweep_log(Xv, f0, "numpy", rank)
        log, fs = _sweep_log(Xv, f0, "numba", rank)
        assert [n for n, _ in log] == list(range(len(shape)))
        for (_, a), (_, b) in zip(ref_log, log):
            assert _rel_err(b, a) <= 1e-12
        for a, b in zip(ref_f, fs):
            assert _rel_err(b, a) <= 1e-12


def test_sweep_uses_tree_for_c_and_f(monkeypatch):
    X, f0 = _data((4, 3, 5, 2), 3)
    calls = []
    real = plan.Engine.run
    monkeypatch.setattr(plan.Engine, "run", lambda self, *a: calls.append(1) or real(self, *a))
    for Xv in (X, np.asfortranarray(X)):
        layout = plan.contiguous_layout(Xv)
        fs = list(f0)
        assert plan.sweep_tree(_engine_numba(), layout, fs, lambda n, M: M, 3, X.dtype,
                               lambda n, A: A)
    assert calls == []  # balanced halves of two modes: no single-mode pass at all
    # a rank larger than the halves: N separate passes (the partials would outgrow X)
    X, f500 = _data((20, 20, 20, 20), 500)
    assert not plan.sweep_tree(_engine_numba(), plan.contiguous_layout(X), f500,
                               lambda n, M: M, 500, X.dtype, lambda n, A: A)


def _engine_numba():
    return plan.Engine(np, get_kernel("khatri_rao_t", "numba"), get_kernel("multi_ttv", "numba"),
                       plan.HOST_BLOCK)


def test_sweep_large_rank_falls_back():
    X, f0 = _data((3, 4, 2), 30)
    ref_log, _ = _sweep_log(X, f0, "numpy", 30)
    log, _ = _sweep_log(X, f0, "numba", 30)
    assert all(_rel_err(b, a) <= 1e-12 for (_, a), (_, b) in zip(ref_log, log))


def test_sweep_xp(xp):
    X, f0 = _data((4, 3, 5), 3)
    ref_log, _ = _sweep_log(X, f0, "numpy", 3)
    log, fs = _sweep_log(xp.asarray(X), [xp.asarray(f) for f in f0], "auto", 3)
    assert all(_rel_err(b, a) <= 1e-12 for (_, a), (_, b) in zip(ref_log, log))
    assert all(type(f) is type(xp.asarray(X)) for f in fs)


def test_sweep_errors():
    X, f0 = _data((4, 3, 5), 2)
    with pytest.raises(ValueError, match=r"update\(0, M\) must return an array of shape \(4, 2\)"):
        mttkrp_sweep(X, list(f0), lambda n, M: M[:, :1], engine="numba")
    with pytest.raises(ValueError, match=r"update\(1, M\)"):
        mttkrp_sweep(X, list(f0), lambda n, M: M if n == 0 else None, engine="numba")
    with pytest.raises(TypeError, match="must be a list"):
        mttkrp_sweep(X, tuple(f0), lambda n, M: M)
    with pytest.raises(ValueError, match="order 3"):
        mttkrp_sweep(X, list(f0[:2]), lambda n, M: M)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_khatri_rao_kernel_matches_dense(engine):
    rng = np.random.default_rng(5)
    mats = [rng.standard_normal((n, 4)) for n in (3, 1, 5, 2)]
    kr = get_kernel("khatri_rao_t", engine)
    np.testing.assert_allclose(kr(mats, 4, np.float64), tp.khatri_rao(mats).T, rtol=1e-15)
    np.testing.assert_array_equal(kr([], 4, np.float64), np.ones((4, 1)))
    np.testing.assert_array_equal(kr(mats[:1], 4, np.float64), mats[0].T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multi_ttv_kernel_matches_numpy_reference(dtype):
    rng = np.random.default_rng(6)
    R, A, ni, B = 3, 5, 70, 4          # ni > the numba kernel's row block (64)
    a0, na, i0 = 1, 3, 2
    T = rng.standard_normal((R, na * ni * B)).astype(dtype)
    KA, KB = rng.standard_normal((R, A)).astype(dtype), rng.standard_normal((R, B)).astype(dtype)
    MT0 = rng.standard_normal((R, ni + 4))
    ref, out = MT0.copy(), MT0.copy()
    get_kernel("multi_ttv", "numpy")(T, KA, KB, a0, i0, ni, ref)
    get_kernel("multi_ttv", "numba")(T, KA, KB, a0, i0, ni, out)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert _rel_err(out, ref) <= tol
    direct = MT0.copy()
    direct[:, i0:i0 + ni] += np.einsum("raib,ra,rb->ri", T.reshape(R, na, ni, B).astype(np.float64),
                                       KA[:, a0:a0 + na], KB)
    assert _rel_err(ref, direct) <= 1e-13


def test_registry_lists_every_engine_and_the_auto_rule():
    from tensorpar.kernels import BUILTIN, engines, get_kernel, has_kernel

    for op in ("khatri_rao_t", "multi_ttv", "mttkrp", "tt_hadamard_core", "tt_entries"):
        assert engines(op) == ("cupy", "numba", "numpy"), op
    assert get_kernel("mttkrp", "numpy") is mttkrp_reference
    assert BUILTIN == "builtin" and has_kernel("tt_entries", "cupy")
    with pytest.raises(ValueError, match="assembled from the kernels"):
        get_kernel("mttkrp", "numba")
    with pytest.raises(ValueError, match="built into its caller"):
        get_kernel("tt_entries", "numpy")
    with pytest.raises(ValueError, match="no 'numba' kernel for operation 'nope'"):
        get_kernel("nope", "numba")
    assert tp.resolve_engine("auto", np, op="mttkrp") == "numba"   # numba is installed here
    with pytest.raises(ValueError, match="unknown operation"):
        tp.resolve_engine("auto", np, op="nope")


def test_cuda_modules_are_compiled_once_per_device(monkeypatch):
    import sys
    import types

    import tensorpar.kernels as K

    built, device = [], [0]

    class RawModule:
        def __init__(self, code, options, name_expressions):
            built.append((code[:30], tuple(name_expressions)))

    fake = types.ModuleType("cupy")
    fake.RawModule = RawModule
    fake.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=device[0]))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(K, "_CUDA_MODULES", {})
    a = K.cuda_module("mttkrp.cu", ["k<double>"])
    assert K.cuda_module("mttkrp.cu", ["k<double>"]) is a and len(built) == 1
    device[0] = 1
    assert K.cuda_module("mttkrp.cu", ["k<double>"]) is not a and len(built) == 2
    K.cuda_module("tt.cu", ["t<float>"], header="#include <x>\n")
    assert len(built) == 3 and built[-1][0].startswith("#include <x>")


def test_matches_peers():
    tl_mttkrp = pytest.importorskip("tensorly.tenalg").unfolding_dot_khatri_rao
    pyttb = pytest.importorskip("pyttb")
    X, fs = _data((5, 4, 6, 3), 4)
    Xt = pyttb.tensor(np.asfortranarray(X))
    for n in range(4):
        M = mttkrp(X, fs, n)
        assert _rel_err(M, tl_mttkrp(X, (None, fs), n)) <= 1e-12
        assert _rel_err(M, Xt.mttkrp(fs, n)) <= 1e-12
