"""tensorpar demo: CP and TT decompositions of a small low-rank tensor on MPI.

Run through the README's command (``bash scripts/demo.sh``), or directly::

    mpiexec -n 2 python examples/demo.py

1. A noisy rank-5 CP tensor of shape 40 x 36 x 32 is built block by block on a
   process grid (no rank ever holds the whole tensor) and decomposed with
   distributed CP-ALS; rank 0 prints the fit after every iteration.
2. The tensor is gathered to rank 0 (it is small) and compressed with TT-SVD
   at a sequence of tolerances, printing TT ranks, relative error and
   compression; then the TT is rounded back down and checked against the
   rounding bound.
"""

from __future__ import annotations

import argparse

import numpy as np

import tensorpar as tp
from tensorpar.distributed import comm as C
from tensorpar.distributed import DistTensor, cp_als


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
        cp, res = cp_als(X, args.rank, seed=3, max_iter=args.iters, tol=1e-10, verbose=True)
        dense = X.gather(root=0)
    fms = cp.factor_match_score(truth)
    if not root:
        return
    print(f"[CP] {res.n_iter} iterations, fit {res.fit:.6f} ({res.stop_reason}), "
          f"factor match score with the true factors {fms:.4f}")

    norm = np.linalg.norm(dense)
    for eps in (1e-1, 1e-2, 1e-3, 1e-6):
        tt = tp.tt_svd(dense, eps=eps)
        err = np.linalg.norm(tt.to_dense() - dense) / norm
        size = sum(c.size for c in tt.cores)
        print(f"[TT] eps={eps:.0e}: ranks {tt.ranks}, relative error {err:.2e} "
              f"(bound {eps:.0e}), {dense.size / size:.1f}x compression")
    exact = tp.tt_svd(dense, eps=1e-12)
    doubled = exact + exact
    rounded = doubled.round(eps=1e-3)
    err = (rounded - doubled).norm() / doubled.norm()
    print(f"[TT] (X + X) has ranks {doubled.ranks}; rounded at eps=1e-3 to {rounded.ranks}, "
          f"relative error {err:.2e}")


if __name__ == "__main__":
    main()
