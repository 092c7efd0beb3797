"""Distributed cp_als: serial-equal fits, exact traffic, callback, checkpoint/resume, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mpi4py")

import tensorpar  # noqa: E402
from tensorpar import random_cp  # noqa: E402
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.cp import cp_als  # noqa: E402
from tensorpar.distributed.cp_model import DistCPModel  # noqa: E402
from tensorpar.distributed.dist_tensor import DistTensor  # noqa: E402

pytestmark = pytest.mark.mpi

R = 3


def _noisy(shape, seed=0, nonnegative=False):
    """Low rank plus noise: the fit stays well below 1, where it is well conditioned."""
    rng = np.random.default_rng(seed)
    X = random_cp(shape, R, seed=seed + 1).to_dense() + 0.2 * rng.standard_normal(shape)
    return np.abs(X) if nonnegative else X


def _dist(X, comm, grid=None):
    return DistTensor.scatter(X if comm.rank == 0 else None, grid=grid, comm=comm)


@pytest.mark.parametrize("shape,nonnegative", [((9, 7, 8), False), ((9, 7, 8), True),
                                               ((5, 6, 4, 7), False), ((4, 3, 5, 3, 4), True)])
def test_fits_equal_serial(comm, shape, nonnegative):
    X = _noisy(shape, nonnegative=nonnegative)
    with _dist(X, comm) as T:
        cp, res = cp_als(T, R, seed=7, max_iter=8, tol=0, nonnegative=nonnegative)
    ref_cp, ref = tensorpar.cp_als(X, R, seed=7, max_iter=8, tol=0, nonnegative=nonnegative)
    assert res.n_iter == ref.n_iter == 8
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    for a, b in zip(cp.factors, ref_cp.factors):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cp.weights, ref_cp.weights, rtol=1e-9)
    if nonnegative:
        assert all((f >= 0).all() for f in cp.factors)


def test_given_init_and_skewed_grid(comm):
    shape = (3 * comm.size + 1, 5, 4)
    X = _noisy(shape, seed=3)
    init = random_cp(shape, R, seed=11)
    with _dist(X, comm, grid=(comm.size, 1, 1)) as T:
        cp, res = cp_als(T, R, init=init, max_iter=5, tol=0)
    _, ref = tensorpar.cp_als(X, R, init=init, max_iter=5, tol=0)
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)


def test_array_module(comm, xp):
    from tensorpar._backend import to_numpy

    X = _noisy((6, 5, 7), seed=4)
    with _dist(X, comm) as T:
        U = DistTensor.from_local(xp.asarray(T.local), T.shape, grid=T.grid)
        cp, res = cp_als(U, R, seed=3, max_iter=4, tol=0)
    assert type(cp.factors[0]) is type(U.local)
    _, ref = tensorpar.cp_als(X, R, seed=3, max_iter=4, tol=0)
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    assert to_numpy(cp.weights).shape == (R,)


def test_converges_with_tol(comm):
    X = _noisy((8, 7, 6), seed=5)
    with _dist(X, comm) as T:
        _, res = cp_als(T, R, seed=2, tol=1e-6, max_iter=500)
    _, ref = tensorpar.cp_als(X, R, seed=2, tol=1e-6, max_iter=500)
    assert res.converged and res.stop_reason == "tol"
    assert res.n_iter == ref.n_iter
    assert abs(res.fit - ref.fit) < 1e-10


def test_traffic_equals_the_formula(comm):
    shape = (7, 6, 5)
    X = _noisy(shape)
    iters = 3
    with _dist(X, comm) as T:
        with C.count_traffic() as c:
            cp_als(T, R, seed=1, max_iter=iters, tol=0)
        P, dims = comm.size, T.grid.dims
        per_iter = sum(2 * R * (b - a) for n, (a, b) in enumerate(T.bounds) if P // dims[n] > 1)
        if P > 1:
            per_iter += 3 * R * R + 1  # Gram allreduces, the last one with the fit's inner
        norm = 1 if P > 1 else 0  # ||X||
        final = sum(shape) * R if P > 1 else 0  # the result gathered on every rank
        assert c.total_bytes == 8 * (norm + iters * per_iter + final)
        assert c.nbytes.get("Allreduce", 0) == 8 * (norm + iters * (3 * R * R + 1) * (P > 1))


def test_callback_stops_all_ranks(comm, capsys):
    X = _noisy((6, 5, 4))
    seen = []

    def cb(it, model, fit):
        assert isinstance(model, DistCPModel)
        seen.append(fit)
        if it == 2:
            full = model.gather()  # collective, called on every rank
            assert full.shape == (6, 5, 4)
        return comm.rank == comm.size - 1 and it == 3  # only one rank asks to stop

    with _dist(X, comm) as T:
        _, res = cp_als(T, R, seed=0, max_iter=20, tol=0, callback=cb, verbose=True)
    assert res.n_iter == 3 and res.stop_reason == "callback" and len(seen) == 3
    printed = capsys.readouterr().out
    assert printed.count("cp_als iter") == (3 if comm.rank == 0 else 0)  # rank 0 prints


def test_checkpoint_resume_matches_uninterrupted(comm, shared_dir):
    X = _noisy((7, 6, 5), seed=9)
    path = os.path.join(shared_dir, "cp.npz")
    with _dist(X, comm) as T:
        _, full = cp_als(T, R, seed=4, max_iter=6, tol=0)
        _, first = cp_als(T, R, seed=4, max_iter=3, tol=0, checkpoint=path, checkpoint_every=2)
        assert os.path.isfile(path)
        cp2, second = cp_als(T, R, max_iter=6, tol=0, resume=path)
    assert first.n_iter == 3 and second.resumed_from == 3 and second.n_iter == 6
    np.testing.assert_allclose(second.fits, full.fits, rtol=0, atol=1e-13)
    # the checkpoint is the serial format: the serial driver continues it too
    _, serial = tensorpar.cp_als(X, R, max_iter=6, tol=0, resume=path)
    np.testing.assert_allclose(serial.fits, full.fits, rtol=0, atol=1e-10)


def test_errors_raise_on_every_rank(comm, shared_dir):
    X = _noisy((6, 5, 4))
    with pytest.raises(TypeError, match="X must be a DistTensor"):
        cp_als(X, R)
    with _dist(X, comm) as T:
        with pytest.raises(ValueError, match="init='svd' is not available"):
            cp_als(T, R, init="svd")
        with pytest.raises(ValueError, match="rank must be >= 1"):
            cp_als(T, 0)
        with pytest.raises(ValueError, match="tol must be a number >= 0"):
            cp_als(T, R, tol=-1.0)
        with pytest.raises(TypeError, match="callback must be callable"):
            cp_als(T, R, callback=3)
        with pytest.raises(ValueError, match="init has rank 2"):
            cp_als(T, R, init=random_cp((6, 5, 4), 2, seed=0))
        with pytest.raises(ValueError, match="no such checkpoint file"):
            cp_als(T, R, resume=os.path.join(shared_dir, "none.npz"))
        bad = np.ones(T.local.shape)
        if comm.rank == comm.size - 1:
            bad.flat[0] = np.nan
        with DistTensor.from_local(bad, T.shape, grid=T.grid) as U:
            with pytest.raises(ValueError, match="NaN or infinite"):
                cp_als(U, R)
        with DistTensor.from_local(T.local.astype(np.complex128), T.shape, grid=T.grid) as U:
            with pytest.raises(TypeError, match="expected one of float32, float64"):
                cp_als(U, R)


def test_dist_cp_als_is_the_name_and_cp_als_its_alias():
    from tensorpar.distributed.cp import dist_cp_als

    assert cp_als is dist_cp_als


@pytest.mark.parametrize("c", [1e-300, 1e-170, 1e170, 1e300])
def test_extreme_magnitudes_equal_serial(comm, c):
    X = _noisy((7, 6, 5), seed=12)
    with _dist(c * X, comm) as T:
        cp, res = cp_als(T, R, seed=3, max_iter=6, tol=0)
    ref_cp, ref = tensorpar.cp_als(X, R, seed=3, max_iter=6, tol=0)
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cp.weights / c, ref_cp.weights, rtol=1e-9)
    assert abs(res.norm_x / c - ref.norm_x) <= 1e-13 * ref.norm_x


def test_float32_fit_terms_in_float64(comm):
    X = np.full((40, 20, 30), 0.1, dtype=np.float32)
    with _dist(X, comm) as T:
        _, res = cp_als(T, 1, seed=0, max_iter=4, tol=0)
    _, ref = tensorpar.cp_als(X, 1, seed=0, max_iter=4, tol=0)
    exact = np.sqrt(X.size) * float(X[0, 0, 0])
    assert abs(res.norm_x / exact - 1) < 1e-12
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=2e-3)


def test_resume_refuses_a_different_tensor_with_the_same_norm(comm, shared_dir):
    X = _noisy((7, 6, 5), seed=13)
    path = os.path.join(shared_dir, "fp.npz")
    with _dist(X, comm) as T:
        cp_als(T, R, seed=1, max_iter=2, tol=0, checkpoint=path)
    with _dist(-X, comm) as U:
        with pytest.raises(ValueError, match="different tensor .*sampled entries differ"):
            cp_als(U, R, max_iter=4, resume=path)
    # the fingerprint is the serial one: the serial driver accepts the file for X only
    _, res = tensorpar.cp_als(X, R, max_iter=4, tol=0, resume=path)
    assert res.resumed_from == 2
    with pytest.raises(ValueError, match="different tensor"):
        tensorpar.cp_als(-X, R, max_iter=4, resume=path)


def test_argument_errors_name_the_argument_on_every_rank(comm, shared_dir):
    X = _noisy((6, 5, 4))
    with _dist(X, comm) as T:
        with pytest.raises(TypeError, match="seed must be None, an int"):
            cp_als(T, R, seed="abc")
        with pytest.raises(TypeError, match="nonnegative must be a bool"):
            cp_als(T, R, nonnegative="no")
        with pytest.raises(ValueError, match="rank: CP-ALS with rank=1000000"):
            cp_als(T, 10**6)
        with pytest.raises(ValueError, match="does not exist"):
            cp_als(T, R, checkpoint=os.path.join(shared_dir, "no", "c.npz"))
        if comm.rank == 0:
            np.save(os.path.join(shared_dir, "x.npy"), np.ones(2))
        comm.Barrier()
        with pytest.raises(ValueError, match="single .npy array"):
            cp_als(T, R, resume=os.path.join(shared_dir, "x.npy"))


def test_seed_none_still_starts_alike_on_every_rank(comm):
    X = _noisy((6, 5, 4), seed=14)
    with _dist(X, comm) as T:
        cp, res = cp_als(T, R, max_iter=3, tol=0)  # rank 0's fresh entropy is broadcast
    fits = comm.allgather(res.fits)
    assert all(f == fits[0] for f in fits)
    assert np.isfinite(res.fits).all()


def test_verbose_on_rank_0_only_is_fine(comm, capsys):
    X = _noisy((6, 5, 4))
    with _dist(X, comm) as T:
        _, res = cp_als(T, R, seed=0, max_iter=2, tol=0, verbose=comm.rank == 0)
    assert res.n_iter == 2
    assert capsys.readouterr().out.count("cp_als iter") == (2 if comm.rank == 0 else 0)
