"""dist_cp_als agrees on its arguments before any data moves (issue 11, class 1).

A bad argument on one rank, caught by the user, followed by a Barrier; and
valid values that differ between ranks (rank, max_iter, tol, seed,
nonnegative, a given init): every rank must raise the same exception
naming the argument and the ranks, and nobody may hang. Each rank count
runs in its own ``mpiexec`` subprocess with a timeout, so that a regression
shows up as a failure instead of a stuck test run (the pattern of
test_dist_failure.py); under mpiexec these tests skip.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402

pytestmark = pytest.mark.mpi

TIMEOUT = 120

JOB = """
    import json
    import sys

    import numpy as np
    from tensorpar import random_cp
    from tensorpar.distributed import comm as C
    from tensorpar.distributed.cp import dist_cp_als
    from tensorpar.distributed.dist_tensor import DistTensor

    comm = C.resolve_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    last = size - 1
    X = random_cp((7, 6, 5), 3, seed=0).to_dense()
    T = DistTensor.scatter(X if rank == 0 else None, comm=comm)

    seen = {}

    def case(name, **kw):
        r = kw.pop("r", 3)
        kw.setdefault("tol", 0.0)
        try:
            dist_cp_als(T, r, max_iter=kw.pop("max_iter", 2), **kw)
            seen[name] = "no error"
        except (ValueError, TypeError) as exc:
            seen[name] = f"{type(exc).__name__}: {exc}"
        comm.Barrier()   # every rank got here: nobody is stuck in a collective

    case("bad-rank", r=3 if rank != 1 else 0, seed=0)
    case("rank-differs", r=3 if rank != last else 4, seed=0)
    case("max-iter-differs", seed=0, max_iter=2 if rank != last else 3)
    case("tol-type", seed=0, tol=-1.0 if rank == last else 0.0)
    case("seed-differs", seed=rank)
    case("seed-type", seed="abc" if rank == 0 else 1)
    case("nonnegative-type", seed=0, nonnegative="no" if rank == last else False)
    init = random_cp((7, 6, 5), 3, seed=10 + (rank == last))
    case("init-differs", init=init)
    case("memory", r=10**6 if rank == last else 3, seed=0)
    case("good", seed=0)
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as fh:
        json.dump(seen, fh)
"""


@pytest.mark.parametrize("n", [2, 3, 4])
def test_every_rank_raises_the_same_error_and_nobody_hangs(tmp_path, serial_only, n):
    res = run_job(tmp_path, JOB, n=n, timeout=TIMEOUT, args=[str(tmp_path)])
    assert res.returncode == 0, res.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    last = n - 1
    expect = {
        "bad-rank": ("ValueError: rank must be >= 1, got 0 (on rank 1 of", None),
        "rank-differs": ("ValueError: argument 'rank' differs across ranks",
                         f"rank {last}: 4"),
        "max-iter-differs": ("ValueError: argument 'max_iter' differs across ranks",
                             f"rank {last}: 3"),
        "tol-type": (f"ValueError: tol must be a number >= 0, got -1.0 (on rank {last} of",
                     None),
        "seed-differs": ("ValueError: argument 'seed' differs across ranks", None),
        "seed-type": ("TypeError: seed must be None, an int", "(on rank 0 of"),
        "nonnegative-type": ("TypeError: nonnegative must be a bool, got str", f"rank {last}"),
        "init-differs": ("ValueError: argument 'init' differs across ranks", None),
        "memory": ("ValueError: rank: CP-ALS with rank=1000000", f"(on rank {last} of"),
    }
    for name, (start, part) in expect.items():
        lines = [s[name] for s in seen]
        assert len(set(lines)) == 1, (name, lines)  # the same message on every rank
        assert lines[0].startswith(start), (name, lines[0])
        if part is not None:
            assert part in lines[0], (name, lines[0])
    assert [s["good"] for s in seen] == ["no error"] * n
