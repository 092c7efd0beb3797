"""tensorpar demo: CP and TT decompositions of a small low-rank tensor on MPI.

Run through the README's command (``bash scripts/demo.sh``), or directly::

    mpiexec -n 2 python examples/demo.py

1. A noisy rank-5 CP tensor of shape 40 x 36 x 32 is built block by block on a
   process grid (no rank ever holds the whole tensor) and decomposed with
   distributed CP-ALS; rank 0 prints the fit after every iteration.
2. The same distributed tensor is compressed by parallel TT-SVD at a sequence
   of tolerances (TT ranks, relative error, compression); then the sum X + X
   of distributed TTs is rounded back down with TSQR rounding.
"""

from __future__ import annotations

import argparse

import numpy as np

import tensorpar as tp
from tensorpar.distributed import DistTensor, dist_cp_als, dist_tt_svd
from tensorpar.distributed import comm as C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[40, 36, 32])
    parser.add_argument("--rank", type=int, default=5)
    parser.add_argument("--noise", type=float, default=1e-3)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()

    comm = C.resolve_comm()
    root = comm.rank == 0
    truth = tp.random_cp(args.shape, args.rank, seed=0)
    with DistTensor.from_cp(truth, comm=comm) as X:
        rng = np.random.default_rng([1, comm.rank])
        X.local += args.noise * rng.standard_normal(X.local.shape)
        if root:
            print(f"[CP] tensor {tuple(args.shape)} on a {X.grid.dims} process grid "
                  f"({comm.size} ranks), true CP rank {args.rank}")
        cp, res = dist_cp_als(X, args.rank, seed=3, max_iter=args.iters, tol=1e-10, verbose=True)
        fms = cp.factor_match_score(truth)
        if root:
            print(f"[CP] {res.n_iter} iterations, fit {res.fit:.6f} ({res.stop_reason}), "
                  f"factor match score with the true factors {fms:.4f}")

        norm = X.norm()
        exact = dist_tt_svd(X, eps=0.0)  # untruncated, to measure truncation errors
        for eps in (1e-1, 1e-2, 1e-3, 1e-6):
            tt = dist_tt_svd(X, eps=eps)
            err = (tt - exact).norm() / norm
            size = sum(int(np.prod(c.shape)) for c in tt.gather().cores)
            if root:
                print(f"[TT] parallel TT-SVD, eps={eps:.0e}: ranks {tt.ranks}, relative error "
                      f"{err:.2e} (bound {eps:.0e}), "
                      f"{int(np.prod(args.shape)) / size:.1f}x compression")
        doubled = tt + tt
        rounded = doubled.round(eps=1e-3)
        err = (rounded - doubled).norm() / doubled.norm()
        if root:
            print(f"[TT] X + X has ranks {doubled.ranks}; TSQR rounding at eps=1e-3 gives "
                  f"{rounded.ranks}, relative error {err:.2e}")


if __name__ == "__main__":
    main()
