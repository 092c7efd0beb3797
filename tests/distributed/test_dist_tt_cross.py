"""Distributed TT-cross: equal to the serial run, evaluations split, errors on every rank."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.tt.cross import dist_tt_cross  # noqa: E402
from tensorpar.tt.cross import tt_cross  # noqa: E402

pytestmark = pytest.mark.mpi

GRID = np.linspace(0.0, 1.0, 9)


def sin_sum(idx):
    return np.sin(GRID[idx].sum(axis=1))


def rank4(idx):
    s = GRID[idx].sum(axis=1)
    return np.sin(s) + np.cos(2.0 * s)


def inverse(idx):
    return 1.0 / (1.0 + GRID[idx].sum(axis=1))


class Recorder:
    def __init__(self, f):
        self.f = f
        self.sizes: list[int] = []

    def __call__(self, idx):
        self.sizes.append(len(idx))
        return self.f(idx)


@pytest.mark.parametrize("f, kwargs", [(sin_sum, {"eps": 1e-10}), (rank4, {"eps": 1e-10}),
                                       (inverse, {"eps": 1e-8}), (rank4, {"rank": 3,
                                                                          "max_sweeps": 5}),
                                       (inverse, {"eps": 1e-10, "max_evals": 3000})])
@pytest.mark.parametrize("cache", [True, False])
def test_equal_to_serial(comm, f, kwargs, cache):
    shape = (9,) * 7
    serial = tt_cross(f, shape, seed=4, cache=cache, **kwargs)
    g = Recorder(f)
    with C.count_traffic() as c:
        res = dist_tt_cross(g, shape, seed=4, cache=cache, comm=comm, **kwargs)
    assert res.tt.ranks == serial.tt.ranks
    for a, b in zip(res.tt.cores, serial.tt.cores):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    assert (res.n_evals, res.n_sweeps, res.stop, res.n_requests) == \
        (serial.n_evals, serial.n_sweeps, serial.stop, serial.n_requests)
    # every rank evaluated its block of every batch, and together exactly n_evals entries
    local = np.array([sum(g.sizes)], dtype=np.int64)
    assert int(C.allreduce(comm, local)[0]) == res.n_evals
    if comm.size > 1:
        assert c.calls.get("Allgatherv", 0) >= len(g.sizes)
        assert c.nbytes["Allgatherv"] == 8 * res.n_evals
        assert set(c.calls) <= {"Allgatherv", "meta"}


def test_seed_none_is_shared(comm):
    res = dist_tt_cross(sin_sum, (9,) * 4, eps=1e-10, comm=comm)
    first = C.bcast(comm, res.tt.cores[1].copy() if comm.rank == 0 else None)
    np.testing.assert_array_equal(res.tt.cores[1], first)


def test_bad_arguments_raise_everywhere(comm):
    with pytest.raises(ValueError, match="give eps"):
        dist_tt_cross(sin_sum, (9, 9), comm=comm)
    with pytest.raises(TypeError, match="seed must be an int"):
        dist_tt_cross(sin_sum, (9, 9), eps=1e-8, seed=np.random.default_rng(0), comm=comm)
    if comm.size > 1:
        eps = 1e-8 if comm.rank == 0 else 1e-6
        with pytest.raises(ValueError, match="argument 'eps' differs across ranks"):
            dist_tt_cross(sin_sum, (9, 9), eps=eps, comm=comm)
        bad = 0 if comm.rank == comm.size - 1 else 9
        with pytest.raises(ValueError, match=r"shape\[1\] must be >= 1"):
            dist_tt_cross(sin_sum, (9, bad), eps=1e-8, comm=comm)


def test_f_failing_on_one_rank_raises_everywhere(comm):
    def f(idx):
        if comm.rank == comm.size - 1:
            raise ValueError("f failed on the last rank")
        return sin_sum(idx)

    with pytest.raises(ValueError, match="f failed on the last rank"):
        dist_tt_cross(f, (9,) * 4, eps=1e-8, seed=0, comm=comm)

    def g(idx):
        return np.ones(len(idx) + (comm.rank == 0))

    with pytest.raises(ValueError, match="f returned shape"):
        dist_tt_cross(g, (9,) * 4, eps=1e-8, seed=0, comm=comm)
    # the communicator is still usable: nobody is left inside a collective
    assert int(C.allreduce(comm, np.ones(1, dtype=np.int64))[0]) == comm.size


def test_failure_does_not_hang_in_a_fresh_job(tmp_path, serial_only):
    """mpiexec -n 3 in a subprocess with a timeout: an error in f on one rank must not hang."""
    res = run_job(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        from tensorpar.distributed.tt.cross import dist_tt_cross
        comm = C.resolve_comm()
        def f(idx):
            if comm.rank == 1 and len(idx) > 5:
                raise RuntimeError("boom")
            return np.ones(len(idx))
        try:
            dist_tt_cross(f, (6,) * 4, eps=1e-8, seed=0)
        except RuntimeError as exc:
            print(f"rank {comm.rank} raised: {exc}", flush=True)
    """, n=3, timeout=120)
    assert res.returncode == 0, res.stderr
    for r in range(3):
        assert f"rank {r} raised: boom (on rank 1 of 3)" in res.stdout
