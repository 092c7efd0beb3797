"""Parallel TT-SVD of a DistTensor against the serial tt_svd, at every rank count."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar as tp
from tensorpar.distributed import DistTensor, DistTTTensor, ProcessGrid, dist_tt_svd

pytestmark = pytest.mark.mpi


def _grids(comm, ndim):
    """The chosen grid and a grid with every process along mode 0 (worst fibre gather)."""
    yield None
    yield tuple([comm.size] + [1] * (ndim - 1))


def _low_rank_tt(shape, ranks, seed):
    rng = np.random.default_rng(seed)
    r = (1,) + tuple(ranks) + (1,)
    return tp.TTTensor([rng.standard_normal((r[k], n, r[k + 1])) for k, n in enumerate(shape)])


@pytest.mark.parametrize("shape, ranks", [((7, 5, 6), (2, 3)), ((5, 4, 6, 5), (3, 4, 2)),
                                          ((9, 8), (3,))])
def test_matches_serial_tt_svd(comm, shape, ranks):
    X_full = _low_rank_tt(shape, ranks, seed=len(shape)).to_dense()
    serial = tp.tt_svd(X_full, eps=1e-10)
    for dims in _grids(comm, len(shape)):
        grid = None if dims is None else ProcessGrid(dims, comm=comm)
        X = DistTensor.scatter(X_full if comm.rank == 0 else None, grid=grid, comm=comm)
        tt = dist_tt_svd(X, eps=1e-10)
        assert isinstance(tt, DistTTTensor)
        assert tt.ranks == serial.ranks == (1,) + ranks + (1,)
        dense = tt.gather().to_dense()
        np.testing.assert_allclose(dense, serial.to_dense(), rtol=0,
                                   atol=1e-12 * np.abs(X_full).max())
        X.free()
        if grid is not None:
            grid.free()


@pytest.mark.parametrize("eps", [1e-1, 1e-3, 1e-8])
def test_rounding_bound_and_serial_ranks(comm, eps):
    rng = np.random.default_rng(7)
    X_full = _low_rank_tt((6, 7, 5, 6), (4, 5, 3), seed=3).to_dense()
    X_full += 1e-3 * rng.standard_normal(X_full.shape)  # full rank with a decaying spectrum
    X = DistTensor.scatter(X_full if comm.rank == 0 else None, comm=comm)
    tt = dist_tt_svd(X, eps=eps)
    err = np.linalg.norm(tt.gather().to_dense() - X_full)
    assert err <= eps * np.linalg.norm(X_full) * (1 + 1e-10)
    assert tt.ranks == tp.tt_svd(X_full, eps=eps).ranks
    capped = dist_tt_svd(X, eps=eps, max_rank=2)
    assert max(capped.ranks) <= 2
    X.free()


def test_bad_input(comm):
    X = DistTensor.scatter(np.ones((6, 5, 4)) if comm.rank == 0 else None, comm=comm)
    with pytest.raises(TypeError, match="DistTensor"):
        dist_tt_svd(np.ones((4, 4)))
    with pytest.raises(ValueError, match="eps must be"):
        dist_tt_svd(X, eps=-1.0)
    with pytest.raises(ValueError, match="max_rank"):
        dist_tt_svd(X, max_rank=0)
    X.free()
