"""TT arithmetic against dense computations: sums, scaling, Hadamard, dot, norms, entries."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy
from tensorpar.tt.ops import add_cores, dot_step, hadamard_core, hadamard_core_reference

SHAPES = [(5,), (4, 3), (3, 4, 5, 2), (2, 7, 1, 3, 4)]  # d = 1, d = 2, uneven sizes, a size-1 mode
DTYPES = [np.float64, np.complex128]


def _tt(xp, shape, rank, seed, dtype=np.float64):
    x = tp.random_tt(shape, rank, seed=seed, dtype=dtype)
    return tp.TTTensor([xp.asarray(c) for c in x.cores])


def _dense(x):
    return to_numpy(x.to_dense())


def _close(a, b, tol=1e-12):
    a, b = to_numpy(a), to_numpy(b)
    scale = max(np.abs(b).max(), 1e-300)
    assert np.abs(a - b).max() <= tol * scale, np.abs(a - b).max() / scale


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_ops_match_dense(xp, shape, dtype):
    x, y = _tt(xp, shape, 3, 1, dtype), _tt(xp, shape, 2, 2, dtype)
    X, Y = _dense(x), _dense(y)
    _close((x + y).to_dense(), X + Y)
    _close((x - y).to_dense(), X - Y)
    _close((2.5 * x).to_dense(), 2.5 * X)
    _close((x * (1 - 2j) if dtype == np.complex128 else x * -3.0).to_dense(),
           X * (1 - 2j) if dtype == np.complex128 else -3.0 * X)
    _close((x / 4).to_dense(), X / 4)
    _close((-x).to_dense(), -X)
    _close((x + 1.5).to_dense(), X + 1.5)
    _close((1.5 - x).to_dense(), 1.5 - X)
    _close(tp.tt_sum([x, y, x], weights=[1.0, -2.0, 0.5]).to_dense(), 1.5 * X - 2 * Y)
    assert (x + y).ranks == tuple(a + b if 0 < k < len(shape) else 1
                                  for k, (a, b) in enumerate(zip(x.ranks, y.ranks)))
    assert np.float64(2.0) * x is not NotImplemented  # numpy scalars defer to TTTensor
    _close((np.float64(2.0) * x).to_dense(), 2 * X)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hadamard_dot_norm_match_dense(xp, shape, dtype):
    x, y = _tt(xp, shape, 3, 3, dtype), _tt(xp, shape, 2, 4, dtype)
    X, Y = _dense(x), _dense(y)
    z = x * y
    _close(z.to_dense(), X * Y)
    assert z.ranks == tuple(a * b for a, b in zip(x.ranks, y.ranks))
    ref = np.vdot(X, Y)
    assert abs(tp.tt_dot(x, y) - ref) <= 1e-12 * np.linalg.norm(X) * np.linalg.norm(Y)
    assert x.dot(y) == pytest.approx(ref, rel=1e-12)
    nrm = np.linalg.norm(X)
    for method in ("gram", "qr"):
        assert tp.tt_norm(x, method) == pytest.approx(nrm, rel=1e-12)
        assert tp.tt_log_norm(x, method) == pytest.approx(math.log(nrm), rel=1e-12, abs=1e-13)
    sign, logabs = tp.tt_log_dot(x, y)
    assert sign * math.exp(logabs) == pytest.approx(ref, rel=1e-12)
    assert abs(abs(sign) - 1) < 1e-14


def test_norm_squared_equals_self_dot(xp):
    for seed, dtype in enumerate(DTYPES * 3):
        x = _tt(xp, (4, 5, 3, 6), 3, seed, dtype)
        d = tp.tt_dot(x, x)
        assert abs(d.imag) <= 1e-14 * abs(d) if isinstance(d, complex) else True
        assert tp.tt_norm(x) ** 2 == pytest.approx(d.real if isinstance(d, complex) else d,
                                                   rel=1e-13)


def test_dot_sign_and_zero(xp):
    x = _tt(xp, (3, 4, 5), 2, 7)
    sign, logabs = tp.tt_log_dot(x, -2.0 * x)
    assert sign == -1.0
    assert logabs == pytest.approx(math.log(2 * np.linalg.norm(_dense(x)) ** 2), rel=1e-12)
    zero = 0.0 * x
    assert tp.tt_dot(x, zero) == 0.0
    assert tp.tt_log_dot(x, zero) == (0.0, -math.inf)
    assert tp.tt_norm(zero) == 0.0 and tp.tt_log_norm(zero) == -math.inf
    assert tp.tt_log_norm(zero, "qr") == -math.inf


def test_long_train_log_norm_is_finite_and_exact():
    # ||x|| = (10 * sqrt(4))^1000 = 20^1000 overflows float64; its logarithm does not.
    x = tp.TTTensor([np.full((1, 4, 1), 10.0)] * 1000)
    expect = 1000 * math.log(20.0)
    for method in ("gram", "qr"):
        assert tp.tt_log_norm(x, method) == pytest.approx(expect, rel=1e-13)
    sign, logabs = tp.tt_log_dot(x, x)
    assert sign == 1.0 and logabs == pytest.approx(2 * expect, rel=1e-13)
    assert tp.tt_norm(x) == math.inf  # the plain value honestly overflows
    # rank-2 cores that are tiny: the norm underflows, the logarithm does not
    y = tp.TTTensor([np.full((1, 3, 2), 1e-3)] + [np.full((2, 3, 2), 1e-3)] * 998
                    + [np.full((2, 3, 1), 1e-3)])
    expect_y = 1000 * math.log(1e-3) + 0.5 * (1000 * math.log(3.0) + 999 * math.log(4.0))
    assert tp.tt_log_norm(y) == pytest.approx(expect_y, rel=1e-12)
    assert tp.tt_log_norm(y, "qr") == pytest.approx(expect_y, rel=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_hadamard_core_engines(engine, dtype):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 5, 4)).astype(dtype)
    b = rng.standard_normal((2, 5, 6)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(a.shape)
    ref = np.einsum("imk,jml->ijmkl", a, b).reshape(6, 5, 24)
    out = hadamard_core(a, b, engine=engine)
    assert out.dtype == np.result_type(a, b) and out.shape == (6, 5, 24)
    np.testing.assert_allclose(out, ref, rtol=1e-6 if dtype == np.float32 else 1e-15)
    np.testing.assert_array_equal(hadamard_core_reference(a, b), out)


def test_hadamard_core_gpu(xp):
    if xp is np:
        pytest.skip("the cupy engine needs cupy arrays")
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64, np.complex128):
        a = rng.standard_normal((3, 5, 4)).astype(dtype)
        b = rng.standard_normal((2, 5, 6)).astype(dtype)
        out = hadamard_core(xp.asarray(a), xp.asarray(b), engine="cupy")
        np.testing.assert_allclose(to_numpy(out), hadamard_core_reference(a, b), rtol=1e-6)


def test_per_core_pieces_compose():
    # the distributed code applies these to slices of the mode index and sums
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 6, 2)), rng.standard_normal((4, 6, 5))
    W = rng.standard_normal((3, 4))
    full = dot_step(W, a, b)
    parts = dot_step(W, a[:, :2], b[:, :2]) + dot_step(W, a[:, 2:], b[:, 2:])
    np.testing.assert_allclose(parts, full, rtol=1e-13)
    np.testing.assert_allclose(full, np.einsum("rs,rmq,smt->qt", W, a, b), rtol=1e-13)
    # cheaper mirrored contraction order gives the same result
    np.testing.assert_allclose(dot_step(W.T, b, a), full.T, rtol=1e-13)
    mid = add_cores([a, a[:, :, :1]], "middle", None)
    assert mid.shape == (6, 6, 3)
    np.testing.assert_array_equal(mid[:3, :, :2], a)
    np.testing.assert_array_equal(mid[3:, :, 2:], a[:, :, :1])
    assert not mid[:3, :, 2:].any() and not mid[3:, :, :2].any()


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_entries_engines(engine):
    x = tp.random_tt((3, 4, 5, 6), 3, seed=9, dtype=np.complex128)
    X = x.to_dense()
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, n, 50) for n in x.shape], axis=1)
    np.testing.assert_allclose(x.entries(idx, engine=engine), X[tuple(idx.T)], rtol=1e-13)
    assert x.entries([1, -1, 2, 0], engine=engine) == pytest.approx(X[1, 3, 2, 0], rel=1e-13)


def test_arithmetic_errors():
    x, y = tp.random_tt((3, 4, 5), 2, seed=0), tp.random_tt((3, 4, 6), 2, seed=1)
    with pytest.raises(ValueError, match=r"shape \(3, 4, 6\).*\(3, 4, 5\)"):
        x + y
    for op in (tp.tt_dot, tp.tt_hadamard, tp.tt_sub, tp.tt_log_dot):
        with pytest.raises(ValueError, match="same mode sizes"):
            op(x, y)
    with pytest.raises(ValueError, match="same mode sizes"):
        tp.random_tt((3, 4), 2) + x
    with pytest.raises(TypeError, match="must be a TTTensor"):
        tp.tt_dot(x, np.ones((3, 4, 5)))
    with pytest.raises(TypeError, match="alpha must be a scalar"):
        tp.tt_scale(x, "2")
    with pytest.raises(ValueError, match="alpha must be finite"):
        tp.tt_scale(x, np.inf)
    with pytest.raises(ValueError, match="weights has length 1"):
        tp.tt_sum([x, x], weights=[1.0])
    with pytest.raises(TypeError, match="non-empty list"):
        tp.tt_sum([])
    with pytest.raises(ZeroDivisionError):
        x / 0
    with pytest.raises(TypeError):
        x @ x
    with pytest.raises(ValueError, match="method must be"):
        tp.tt_norm(x, "svd")
    with pytest.raises(ValueError, match="engine must be one of"):
        tp.tt_hadamard(x, x, engine="fortran")
    with pytest.raises(TypeError, match="cupy arrays"):
        tp.tt_hadamard(x, x, engine="cupy")
    with pytest.raises(ValueError, match="mode sizes 4 and 5"):
        hadamard_core(np.ones((1, 4, 1)), np.ones((1, 5, 1)))


def test_random_tt():
    x = tp.random_tt((2, 3, 4, 2), [5, 5, 5], seed=0)
    assert x.ranks == (1, 2, 5, 2, 1)  # capped at min(2, 24), min(6, 8), min(24, 2)
    z = tp.random_tt((2, 3), 2, seed=0, dtype=np.complex64)
    assert z.dtype == np.complex64 and np.iscomplexobj(z.cores[0])
    norms = [tp.tt_norm(tp.random_tt((4,) * 30, 5, seed=s)) ** 2 for s in range(200)]
    assert 0.6 < np.mean(norms) < 1.6  # E||X||^2 = 1, independent of d
    with pytest.raises(ValueError, match="sequence of 2 ints"):
        tp.random_tt((2, 3, 4), [2])
    with pytest.raises(ValueError, match="rank\\[0\\] must be >= 1"):
        tp.random_tt((2, 3), 0)
