"""An exception on one rank ends the whole MPI job with a message and a non-zero exit.

Each case starts ``mpiexec -n 2`` in a subprocess with a timeout: a hang
(the failure this guards against) shows up as a timeout, not as a stuck
test run. Only the serial run starts subprocesses; under mpiexec these tests
skip (nested mpiexec launches are not portable).
"""

from __future__ import annotations

import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import assert_cases, read_cases, run_job  # noqa: E402

pytestmark = pytest.mark.mpi

TIMEOUT = 60


def test_uncaught_exception_on_one_rank_aborts_the_job(tmp_path, serial_only):
    res = run_job(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        rank = C.resolve_comm().Get_rank()
        if rank == 1:
            raise RuntimeError("boom on rank 1")
        C.allreduce(None, np.ones(3))   # rank 0 would wait here forever without the hook
        print("unreachable", flush=True)
    """, timeout=TIMEOUT)
    assert res.returncode != 0
    assert "RuntimeError: boom on rank 1" in res.stderr
    assert "uncaught RuntimeError on rank 1 of 2; aborting the MPI job" in res.stderr


def test_uncaught_keyboard_interrupt_on_one_rank_aborts_the_job(tmp_path, serial_only):
    # e.g. Ctrl-C delivered to one process, or a callback raising KeyboardInterrupt
    res = run_job(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        rank = C.resolve_comm().Get_rank()   # the first distributed call installs the hook
        if rank == 1:
            raise KeyboardInterrupt
        C.allreduce(None, np.ones(3))        # rank 0 would wait here forever without the hook
        print("unreachable", flush=True)
    """, timeout=TIMEOUT)
    assert res.returncode != 0
    assert "unreachable" not in res.stdout
    assert "uncaught KeyboardInterrupt on rank 1 of 2; aborting the MPI job" in res.stderr


def test_bad_input_on_one_rank_raises_on_all(tmp_path, serial_only):
    res = run_job(tmp_path, """
        import numpy as np
        from tensorpar.distributed import check_all, comm as C
        comm = C.resolve_comm()
        try:
            check_all(comm, comm.rank != 1, "rank 1 read a corrupt block")
            C.allreduce(comm, np.ones(3))
        except ValueError as exc:
            print(f"rank {comm.rank} raised: {exc}", flush=True)
            comm.Barrier()   # every rank got here: nobody is stuck in the allreduce
            raise SystemExit(3)
    """, timeout=TIMEOUT)
    assert res.returncode != 0
    assert "rank 1 raised: rank 1 read a corrupt block" in res.stdout
    assert "rank 0 raised: rank(s) [1] of 2 failed: rank 1 read a corrupt block" in res.stdout


def test_clean_job_exits_zero(tmp_path, serial_only):
    res = run_job(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        print(float(C.allreduce(None, np.ones(1))[0]), flush=True)
    """, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("2.0") == 2


# --- argument agreement before the first message: cases that hung or crashed before ---------
AGREEMENT_JOB = """
    import os
    import numpy as np
    from tensorpar.distributed import DistTensor, dist_mttkrp, dist_mttkrp_sweep, factor_blocks
    from tensorpar.distributed import comm as C
    from tensorpar.distributed.grid import block_bounds

    comm = C.resolve_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    last = size - 1
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5, 4))
    # one file per rank: lines printed by several ranks can interleave in mpiexec's stdout
    out = open(os.path.join(os.path.dirname(__file__), f"rank{rank}.txt"), "w")

    def case(name, fn):
        try:
            fn()
            out.write(f"CASE|{name}|none|\\n")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            msg = str(exc).replace("\\n", " ")
            out.write(f"CASE|{name}|{type(exc).__name__}|{msg}\\n")
        out.flush()
        comm.Barrier()   # every rank got here: nobody is stuck in a collective

    def rows(n):
        a, b = block_bounds(n, size, rank)
        return b - a

    # ranks disagree on the global shape: the library-chosen grids would differ
    case("from_local_shape", lambda: DistTensor.from_local(
        np.ones(3), (12, 1) if rank == 0 else (1, 12)))
    case("from_local_dtype", lambda: DistTensor.from_local(
        np.ones((rows(2 * size), 3), dtype=np.float32 if rank == 0 else np.float64),
        (2 * size, 3), grid=(size, 1)))
    case("from_local_block", lambda: DistTensor.from_local(
        np.ones((rows(2 * size) + (rank == last), 3)), (2 * size, 3), grid=(size, 1)))

    T = DistTensor.scatter(X if rank == 0 else None, comm=comm)
    F3 = [rng.standard_normal((n, 3)) for n in X.shape]
    F4 = [rng.standard_normal((n, 4)) for n in X.shape]
    B3, B4 = factor_blocks(T, F3), factor_blocks(T, F4)
    case("mttkrp_mode", lambda: dist_mttkrp(T, B3, 0 if rank == 0 else 1))
    case("mttkrp_rank", lambda: dist_mttkrp(T, B3 if rank == 0 else B4, 1))
    case("mttkrp_engine", lambda: dist_mttkrp(T, B3, 1, engine="numpy" if rank == 0 else "auto"))
    case("mttkrp_mode_type", lambda: dist_mttkrp(T, B3, "x" if rank == last else 1))
    case("sweep_rank", lambda: dist_mttkrp_sweep(T, list(B3 if rank == 0 else B4),
                                                  lambda n, M: M))
    T.free()
"""

EXPECTED = {
    "from_local_shape": ("ValueError", "argument 'shape' differs across ranks"),
    "from_local_dtype": ("ValueError", "argument 'dtype' differs across ranks"),
    "from_local_block": ("ValueError", "local block has shape"),
    "mttkrp_mode": ("ValueError", "argument 'mode' differs across ranks"),
    "mttkrp_rank": ("ValueError", "argument 'rank R of the factor blocks' differs"),
    "mttkrp_engine": ("ValueError", "argument 'engine' differs across ranks"),
    "mttkrp_mode_type": ("TypeError", "mode must be an integer"),
    "sweep_rank": ("ValueError", "argument 'rank R of the factor blocks' differs"),
}


@pytest.mark.parametrize("n", [2, 3, 4])
def test_ranks_agree_on_arguments_before_moving_data(tmp_path, serial_only, n):
    res = run_job(tmp_path, AGREEMENT_JOB, n=n, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert_cases(read_cases(tmp_path, n), EXPECTED, n)
