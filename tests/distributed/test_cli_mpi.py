"""The command line under ``mpiexec -n P``: same numbers as the serial run, one progress stream.

Each case starts ``mpiexec`` in a subprocess with a timeout (a hang shows as
a timeout). Only the serial pass starts subprocesses; under mpiexec these
tests skip, as in test_dist_failure.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_python  # noqa: E402

import tensorpar as tp  # noqa: E402

pytestmark = pytest.mark.mpi

TIMEOUT = 180


def _run(n: int, *args: str, cwd):
    return run_python(["-m", "tensorpar", *args], n=n, timeout=TIMEOUT, cwd=cwd)


@pytest.fixture
def data(tmp_path):
    X = tp.random_cp((13, 11, 9), 3, seed=0).to_dense()
    X += 0.05 * np.random.default_rng(0).standard_normal(X.shape)
    np.save(tmp_path / "x.npy", X)
    return X


@pytest.mark.parametrize("n", [2, 3])
def test_cp_under_mpiexec_equals_serial(serial_only, data, tmp_path, n):
    res = _run(n, "cp", "x.npy", "-r", "3", "--seed", "2", "--tol", "0", "--max-iter", "6",
               "-o", "r.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    # rank 0 alone reports: one line per iteration, one header, one summary
    assert [line.split()[1] for line in lines if line.startswith("iter")] == \
        [str(i) for i in range(1, 7)]
    assert sum(line.startswith("cp: done") for line in lines) == 1
    assert f"{n} processes" in lines[0]
    cp, result = tp.load(tmp_path / "r.npz")
    want_cp, want = tp.cp_als(data, 3, seed=2, tol=0, max_iter=6)
    np.testing.assert_allclose(result.fits, want.fits, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cp.to_dense(), want_cp.to_dense(), rtol=0,
                               atol=1e-8 * np.abs(data).max())


def test_tt_under_mpiexec_meets_eps(serial_only, data, tmp_path):
    res = _run(2, "tt", "x.npy", "--eps", "0.1", "-o", "t.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    tt = tp.load(tmp_path / "t.npz")
    assert np.linalg.norm(tt.to_dense() - data) <= 0.1 * np.linalg.norm(data)
    assert sum(line.startswith("tt: done") for line in res.stderr.splitlines()) == 1


def test_bad_input_under_mpiexec_one_message(serial_only, data, tmp_path):
    Y = data.copy()
    Y[-1, -1, -1] = np.inf  # in the last rank's block only
    np.save(tmp_path / "bad.npy", Y)
    for args, msg in [(("cp", "bad.npy", "-r", "2"), "NaN or infinite"),
                      (("cp", "missing.npy", "-r", "2"), "no such file"),
                      (("cp", "x.npy", "-r", "2", "--init", "svd"), "--init svd"),
                      (("tt", "bad.npy", "--eps", "0.1", "-o", "t.npz"), "NaN or infinite")]:
        res = _run(2, *args, cwd=tmp_path)
        assert res.returncode != 0, args
        errors = [line for line in res.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith("tensorpar: error:"), res.stderr
        assert msg in errors[0]
        assert "Traceback" not in res.stderr


def test_save_gathers_a_dist_tt_to_one_rank(comm, tmp_path):
    """``tensorpar.save`` of a DistTTTensor: collective gather, rank 0 writes (all rank counts)."""
    from tensorpar.distributed import DistTTTensor

    tt = tp.random_tt((6, 8, 7), [3, 2], seed=0)
    x = DistTTTensor.scatter(tt if comm.rank == 0 else None, comm=comm)
    folder = comm.bcast(str(tmp_path) if comm.rank == 0 else None, root=0)
    path = tp.save(os.path.join(folder, "tt.npz"), x)
    assert (path is not None) == (comm.rank == 0)
    comm.Barrier()
    back = tp.load(os.path.join(folder, "tt.npz"))
    assert back.ranks == tt.ranks
    for a, b in zip(back.cores, tt.cores):
        np.testing.assert_array_equal(a, b)
