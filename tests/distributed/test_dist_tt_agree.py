"""Every distributed TT entry point agrees on its arguments before data moves.

An argument that is invalid on one rank, or valid but different between
ranks (TT ranks from ``from_core_function``, ``eps``/``max_rank`` of
``dist_tt_svd``, the options of ``dist_tt_round``, the operands of a dot or a
sum), must raise the same exception on every rank, naming the argument --
never a hang or ``Message truncated``. Before the fix most of these cases
hung, so each rank count runs all cases in one ``mpiexec`` subprocess with a
timeout: a regression fails instead of hanging the test run. The job runs
only from the serial pass (nested mpiexec launches are not portable).
"""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import assert_cases, read_cases, run_job  # noqa: E402

pytestmark = pytest.mark.mpi

TIMEOUT = 150

SCRIPT = """
import sys

import numpy as np
from mpi4py import MPI

import tensorpar as tp
from tensorpar.distributed import DistTensor, ProcessGrid
from tensorpar.distributed.tt import (DistTTTensor, dist_tt_add, dist_tt_dot, dist_tt_orthogonalize,
                                      dist_tt_round, dist_tt_scale, dist_tt_svd, dist_ttm_matvec)

comm = MPI.COMM_WORLD
me = comm.rank
odd = me == comm.size - 1          # the one rank that differs
shape = (6, 5, 7)
X = DistTTTensor.scatter(tp.random_tt(shape, 3, seed=1) if me == 0 else None, comm)
Y = DistTTTensor.scatter(tp.random_tt(shape, 2, seed=2) if me == 0 else None, comm)
D = DistTensor.scatter(np.ones(shape) if me == 0 else None, comm=comm)


def ranks_differ(k, idx):
    r = 3 if odd else 2
    return np.ones(((1, r, r)[k], len(idx), (r, r, 1)[k]))


def fails_on_one(k, idx):
    if odd:
        raise KeyError("no such block")
    return np.ones((1, len(idx), 1))


def nan_core():
    cores = [c.copy() for c in X.local_cores]
    if odd:
        cores[1][0, 0, 0] = np.nan
    return DistTTTensor(cores, shape, comm)


def nan_block():
    N = DistTensor.scatter(np.ones(shape) if me == 0 else None, comm=comm)
    if odd:
        N.local[0, 0, 0] = np.nan
    try:
        return dist_tt_svd(N, eps=1e-8)
    finally:
        N.free()


A = tp.TTMatrix([np.eye(n).reshape(1, n, n, 1) for n in shape])
CASES = {
    "from_core_function ranks": lambda: DistTTTensor.from_core_function(ranks_differ, shape, comm),
    "from_core_function error": lambda: DistTTTensor.from_core_function(fails_on_one, shape, comm),
    "constructor nan": nan_core,
    "scatter root": lambda: DistTTTensor.scatter(None, comm, root=1 if odd else 0),
    "svd eps": lambda: dist_tt_svd(D, eps=1e-6 if odd else 1e-8),
    "svd max_rank": lambda: dist_tt_svd(D, max_rank=2 if odd else None),
    "svd bad eps": lambda: dist_tt_svd(D, eps=-1.0 if odd else 1e-8),
    "svd nan in one block": nan_block,
    "svd numpy eps": lambda: dist_tt_svd(D, eps=np.float64(1e-8) if odd else 1e-8),
    "round eps": lambda: dist_tt_round(X, eps=0.1 if odd else 1e-12),
    "round max_rank": lambda: dist_tt_round(X, max_rank=2 if odd else 3),
    "round method": lambda: dist_tt_round(X, method="gram" if odd else "qr"),
    "round seed": lambda: dist_tt_round(X, max_rank=2, method="randomized", seed=me),
    "round tree": lambda: dist_tt_round(X, tree="binomial" if odd else "flat"),
    "round oversample": lambda: dist_tt_round(X, max_rank=2, method="randomized", seed=1,
                                              oversample=3 if odd else 10),
    "orthogonalize direction": lambda: dist_tt_orthogonalize(X, "right" if odd else "left"),
    "dot pair": lambda: dist_tt_dot(X, X if odd else Y),
    "dot wrong type": lambda: dist_tt_dot(X, "not a TT" if odd else Y),
    "add pair": lambda: dist_tt_add(X, X if odd else Y),
    "scale alpha": lambda: dist_tt_scale(X, 3.0 if odd else 2.0),
    "matvec operator": lambda: dist_ttm_matvec(A if not odd else np.eye(3), X),
}
with open(f"{sys.argv[1]}/rank{me}.txt", "w") as out:  # one file per rank: no interleaving
    for name, case in CASES.items():
        try:
            case()
            outcome = "ok|"
        except Exception as exc:  # every rank reports what it raised
            outcome = f"{type(exc).__name__}|{exc}"
        comm.Barrier()   # reached by every rank: nobody is stuck in a collective
        out.write(f"CASE|{name}|{outcome}".replace("\\n", " ") + "\\n")
        out.flush()
D.free()
"""

#: case -> (exception type on every rank, text every message contains)
EXPECTED = {
    "from_core_function ranks": ("ValueError", "argument 'ranks' differs across ranks"),
    "from_core_function error": ("RuntimeError", "no such block"),
    "constructor nan": ("ValueError", "non-finite entries"),
    "scatter root": ("ValueError", "argument 'root' differs across ranks"),
    "svd eps": ("ValueError", "argument 'eps' differs across ranks"),
    "svd max_rank": ("ValueError", "argument 'max_rank' differs across ranks"),
    "svd bad eps": ("ValueError", "eps must be a finite number >= 0"),
    "svd nan in one block": ("ValueError", "X contains NaN or infinite values"),
    "svd numpy eps": ("ok", ""),  # equal values of different Python types agree
    "round eps": ("ValueError", "argument 'eps' differs across ranks"),
    "round max_rank": ("ValueError", "argument 'max_rank' differs across ranks"),
    "round method": ("ValueError", "argument 'method' differs across ranks"),
    "round seed": ("ValueError", "argument 'seed' differs across ranks"),
    "round tree": ("ValueError", "argument 'tree' differs across ranks"),
    "round oversample": ("ValueError", "argument 'oversample' differs across ranks"),
    "orthogonalize direction": ("ValueError", "argument 'direction' differs across ranks"),
    "dot pair": ("ValueError", "argument 'y' differs across ranks"),
    "dot wrong type": ("TypeError", "y must be a DistTTTensor"),
    "add pair": ("ValueError", "argument 'y' differs across ranks"),
    "scale alpha": ("ValueError", "argument 'alpha' differs across ranks"),
    "matvec operator": ("TypeError", "A must be a TTMatrix"),
}


def _run(tmp_path, nprocs: int) -> dict[str, dict[int, tuple[str, str]]]:
    """Run the cases; ``{case: {rank: (exception type, message)}}``."""
    try:
        res = run_job(tmp_path, SCRIPT, n=nprocs, timeout=TIMEOUT, args=[str(tmp_path)],
                      name="agree.py")
    except subprocess.TimeoutExpired:
        seen = read_cases(tmp_path, nprocs)
        pytest.fail(f"the job hung (no result within {TIMEOUT} s); cases finished: {seen}")
    assert res.returncode == 0, res.stderr[-3000:]
    return read_cases(tmp_path, nprocs)


@pytest.mark.parametrize("nprocs", [2, 3, 4])
def test_every_rank_raises_the_same_error_naming_the_argument(tmp_path, serial_only, nprocs):
    assert_cases(_run(tmp_path, nprocs), EXPECTED, nprocs)
