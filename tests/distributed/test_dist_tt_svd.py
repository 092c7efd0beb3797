"""Parallel TT-SVD of a DistTensor against the serial tt_svd, at every rank count."""

from __future__ import annotations

import itertools
import math
import re

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


def _all_grids(size, ndim):
    """Every ordered factorization of ``size`` into ``ndim`` grid extents."""
    return [dims for dims in itertools.product(range(1, size + 1), repeat=ndim)
            if math.prod(dims) == size]


@pytest.fixture(scope="module")
def noisy_rank4():
    """40 x 30 x 20, TT rank 4, plus 1% Gaussian noise (relative to the norm)."""
    rng = np.random.default_rng(0)
    x = tp.random_tt((40, 30, 20), 4, seed=1).to_dense()
    x = x / np.linalg.norm(x)
    return x + 0.01 * rng.standard_normal(x.shape) / np.sqrt(x.size)


@pytest.mark.parametrize("eps", [3e-3, 1e-2, 2e-2])
def test_serial_ranks_on_every_grid_near_the_noise_level(comm, noisy_rank4, eps):
    # Regression: ranks that differ only along modes 0..k hold identical copies
    # of the remainder after the fibre gather; counting them all inflated the
    # singular values ((1, 27, 7, 1) instead of (1, 17, 4, 1) at eps=1e-2, 2 ranks).
    serial = tp.tt_svd(noisy_rank4, eps=eps)
    for dims in _all_grids(comm.size, 3):
        with ProcessGrid(dims, comm=comm) as grid:
            X = DistTensor.scatter(noisy_rank4 if comm.rank == 0 else None, grid=grid)
            tt = dist_tt_svd(X, eps=eps)
            assert tt.ranks == serial.ranks, dims
            err = np.linalg.norm(tt.gather().to_dense() - noisy_rank4)
            assert err <= eps * np.linalg.norm(noisy_rank4) * (1 + 1e-10)
            X.free()


def test_grid_owns_the_fibre_communicators(comm):
    X_full = _low_rank_tt((6, 5, 4), (2, 3), seed=1).to_dense()
    dims = (comm.size, 1, 1)
    with ProcessGrid(dims, comm=comm) as grid:
        X = DistTensor.scatter(X_full if comm.rank == 0 else None, grid=grid)
        first = grid.fibre_comm(0)
        dist_tt_svd(X, eps=1e-10)
        dist_tt_svd(X, eps=1e-10)
        assert grid.fibre_comm(0) is first  # made once, reused by every call
        assert first.Get_size() == comm.size
        X.free()
    assert grid.cart is None  # freed with the grid


def test_nan_raises_the_serial_error(comm):
    # One rank's NaN among several (hang-prone before the fix) and arguments
    # that differ between ranks are tested in mpiexec subprocesses by
    # test_dist_tt_agree.py; here every rank holds NaN.
    bad = np.ones((6, 5, 4))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError) as serial:
        tp.tt_svd(bad)
    X = DistTensor.scatter(np.ones((6, 5, 4)) if comm.rank == 0 else None, comm=comm)
    X.local[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape(str(serial.value))):
        dist_tt_svd(X, eps=1e-8)
    X.free()
