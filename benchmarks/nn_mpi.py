"""Parallel transformer-block layouts: memory per rank, 1 -> 2 rank scaling, an alpha-beta model.

Usage::

    python benchmarks/nn_mpi.py            # h = 1024, s = 512, b = 8, 16 heads (issue 12)
    python benchmarks/nn_mpi.py --quick    # h = 128, s = 64, b = 4, 4 heads

Results go to ``benchmarks/results/nn_mpi.json`` (``nn_mpi_quick.json``).
The script starts ``mpiexec -n P`` workers itself (one BLAS thread per rank),
float64 throughout. Three parts:

1. **Memory per rank** of one pre-LN transformer block (``F = 4 h``) for
   every layout at ``P = 1, 2, 4`` (SUMMA at square ``P`` only): parameters
   and saved activations from the ledger
   (:func:`tensorpar.nn.parallel.memory_ledger`, after one forward) beside
   the formulas of :func:`formulas`.
2. **Strong scaling 1 -> 2 ranks** of one training step (forward + backward)
   of that block for 1D (Megatron), sequence parallel (Megatron-SP), rotated
   (RTP) and data parallel (the serial block on ``b / P`` sequences and one
   all-reduce of the gradients), with the counted bytes per step.
3. **An alpha-beta model** per layout: ``alpha`` and ``beta`` fitted here to
   timed ``Sendrecv`` ring steps at ``P = 2``, the compute rate ``gamma`` from
   the measured one-rank step, then extrapolated to ``P = 8 .. 1024`` and
   compared with the papers' figures (:data:`PAPERS`).
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

PAPERS = {
    "megatron": "Megatron-LM: 76% weak-scaling efficiency on 512 GPUs (8-way tensor x 64-way data)",
    "optimus": "Optimus (2-D SUMMA): 1.48x the speed of Megatron 1D on 64 GPUs",
    "rtp": "RTP: 99% memory-scaling efficiency",
    "tsp": "TSP: 38.8 GB vs 70.0 GB per GPU against tensor parallelism at 128K context",
}
LAYOUTS = ("data", "1d", "sp", "rotated", "tsp", "summa")


# --- formulas (elements; times 8 bytes) ------------------------------------------------------
def formulas(layout: str, P: int, h: int, s: int, b: int, heads: int) -> dict[str, float]:
    """Parameter and saved-activation elements per rank of one block (float64, no dropout).

    Serial block, ``N = b s`` tokens, ``F = 4 h``: parameters ``4 h^2 + 2 h F``
    (matrices) ``+ 6 h + F`` (biases) ``+ 4 h`` (LayerNorms); activations
    ``2 (N h + N)`` (LayerNorms) ``+ 5 N h + b H s^2`` (attention: input,
    q/k/v, context; probabilities) ``+ N h + 2 N F`` (feed-forward).
    """
    F = 4 * h
    mats, biases, norms = 4 * h * h + 2 * h * F, 5 * h + F, 4 * h
    N = b * s
    ln, att_x, att_in, probs, ff_x, ff_h = 2 * (N * h + N), N * h, 4 * N * h, b * heads * s * s, \
        N * h, 2 * N * F
    if layout == "data":
        return {"params": mats + biases + norms,
                "acts": (ln + att_x + att_in + ff_x + ff_h) / P + probs / P}
    if layout in ("1d", "sp"):
        sp = layout == "sp"
        # heads and hidden units split; LayerNorms, residuals and output biases replicated (1d)
        # or on the sequence shard (sp), where the split layers' inputs are the gathered tokens
        return {"params": (mats + 3 * h + F) / P + 2 * h + norms,
                "acts": (ln / P if sp else ln) + att_x + ff_x + (att_in + probs + ff_h) / P}
    if layout in ("rotated", "tsp"):
        extra = N * h / P if layout == "tsp" else 0.0  # the attention output kept for the ring
        return {"params": (mats + biases) / P + norms,
                "acts": (ln + att_x + att_in + ff_x + ff_h + probs) / P + extra}
    # summa: every SUMMA product caches its input block (1/q^2); the LayerNorms, q/k/v,
    # probabilities and the activation's input are whole rows of this grid row's sequences (1/q)
    q = math.isqrt(P)
    return {"params": (mats + biases) / P + norms,
            "acts": (ln + 3 * N * h + probs + N * F) / q + (3 * N * h + N * F) / P}


# --- worker (runs under mpiexec) ---------------------------------------------------------------
def build(layout: str, comm: Any, h: int, heads: int, seed: int = 0) -> Any:
    from tensorpar.nn import TransformerBlock
    from tensorpar.nn.parallel import (
        ParallelTransformerBlock,
        RotatedLinear,
        SummaLinear,
        TSPTransformerBlock,
        summa_grid,
    )

    serial_kw: dict[str, Any] = {"causal": True, "seed": seed}
    if layout == "data":
        return TransformerBlock(h, heads, 4 * h, **serial_kw)
    if layout in ("1d", "sp"):
        return ParallelTransformerBlock(h, heads, 4 * h, comm=comm, sequence_parallel=layout == "sp",
                                        **serial_kw)
    if layout == "tsp":
        return TSPTransformerBlock(h, heads, 4 * h, comm=comm, **serial_kw)
    rng = np.random.default_rng(seed)
    grid = summa_grid(comm) if layout == "summa" else None

    def make(i: int, o: int, bias: bool) -> Any:
        if grid is not None:
            return SummaLinear(i, o, bias, grid=grid, seed=int(rng.integers(2 ** 31)))
        return RotatedLinear(i, o, bias, comm=comm, seed=int(rng.integers(2 ** 31)))
    if grid is None:
        return TransformerBlock(h, heads, 4 * h, linear=make, **serial_kw)
    # SUMMA: the block's linear maps are SUMMA products on feature blocks (activations of a grid
    # row gathered between them, as in examples/tp_transformer.py)
    sys.path.insert(0, str(HERE.parent / "examples"))
    from tp_transformer import SummaRowLinear  # type: ignore[import-not-found]

    return TransformerBlock(h, heads, 4 * h, linear=lambda i, o, bias: SummaRowLinear(make(i, o, bias)),
                            **serial_kw)


def local_input(layout: str, comm: Any, b: int, s: int, h: int) -> np.ndarray:
    from tensorpar.distributed.grid import block_bounds
    from tensorpar.nn.parallel import tsp_positions

    P, r = comm.Get_size(), comm.Get_rank()
    x = np.random.default_rng(1).standard_normal((b, s, h))
    if layout in ("data", "rotated"):
        return x[slice(*block_bounds(b, P, r))]
    if layout == "sp":
        return x[:, r * s // P:(r + 1) * s // P]
    if layout == "tsp":
        return x[:, tsp_positions(s, P, r, causal=True)]
    if layout == "summa":
        q = math.isqrt(P)
        return x[slice(*block_bounds(b, q, r // q))]
    return x


def worker(args: argparse.Namespace) -> None:
    from tensorpar.distributed import comm as C
    from tensorpar.nn.parallel import memory_ledger

    comm = C.resolve_comm()
    P = comm.Get_size()
    out: dict[str, Any] = {}
    for layout in args.layouts.split(","):
        if layout == "summa" and math.isqrt(P) ** 2 != P:
            continue
        blk = build(layout, comm, args.h, args.heads)
        x = local_input(layout, comm, args.b, args.s, args.h)
        y = blk(x)
        led = memory_ledger(blk)
        rec: dict[str, Any] = {"params": led.parameters, "acts": led.activations}
        g = np.ones_like(y)
        if args.time and layout in ("1d", "sp", "rotated", "data"):  # the scaling table's
            with C.count_traffic() as c:
                train_step(blk, x, g, layout, comm)
            rec["bytes"], rec["calls"] = c.total_bytes, c.total_calls
            times = []
            for _ in range(args.repeats):
                comm.Barrier()
                t0 = time.perf_counter()
                train_step(blk, x, g, layout, comm)
                times.append(comm.allreduce(time.perf_counter() - t0, op=_max()))
            rec["t"] = min(times)
        out[layout] = rec
    if args.time and P == 2:
        out["pingpong"] = {"samples": fit_samples(comm)}
    if comm.Get_rank() == 0:
        Path(args.json).write_text(json.dumps(out))


def train_step(blk: Any, x: np.ndarray, g: np.ndarray, layout: str, comm: Any) -> None:
    """Forward and backward of one block; data parallel adds one all-reduce of every gradient."""
    from tensorpar.distributed import comm as C

    blk.zero_grad()
    blk(x)
    blk.backward(g)
    if layout == "data":  # one bucket
        C.allreduce(comm, np.concatenate([p.grad.ravel() for p in blk.parameters()]))


def _max() -> Any:
    from mpi4py import MPI

    return MPI.MAX


def fit_samples(comm: Any) -> list[tuple[int, float]]:
    """Timed ring steps (``Sendrecv``) of 1 KiB .. 8 MiB: the samples of the alpha-beta fit."""
    from tensorpar.distributed.comm import ring_shift

    samples = []
    for e in range(7, 21, 2):
        buf = np.ones(2 ** e)
        best = float("inf")
        for _ in range(5):
            comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(4):
                ring_shift(comm, buf)
            best = min(best, (time.perf_counter() - t0) / 4)
        samples.append((buf.nbytes, best))
    return samples


# --- driver -------------------------------------------------------------------------------------
def launch(args: argparse.Namespace, nprocs: int, layouts: str, timed: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", str(nprocs),
               sys.executable, __file__, "--worker", "--json", path, "--h", str(args.h),
               "--s", str(args.s), "--b", str(args.b), "--heads", str(args.heads),
               "--layouts", layouts, "--repeats", str(args.repeats)] + (["--time"] if timed else [])
        subprocess.run(cmd, check=True, env=env, timeout=3600)
        return dict(json.loads(Path(path).read_text()))


def step_comm(layout: str, P: int, h: int, s: int, b: int, w: int = 8) -> tuple[float, float]:
    """``(messages, bytes)`` per rank of one training step, bandwidth-optimal ring collectives."""
    F, n = 4 * h, b * s * h * w
    weights = (4 * h * h + 2 * h * F + 5 * h + F) * w
    if P == 1:
        return 0.0, 0.0
    if layout == "1d":    # two all-reduces of b s h forward, two backward
        return 4 * 2 * (P - 1), 4 * 2 * (P - 1) / P * n
    if layout == "sp":    # each all-reduce -> reduce-scatter + all-gather (same wire bytes)
        return 8 * (P - 1), 8 * (P - 1) / P * n
    if layout == "data":  # one all-reduce of the gradients
        return 2 * (P - 1), 2 * (P - 1) / P * (weights + 4 * h * w)
    if layout in ("rotated", "tsp"):  # 4 maps: P-1 steps forward (1 shard), backward (2 shards)
        msgs, byts = 8 * (P - 1), 3 * (P - 1) / P * weights
        if layout == "tsp":  # K/V ring: forward 2 blocks, backward 4 blocks + 2
            byts += ((P - 1) * 6 + 2) * n / P
            msgs += 2 * (P - 1) + 1
        return msgs, byts
    q = math.isqrt(P)     # summa, per map: fwd q row + q col bcasts, bwd twice that + 2 q reduces
    per_map = [(h, 3 * h), (h, h), (h, F), (F, h)]
    byts = sum(5 * q * (b * s * i / (q * q) + i * o / (q * q)) * w for i, o in per_map)
    return 4 * 5 * q * math.log2(max(q, 2)), byts


def counted_bytes(layout: str, P: int, h: int, s: int, b: int, w: int = 8) -> float:
    """Payload bytes per rank of one step as :func:`tensorpar.distributed.comm.count_traffic` counts.

    (An all-reduce counts its array, a reduce-scatter its input, an all-gather its output.)
    """
    F, n = 4 * h, b * s * h * w
    weights = (4 * h * h + 2 * h * F + 5 * h + F) * w
    if P == 1:
        return 0.0
    return {"1d": 4 * n, "sp": 8 * n + 4 * h * w, "data": weights + 4 * h * w,
            "rotated": 3 * (P - 1) / P * weights,
            "tsp": 3 * (P - 1) / P * weights + ((P - 1) * 6 + 2) * n / P + 4 * h * w}[layout]


def model_time(layout: str, P: int, h: int, s: int, b: int, t1: float, alpha: float,
               beta: float) -> float:
    msgs, byts = step_comm(layout, P, h, s, b)
    return t1 / P + msgs * alpha + byts * beta


def fit_alpha_beta(samples: list[tuple[int, float]]) -> tuple[float, float]:
    n = np.array([float(s[0]) for s in samples])
    t = np.array([s[1] for s in samples])
    A = np.stack([np.ones_like(n), n], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(A, t, rcond=None)
    return max(float(alpha), 1e-9), max(float(beta), 1e-13)


def paper_comparison(runs: dict[int, dict[str, Any]], alpha: float, beta: float,
                     gamma: float) -> list[dict[str, Any]]:
    """The model beside each paper's figure, with the reason where they disagree."""
    rows = []
    # Megatron: 8.3B model (h 3072, s 1024, 8 sequences per replica), 8-way 1D x 64-way data,
    # weak scaling: per-GPU compute fixed; efficiency = compute / (compute + communication)
    h, s, b = 3072, 1024, 8
    comp = 72 * 3 * 2 * b * s * (12 * h * h + 2 * s * h) / 8 / gamma
    m1, b1 = step_comm("1d", 8, h, s, b)
    md, bd = step_comm("data", 64, h, s, b)
    comm_t = 72 * (m1 * alpha + b1 * beta + (md * alpha + bd * beta) / 8)
    rows.append({"paper": PAPERS["megatron"], "model": f"{comp / (comp + comm_t):.0%}",
                 "why": f"gamma here is {gamma / 1e9:.3g} GFLOP/s, about {125e12 / gamma:.0f}x "
                        f"below a V100's 125 TFLOP/s, while 1/beta = {1 / beta / 1e9:.3g} GB/s is "
                        f"only about {150e9 * beta:.1f}x below NVLink's 150 GB/s, so communication "
                        "looks nearly free here; the paper's loss is fast GPU compute waiting on "
                        "the network (and overheads the model leaves out)"})
    # Optimus: 64 GPUs, h 4096 (their largest), s 512, b 64; 1D vs SUMMA per step
    h, s, b, P = 4096, 512, 64, 64
    t1 = 3 * 2 * b * s * (12 * h * h + 2 * s * h) / gamma
    ratio = model_time("1d", P, h, s, b, t1, alpha, beta) / model_time("summa", P, h, s, b, t1,
                                                                        alpha, beta)
    rows.append({"paper": PAPERS["optimus"], "model": f"{ratio:.2f}x",
                 "why": "with compute this slow both layouts are compute-bound at 64 ranks; "
                        "SUMMA's advantage (bytes ~ 1/sqrt(P) instead of constant) only shows "
                        "when communication dominates, as on GPUs"})
    # RTP: memory-scaling efficiency M(1) / (P M(P)) of parameters + gradients + Adam + activations
    h, s, b = 1024, 512, 8
    effs = []
    for P in (8, 64, 1024):
        f1, fp = formulas("rotated", 1, h, s, 128, 16), formulas("rotated", P, h, s, 128, 16)
        m1_ = 4 * f1["params"] + f1["acts"]
        mp = 4 * fp["params"] + fp["acts"] + 3 * (4 * h * h + 2 * h * 4 * h) / 4 / P
        effs.append(f"P={P}: {m1_ / (P * mp):.1%}")
    rows.append({"paper": PAPERS["rtp"], "model": ", ".join(effs),
                 "why": "replicated LayerNorms and the ring's two transient shards per rank cost "
                        "little; the model agrees until P approaches h (the LayerNorms stop "
                        "shrinking)"})
    # TSP vs TP (Megatron 1D, no SP) at 128K context: 7B-like (h 4096, 32 heads, 32 layers), P 8,
    # fp16 weights and activations, with and without stored attention probabilities
    h, s, b, heads, P, L = 4096, 131072, 1, 32, 8, 32
    out = []
    for flash in (False, True):
        mem = {}
        for lay in ("tsp", "1d"):
            f = formulas(lay, P, h, s, b, heads)
            probs = b * heads * s * s / P
            acts = f["acts"] - (probs if flash else 0.0)
            mem[lay] = L * (8 * f["params"] + 2 * acts) / 1e9  # fp16 + Adam fp32 states
        out.append(f"{'no probs' if flash else 'probs stored'}: TSP {mem['tsp']:.0f} GB vs "
                   f"TP {mem['1d']:.0f} GB")
    rows.append({"paper": PAPERS["tsp"], "model": "; ".join(out),
                 "why": "our attention stores the s x s probabilities (no flash attention), which "
                        "dwarf everything at 128K; without them TSP keeps 1/P of every "
                        "activation where TP replicates the LayerNorm/residual ones, the paper's "
                        "effect, but our ratio depends on the assumed model and batch"})
    return rows


