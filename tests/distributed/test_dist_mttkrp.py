"""Distributed MTTKRP and sweep: serial-equal results and exactly counted bytes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.dist_tensor import DistTensor  # noqa: E402
from tensorpar.distributed.grid import ProcessGrid, choose_grid  # noqa: E402
from tensorpar.distributed.mttkrp import (  # noqa: E402
    allgather_factor,
    dist_mttkrp,
    dist_mttkrp_sweep,
    factor_blocks,
    owned_counts,
    owned_rows,
)
from tensorpar.mttkrp import mttkrp_reference  # noqa: E402

pytestmark = pytest.mark.mpi

SHAPES = [(7, 5, 6), (5, 4, 3, 6), (3, 4, 5, 3, 2)]
R = 3


def _problem(shape, comm, seed=0, dims=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    F = [rng.standard_normal((s, R)) for s in shape]
    T = DistTensor.scatter(X if comm.rank == 0 else None, grid=dims, comm=comm)
    return X, F, T


def _grids(shape, P):
    """The chosen grid and a skewed one (everything on the longest mode that fits)."""
    out = [choose_grid(shape, P)]
    for n in range(len(shape)):
        if shape[n] >= P:
            d = [1] * len(shape)
            d[n] = P
            out.append(tuple(d))
            break
    return list(dict.fromkeys(out))


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("shape", SHAPES)
def test_dist_mttkrp_equals_serial_every_mode(comm, shape):
    for dims in _grids(shape, comm.size):
        X, F, T = _problem(shape, comm, dims=dims)
        blocks = factor_blocks(T, F)
        for n in range(len(shape)):
            ref = mttkrp_reference(X, F, n)
            mine = dist_mttkrp(T, blocks, n, engine="numpy")
            a, b = owned_rows(T, n)
            assert mine.shape == (b - a, R)
            assert _rel(mine, ref[a:b]) < 1e-12 if b > a else True
            full = allgather_factor(T, mine, n)
            assert _rel(full, ref) < 1e-12
            auto = dist_mttkrp(T, blocks, n)  # default engine
            assert _rel(auto, ref[a:b]) < 1e-12 if b > a else True
        T.free()


def test_owned_rows_tile_each_factor(comm):
    shape = (7, 5, 6)
    _, _, T = _problem(shape, comm)
    for n in range(3):
        pieces = comm.allgather(owned_rows(T, n))
        assert pieces == [owned_rows(T, n, r) for r in range(comm.size)]
        cover = sorted(pieces)
        assert cover[0][0] == 0 and cover[-1][1] == shape[n]
        assert all(p[1] == q[0] for p, q in zip(cover, cover[1:]))
        assert sum(owned_counts(T, n)) == T.bounds[n][1] - T.bounds[n][0]
    T.free()


@pytest.mark.parametrize("shape", SHAPES)
def test_counted_bytes_equal_the_docstring_formula(comm, shape):
    for dims in _grids(shape, comm.size):
        X, F, T = _problem(shape, comm, dims=dims)
        blocks = factor_blocks(T, F)
        for n in range(len(shape)):
            q = comm.size // T.grid.dims[n]
            J = T.bounds[n][1] - T.bounds[n][0]
            with C.count_traffic() as c:
                dist_mttkrp(T, blocks, n)
            assert c.nbytes.get("Reduce_scatter", 0) == (J * R * 8 if q > 1 else 0)
            assert c.calls.get("Reduce_scatter", 0) == (1 if q > 1 else 0)
            assert c.total_bytes == c.nbytes.get("Reduce_scatter", 0)
            assert c.calls.get("meta", 0) == (1 if comm.size > 1 else 0)
        T.free()


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_sweep_equals_serial_sweep_and_counts(comm, shape):
    X, F, T = _problem(shape, comm, seed=3)
    blocks = factor_blocks(T, F)
    scale = [0.5, -2.0, 3.0, 0.25, 1.5]

    def update(n, M):
        return scale[n] * M / (1.0 + np.abs(M).sum(axis=1, keepdims=True))

    serial = [f.copy() for f in F]
    for n in range(len(shape)):
        serial[n] = update(n, mttkrp_reference(X, serial, n))
    with C.count_traffic() as c:
        dist_mttkrp_sweep(T, blocks, update)
    for n, (a, b) in enumerate(T.bounds):
        assert _rel(blocks[n], serial[n][a:b]) < 1e-12
    words = 0
    calls = 0
    for n in range(len(shape)):
        if comm.size // T.grid.dims[n] > 1:
            words += 2 * R * (T.bounds[n][1] - T.bounds[n][0])
            calls += 2
    assert c.total_bytes == 8 * words
    assert c.total_calls == calls
    T.free()


def test_float32(comm):
    X, F, T = _problem((6, 5, 4), comm)
    T32 = DistTensor.from_local(T.local.astype(np.float32), T.shape, grid=T.grid)
    blocks = [b.astype(np.float32) for b in factor_blocks(T, F)]
    with C.count_traffic() as c:
        M = dist_mttkrp(T32, blocks, 1)
    a, b = owned_rows(T, 1)
    assert M.dtype == np.float32
    np.testing.assert_allclose(M, mttkrp_reference(X, F, 1)[a:b], rtol=1e-4, atol=1e-4)
    if comm.size // T.grid.dims[1] > 1:
        assert c.nbytes["Reduce_scatter"] == 4 * R * (T.bounds[1][1] - T.bounds[1][0])
    T.free()


def test_array_module(comm, xp):
    """The same numbers from numpy and cupy blocks (cupy staged through the host)."""
    from tensorpar._backend import to_numpy

    X, F, T = _problem((6, 5, 4), comm)
    TX = DistTensor.from_local(xp.asarray(T.local), T.shape, grid=T.grid)
    blocks = [xp.asarray(b) for b in factor_blocks(T, F)]
    M = dist_mttkrp(TX, blocks, 2)
    assert type(M) is type(blocks[0])
    a, b = owned_rows(T, 2)
    assert _rel(to_numpy(M), mttkrp_reference(X, F, 2)[a:b]) < 1e-12 if b > a else True
    assert TX.norm() == pytest.approx(np.linalg.norm(X), rel=1e-13)
    T.free()


def test_bad_blocks_raise_on_every_rank(comm):
    X, F, T = _problem((6, 5, 4), comm)
    blocks = factor_blocks(T, F)
    bad = comm.size - 1
    broken = list(blocks)
    if comm.rank == bad:
        broken[2] = np.ones((broken[2].shape[0] + 1, R))
    with pytest.raises(ValueError, match="factor block 2 must have shape"):
        dist_mttkrp(T, broken, 0)
    with pytest.raises(ValueError, match="list of 3 matrices"):
        dist_mttkrp(T, blocks[:2], 0)
    with pytest.raises(ValueError, match=r"factors\[1\] must have shape"):
        factor_blocks(T, [F[0], F[1][:2], F[2]])
    with pytest.raises(TypeError, match="X must be a DistTensor"):
        dist_mttkrp(X, blocks, 0)
    with ProcessGrid((comm.size,), comm) as g:
        with pytest.raises(ValueError, match="factors has 3 matrices but the tensor has order 1"):
            factor_blocks(DistTensor.from_local(np.ones(1), (comm.size,), grid=g), F)
    T.free()
