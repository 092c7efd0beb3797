"""CP-ALS per-iteration time and fit: tensorpar beside tensorly and pyttb, same init.

Each case builds a rank-R tensor plus 10% noise and one initial CPTensor
(the SVD init, see :func:`make_problem`), then runs ``iters`` iterations (tolerance 0) of

* ``tensorpar.cp_als`` -- per-iteration times from the result record;
* ``tensorly.decomposition.parafac`` -- per-iteration times from callback
  timestamps;
* ``pyttb.cp_als`` -- no callback, so its tensor's ``mttkrp`` is wrapped to
  time-stamp the start of each iteration (mode 0).

Times are the best iteration (each iteration is one repetition of the same
work) of the best of ``--repeat`` interleaved rounds. The fits after ``iters`` iterations are compared (the algorithms are
the same, so they agree to rounding). The roofline of one sweep is
``max(passes * bytes(X) / bandwidth, 2 N R numel(X) / DGEMM rate)`` with
``passes = N`` (one MTTKRP per mode) and, for a dimension tree, 2.
``sweep ms`` is the MTTKRP sweep alone, so ``iter - sweep`` is the cost of
everything else in an iteration (Grams, solves, normalisation, fit).

Two more tables follow (``--no-variants`` skips them):

* **line search** (:mod:`tensorpar.cp.accel`): on tensors with collinear
  factors (the swamps where ALS crawls; the cases of
  ``tests/test_cp_linesearch.py``), iterations and seconds until the fit is
  within ``1e-6`` of the best fit any of the runs reached, for plain ALS,
  ``linesearch=True`` and TensorLy's ``parafac(linesearch=True)`` (its
  error is read from its callback, which on extrapolating iterations
  passes the previous iteration's error: at most one iteration late);
* **missing data** (:mod:`tensorpar.cp.missing`): time per iteration and
  observed fit after ``iters`` iterations for EM, WLS and TensorLy's masked
  ``parafac``, same start.

Usage: ``python benchmarks/cp.py [--quick] [--iters 10] [--repeat 3] [--engine auto]
[--no-peers] [--cases 0 2] [--no-variants]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import best_of, machine_info, print_table, write_json  # noqa: E402

from tensorpar import cp_als, random_cp  # noqa: E402
from tensorpar.cp.init import initialize_cp  # noqa: E402
from tensorpar.mttkrp import mttkrp_sweep  # noqa: E402

FULL = [((200, 200, 200), 16), ((300, 300, 300), 32), ((40,) * 5, 10)]
QUICK = [((100, 100, 100), 16), ((120, 120, 120), 32), ((16,) * 5, 10)]


def make_problem(shape: tuple[int, ...], rank: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """Rank-``rank`` tensor plus 10% Gaussian noise, and its SVD initial CPTensor.

    The SVD start (computed once by tensorpar and handed to everyone as a
    CPTensor) keeps ALS out of the early "swamps" where a random start
    amplifies rounding differences between implementations past 1e-10 within
    ten iterations (a property of the problem, not of any implementation).
    """
    rng = np.random.default_rng(seed)
    X = random_cp(shape, rank, seed=rng).to_dense()
    X += 0.1 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(shape)
    return X, initialize_cp(X, rank, "svd", rng=rng)


def run_tensorpar(X: np.ndarray, init: Any, rank: int, iters: int, engine: str) -> dict:
    cp_als(X, rank, init=init, tol=0, max_iter=1, engine=engine)  # compile / warm caches
    _, res = cp_als(X, rank, init=init, tol=0, max_iter=iters, engine=engine)
    factors = list(init.normalize().factors)
    sweep = best_of(lambda: mttkrp_sweep(X, factors, lambda n, M: factors[n], engine=engine),
                    repeat=5, warmup=1)
    return {"ms": 1e3 * min(res.iter_times), "median_ms": 1e3 * float(np.median(res.iter_times)),
            "fit": res.fits[-1], "sweep_ms": 1e3 * sweep, "engine": res.engine}


def run_tensorly(X: np.ndarray, init: Any, rank: int, iters: int) -> dict:
    from tensorly.decomposition import parafac

    stamps: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, errors = parafac(X, rank, n_iter_max=iters, init=init.to_tensorly(), tol=0,
                            return_errors=True,
                            callback=lambda cp, err: stamps.append(time.perf_counter()))
    dt = np.diff(stamps)
    return {"ms": 1e3 * float(dt.min()), "median_ms": 1e3 * float(np.median(dt)),
            "fit": 1.0 - float(errors[-1])}


def run_pyttb(X: np.ndarray, init: Any, rank: int, iters: int) -> dict:
    import pyttb as ttb

    stamps: list[float] = []

    class Stamped(ttb.tensor):
        def mttkrp(self, U: Any, n: int, *args: Any, **kwargs: Any) -> Any:
            if n == 0:  # an iteration starts with mode 0
                stamps.append(time.perf_counter())
            return super().mttkrp(U, n, *args, **kwargs)

    T = Stamped(X, copy=False)
    _, _, out = ttb.cp_als(T, rank, maxiters=iters, stoptol=0, init=init.to_pyttb(),
                           printitn=0, fixsigns=False)
    dt = np.diff(stamps)
    return {"ms": 1e3 * float(dt.min()), "median_ms": 1e3 * float(np.median(dt)),
            "fit": float(out["fit"])}


def roofline_ms(shape: tuple[int, ...], rank: int, machine: dict, passes: int) -> float:
    numel = float(np.prod(shape))
    bw = machine["read_bandwidth_GBs"] * 1e9
    rate = machine["dgemm_GFLOPs"] * 1e9
    n = len(shape)
    flops = 2.0 * n * rank * numel if passes == n else 2.0 * 2 * rank * numel
    return 1e3 * max(passes * 8 * numel / bw, flops / rate)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--iters", type=int, default=10, help="ALS iterations per run (>= 2)")
    ap.add_argument("--engine", default="auto", help="tensorpar MTTKRP engine")
    ap.add_argument("--no-peers", action="store_true", help="skip tensorly and pyttb")
    ap.add_argument("--cases", type=int, nargs="*", help="indices of the cases to run")
    ap.add_argument("--no-variants", action="store_true",
                    help="skip the line-search and missing-data tables")
    ap.add_argument("--repeat", type=int, default=None,
                    help="rounds per case, best kept (default 3, 1 with --quick)")
    args = ap.parse_args(argv)
    if args.iters < 2:
        ap.error("--iters must be >= 2")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    cases = QUICK if args.quick else FULL
    if args.cases:
        cases = [cases[i] for i in args.cases]

    machine = machine_info()
    print(f"machine: {machine['read_bandwidth_GBs']:.1f} GB/s read, "
          f"{machine['dgemm_GFLOPs']:.1f} GFLOP/s DGEMM, {machine['numba_threads']} threads")
    rows = []
    for shape, rank in cases:
        X, init = make_problem(shape, rank)
        row: dict[str, Any] = {"shape": "x".join(map(str, shape)), "R": rank}
        # Rounds interleave the implementations; each keeps its best round, so a
        # burst of load from other processes on a shared machine hits all alike.
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeat):
            runs.setdefault("tensorpar", []).append(
                run_tensorpar(X, init, rank, args.iters, args.engine))
            if not args.no_peers:
                runs.setdefault("tensorly", []).append(run_tensorly(X, init, rank, args.iters))
                runs.setdefault("pyttb", []).append(run_pyttb(X, init, rank, args.iters))
        best = {name: min(rs, key=lambda r: r["ms"]) for name, rs in runs.items()}
        tp = best.pop("tensorpar")
        tp["sweep_ms"] = min(r["sweep_ms"] for r in runs["tensorpar"])
        row.update({"tensorpar ms": tp["ms"], "sweep ms": tp["sweep_ms"],
                    "engine": tp["engine"], "fit": tp["fit"]})
        peers = best
        if not args.no_peers:
            for name, res in peers.items():
                row[f"{name} ms"] = res["ms"]
                row[f"|dfit| {name}"] = abs(res["fit"] - tp["fit"])
            fastest = min(res["ms"] for res in peers.values())
            row["speedup"] = fastest / tp["ms"]
        row["roof ms"] = roofline_ms(shape, rank, machine, len(shape))
        row["roof tree ms"] = roofline_ms(shape, rank, machine, 2)
        row["x roof"] = tp["ms"] / row["roof ms"]
        row["details"] = {"tensorpar": tp, **peers}
        rows.append(row)
        print(f"  done {row['shape']} R={rank}", flush=True)
        del X

    cols = ["shape", "R", "engine", "tensorpar ms", "sweep ms", "roof ms", "roof tree ms",
            "x roof"]
    if not args.no_peers:
        cols += ["tensorly ms", "pyttb ms", "speedup", "|dfit| tensorly", "|dfit| pyttb"]
    print_table(rows, cols, title=f"CP-ALS, best time per iteration over {args.iters} "
                                  "iterations (speedup = faster peer / tensorpar)")
    extra: dict[str, Any] = {}
    if not args.no_variants:
        extra["linesearch_rows"] = linesearch_rows(args.quick, not args.no_peers)
        extra["missing_rows"] = missing_rows(args.quick, args.iters, not args.no_peers)
    path = write_json("cp_quick" if args.quick else "cp",
                      {"machine": machine, "iters": args.iters, "repeat": args.repeat,
                       "rows": rows, **extra})
    print(f"\nwrote {path}")


LS_FULL = [((100, 100, 100), 10, 0.9), ((40, 40, 40, 40), 6, 0.8), ((150, 120, 100), 16, 0.95)]
LS_QUICK = [((30, 30, 30), 5, 0.9), ((40, 35, 30), 8, 0.95)]


def collinear_problem(shape: tuple[int, ...], rank: int, congruence: float,
                      seed: int = 0) -> np.ndarray:
    """Factors sharing a direction (column congruence ``congruence``) plus 5% noise."""
    rng = np.random.default_rng(seed)
    fs = [np.sqrt(congruence) * rng.standard_normal((s, 1))
          + np.sqrt(1 - congruence) * rng.standard_normal((s, rank)) for s in shape]
    from tensorpar import CPTensor
    X = CPTensor(fs).to_dense()
    return X + 0.05 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(shape)


def _to_target(fits: list[float], times: list[float], target: float) -> tuple[Any, Any]:
    for k, (f, t) in enumerate(zip(fits, times)):
        if f >= target:
            return k + 1, t
    return "-", "-"


def linesearch_rows(quick: bool, peers: bool) -> list[dict[str, Any]]:
    """Iterations and seconds to a fit (see the module docstring)."""
    from tensorpar import CPTensor
    rows = []
    iters = 150 if quick else 500
    for shape, rank, cong in (LS_QUICK if quick else LS_FULL):
        X = collinear_problem(shape, rank, cong)
        init = CPTensor([np.random.default_rng(1).random((s, rank)) for s in shape])
        runs: dict[str, tuple[list[float], list[float]]] = {}
        for name, ls in (("ALS", False), ("ALS+ls", True)):
            _, res = cp_als(X, rank, init=init, max_iter=iters, tol=0, linesearch=ls)
            runs[name] = (res.fits, list(np.cumsum(res.iter_times)))
        if peers:
            runs["tensorly+ls"] = _tensorly_linesearch(X, init, rank, iters)
        target = max(max(f) for f, _ in runs.values()) - 1e-6
        row: dict[str, Any] = {"shape": "x".join(map(str, shape)), "R": rank,
                               "congruence": cong, "target fit": target}
        for name, (fits, times) in runs.items():
            row[f"{name} it"], row[f"{name} s"] = _to_target(fits, times, target)
        rows.append(row)
    cols = ["shape", "R", "congruence", "target fit"] + [
        f"{n} {u}" for n in ("ALS", "ALS+ls", "tensorly+ls") if peers or n != "tensorly+ls"
        for u in ("it", "s")]
    print_table(rows, cols, title=f"CP-ALS line search: iterations / seconds to the target fit "
                                  f"(at most {iters} iterations)")
    return rows


def _tensorly_linesearch(X: np.ndarray, init: Any, rank: int,
                         iters: int) -> tuple[list[float], list[float]]:
    from tensorly.decomposition import parafac
    fits: list[float] = []
    stamps: list[float] = []
    t0 = time.perf_counter()

    def cb(_cp: Any, err: float) -> None:
        stamps.append(time.perf_counter() - t0)
        fits.append(1.0 - float(err))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parafac(X, rank, init=(np.ones(rank), [np.array(f) for f in init.factors]),
                n_iter_max=iters, tol=0, linesearch=True, return_errors=True, callback=cb)
    return fits[1:], stamps[1:]


def missing_rows(quick: bool, iters: int, peers: bool) -> list[dict[str, Any]]:
    """EM, WLS and TensorLy's masked parafac: ms per iteration and observed fit."""
    from tensorpar import CPTensor
    rows = []
    cases = [((30, 30, 30), 5)] if quick else [((100, 100, 100), 10), ((60, 60, 60, 60), 8)]
    for shape, rank in cases:
        X, _ = make_problem(shape, rank)
        init = CPTensor([np.random.default_rng(1).random((s, rank)) for s in shape])
        for frac in (0.3, 0.7):
            W = np.random.default_rng(2).random(shape) > frac
            row: dict[str, Any] = {"shape": "x".join(map(str, shape)), "R": rank,
                                   "missing": frac}
            for method in ("em", "wls"):
                _, res = cp_als(X, rank, init=init, mask=W, missing_method=method,
                                max_iter=iters, tol=0)
                row[f"{method} ms"] = 1e3 * float(np.median(res.iter_times))
                row[f"{method} fit"] = res.fit
            if peers:
                row.update(_tensorly_masked(X, W, init, rank, iters))
            rows.append(row)
    cols = ["shape", "R", "missing", "em ms", "wls ms", "em fit", "wls fit"]
    if peers:
        cols += ["tensorly ms", "tensorly fit"]
    print_table(rows, cols, title=f"CP-ALS with missing entries, {iters} iterations "
                                  "(fit on the observed entries)")
    return rows


def _tensorly_masked(X: np.ndarray, W: np.ndarray, init: Any, rank: int,
                     iters: int) -> dict[str, Any]:
    import tensorly as tl
    from tensorly.decomposition import parafac
    t0 = time.perf_counter()
    cp = parafac(np.where(W, X, 0.0), rank, init=(np.ones(rank), [np.array(f) for f in
                                                                   init.factors]),
                 n_iter_max=iters, tol=0, mask=W.astype(float))
    ms = 1e3 * (time.perf_counter() - t0) / iters
    fit = 1 - np.linalg.norm(W * (X - tl.cp_to_tensor(cp))) / np.linalg.norm(W * X)
    return {"tensorly ms": ms, "tensorly fit": float(fit)}


if __name__ == "__main__":
    main()