def report(args: argparse.Namespace) -> None:
    from _machine import machine_info, print_table, write_json

    info = machine_info()
    mem_rows: list[dict[str, Any]] = []
    runs: dict[int, dict[str, Any]] = {}
    for P in (1, 2, 4):
        runs[P] = launch(args, P, ",".join(LAYOUTS), timed=P <= 2)
        for lay in LAYOUTS:
            if lay not in runs[P]:
                mem_rows.append({"layout": lay, "P": P, "params_MiB": None, "note": "needs q x q"})
                continue
            f = formulas(lay, P, args.h, args.s, args.b, args.heads)
            r = runs[P][lay]
            mem_rows.append({"layout": lay, "P": P, "params_MiB": r["params"] / 2 ** 20,
                             "formula_MiB": 8 * f["params"] / 2 ** 20,
                             "acts_MiB": r["acts"] / 2 ** 20,
                             "acts_formula_MiB": 8 * f["acts"] / 2 ** 20})
    print_table(mem_rows, ["layout", "P", "params_MiB", "formula_MiB", "acts_MiB",
                           "acts_formula_MiB", "note"],
                title=f"memory per rank of one block, ledger vs formula (h = {args.h}, s = {args.s}, "
                      f"b = {args.b}, {args.heads} heads, float64)")
    scale_rows = []
    for lay in ("1d", "sp", "rotated", "data"):
        t1, t2 = runs[1][lay]["t"], runs[2][lay]["t"]
        scale_rows.append({"layout": lay, "t1_s": t1, "t2_s": t2, "speedup": t1 / t2,
                           "bytes_per_step": runs[2][lay]["bytes"],
                           "formula_bytes": counted_bytes(lay, 2, args.h, args.s, args.b),
                           "wire_bytes": step_comm(lay, 2, args.h, args.s, args.b)[1]})
    print_table(scale_rows, ["layout", "t1_s", "t2_s", "speedup", "bytes_per_step",
                             "formula_bytes", "wire_bytes"],
                title=f"strong scaling 1 -> 2 ranks, one training step (target >= 1.6x for the "
                      f"best; {info['cpus']} cpus). bytes_per_step: counted payload per rank; "
                      "formula_bytes: its formula; wire_bytes: sent by ring algorithms")
    alpha, beta = fit_alpha_beta(runs[2]["pingpong"]["samples"])
    t1 = runs[1]["1d"]["t"]
    F = 4 * args.h
    gamma = 3 * 2 * args.b * args.s * (4 * args.h ** 2 + 2 * args.h * F + 2 * args.s * args.h) / t1
    pred = []
    for P in (8, 64, 256, 1024):
        row: dict[str, Any] = {"P": P}
        for lay in ("data", "1d", "sp", "rotated", "tsp", "summa"):
            if lay == "summa" and math.isqrt(P) ** 2 != P:
                continue
            row[lay] = t1 / model_time(lay, P, args.h, args.s, args.b, t1, alpha, beta) / P
        pred.append(row)
    print_table(pred, ["P", "data", "1d", "sp", "rotated", "tsp", "summa"],
                title=f"alpha-beta model, strong-scaling efficiency of one step (alpha = {alpha:.2g} s, "
                      f"beta = {beta:.2g} s/B fitted to ring steps at P = 2; gamma = "
                      f"{gamma / 1e9:.2g} GFLOP/s from the one-rank step)")
    papers = paper_comparison(runs, alpha, beta, gamma)
    print("\nthe model beside the papers' figures:")
    for p in papers:
        print(f"- {p['paper']}\n    model: {p['model']}\n    where it disagrees and why: {p['why']}")
    name = "nn_mpi_quick" if args.quick else "nn_mpi"
    path = write_json(name, {"machine": info, "h": args.h, "s": args.s, "b": args.b,
                             "heads": args.heads, "runs": runs, "memory": mem_rows,
                             "scaling": scale_rows, "alpha": alpha, "beta": beta, "gamma": gamma,
                             "model": pred, "papers": papers})
    print(f"\nwrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--time", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", default="", help=argparse.SUPPRESS)
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help=argparse.SUPPRESS)
    ap.add_argument("--h", type=int, default=1024)
    ap.add_argument("--s", type=int, default=512)
    ap.add_argument("--b", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.quick and not args.worker:
        args.h, args.s, args.b, args.heads, args.repeats = 128, 64, 4, 4, 2
    if args.worker:
        worker(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
