"""Tensor-train arithmetic benchmark: tensorpar beside teneva, against this machine's DGEMM rate.

For each case (mode count d, mode size n, rank r) times every TT operation
of tensorpar and the matching teneva function on the same cores, and
reports milliseconds, GFLOP/s (nominal flops of the algorithm as
implemented; Householder counts for QR), the fraction of the DGEMM rate
measured in the same run, GB/s for the memory-bound operations, and the
speed-up over teneva. Then:

* randomized rounding of a sum of 10 TTs against QR rounding of the formed
  sum, at the same accuracy target (both errors measured);
* log-log slopes of time against d, n and r for dot and QR rounding
  (expected 1, 1 and 3 in the asymptotic regime);
* TT-SVD of a dense tensor, TT-matrix products and entries, for reference.

    python benchmarks/tt.py            # (d, n, r) = (10, 64, 32) and (30, 32, 16)
    python benchmarks/tt.py --quick    # smaller cases, fewer repeats
    python benchmarks/tt.py --threads 1

Writes ``benchmarks/results/tt.json`` (``tt_quick.json`` with ``--quick``;
``_threads<N>`` appended with ``--threads N``). teneva is optional
(``pip install 'tensorpar[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import best_of, machine_info, print_table, write_json  # noqa: E402

import tensorpar as tp  # noqa: E402

TARGETS = {"dot": 100.0, "norm": 100.0, "round (qr)": 5.0, "hadamard": 10.0}


# -- nominal flop counts -------------------------------------------------------
def _qr_flops(m: int, k: int) -> float:
    """Householder QR of an m x k matrix with Q formed (geqrf + orgqr)."""
    return 4.0 * m * k * k - 4.0 * k**3 / 3.0


def flops_dot(rx: list[int], ry: list[int], n: int) -> float:
    return sum(2.0 * n * (rx[k] * ry[k] * ry[k + 1] + rx[k] * rx[k + 1] * ry[k + 1])
               for k in range(len(rx) - 1))


def flops_orth(ranks: list[int], n: int) -> float:
    """Left QR sweep: QR of (r_k n) x r_{k+1} and R times the next core."""
    d = len(ranks) - 1
    return sum(_qr_flops(ranks[k] * n, ranks[k + 1]) + 2.0 * ranks[k + 1] ** 2 * n * ranks[k + 2]
               for k in range(d - 1))


def flops_round_qr(ranks: list[int], out: list[int], n: int) -> float:
    """Orthogonalization plus the right-to-left SVD sweep (QR of the transposed core,
    SVD of the small factor, Q times the kept vectors, carry into the next core)."""
    d = len(ranks) - 1
    f = flops_orth(ranks, n)
    for k in range(d - 1, 0, -1):
        m, q = n * out[k + 1], ranks[k]
        f += _qr_flops(m, q) + 22.0 * q**3 + 2.0 * m * q * out[k] + 2.0 * ranks[k - 1] * n * q * out[k]
    return f


def flops_round_gram(ranks: list[int], out: list[int], n: int) -> float:
    d = len(ranks) - 1
    f = sum(2.0 * n * (ranks[k] * ranks[k + 1] ** 2 + ranks[k] ** 2 * ranks[k + 1])
            for k in range(1, d))
    for k in range(d - 1):
        r, q, t = out[k], ranks[k + 1], out[k + 1]
        f += 2.0 * r * n * q * q + 2.0 * r * n * q * t + 2.0 * t * q * n * ranks[k + 2] + 40.0 * q**3
    return f


def flops_round_rand(summands: list[list[int]], ell: int, n: int) -> float:
    d = len(summands[0]) - 1
    f = 0.0
    for rk in summands:
        f += sum(2.0 * n * (rk[k] * rk[k + 1] * ell + rk[k] * ell * ell) for k in range(1, d))
        f += sum(2.0 * n * ell * rk[k + 1] * (rk[k] + 2 * ell) for k in range(d - 1))
    f += (d - 1) * (_qr_flops(ell * n, ell) + flops_round_qr([1] + [ell] * (d - 1) + [1],
                                                             [1] + [ell] * (d - 1) + [1], n) / d)
    return f


# -- helpers ----------------------------------------------------------------------
def _threads(n: int | None):
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n)


def _rel_err(a: tp.TTTensor, b: tp.TTTensor) -> float:
    """||a - b|| / ||b|| with the QR norm (accurate for nearly equal a and b)."""
    return tp.tt_norm(a - b, "qr") / tp.tt_norm(b, "qr")


def _row(op: str, case: str, t: float, flops: float | None, dgemm: float, peer: float | None,
         nbytes: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"op": op, "case": case, "ms": 1e3 * t}
    if flops:
        row["GFLOP/s"] = flops / t / 1e9
        row["of DGEMM"] = flops / t / dgemm
    if nbytes:
        row["GB/s"] = nbytes / t / 1e9
    if peer is not None:
        row["teneva ms"] = 1e3 * peer
        row["speed-up"] = peer / t
        if op in TARGETS:
            row["target"] = f">= {TARGETS[op]:g}x"
            row["met"] = bool(peer / t >= TARGETS[op])
    return row


def _time(fn: Callable[[], Any], args: argparse.Namespace, slow: bool = False) -> float:
    return best_of(fn, repeat=2 if slow else args.repeat, warmup=1, max_seconds=args.max_seconds)


def _paired(ours: Callable[[], Any], theirs: Callable[[], Any] | None, args: argparse.Namespace,
            slow: bool = False) -> tuple[float, float | None]:
    """Best warm times of two functions, timed in alternating rounds so that both see
    the same machine load (each round runs a function twice and times the second call)."""
    if theirs is None:
        return _time(ours, args, slow), None
    best = [float("inf"), float("inf")]
    spent = 0.0
    for _ in range(2 if slow else args.repeat):
        for i, fn in enumerate((ours, theirs)):
            fn()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best[i] = min(best[i], dt)
            spent += 2 * dt
        if spent > args.max_seconds:
            break
    return best[0], best[1]


def write_bandwidth(nbytes: int = 256 * 2**20) -> float:
    """Bytes/s of a parallel fill of freshly allocated memory (what a new TT core costs)."""
    from numba import njit, prange

    @njit(parallel=True, cache=False)
    def _fill(x):
        for i in prange(x.size):
            x[i] = 1.0

    _fill(np.empty(16))
    return nbytes / best_of(lambda: _fill(np.empty(nbytes // 8)), repeat=5)


# -- the cases --------------------------------------------------------------------
def run_case(d: int, n: int, r: int, args: argparse.Namespace, dgemm: float,
             rows: list[dict]) -> None:
    case = f"d={d} n={n} r={r}"
    tn = None if args.no_teneva else __import__("teneva")
    x = tp.random_tt((n,) * d, r, seed=1)
    y = tp.random_tt((n,) * d, r, seed=2)
    s = x + y
    rx, rs = list(x.ranks), list(s.ranks)
    out = list(tp.tt_round(s, 1e-10, r).ranks)
    item = 8

    ops: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, float | None, float | None,
                    bool]] = [
        ("add", lambda: x + y, lambda: tn.add(x.cores, y.cores), None,
         sum(c.nbytes for c in s.cores) * 2.0, False),
        ("hadamard", lambda: tp.tt_hadamard(x, y, engine="numba"),
         lambda: tn.mul(x.cores, y.cores), None,
         sum(item * a.shape[0] * b.shape[0] * n * a.shape[2] * b.shape[2]
             for a, b in zip(x.cores, y.cores)), True),
        ("hadamard (numpy)", lambda: tp.tt_hadamard(x, y, engine="numpy"),
         lambda: tn.mul(x.cores, y.cores), None,
         sum(item * a.shape[0] * b.shape[0] * n * a.shape[2] * b.shape[2]
             for a, b in zip(x.cores, y.cores)), True),
        ("dot", lambda: tp.tt_dot(x, y), lambda: tn.mul_scalar(x.cores, y.cores),
         flops_dot(rx, rx, n), None, True),
        ("norm", lambda: tp.tt_norm(x), lambda: tn.norm(x.cores), flops_dot(rx, rx, n), None, True),
        ("norm (qr)", lambda: tp.tt_norm(x, "qr"), lambda: tn.norm(x.cores),
         flops_orth(rx, n), None, True),
        ("orthogonalize", lambda: tp.tt_orthogonalize(s), lambda: tn.orthogonalize(s.cores),
         flops_orth(rs, n), None, False),
        ("round (qr)", lambda: tp.tt_round(s, 1e-10, r), lambda: tn.truncate(s.cores, 1e-10, r),
         flops_round_qr(rs, out, n), None, False),
        ("round (gram)", lambda: tp.tt_round(s, 1e-10, r, method="gram"),
         lambda: tn.truncate(s.cores, 1e-10, r), flops_round_gram(rs, out, n), None, False),
        ("round (rand)", lambda: tp.tt_round(s, 1e-10, r, method="randomized", seed=0),
         lambda: tn.truncate(s.cores, 1e-10, r),
         flops_round_rand([rs], r + 10, n), None, False),
    ]
    for op, ours, theirs, flops, nbytes, slow in ops:
        if args.only and op not in args.only:
            continue
        t, t_peer = _paired(ours, None if tn is None else theirs, args, slow)
        rows.append(_row(op, case, t, flops, dgemm, t_peer, nbytes))
        if nbytes:
            rows[-1]["of write BW"] = nbytes / t / args.write_bw
        print(f"  {case:<18} {op:<16} {1e3 * t:9.2f} ms"
              + (f"   teneva {1e3 * t_peer:9.2f} ms  x{t_peer / t:.1f}" if t_peer else ""),
              flush=True)


def run_sum(d: int, n: int, r: int, args: argparse.Namespace, dgemm: float) -> dict[str, Any]:
    """Round sum_j w_j (T + 1e-9 E_j), j < 10, to eps = 1e-6: numerical rank r."""
    rng = np.random.default_rng(3)
    base = tp.random_tt((n,) * d, r, seed=rng)
    terms = [base + 1e-9 * tp.random_tt((n,) * d, r, seed=rng) for _ in range(10)]
    weights = list(rng.uniform(0.5, 1.5, 10))
    eps = 1e-6
    exact = tp.tt_sum(terms, weights)
    t_rand, t_qr = _paired(lambda: tp.tt_round_sum(terms, eps, r, weights=weights, seed=0),
                           lambda: tp.tt_round(tp.tt_sum(terms, weights), eps), args, slow=True)
    t_gram = _time(lambda: tp.tt_round(tp.tt_sum(terms, weights), eps, method="gram"), args,
                   slow=True)
    y_qr = tp.tt_round(exact, eps)
    y_rand = tp.tt_round_sum(terms, eps, r, weights=weights, seed=0)
    res = {
        "case": f"10 x (d={d} n={n} r={2 * r}) -> r={r}, eps={eps:g}",
        "qr ms": 1e3 * t_qr, "gram ms": 1e3 * t_gram, "randomized ms": 1e3 * t_rand,
        "speed-up over qr": t_qr / t_rand, "target": ">= 5x", "met": bool(t_qr / t_rand >= 5),
        "qr rel. error": _rel_err(y_qr, exact), "randomized rel. error": _rel_err(y_rand, exact),
        "qr ranks": max(y_qr.ranks), "randomized ranks": max(y_rand.ranks),
        "randomized GFLOP/s": flops_round_rand([list(t.ranks) for t in terms], r + 10, n)
        / t_rand / 1e9,
    }
    print(f"  sum of 10: qr {res['qr ms']:.1f} ms, gram {res['gram ms']:.1f} ms, randomized "
          f"{res['randomized ms']:.1f} ms (x{res['speed-up over qr']:.1f}); errors "
          f"{res['qr rel. error']:.1e} / {res['randomized rel. error']:.1e}", flush=True)
    return res


def _slope(xs: list[int], ts: list[float]) -> float:
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def run_slopes(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"d": 10, "n": 32, "r": 16} if not args.quick else {"d": 8, "n": 16, "r": 8}
    # start past the sizes where per-core call overhead hides the asymptotic costs
    grids = {"d": [8, 16, 32], "n": [32, 64, 128], "r": [32, 64, 128]}
    if args.quick:
        grids = {"d": [8, 16, 32], "n": [16, 32, 64], "r": [8, 16, 32]}
    out = []
    for var, values in grids.items():
        for op in ("dot", "round (qr)"):
            ts = []
            for v in values:
                p = dict(base, **{var: v})
                x = tp.random_tt((p["n"],) * p["d"], p["r"], seed=5)
                if op == "dot":
                    fn = (lambda x=x: tp.tt_dot(x, x))
                else:
                    s = x + tp.random_tt((p["n"],) * p["d"], p["r"], seed=6)
                    fn = (lambda s=s, r=p["r"]: tp.tt_round(s, 1e-10, r))
                ts.append(_time(fn, args))
            expect = {"d": 1, "n": 1, "r": 3}[var]
            out.append({"op": op, "vary": var, "values": values, "ms": [1e3 * t for t in ts],
                        "slope": _slope(values, ts), "expected": expect})
            print(f"  slope of {op:<11} in {var}: {out[-1]['slope']:.2f} (expected {expect})",
                  flush=True)
    return out


def run_extras(args: argparse.Namespace, dgemm: float) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(7)
    shape = (12,) * 6 if not args.quick else (8,) * 6
    X = tp.random_tt(shape, 6, seed=rng).to_dense()
    t = _time(lambda: tp.tt_svd(X, 1e-10), args, slow=True)
    row = {"op": "tt_svd", "case": "x".join(map(str, shape)), "ms": 1e3 * t}
    if not args.no_teneva:
        import teneva

        t_p = _time(lambda: teneva.svd(X, 1e-10), args, slow=True)
        row.update({"teneva ms": 1e3 * t_p, "speed-up": t_p / t})
    rows.append(row)
    # a TT layer: (4 8 8 4) x (4 8 8 4) matrix of rank 4 times a batch of 256
    rows_, cols = (4, 8, 8, 4), (4, 8, 8, 4)
    A = tp.TTMatrix.from_tt(tp.random_tt([a * b for a, b in zip(rows_, cols)], 4, seed=rng),
                            rows_, cols)
    B = rng.standard_normal((A.shape[1], 256))
    t = _time(lambda: A.matmat(B), args)
    D = A.to_dense()
    t_dense = _time(lambda: D @ B, args)
    rows.append({"op": "TTMatrix.matmat", "case": "1024x1024 r=4, B=256", "ms": 1e3 * t,
                 "dense GEMM ms": 1e3 * t_dense})
    xv = tp.random_tt(cols, 8, seed=rng)
    t = _time(lambda: A.matvec(xv), args)
    rows.append({"op": "TTMatrix.matvec", "case": "r_A=4, r_x=8", "ms": 1e3 * t})
    xe = tp.random_tt((32,) * 10, 16, seed=rng)
    idx = rng.integers(0, 32, (20000, 10))
    for engine in ("numba", "numpy"):
        t = _time(lambda e=engine: xe.entries(idx, engine=e), args)
        row = {"op": f"entries ({engine})", "case": "d=10 r=16, 20000 points", "ms": 1e3 * t}
        if not args.no_teneva and engine == "numba":
            import teneva

            t_p = _time(lambda: teneva.get_many(xe.cores, idx), args)
            row.update({"teneva ms": 1e3 * t_p, "speed-up": t_p / t})
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small cases, fewer repeats")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    ap.add_argument("--no-teneva", action="store_true")
    ap.add_argument("--only", nargs="*", help="operations to run (default: all)")
    ap.add_argument("--skip-slopes", action="store_true")
    args = ap.parse_args()
    if importlib.util.find_spec("teneva") is None:
        args.no_teneva = True
    if args.quick:
        args.repeat = min(args.repeat, 3)
    cases = [(10, 64, 32), (30, 32, 16)] if not args.quick else [(10, 32, 16), (30, 16, 8)]
    with _threads(args.threads):
        info = machine_info()
        dgemm = info["dgemm_GFLOPs"] * 1e9
        args.write_bw = write_bandwidth()
        info["write_bandwidth_GBs"] = args.write_bw / 1e9
        print(f"DGEMM {info['dgemm_GFLOPs']:.1f} GFLOP/s, read bandwidth "
              f"{info['read_bandwidth_GBs']:.1f} GB/s, fresh-memory write bandwidth "
              f"{info['write_bandwidth_GBs']:.1f} GB/s, threads {args.threads or 'all'}",
              flush=True)
        rows: list[dict] = []
        for d, n, r in cases:
            run_case(d, n, r, args, dgemm, rows)
        sums = [run_sum(10, 64 if not args.quick else 32, 16 if not args.quick else 8, args, dgemm)]
        slopes = [] if args.skip_slopes else run_slopes(args)
        extras = run_extras(args, dgemm)
        info_after = machine_info()
    cols = ["op", "case", "ms", "GFLOP/s", "of DGEMM", "GB/s", "of write BW", "teneva ms",
            "speed-up", "target", "met"]
    print_table(rows, cols, title="TT operations (nominal flops; QR at Householder counts)")
    print_table(sums, ["case", "qr ms", "gram ms", "randomized ms", "speed-up over qr", "target",
                       "met", "qr rel. error", "randomized rel. error"],
                title="Rounding a sum of 10 TTs at the same accuracy target")
    if slopes:
        print_table([{k: v for k, v in s.items() if k not in ("values", "ms")} for s in slopes],
                    ["op", "vary", "slope", "expected"], title="log-log slopes of time")
    print_table(extras, ["op", "case", "ms", "teneva ms", "speed-up", "dense GEMM ms"],
                title="Other operations")
    name = "tt_quick" if args.quick else "tt"
    if args.threads is not None:
        name += f"_threads{args.threads}"
    path = write_json(name, {"machine_before": info, "machine_after": info_after,
                             "threads": args.threads, "quick": args.quick, "operations": rows,
                             "sum_rounding": sums, "slopes": slopes, "extras": extras})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
