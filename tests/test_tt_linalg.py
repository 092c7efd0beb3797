"""The dense kernels under the TT sweeps: QR paths, products in every layout, truncated SVD."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import _linalg as la
from tensorpar._backend import to_numpy

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _rand(rng, shape, dtype, order="C"):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return np.asarray(a.astype(dtype), order=order)


def _tol(dtype):
    return 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-13


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(300, 20), (40, 40), (7, 3), (5, 9)])
def test_qr_and_lq(dtype, order, shape):
    rng = np.random.default_rng(0)
    a = _rand(rng, shape, dtype, order)
    q, r = la.qr(a)
    k = min(shape)
    assert q.shape == (shape[0], k) and r.shape == (k, shape[1])
    assert q.dtype == a.dtype and r.dtype == a.dtype
    scale = np.abs(a).max()
    assert np.abs(q @ r - a).max() <= 10 * _tol(dtype) * scale
    assert np.abs(q.conj().T @ q - np.eye(k)).max() <= 10 * _tol(dtype)
    assert np.abs(np.tril(r, -1)).max() <= _tol(dtype) * scale
    l, qr_ = la.lq(a.T.copy())
    assert np.abs(l @ qr_ - a.T).max() <= 10 * _tol(dtype) * scale
    assert np.abs(qr_ @ qr_.conj().T - np.eye(k)).max() <= 10 * _tol(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_qr_paths(dtype):
    rng = np.random.default_rng(1)
    good = _rand(rng, (500, 30), dtype)
    assert la._cholesky_qr2(good) is not None  # the fast path is taken...
    bad = good.copy()
    bad[:, 7] = bad[:, 3]  # ...and refused for a rank-deficient matrix
    assert la._cholesky_qr2(bad) is None
    u, _ = np.linalg.qr(_rand(rng, (500, 30), dtype))
    graded = u * np.logspace(0, -12, 30)  # cond 1e12: Householder
    assert la._cholesky_qr2(graded) is None
    for a in (bad, graded):
        q, r = la.qr(a)
        assert np.abs(q @ r - a).max() <= 1e-14 * np.abs(a).max()
        assert np.abs(q.conj().T @ q - np.eye(30)).max() <= 1e-13
    mid = u * np.logspace(0, -3.5, 30)  # between the inverse and trsm thresholds
    q, r = la.qr(mid)
    assert np.abs(q @ r - mid).max() <= 1e-15 * 30
    assert np.abs(q.conj().T @ q - np.eye(30)).max() <= 1e-13


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_layouts(dtype):
    rng = np.random.default_rng(2)
    for order_a in "CF":
        for order_b in "CF":
            a = _rand(rng, (90, 70), dtype, order_a)
            b = _rand(rng, (70, 80), dtype, order_b)
            out = la.matmul(a, b)
            assert out.flags.c_contiguous and out.dtype == dtype
            np.testing.assert_allclose(out, a @ b, rtol=_tol(dtype) * 100, atol=_tol(dtype) * 100)
    a = _rand(rng, (90, 70), np.float64)[::2]  # strided view
    ref = a @ a.T
    np.testing.assert_allclose(la.matmul(a, a.T), ref, rtol=0, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_allclose(la.matmul(a.astype(np.float32), a.T), ref, rtol=0,
                               atol=1e-5 * np.abs(ref).max())
    assert la.norm(a) == pytest.approx(np.linalg.norm(a), rel=1e-14)


@pytest.mark.parametrize("shape", [(200, 12), (12, 200), (15, 15)])
def test_truncated_svd(shape):
    rng = np.random.default_rng(3)
    k = min(shape)
    s_true = 10.0 ** -np.arange(k)
    u0, _ = np.linalg.qr(rng.standard_normal((shape[0], k)))
    v0, _ = np.linalg.qr(rng.standard_normal((shape[1], k)))
    a = (u0 * s_true) @ v0.T
    u, s, vh = la.svd(a)
    np.testing.assert_allclose(s, s_true, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose((u * s) @ vh, a, atol=1e-14)
    for delta, t in [(0.5e-3, 4), (2e-4, 4), (2e-3, 3)]:
        u, s, vh = la.truncated_svd(a, delta)
        assert len(s) == t
        assert np.linalg.norm((u * s) @ vh - a) <= delta
    assert len(la.truncated_svd(a, 0.0, max_rank=2)[1]) == 2


def test_truncation_rank_edges():
    assert la.truncation_rank(np.zeros(4), 0.0) == 1  # always at least one
    assert la.truncation_rank(np.array([1.0, 1.0]), 0.0) == 2
    assert la.truncation_rank(np.array([1.0, 0.1, 0.1]), np.sqrt(0.02) * 1.0000001) == 1
    assert la.truncation_rank(np.array([1.0, 0.1, 0.1]), np.sqrt(0.02) * 0.9999999) == 2
    assert la.truncation_rank(np.array([3.0, 2.0, 1.0]), 0.0, max_rank=2) == 2


def test_device_dispatch(xp):
    rng = np.random.default_rng(4)
    a = xp.asarray(rng.standard_normal((60, 8)))
    q, r = la.qr(a)
    np.testing.assert_allclose(to_numpy(q @ r), to_numpy(a), atol=1e-13)
    u, s, vh = la.svd(a)
    np.testing.assert_allclose(to_numpy((u * s) @ vh), to_numpy(a), atol=1e-13)
    assert la.norm(a) == pytest.approx(float(np.linalg.norm(to_numpy(a))), rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("wide", [False, True])
def test_truncated_svd_ill_conditioned_paths(dtype, wide):
    # singular values 1 .. 1e-14: CholeskyQR2 is refused; the R-factor path
    # (truncation above rounding level) and full Householder (keep_all) take over
    rng = np.random.default_rng(5)
    m, k = 400, 24
    s_true = np.logspace(0, -14, k)
    u0, _ = np.linalg.qr(_rand(rng, (m, k), dtype))
    v0, _ = np.linalg.qr(_rand(rng, (k, k), dtype))
    a = (u0 * s_true) @ v0.conj().T
    assert la._cholesky_qr2(a) is None
    if wide:
        a = a.conj().T.copy()
    for delta, keep_all in [(1e-9, False), (1e-12, False), (0.0, True)]:
        u, s, vh = la.truncated_svd(a, delta, keep_all=keep_all)
        t = len(s)
        if not keep_all:
            tail = np.sqrt(np.cumsum(s_true[::-1] ** 2)[::-1])
            assert tail[t] <= delta < tail[t - 1]
        np.testing.assert_allclose(s, s_true[:t], rtol=1e-6, atol=1e-15)
        long = vh.conj().T if wide else u
        assert np.abs(long.conj().T @ long - np.eye(t)).max() < 1e-13
        approx = (u * s) @ vh
        err = np.linalg.norm(approx - a)
        assert err <= np.sqrt(np.sum(s_true[t:] ** 2)) + 1e-14


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_orth_paths(dtype):
    rng = np.random.default_rng(6)
    u0, _ = np.linalg.qr(_rand(rng, (600, 20), dtype))
    v0, _ = np.linalg.qr(_rand(rng, (20, 20), dtype))
    cases = {
        "well conditioned": _rand(rng, (600, 20), dtype),
        "graded 1e-12": (u0 * np.logspace(0, -12, 20)) @ v0.conj().T,
        "rank 12 of 20": (u0[:, :12] * np.logspace(0, -3, 12)) @ v0[:, :12].conj().T,
    }
    for name, a in cases.items():
        q, c = la.orth(a)
        t = q.shape[1]
        assert np.abs(q.conj().T @ q - np.eye(t)).max() < 1e-13, name
        assert np.abs(q @ c - a).max() <= 1e-14 * np.abs(a).max() * 10, name
        assert t == (12 if name.startswith("rank") else 20), name
        l, qr_ = la.orth_rows(a.conj().T)
        assert np.abs(qr_ @ qr_.conj().T - np.eye(qr_.shape[0])).max() < 1e-13
        assert np.abs(l @ qr_ - a.conj().T).max() <= 1e-13 * np.abs(a).max()
