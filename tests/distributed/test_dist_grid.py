"""Block partitions, the grid chooser and Cartesian process grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.distributed.grid import (  # noqa: E402
    ProcessGrid,
    _factorizations,
    block_bounds,
    block_sizes,
    choose_grid,
    grid_cost,
    owned_bounds,
)

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("n,parts", [(10, 4), (7, 7), (3, 5), (100, 3), (1, 1)])
def test_blocks_tile_and_differ_by_at_most_one(n, parts):
    sizes = block_sizes(n, parts)
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
    stop = 0
    for i in range(parts):
        a, b = block_bounds(n, parts, i)
        assert a == stop and b - a == sizes[i]
        stop = b
    # owned pieces tile every block
    for i in range(parts):
        a, b = block_bounds(n, parts, i)
        pieces = [owned_bounds(n, parts, i, 3, j) for j in range(3)]
        assert pieces[0][0] == a and pieces[-1][1] == b
        assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))


def test_choose_grid_minimises_the_model():
    for shape, P in [((1024, 1024, 1024), 64), ((50, 20, 8), 12), ((6, 6, 6, 6), 16),
                     ((9, 30, 4), 6), ((5, 7, 4), 4)]:
        dims = choose_grid(shape, P, rank=8)
        assert math.prod(dims) == P and all(p <= s for p, s in zip(dims, shape))
        best = min(grid_cost(shape, d, 8)["words"] for d in _factorizations(P, len(shape))
                   if all(p <= s for p, s in zip(d, shape)))
        assert grid_cost(shape, dims, 8)["words"] == pytest.approx(best)
    assert choose_grid((1024, 1024, 1024), 64) == (4, 4, 4)
    # a long mode takes the processes
    assert choose_grid((100000, 10, 10), 16)[0] == 16


def test_choose_grid_errors():
    with pytest.raises(ValueError, match="cannot be split over 7 ranks"):
        choose_grid((2, 3), 7)
    with pytest.raises(ValueError, match="nprocs must be >= 1"):
        choose_grid((2, 3), 0)
    with pytest.raises(TypeError, match="shape entries must be an integer"):
        choose_grid((2.5, 3), 2)
    # a 0-d tensor (a scalar read from .npy or HDF5) recursed without end before
    with pytest.raises(ValueError, match="at least one mode"):
        choose_grid((), 2)


def test_grid_cost_counts():
    # 2 x 1 grid of a (4, 6) matrix, R = 3: mode 0 slice has 1 rank, mode 1 slice 2 ranks
    cost = grid_cost((4, 6), (2, 1), rank=3)
    assert cost["words"] == pytest.approx(2 * 0.5 * 6 * 3 + 2 * (2 * 0.5 * 9) + 2 * 0.5 * 2)
    assert cost["messages"] == 2 + 2 * 2 + 2


def test_process_grid(comm):
    P = comm.size
    dims = (1, P, 1) if P % 2 else (2, P // 2, 1)
    with ProcessGrid(dims, comm) as g:
        assert g.dims == dims and g.size == P and g.ndim == 3 and g.rank == comm.rank
        assert g.coords == g.coords_of(comm.rank)
        assert np.ravel_multi_index(g.coords, dims) == comm.rank  # row-major, no reordering
        for n in range(3):
            sl = g.slice_comm(n)
            assert sl.Get_size() == P // dims[n]
            coords = sl.allgather(g.coords)
            assert all(c[n] == g.coords[n] for c in coords)  # a slice shares coordinate n
            assert coords == sorted(coords)  # slice ranks in row-major order
            assert sl.Get_name() == f"tensorpar.slice{n}"
        assert "ProcessGrid(dims=" in repr(g)
    assert g.cart is None
    g.free()  # idempotent
    with pytest.raises(ValueError, match="has been freed"):
        g.slice_comm(0)


def test_fibre_comm(comm):
    P = comm.size
    dims = (1, P, 1) if P % 2 else (2, P // 2, 1)
    with ProcessGrid(dims, comm) as g:
        for n in range(3):
            fb = g.fibre_comm(n)
            assert fb is g.fibre_comm(n)  # created once
            assert fb.Get_size() == dims[n] and fb.Get_rank() == g.coords[n]
            coords = fb.allgather(g.coords)
            # a fibre shares every coordinate but n, ordered along n
            assert all(c[:n] + c[n + 1:] == g.coords[:n] + g.coords[n + 1:] for c in coords)
            assert [c[n] for c in coords] == list(range(dims[n]))
            assert fb.Get_name() == f"tensorpar.fibre{n}"
        with pytest.raises(ValueError, match="mode must be an int"):
            g.fibre_comm(3)
    with pytest.raises(ValueError, match="has been freed"):
        g.fibre_comm(0)


def test_process_grid_errors(comm):
    with pytest.raises(ValueError, match=f"communicator has {comm.size}"):
        ProcessGrid((comm.size, 2), comm)
    with pytest.raises(TypeError, match="dims must be a non-empty sequence"):
        ProcessGrid(3, comm)
    with pytest.raises(ValueError, match="dims entries must be >= 1"):
        ProcessGrid((0,), comm)


def test_for_shape(comm):
    g = ProcessGrid.for_shape((30, 4, 4), comm, rank=4)
    assert g.dims == choose_grid((30, 4, 4), comm.size, 4)
    g.free()
