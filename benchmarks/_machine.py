"""Shared benchmark utilities: this machine's roofline, timing, tables, JSON output.

Every benchmark measures the machine it runs on in the same run (read
bandwidth and DGEMM rate) and reports times as multiples of the roofline and
as ratios to the peers, because absolute times on a shared machine are noise.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1, max_seconds: float = 20.0) -> float:
    """Best wall time (seconds) of ``repeat`` calls of ``fn`` after ``warmup`` calls.

    Stops early once ``max_seconds`` have been spent (at least one timed call).
    """
    for _ in range(warmup):
        fn()
    best = float("inf")
    spent = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        if spent > max_seconds:
            break
    return best


def read_bandwidth(nbytes: int = 512 * 2**20, repeat: int = 7) -> float:
    """Sustained read bandwidth in bytes/s: best time of a reduction over ``nbytes``.

    Uses numpy's sum over a float64 array far larger than the caches, with the
    same thread count the kernels use (numba's), split across threads.
    """
    from numba import njit, prange

    a = np.ones(nbytes // 8)

    @njit(parallel=True, cache=False)
    def _sum(x):
        s = 0.0
        for i in prange(x.size):
            s += x[i]
        return s

    _sum(a)
    t = best_of(lambda: _sum(a), repeat=repeat)
    return a.nbytes / t


def dgemm_rate(n: int = 2048, repeat: int = 5, dtype: Any = np.float64) -> float:
    """DGEMM rate in flop/s: best time of an n x n x n matrix product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty_like(a)
    t = best_of(lambda: np.matmul(a, b, out=c), repeat=repeat)
    return 2.0 * n**3 / t


def machine_info() -> dict[str, Any]:
    """Bandwidth, DGEMM rate and thread settings of this machine, measured now."""
    from numba import get_num_threads

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "numba_threads": get_num_threads(),
        "read_bandwidth_GBs": read_bandwidth() / 1e9,
        "dgemm_GFLOPs": dgemm_rate() / 1e9,
    }


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print ``rows`` as a fixed-width table with the given columns."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``benchmarks/results/<name>.json`` and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path
