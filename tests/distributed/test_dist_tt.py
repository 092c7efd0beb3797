"""Distributed TT arithmetic: serial-equal results, zero or exactly counted bytes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar import (  # noqa: E402  # noqa: E402
    TTMatrix,
    TTTensor,
    random_tt,
    tt_add,
    tt_dot,
    tt_hadamard,
    tt_log_norm,
    tt_norm,
    tt_round,
    tt_scale,
    tt_sub,
)
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.grid import block_bounds  # noqa: E402
from tensorpar.distributed.tsqr import tsqr  # noqa: E402
from tensorpar.distributed.tt import (  # noqa: E402
    DistTTTensor,
    dist_tt_dot,
    dist_tt_log_norm,
    dist_tt_orthogonalize,
    dist_tt_round,
    dist_ttm_matvec,
)

pytestmark = pytest.mark.mpi

SHAPES = [(7, 5, 6, 4), (4, 9, 7), (11,)]


def _pair(shape, comm, dtype=np.float64):
    x = random_tt(shape, 3, seed=1, dtype=dtype)
    y = random_tt(shape, 2, seed=2, dtype=dtype)
    return x, y, DistTTTensor.scatter(x if comm.rank == 0 else None, comm), \
        DistTTTensor.scatter(y if comm.rank == 0 else None, comm)


def _close(a: TTTensor, b: TTTensor, tol=1e-12):
    A, B = a.to_dense(), b.to_dense()
    assert np.linalg.norm(A - B) <= tol * max(np.linalg.norm(B), 1e-300)


@pytest.mark.parametrize("shape", SHAPES)
def test_scatter_gather_and_local_blocks(comm, shape):
    x, _, X, _ = _pair(shape, comm)
    assert X.shape == shape and X.ranks == x.ranks
    for k, c in enumerate(X.local_cores):
        lo, hi = block_bounds(shape[k], comm.size, comm.rank)
        np.testing.assert_array_equal(c, x.cores[k][:, lo:hi, :])
    g = X.gather()
    for a, b in zip(g.cores, x.cores):
        np.testing.assert_array_equal(a, b)
    Z = DistTTTensor(X.local_cores, shape, comm)
    assert Z.ranks == x.ranks
    root = comm.size - 1
    W = DistTTTensor.scatter(x if comm.rank == root else None, comm, root=root)
    for a, b in zip(W.local_cores, X.local_cores):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", SHAPES)
def test_add_sub_scale_hadamard_equal_serial_and_send_nothing(comm, shape):
    x, y, X, Y = _pair(shape, comm)
    with C.count_traffic() as c:
        S, D, A, H = X + Y, X - Y, 2.5 * X, X.hadamard(Y)
    assert c.total_bytes == 0 and c.total_calls == 0
    for dist, ser in ((S, tt_add(x, y)), (D, tt_sub(x, y)), (A, tt_scale(x, 2.5)),
                      (H, tt_hadamard(x, y))):
        assert dist.ranks == ser.ranks
        _close(dist.gather(), ser)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("shape", SHAPES)
def test_dot_and_norm_equal_serial_with_exact_bytes(comm, shape, dtype):
    x, y, X, Y = _pair(shape, comm, dtype)
    with C.count_traffic() as c:
        v = dist_tt_dot(X, Y)
    assert abs(v - tt_dot(x, y)) <= 1e-12 * tt_norm(x) * tt_norm(y)
    item = np.dtype(dtype).itemsize
    want = sum(a * b for a, b in zip(x.ranks[1:], y.ranks[1:])) * item
    assert c.total_bytes == (want if comm.size > 1 else 0)
    assert c.calls.get("Allreduce", 0) == (len(shape) if comm.size > 1 else 0)
    with C.count_traffic() as c:
        nrm = X.norm()
    assert abs(nrm - tt_norm(x)) <= 1e-12 * tt_norm(x)
    assert c.total_bytes == (sum(r * r for r in x.ranks[1:]) * item if comm.size > 1 else 0)


def test_log_norm_many_cores_stays_finite(comm):
    shape = (4,) * 300
    x = 10.0 * random_tt(shape, 2, seed=3)
    x = TTTensor([c * 30.0 for c in x.cores])  # ||x|| ~ 30^300 overflows float64
    X = DistTTTensor.scatter(x if comm.rank == 0 else None, comm)
    got = dist_tt_log_norm(X)
    assert math.isfinite(got)
    assert abs(got - tt_log_norm(x)) <= 1e-12 * abs(got)
    assert math.isinf(X.norm())


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("eps,max_rank", [(1e-12, None), (0.3, None), (0.0, 2)])
def test_round_equals_serial_same_ranks_everywhere(comm, eps, max_rank, dtype):
    shape = (7, 5, 6, 4, 5)
    x, y, X, Y = _pair(shape, comm, dtype)
    ser = tt_round(tt_add(tt_scale(x, 3.0), tt_sub(x, y)), eps, max_rank)
    with C.count_traffic() as c:
        Z = dist_tt_round(3.0 * X + (X - Y), eps, max_rank)
    assert Z.ranks == ser.ranks
    assert len(set(comm.allgather(Z.ranks))) == 1
    _close(Z.gather(), ser)
    # 2 (d - 1) TSQRs, one Allgatherv each, and one Allreduce of the d core magnitudes
    assert c.calls.get("Allgatherv", 0) == (2 * (len(shape) - 1) if comm.size > 1 else 0)
    assert c.calls.get("Allreduce", 0) == (1 if comm.size > 1 else 0)
    assert c.nbytes.get("Allreduce", 0) == (8 * len(shape) if comm.size > 1 else 0)
    assert c.total_calls == c.calls.get("Allgatherv", 0) + c.calls.get("Allreduce", 0)


@pytest.mark.parametrize("method", ["qr", "randomized"])
def test_binomial_tree_round_equals_serial_messages_grow_as_log2p(comm, method):
    shape = (7, 5, 6, 4, 5)
    d = len(shape)
    x, y, X, Y = _pair(shape, comm)
    kw = dict(max_rank=3, oversample=2, seed=5) if method == "randomized" else {}
    ser = tt_round(tt_add(tt_scale(x, 3.0), tt_sub(x, y)), 1e-12, method=method, **kw)
    with C.count_traffic() as c:
        Z = dist_tt_round(3.0 * X + (X - Y), 1e-12, method=method, tree="binomial", **kw)
    assert Z.ranks == ser.ranks
    assert len(set(comm.allgather(Z.ranks))) == 1
    _close(Z.gather(), ser)
    levels = math.ceil(math.log2(comm.size)) if comm.size > 1 else 0
    p2p = c.calls.get("Send", 0) + c.calls.get("Recv", 0)
    # 2 (d - 1) TSQRs; the root receives and sends once per tree level in each
    want = 2 * (d - 1) * 2 * levels
    assert (p2p == want) if comm.rank == 0 else (p2p <= want)
    assert c.calls.get("Bcast", 0) == (2 * (d - 1) if comm.size > 1 else 0)
    with pytest.raises(ValueError, match="tree"):
        X.round(tree="ring")


def test_round_recovers_exact_rank_and_zero(comm):
    shape = (7, 5, 6)
    x, _, X, _ = _pair(shape, comm)
    Z = (X + X).round(1e-10)
    assert Z.ranks == x.ranks
    _close(Z.gather(), tt_scale(x, 2.0))
    cancel = (X - X).round(1e-10)  # relative eps of a rounding-error-sized norm
    assert cancel.ranks == tt_round(tt_sub(x, x), 1e-10).ranks
    assert np.linalg.norm(cancel.gather().to_dense()) <= 1e-14
    zero = (0.0 * X).round(1e-10)
    assert zero.ranks == tt_round(tt_scale(x, 0.0), 1e-10).ranks == (1, 1, 1, 1)
    assert np.all(zero.gather().to_dense() == 0)
    one = DistTTTensor.scatter(random_tt((9,), 1, seed=0) if comm.rank == 0 else None, comm)
    _close(one.round().gather(), one.gather())


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("tree", ["flat", "binomial"])
@pytest.mark.parametrize("direction", ["left", "right"])
def test_orthogonalize_same_tensor_orthonormal_cores(comm, direction, dtype, tree):
    shape = (7, 5, 6, 4)
    x, _, X, _ = _pair(shape, comm, dtype)
    with C.count_traffic() as c:
        O = dist_tt_orthogonalize(X, direction, tree=tree)
    tsqrs = c.calls.get("Allgatherv", 0) if tree == "flat" else c.calls.get("Bcast", 0)
    assert tsqrs == (len(shape) - 1 if comm.size > 1 else 0)
    g = O.gather()
    _close(g, x)
    inner = g.cores[:-1] if direction == "left" else g.cores[1:]
    for core in inner:
        r, n, q = core.shape
        u = core.reshape(r * n, q) if direction == "left" else core.reshape(r, n * q).T
        np.testing.assert_allclose(u.conj().T @ u, np.eye(u.shape[1]), atol=1e-13)
    with pytest.raises(ValueError, match="direction"):
        X.orthogonalize("up")


@pytest.mark.parametrize("eps,max_rank", [(1e-6, None), (0.3, None), (0.0, 2)])
def test_gram_round_equals_serial_gram(comm, eps, max_rank):
    shape = (7, 5, 6, 4, 5)
    x, y, X, Y = _pair(shape, comm)
    ser = tt_round(tt_add(tt_scale(x, 3.0), tt_sub(x, y)), eps, max_rank, method="gram")
    with C.count_traffic() as c:
        Z = dist_tt_round(3.0 * X + (X - Y), eps, max_rank, method="gram")
    assert Z.ranks == ser.ranks
    assert len(set(comm.allgather(Z.ranks))) == 1
    _close(Z.gather(), ser)
    # 2 (d - 1) Gram matrices and the core magnitudes
    assert c.calls.get("Allreduce", 0) == (2 * (len(shape) - 1) + 1 if comm.size > 1 else 0)
    assert c.total_calls == c.calls.get("Allreduce", 0)
    with pytest.raises(ValueError, match="method"):
        X.round(method="svd")


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("eps,max_rank,oversample", [(1e-12, 3, 10), (0.0, 2, 1), (0.2, 4, 0)])
def test_randomized_round_equals_serial_same_seed(comm, eps, max_rank, oversample, dtype):
    shape = (7, 5, 6, 4, 5)
    x, y, X, Y = _pair(shape, comm, dtype)
    ser = tt_round(tt_add(tt_scale(x, 3.0), tt_sub(x, y)), eps, max_rank, method="randomized",
                   oversample=oversample, seed=5)
    with C.count_traffic() as c:
        Z = (3.0 * X + (X - Y)).round(eps, max_rank, "randomized", oversample=oversample, seed=5)
    assert Z.ranks == ser.ranks
    assert len(set(comm.allgather(Z.ranks))) == 1
    _close(Z.gather(), ser)
    d = len(shape)
    if comm.size > 1:
        # sketches and carried factors, plus the core magnitudes; the TSQRs
        assert {k: v for k, v in c.calls.items() if k != "meta"} == \
            {"Allreduce": 2 * (d - 1) + 1, "Allgatherv": 2 * (d - 1)}
    with pytest.raises(ValueError, match="max_rank"):
        X.round(method="randomized")
    Z2 = X.round(0.0, 3, "randomized")  # seed drawn on rank 0 and shared
    assert len(set(comm.allgather(Z2.ranks))) == 1
    _close(Z2.gather(), x)


def test_matvec_with_replicated_tt_matrix(comm):
    shape, rows = (7, 5, 6), (4, 9, 5)
    rng = np.random.default_rng(4)
    ranks = (1, 2, 3, 1)
    A = TTMatrix([rng.standard_normal((ranks[k], rows[k], shape[k], ranks[k + 1]))
                  for k in range(3)])
    x, _, X, _ = _pair(shape, comm)
    with C.count_traffic() as c:
        Y = dist_ttm_matvec(A, X)
    ser = A.matvec(x)
    assert Y.shape == rows and Y.ranks == ser.ranks
    _close(Y.gather(), ser)
    want = sum(core.nbytes for core in x.cores)
    assert c.total_bytes == (want if comm.size > 1 else 0)
    with pytest.raises(ValueError, match="col_shape"):
        dist_ttm_matvec(A, DistTTTensor.scatter(random_tt((7, 5, 7), 2, seed=0)
                                                if comm.rank == 0 else None, comm))
    with pytest.raises(TypeError, match="TTMatrix"):
        dist_ttm_matvec(x, X)


def test_from_core_function_equals_scatter(comm):
    x, _, X, _ = _pair((7, 5, 6), comm)
    with C.count_traffic() as c:
        F = DistTTTensor.from_core_function(lambda k, idx: x.cores[k][:, idx, :], x.shape, comm)
    assert c.total_bytes == 0
    for a, b in zip(F.local_cores, X.local_cores):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="local_cores"):
        DistTTTensor.from_core_function(lambda k, idx: x.cores[k][:, :1, :], x.shape, comm)


@pytest.mark.parametrize("tree", ["flat", "binomial"])
@pytest.mark.parametrize("n,base", [(4, 5), (6, 2)])  # (6, 2): some ranks have fewer rows than n
def test_tsqr_matches_serial_qr(comm, tree, n, base):
    rng = np.random.default_rng(0)
    rows = [base + p for p in range(comm.size)]
    A = rng.standard_normal((sum(rows), n))
    lo = sum(rows[:comm.rank])
    q, r = tsqr(comm, A[lo:lo + rows[comm.rank]], rows, tree)
    Q = np.concatenate(comm.allgather(q), axis=0)
    np.testing.assert_allclose(Q @ r, A, atol=1e-13)
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-13)
    assert np.allclose(np.tril(r, -1), 0)
    assert len({b.tobytes() for b in comm.allgather(r)}) == 1  # identical R everywhere
    with pytest.raises(ValueError, match="tree"):
        tsqr(comm, A[lo:lo + rows[comm.rank]], rows, "ring")


def test_errors(comm):
    x, y, X, Y = _pair((7, 5, 6), comm)
    _, _, U, _ = _pair((7, 5, 7), comm)
    with pytest.raises(ValueError, match="same mode sizes"):
        X + U
    with pytest.raises(ValueError, match="eps"):
        X.round(-1.0)
    with pytest.raises(ValueError, match="max_rank"):
        X.round(0.1, max_rank=0)
    with pytest.raises(TypeError, match="DistTTTensor"):
        dist_tt_dot(X, x)
    with pytest.raises(TypeError, match="alpha"):
        X * "2"
    with pytest.raises(ValueError, match="alpha"):
        X * math.inf
    with pytest.raises(ValueError, match="local_cores"):
        bad = list(X.local_cores)
        if comm.rank == 0:  # only one rank is wrong: all must raise
            bad[1] = np.concatenate([bad[1], bad[1][:, :1]], axis=1)
        DistTTTensor(bad, (7, 5, 6), comm)
    with pytest.raises(ValueError, match="local_cores"):
        DistTTTensor(X.local_cores[:2], (7, 5, 6), comm)
    bad = list(X.local_cores)
    if comm.rank == comm.size - 1:
        bad[2] = bad[2].copy()
        bad[2][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        DistTTTensor(bad, (7, 5, 6), comm)
    with pytest.raises(ValueError, match="dtype"):
        DistTTTensor([c.astype(np.int64) for c in X.local_cores], (7, 5, 6), comm)
    with pytest.raises(TypeError, match="TTTensor"):
        DistTTTensor.scatter("nope" if comm.rank == 0 else None, comm)


def test_mode_smaller_than_ranks_raises_everywhere(comm):
    if comm.size == 1:
        pytest.skip("needs at least two ranks")
    small = random_tt((comm.size - 1, 5), 2, seed=0)
    with C.count_traffic() as c, pytest.raises(ValueError, match="mode 0 has size"):
        DistTTTensor([np.zeros((1, 0, 2)), np.zeros((2, 1, 1))], small.shape, comm)
    assert c.total_calls == 0  # only the agreement (metadata) before the error
    with pytest.raises(ValueError, match="mode 0 has size"):
        DistTTTensor.scatter(small if comm.rank == 0 else None, comm)
