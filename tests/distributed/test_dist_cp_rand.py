"""Distributed cp_rand: serial-equal iterates at every rank count, the fit's entries,
traffic per iteration, callback, and arguments agreed before data moves."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import assert_cases, read_cases, run_job  # noqa: E402

import tensorpar  # noqa: E402
from tensorpar import random_cp  # noqa: E402
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.cp_rand import dist_cp_rand, dist_entries  # noqa: E402
from tensorpar.distributed.dist_tensor import DistTensor  # noqa: E402

pytestmark = pytest.mark.mpi


def _noisy(shape, rank=3, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    X = random_cp(shape, rank, seed=seed + 1).to_dense()
    return X + noise * rng.standard_normal(shape)


def _dist(X, comm, grid=None):
    return DistTensor.scatter(X if comm.rank == 0 else None, grid=grid, comm=comm)


@pytest.mark.parametrize("shape,sampling", [((9, 7, 8), "uniform"), ((9, 7, 8), "leverage"),
                                            ((5, 6, 4, 7), "uniform"),
                                            ((4, 3, 5, 3, 4), "leverage")])
def test_equals_serial(comm, shape, sampling):
    X = _noisy(shape)
    kw = dict(n_samples=20, seed=7, max_iter=10, tol=0, sampling=sampling, n_fit_samples=100)
    with _dist(X, comm) as T:
        cp, res = dist_cp_rand(T, 3, **kw)
    ref_cp, ref = tensorpar.cp_rand(X, 3, **kw)
    assert res.n_iter == ref.n_iter == 10
    # the sampled fibres are assembled exactly, so the runs agree far below 1e-10
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-13)
    for a, b in zip(cp.factors, ref_cp.factors):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cp.weights, ref_cp.weights, rtol=1e-12)


@pytest.mark.parametrize("grid", [None, "last"])
def test_planted_recovery_equals_serial_on_any_grid(comm, grid):
    true = random_cp((12, 10, 14), 3, seed=3)
    X = true.to_dense()
    g = None if grid is None else (1,) * 2 + (comm.size,)
    with _dist(X, comm, grid=g) as T:
        cp, res = dist_cp_rand(T, 3, n_samples=80, seed=2, tol=1e-12, max_iter=200)
    ref_cp, ref = tensorpar.cp_rand(X, 3, n_samples=80, seed=2, tol=1e-12, max_iter=200)
    assert res.n_iter == ref.n_iter and res.stop_reason == ref.stop_reason
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    assert cp.factor_match_score(true) >= 0.99


def test_fit_entries_are_gathered_exactly(comm):
    X = _noisy((7, 6, 5))
    idx = tuple(np.random.default_rng(0).integers(0, s, size=50) for s in X.shape)
    with _dist(X, comm) as T:
        vals = dist_entries(T, idx)
    np.testing.assert_array_equal(vals, X[idx])


def test_one_allreduce_per_mode(comm):
    X = _noisy((9, 8, 7))
    with _dist(X, comm) as T:
        dist_cp_rand(T, 3, n_samples=12, seed=1, max_iter=1, tol=0)  # warm-up (agree, norm)
        with C.count_traffic() as counter:
            dist_cp_rand(T, 3, n_samples=12, seed=1, max_iter=3, tol=0, n_fit_samples=64)
    if comm.size == 1:
        return
    # norm, fit entries, then per iteration 3 mode allreduces + the stop flags ("meta"
    # messages such as the agreement are not counted)
    assert counter.total_calls == 2 + 3 * (3 + 1), counter.calls
    words = 1 + 64 + 3 * (12 * (9 + 8 + 7) + 2)
    assert counter.total_bytes == 8 * words, counter.calls


def test_callback_stops_every_rank(comm):
    X = _noisy((8, 9, 10))
    with _dist(X, comm) as T:
        # only rank 0's callback asks to stop; every rank must stop alike
        _, res = dist_cp_rand(T, 3, seed=1, max_iter=50, tol=0,
                              callback=lambda it, cp, fit: comm.rank == 0 and it == 4)
    assert res.n_iter == 4 and res.stop_reason == "callback"


def test_bad_argument_on_every_rank(comm):
    X = _noisy((6, 5, 4))
    with _dist(X, comm) as T:
        with pytest.raises(ValueError, match="n_samples"):
            dist_cp_rand(T, 3, n_samples=2)
        with pytest.raises(ValueError, match="init"):
            dist_cp_rand(T, 3, init="svd")
        with pytest.raises(TypeError, match="X must be a DistTensor"):
            dist_cp_rand(X, 3)


# --- hang-prone cases in a subprocess (serial pass only) -------------------------------
TIMEOUT = 90

JOB = """
import numpy as np
from mpi4py import MPI
from tensorpar.distributed import DistTensor, dist_cp_rand
comm = MPI.COMM_WORLD
X = DistTensor.scatter(np.ones((6, 5, 4)) if comm.rank == 0 else None)
cases = {
    "n_samples_one_rank": dict(n_samples=30 if comm.rank == 1 else 20),
    "bad_sampling_one_rank": dict(sampling="uniform" if comm.rank else "lev"),
    "seed_differs": dict(seed=comm.rank),
    "n_fit_samples_differs": dict(n_fit_samples=100 + comm.rank),
}
with open(f"{OUT}/rank{comm.rank}.txt", "w") as fh:
    for name, kw in cases.items():
        kw.setdefault("seed", 0)
        try:
            dist_cp_rand(X, 2, max_iter=2, **kw)
            fh.write(f"CASE|{name}|none|\\n")
        except Exception as exc:
            fh.write(f"CASE|{name}|{type(exc).__name__}|{exc}\\n")
"""


@pytest.mark.parametrize("n", [2, 3])
def test_disagreeing_arguments_raise_on_every_rank(tmp_path, serial_only, n):
    res = run_job(tmp_path, f"OUT = {str(tmp_path)!r}\n" + JOB, n=n, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr[-3000:]
    expected = {"n_samples_one_rank": "argument 'n_samples' differs",
                "bad_sampling_one_rank": "sampling must be one of",
                "seed_differs": "argument 'seed' differs",
                "n_fit_samples_differs": "argument 'n_fit_samples' differs"}
    assert_cases(read_cases(tmp_path, n),
                 {name: ("ValueError", text) for name, text in expected.items()}, n)
