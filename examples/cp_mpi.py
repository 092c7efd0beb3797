"""Distributed CP-ALS of a synthetic low-rank tensor that is never held in one place.

Run with, e.g.::

    mpiexec -n 4 python examples/cp_mpi.py
    mpiexec -n 4 python examples/cp_mpi.py --shape 200 180 160 --rank 8 --noise 0.05

Every rank builds only its own block: the true factors are drawn from a
shared seed (they are small, ``I_n x R``), each rank forms its block of the
CP tensor and adds noise drawn from a per-rank seed. The grid is chosen by
:func:`tensorpar.distributed.grid.choose_grid`; rank 0 prints the fit after
every iteration.
"""

from __future__ import annotations

import argparse

import numpy as np

from tensorpar import random_cp
from tensorpar.distributed import comm as C
from tensorpar.distributed.cp import dist_cp_als
from tensorpar.distributed.dist_tensor import DistTensor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[60, 50, 40])
    parser.add_argument("--rank", type=int, default=5, help="CP rank of the data and the model")
    parser.add_argument("--noise", type=float, default=0.01, help="noise relative to the entries")
    parser.add_argument("--iters", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--init-seed", type=int, default=2, help="seed of the random init")
    args = parser.parse_args()

    comm = C.resolve_comm()
    truth = random_cp(args.shape, args.rank, seed=args.seed)
    with DistTensor.from_cp(truth, comm=comm, grid=None) as X:
        rng = np.random.default_rng([args.seed, comm.rank])
        X.local += args.noise * rng.standard_normal(X.local.shape) * np.abs(X.local).mean()
        if comm.rank == 0:
            print(f"tensor {tuple(args.shape)} on a {X.grid.dims} grid of {comm.size} ranks; "
                  f"rank-0 block {X.local.shape}")
        with C.count_traffic() as traffic:
            cp, res = dist_cp_als(X, args.rank, seed=args.init_seed, max_iter=args.iters,
                                  tol=1e-9, verbose=True)
        fms = cp.factor_match_score(truth)
    if comm.rank == 0:
        print(f"{res.n_iter} iterations, final fit {res.fit:.6f} ({res.stop_reason}); "
              f"factor match score with the truth {fms:.4f}")
        print(f"rank 0 sent {traffic.total_bytes / 1e3:.1f} kB in {traffic.total_calls} "
              f"collectives: {traffic.nbytes}")


if __name__ == "__main__":
    main()
