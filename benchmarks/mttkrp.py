"""MTTKRP benchmark: tensorpar engines beside tensorly and pyttb, against this machine's roofline.

For each shape, rank and mode, times ``tensorpar.mttkrp`` (every available
engine), tensorly's ``unfolding_dot_khatri_rao`` and pyttb's
``tensor.mttkrp`` on the same values, and reports milliseconds, multiples of
the roofline ``max(itemsize * N / bandwidth, 2 N R / DGEMM rate)`` and the
speed-up over the faster peer. It also times the all-modes sweep
(``mttkrp_sweep``, dimension tree) against N separate MTTKRPs.

Bandwidth and DGEMM rate are measured in the same run: before and after the
timings, and again at the start of every round of timings; the roofline uses
the best rates seen (the lowest, most demanding roofline). The timings are
taken in interleaved rounds, the best of each job kept. Peers are optional (``pip install 'tensorpar[bench]'``).

    python benchmarks/mttkrp.py            # 300^3 and 60^4, R in {8, 16, 32, 64}
    python benchmarks/mttkrp.py --quick    # 300^3 and 60^4 at R in {16, 32}, fewer repeats
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info, print_table, write_json  # noqa: E402

import tensorpar as tp  # noqa: E402
from tensorpar._mttkrp_plan import choose_plan  # noqa: E402
from tensorpar.mttkrp import mttkrp_sweep  # noqa: E402


def _engines(skip_numpy: bool) -> list[str]:
    engines = ["numba"]
    if not skip_numpy:
        engines.append("numpy")
    return engines


def _peers(X: np.ndarray) -> dict[str, Callable[[list, int], Any]]:
    """Peer MTTKRPs on the values of X (built outside the timed region)."""
    peers: dict[str, Callable[[list, int], Any]] = {}
    if importlib.util.find_spec("tensorly") is not None:
        from tensorly.tenalg import unfolding_dot_khatri_rao

        peers["tensorly"] = lambda fs, n: unfolding_dot_khatri_rao(X, (None, fs), n)
    if importlib.util.find_spec("pyttb") is not None:
        import pyttb

        with warnings.catch_warnings():  # pyttb stores F order: one copy, here, untimed
            warnings.simplefilter("ignore")
            Xt = pyttb.tensor(X, copy=False)
        peers["pyttb"] = lambda fs, n: Xt.mttkrp(fs, n)
    return peers


def _check(M: Any, ref: np.ndarray, who: str) -> None:
    err = np.abs(np.asarray(M) - ref).max() / np.abs(ref).max()
    if err > 1e-10:
        raise RuntimeError(f"{who} disagrees with the reference: relative error {err:.2e}")


def _time_once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Probe:
    """Bandwidth and DGEMM rate, re-measured at the start of every round.

    The roofline uses the best rates seen in the whole run, so load from
    other processes can only make the reported multiples of it worse.
    """

    def __init__(self) -> None:
        from numba import njit, prange

        @njit(parallel=True, cache=False)
        def _sum(x):  # pragma: no cover - compiled
            s = 0.0
            for i in prange(x.size):
                s += x[i]
            return s

        self._sum = _sum
        self.a = np.ones((256 << 20) // 8)
        rng = np.random.default_rng(1)
        self.m = rng.standard_normal((2048, 2048))
        self.c = np.empty_like(self.m)
        self._sum(self.a)
        self.bw = 0.0
        self.flops = 0.0

    def measure(self) -> None:
        self.bw = max(self.bw, self.a.nbytes / _time_once(lambda: self._sum(self.a)))
        # let numba's OpenMP workers stop spinning before BLAS threads run again
        time.sleep(0.05)
        t = _time_once(lambda: np.matmul(self.m, self.m, out=self.c))
        self.flops = max(self.flops, 2.0 * 2048**3 / t)


def run_rounds(jobs: list[tuple[dict, str, Callable[[], Any], int]], probe: Probe) -> None:
    """Time every job in interleaved rounds and keep each one's best (ms) in its row.

    Interleaving spreads each job's repetitions over the whole run, so a burst
    of load from other processes on a shared machine spoils one sample of
    many jobs rather than every sample of one job.
    """
    for row, key, fn, _ in jobs:  # warm-up (numba compile, caches)
        fn()
    for rnd in range(max(reps for *_, reps in jobs)):
        probe.measure()
        for row, key, fn, reps in jobs:
            if rnd < reps:
                row[key] = min(row.get(key, float("inf")), 1e3 * _time_once(fn))


def run_shape(shape: tuple[int, ...], ranks: list[int], args: argparse.Namespace,
              rows: list[dict], sweeps: list[dict], probe: Probe) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape)
    peers = {} if args.no_peers else _peers(X)
    slow = max(1, args.repeat // 3)
    jobs: list[tuple[dict, str, Callable[[], Any], int]] = []
    new_rows: list[dict] = []
    for R in ranks:
        fs = [rng.standard_normal((s, R)) for s in shape]
        for n in range(len(shape)):
            ref = tp.mttkrp_reference(X, fs, n)
            p = choose_plan(shape, n)
            row: dict[str, Any] = {
                "shape": "x".join(map(str, shape)), "R": R, "mode": n,
                "plan": f"{'1' if p.one_step else '2'}-step {'head' if p.head else 'tail'} K={p.K}"}
            for eng in _engines(args.skip_numpy):
                fn = partial(tp.mttkrp, X, fs, n, engine=eng)
                _check(fn(), ref, eng)
                jobs.append((row, f"{eng}_ms", fn, args.repeat if eng == "numba" else slow))
            for name, peer in peers.items():
                fn = partial(peer, fs, n)
                _check(fn(), ref, name)
                jobs.append((row, f"{name}_ms", fn, slow))
            new_rows.append(row)
        srow = {"shape": "x".join(map(str, shape)), "R": R}
        jobs.append((srow, "sweep_ms", partial(_sweep, X, fs), args.repeat))
        jobs.append((srow, "separate_ms", partial(_loop, X, fs), args.repeat))
        sweeps.append(srow)
    run_rounds(jobs, probe)
    rows.extend(new_rows)


def _sweep(X: np.ndarray, fs: list) -> None:
    mttkrp_sweep(X, list(fs), lambda k, M: fs[k], engine="numba")


def _loop(X: np.ndarray, fs: list) -> None:
    for k in range(X.ndim):
        tp.mttkrp(X, fs, k, engine="numba")


def annotate(rows: list[dict], sweeps: list[dict], bw: float, flops: float) -> None:
    """Add rooflines, multiples of the roofline and peer ratios to the rows."""
    for row in rows + sweeps:
        N = int(np.prod([int(s) for s in row["shape"].split("x")]))
        row["roof_ms"] = 1e3 * max(8.0 * N / bw, 2.0 * N * row["R"] / flops)
    for row in rows:
        row["numba_x_roof"] = row["numba_ms"] / row["roof_ms"]
        peer = [row[k] for k in ("tensorly_ms", "pyttb_ms") if k in row]
        if peer:
            row["best_peer_x_roof"] = min(peer) / row["roof_ms"]
            row["speedup_vs_peer"] = min(peer) / row["numba_ms"]
    for s in sweeps:
        s["sweep_vs_separate"] = s["sweep_ms"] / s["separate_ms"]
        s["sweep_x_one_roof"] = s["sweep_ms"] / s["roof_ms"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="R in {16, 32}, fewer repeats")
    ap.add_argument("--ranks", type=int, nargs="+", default=None, help="ranks to time")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions (best is kept)")
    ap.add_argument("--no-peers", action="store_true", help="skip tensorly and pyttb")
    ap.add_argument("--skip-numpy", action="store_true", help="skip the numpy reference engine")
    ap.add_argument("--name", default="mttkrp", help="JSON file name under benchmarks/results")
    args = ap.parse_args(argv)
    ranks = args.ranks or ([16, 32] if args.quick else [8, 16, 32, 64])
    if args.repeat is None:
        args.repeat = 4 if args.quick else 9
    if args.quick:
        args.skip_numpy = True

    before = machine_info()
    probe = Probe()
    rows: list[dict] = []
    sweeps: list[dict] = []
    for shape in [(300, 300, 300), (60, 60, 60, 60)]:
        run_shape(shape, ranks, args, rows, sweeps, probe)
    after = machine_info()
    del probe.a, probe.m, probe.c
    bw = max(1e9 * before["read_bandwidth_GBs"], 1e9 * after["read_bandwidth_GBs"], probe.bw)
    flops = max(1e9 * before["dgemm_GFLOPs"], 1e9 * after["dgemm_GFLOPs"], probe.flops)
    annotate(rows, sweeps, bw, flops)

    print(f"read bandwidth {before['read_bandwidth_GBs']:.1f} / {after['read_bandwidth_GBs']:.1f}"
          f" GB/s, DGEMM {before['dgemm_GFLOPs']:.0f} / {after['dgemm_GFLOPs']:.0f} GFLOP/s"
          f" (before / after); roofline from the best of every round: {bw / 1e9:.1f} GB/s,"
          f" {flops / 1e9:.0f} GFLOP/s; {before['numba_threads']} numba threads")
    cols = ["shape", "R", "mode", "plan", "roof_ms", "numba_ms", "numba_x_roof"]
    cols += [c for c in ("numpy_ms", "tensorly_ms", "pyttb_ms", "best_peer_x_roof",
                         "speedup_vs_peer") if any(c in r for r in rows)]
    print_table(rows, cols, "MTTKRP per mode (ms; x_roof = multiple of the roofline)")
    print_table(sweeps, ["shape", "R", "roof_ms", "sweep_ms", "separate_ms", "sweep_vs_separate",
                         "sweep_x_one_roof"],
                "All-modes sweep (dimension tree) vs N separate MTTKRPs (numba)")
    path = write_json(args.name, {"machine_before": before, "machine_after": after,
                                  "roofline_bandwidth_GBs": bw / 1e9,
                                  "roofline_dgemm_GFLOPs": flops / 1e9,
                                  "modes": rows, "sweeps": sweeps})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
