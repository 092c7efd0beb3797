"""An exception on one rank ends the whole MPI job with a message and a non-zero exit.

Each case starts ``mpiexec -n 2`` in a subprocess with a timeout: a hang
(the failure this guards against) shows up as a timeout, not as a stuck
test run. Only the serial run starts subprocesses; under mpiexec these tests
skip (nested mpiexec launches are not portable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mpi4py")

pytestmark = pytest.mark.mpi

TIMEOUT = 60


def _mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    # Drop the variables of this (singleton) MPI process so the child job is independent.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPICH_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    env["NUMBA_NUM_THREADS"] = "1"
    return subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


@pytest.fixture
def serial_only(comm):
    if comm.size > 1:
        pytest.skip("starts its own mpiexec; runs in the serial pass")
    if _mpiexec() is None:
        pytest.skip("mpiexec not found")


def test_uncaught_exception_on_one_rank_aborts_the_job(tmp_path, serial_only):
    res = _run(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        rank = C.resolve_comm().Get_rank()
        if rank == 1:
            raise RuntimeError("boom on rank 1")
        C.allreduce(None, np.ones(3))   # rank 0 would wait here forever without the hook
        print("unreachable", flush=True)
    """)
    assert res.returncode != 0
    assert "RuntimeError: boom on rank 1" in res.stderr
    assert "uncaught RuntimeError on rank 1 of 2; aborting the MPI job" in res.stderr


def test_bad_input_on_one_rank_raises_on_all(tmp_path, serial_only):
    res = _run(tmp_path, """
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
    """)
    assert res.returncode != 0
    assert "rank 1 raised: rank 1 read a corrupt block" in res.stdout
    assert "rank 0 raised: rank(s) [1] of 2 failed: rank 1 read a corrupt block" in res.stdout


def test_clean_job_exits_zero(tmp_path, serial_only):
    res = _run(tmp_path, """
        import numpy as np
        from tensorpar.distributed import comm as C
        print(float(C.allreduce(None, np.ones(1))[0]), flush=True)
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("2.0") == 2
