"""Distributed TT: strong scaling of rounding and dot from 1 to 2 ranks, and an alpha-beta model.

Usage::

    python benchmarks/tt_mpi.py            # d = 20, n = 4,096, r = 32 (issue 7)
    python benchmarks/tt_mpi.py --quick    # d = 8, n = 1,024, r = 16

Results go to ``benchmarks/results/tt_mpi.json`` (``tt_mpi_quick.json`` with
``--quick``). The script starts ``mpiexec -n P`` workers itself (one BLAS /
numba thread per rank). Each worker builds the same random TT of ranks ``r``
(:meth:`DistTTTensor.from_core_function`), times
:func:`tensorpar.distributed.dist_tt_round` (``eps = 1e-10``: nothing is
truncated, so the full TSQR + SVD cost is paid) and
:func:`tensorpar.distributed.dist_tt_dot` (slowest rank, best of
``--repeats``) and counts their messages. The alpha-beta model extrapolates
to ``P`` ranks of a cluster (``--alpha`` s per message, ``--beta`` s per byte;
assumed, not fitted here):

* round: ``T_1 / P + 2 (d-1) [ceil(log2 P) alpha + (P-1) r^2 8 beta + 4 P r^3 / F]
  + 4 ceil(log2 P) alpha`` (the ``Allgatherv`` of the R factors and the
  redundant QR of their stack, ``F`` this machine's DGEMM rate; two small
  allreduces: the argument agreement and the core magnitudes);
* round with ``tree="binomial"``: ``T_1 / P + 2 (d-1) ceil(log2 P) [8 alpha + 3 r^2 8 beta
  + 8 r^3 / F]`` (three messages per point-to-point send, up and down the tree, and the
  broadcast of ``R`` with its metadata) plus the same two small allreduces;
* dot: ``T_1 / P + d [2 ceil(log2 P) alpha + 2 (P-1)/P r^2 8 beta] + 2 ceil(log2 P) alpha``
  (the last term: the argument agreement).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

#: Al Daas, Ballard and Benner, SIAM J. Sci. Comput. 2022 (quoted in issue 7).
PAPER_REPORTED = "34x on 40 cores; near-linear strong scaling past 10,000 cores"


def _max() -> Any:
    from mpi4py import MPI

    return MPI.MAX


def worker(args: argparse.Namespace) -> None:
    from tensorpar.distributed import comm as C
    from tensorpar.distributed.tt import DistTTTensor, dist_tt_dot, dist_tt_round

    comm = C.resolve_comm()
    d, n, r = args.d, args.n, args.r

    def core(k: int, idx: np.ndarray) -> np.ndarray:
        left, right = (1 if k == 0 else r), (1 if k == d - 1 else r)
        full = np.random.default_rng(k).standard_normal((left, n, right)) / math.sqrt(n * right)
        return np.ascontiguousarray(full[:, idx, :])

    X = DistTTTensor.from_core_function(core, (n,) * d, comm)
    out: dict[str, Any] = {"P": comm.Get_size()}
    ops = (("round", lambda: dist_tt_round(X, 1e-10)),
           ("round_binomial", lambda: dist_tt_round(X, 1e-10, tree="binomial")),
           ("dot", lambda: dist_tt_dot(X, X)))
    for name, fn in ops:
        fn()  # warm up
        best = float("inf")
        for _ in range(args.repeats):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            best = min(best, comm.allreduce(time.perf_counter() - t0, op=_max()))
        with C.count_traffic() as c:
            fn()
        out[name] = {"t": best, "bytes": c.total_bytes, "calls": c.total_calls}
    if comm.rank == 0:
        Path(args.json).write_text(json.dumps(out))


def _launch(args: argparse.Namespace, nprocs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", str(nprocs),
               sys.executable, __file__, "--worker", "--json", path, "-d", str(args.d),
               "-n", str(args.n), "-r", str(args.r), "--repeats", str(args.repeats)]
        subprocess.run(cmd, check=True, env=env, timeout=3600)
        return json.loads(Path(path).read_text())


def model(op: str, t1: float, P: int, d: int, r: int, alpha: float, beta: float,
          flops: float) -> float:
    """Modelled time of ``op`` ("round" or "dot") on ``P`` ranks from the one-rank time."""
    lg = math.ceil(math.log2(P)) if P > 1 else 0
    small = 2 * lg * alpha  # one allreduce of a few words (latency bound)
    if op == "round":
        per = lg * alpha + (P - 1) * r * r * 8 * beta + (4 * P * r ** 3 / flops if P > 1 else 0)
        return t1 / P + 2 * (d - 1) * per + 2 * small
    if op == "round_binomial":
        # up and down the tree: a point-to-point send is 3 messages (count, header, data);
        # R is broadcast (metadata + data); one 2r x r QR and one r x r product per level
        per = lg * (2 * (3 * alpha + r * r * 8 * beta) + 8 * r ** 3 / flops) \
            + lg * (2 * alpha + r * r * 8 * beta)
        return t1 / P + 2 * (d - 1) * per + 2 * small
    return t1 / P + d * (2 * lg * alpha + 2 * (P - 1) / P * r * r * 8 * beta) + small


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="d = 8, n = 1024, r = 16")
    ap.add_argument("-d", type=int, default=None)
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("-r", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=2e-6, help="cluster: s per message")
    ap.add_argument("--beta", type=float, default=1e-10, help="cluster: s per byte (10 GB/s)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    q = args.quick
    args.d = args.d or (8 if q else 20)
    args.n = args.n or (1024 if q else 4096)
    args.r = args.r or (16 if q else 32)
    if args.worker:
        worker(args)
        return
    report(args)


def report(args: argparse.Namespace) -> None:
    from _machine import dgemm_rate, machine_info, print_table, write_json

    info = machine_info()
    runs = {P: _launch(args, P) for P in (1, 2)}
    rows = []
    for op, target in (("round", 1.7), ("round_binomial", 1.7), ("dot", None)):
        t1 = runs[1][op]["t"]
        for P, res in runs.items():
            rows.append({"op": op, "P": P, "time_s": res[op]["t"], "speedup": t1 / res[op]["t"],
                         "target": target if P == 2 else None, "calls": res[op]["calls"],
                         "bytes": res[op]["bytes"]})
    print_table(rows, ["op", "P", "time_s", "speedup", "target", "calls", "bytes"],
                title=f"strong scaling, d = {args.d}, n = {args.n}, r = {args.r} "
                      f"(1 thread per rank; {info['cpus']} cpus)")
    flops = dgemm_rate(n=512)
    pred = []
    for P in (1, 2, 16, 128, 1024):
        row: dict[str, Any] = {"P": P}
        for op in ("round", "round_binomial", "dot"):
            t = model(op, runs[1][op]["t"], P, args.d, args.r, args.alpha, args.beta, flops)
            row[f"{op}_s"], row[f"{op}_speedup"] = t, runs[1][op]["t"] / t
        pred.append(row)
    print_table(pred, ["P", "round_s", "round_speedup", "round_binomial_speedup", "dot_s",
                       "dot_speedup"],
                title=f"alpha-beta model (alpha = {args.alpha:g} s, beta = {args.beta:g} s/B); "
                      f"paper: {PAPER_REPORTED}")
    name = "tt_mpi_quick" if args.quick else "tt_mpi"
    path = write_json(name, {"machine": info, "d": args.d, "n": args.n, "r": args.r,
                             "runs": runs, "table": rows, "model": pred,
                             "alpha": args.alpha, "beta": args.beta,
                             "paper": PAPER_REPORTED})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
