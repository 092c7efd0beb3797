"""The part-1 transformer language model trained under MPI with a tensor-parallel layout.

``mpiexec -n 2 python examples/tp_transformer.py`` trains the causal
character-level model of ``examples/transformer_lm.py`` (its data
generator is reused: reversal of a digit string, loss on the answer only)
with one of four layouts of the transformer blocks:

``1d`` (default)
    Megatron 1D tensor parallelism plus sequence parallelism
    (:class:`~tensorpar.nn.parallel.ParallelTransformerBlock` with
    ``sequence_parallel=True``): heads and hidden units split over the ranks,
    each rank keeps a contiguous ``1/P`` of the tokens between the blocks.
``rotated``
    RTP: every linear map a :class:`~tensorpar.nn.parallel.RotatedLinear`
    (``linear=`` factory of the serial block); each rank trains on its own
    share of the batch while the weight shards travel around a ring.
``tsp``
    folded tensor + sequence parallelism
    (:class:`~tensorpar.nn.parallel.TSPTransformerBlock`): ``1/P`` of the
    weights and a zigzag ``1/P`` of the tokens per rank.
``summa``
    2-D SUMMA on a ``q x q`` grid (``q^2`` ranks): every linear map a
    :class:`~tensorpar.nn.parallel.SummaLinear`; grid row ``i`` trains on
    share ``i`` of the batch. Between the linear maps the activations of a
    grid row are all-gathered along the row (:class:`SummaRowLinear`), so
    only the weights (not the LayerNorm/attention activations) are ``1/q^2``
    here.

The embeddings, the final LayerNorm and the head are replicated; their
gradients (and, for ``rotated`` and ``summa``, the blocks' LayerNorm
gradients) are summed over the ranks that hold different data. The
loss gradient is scaled by this rank's share of the answer tokens, so every
layout computes the gradient of the global mean loss, as serial training
would. Rank 0 prints one line per epoch and the final held-out exact match
(chance ``10**-digits``), then every rank's memory ledger.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_lm import IGNORE, VOCAB, make_data  # noqa: E402  (nn1's example: the data)

from tensorpar.distributed.comm import agree, allgatherv, allreduce, resolve_comm  # noqa: E402
from tensorpar.distributed.grid import block_bounds  # noqa: E402
from tensorpar.nn import (  # noqa: E402
    AdamW,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    Parameter,
    Sequential,
    SoftmaxCrossEntropy,
    TransformerBlock,
    WarmupCosine,
)
from tensorpar.nn.parallel import (  # noqa: E402
    RotatedLinear,
    SummaLinear,
    TSPTransformerBlock,
    format_ledgers,
    gather_ledgers,
    memory_ledger,
    summa_grid,
    tsp_positions,
)

LAYOUTS = ("1d", "rotated", "tsp", "summa")


class SummaRowLinear(Module):
    """A :class:`SummaLinear` taking and returning whole feature rows, replicated along a grid row.

    Forward cuts this rank's feature block of the input, runs the SUMMA product
    and all-gathers the output blocks along the grid row; backward does the
    same with the gradient. This lets the serial block (LayerNorm, attention)
    run unchanged between SUMMA products.
    """

    def __init__(self, inner: SummaLinear) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Any) -> Any:
        k = self.inner.k
        y = self.inner(x[..., self.inner.j * k:(self.inner.j + 1) * k])
        return allgatherv(self.inner.row_comm, y, [self.inner.m] * self.inner.q, axis=-1)

    def backward(self, grad_out: Any) -> Any:
        m = self.inner.m
        dx = self.inner.backward(grad_out[..., self.inner.j * m:(self.inner.j + 1) * m])
        return allgatherv(self.inner.row_comm, dx, [self.inner.k] * self.inner.q, axis=-1)


class Layout:
    """Which rows and tokens this rank trains on, its blocks, and the parameters to sum."""

    def __init__(self, name: str, comm: Any) -> None:
        self.name, self.comm = name, comm
        self.P, self.rank = comm.Get_size(), comm.Get_rank()
        self.grid = summa_grid(comm) if name == "summa" else None
        # the ranks holding different data (gradients of replicated parameters are summed there)
        self.data_comm = self.grid.slice_comm(1) if self.grid is not None else comm

    def rows(self, n: int) -> slice:
        if self.name == "rotated":
            return slice(*block_bounds(n, self.P, self.rank))
        if self.grid is not None:
            return slice(*block_bounds(n, self.grid.dims[0], self.grid.coords[0]))
        return slice(0, n)

    def positions(self, seq_len: int) -> np.ndarray:
        if self.name == "1d":
            return tsp_positions(seq_len, self.P, self.rank, causal=False)  # contiguous blocks
        if self.name == "tsp":
            return tsp_positions(seq_len, self.P, self.rank, causal=True)   # zigzag
        return np.arange(seq_len)

    def block(self, dim: int, heads: int, seed: int, dtype: Any) -> Module:
        serial_args = dict(causal=True, dtype=dtype)
        if self.name == "1d":
            from tensorpar.nn.parallel import ParallelTransformerBlock  # par1's Megatron block

            serial = TransformerBlock(dim, heads, 4 * dim, seed=seed, **serial_args)
            return ParallelTransformerBlock.from_serial(serial, self.comm, sequence_parallel=True)
        if self.name == "tsp":
            return TSPTransformerBlock(dim, heads, 4 * dim, seed=seed, comm=self.comm, **serial_args)
        rng = np.random.default_rng(seed)  # equal on every rank: equal seeds for every shard

        def make(i: int, o: int, b: bool) -> Module:
            s = int(rng.integers(2 ** 31))
            if self.grid is not None:
                return SummaRowLinear(SummaLinear(i, o, b, grid=self.grid, dtype=dtype, seed=s))
            return RotatedLinear(i, o, b, comm=self.comm, dtype=dtype, seed=s)
        return TransformerBlock(dim, heads, 4 * dim, linear=make, seed=seed, **serial_args)

    def replicated(self, model: ParallelLM) -> list[Parameter]:
        """Parameters whose gradients are partial per data shard (summed over ``data_comm``)."""
        mods: list[Module] = [model.tok_emb, model.pos_emb, model.ln_f, model.head]
        if self.name in ("rotated", "summa"):
            for blk in model.blocks.children():
                mods += [blk.norm1, blk.norm2]  # type: ignore[attr-defined]
        return [p for m in mods for p in m.parameters()]


class ParallelLM(Module):
    """Token + position embeddings, causal blocks of the layout, final LayerNorm, linear head."""

    def __init__(self, layout: Layout, max_len: int, dim: int, heads: int, n_layers: int, *,
                 dtype: Any, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.tok_emb = Embedding(VOCAB, dim, dtype=dtype, seed=rng)
        self.pos_emb = Embedding(max_len, dim, dtype=dtype, seed=rng)
        for emb in (self.tok_emb, self.pos_emb):  # GPT-2's N(0, 0.02^2) start
            emb.weight.data *= 0.02
        self.blocks = Sequential(*[layout.block(dim, heads, int(rng.integers(2 ** 31)), dtype)
                                   for _ in range(n_layers)])
        self.ln_f = LayerNorm(dim, dtype=dtype)
        self.head = Linear(dim, VOCAB, dtype=dtype, seed=rng)

    def forward(self, idx: np.ndarray, pos: np.ndarray) -> Any:
        return self.head(self.ln_f(self.blocks(self.tok_emb(idx) + self.pos_emb(pos))))

    def backward(self, grad_logits: np.ndarray) -> None:
        g = self.blocks.backward(self.ln_f.backward(self.head.backward(grad_logits)))
        self.tok_emb.backward(g)
        self.pos_emb.backward(g.sum(axis=0))


def evaluate(model: ParallelLM, layout: Layout, x: np.ndarray, y: np.ndarray,
             chunk: int) -> tuple[float, float]:
    """Held-out exact match and character accuracy, summed over the ranks' rows and tokens."""
    model.eval()
    pos = layout.positions(x.shape[1])
    wrong = np.zeros(len(x))
    chars = np.zeros(2)
    for i in range(0, len(x), chunk):  # the same chunks on every rank: equal collective calls
        rows = np.arange(i, min(i + chunk, len(x)))[layout.rows(min(chunk, len(x) - i))]
        logits = model(x[rows][:, pos], pos)
        t = y[rows][:, pos]
        mask = t != IGNORE
        bad = (logits.argmax(-1) != t) & mask
        wrong[rows] += bad.sum(axis=1)
        chars += [int((~bad & mask).sum()), int(mask.sum())]
    total = allreduce(layout.data_comm, np.concatenate([wrong, chars]))
    model.train()
    return float(np.mean(total[:len(x)] == 0)), float(total[-2] / total[-1])


def train_step(model: ParallelLM, layout: Layout, loss_fn: SoftmaxCrossEntropy,
               xb: np.ndarray, yb: np.ndarray) -> float:
    """One step's gradient of the global mean loss on this rank; returns that loss."""
    pos = layout.positions(xb.shape[1])
    xb, yb = xb[layout.rows(len(xb))][:, pos], yb[layout.rows(len(yb))][:, pos]
    n_local = float((yb != IGNORE).sum())
    n_total = float(allreduce(layout.data_comm, np.array([n_local]))[0])
    loss = loss_fn(model(xb, pos), yb) * n_local / n_total
    model.backward(loss_fn.backward() * (n_local / n_total))
    params = layout.replicated(model)
    if layout.data_comm.Get_size() > 1:  # one all-reduce of every replicated gradient
        flat = allreduce(layout.data_comm, np.concatenate([p.grad.ravel() for p in params]))
        start = 0
        for p in params:
            p.grad[...] = flat[start:start + p.size].reshape(p.shape)
            start += p.size
    return float(allreduce(layout.data_comm, np.array([loss]))[0])


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layout", choices=LAYOUTS, default="1d")
    ap.add_argument("--digits", type=int, default=8, help="length of the reversed string")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--test", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="short run for the test suite")
    args = ap.parse_args(argv)
    if args.quick:
        args.digits, args.dim, args.epochs, args.train, args.test = 4, 32, 3, 2000, 256
    comm = resolve_comm()
    agree(comm, vars(args))  # every rank runs the same configuration
    layout = Layout(args.layout, comm)
    rng = np.random.default_rng(args.seed)  # the same data and order on every rank
    held: set[bytes] = set()
    x_test, y_test = make_data("reverse", args.test, args.digits, rng, exclude=held)
    x_train, y_train = make_data("reverse", args.train, args.digits, rng, exclude=held)
    model = ParallelLM(layout, x_train.shape[1], args.dim, args.heads, args.layers,
                       dtype=np.float64, seed=args.seed)
    loss_fn = SoftmaxCrossEntropy(ignore_index=IGNORE)
    opt = AdamW(model, lr=args.lr, weight_decay=0.01)
    steps = len(x_train) // args.batch
    schedule = WarmupCosine(args.lr, warmup_steps=max(1, steps * args.epochs // 20),
                            total_steps=steps * args.epochs, min_lr=args.lr / 20)
    say = print if comm.Get_rank() == 0 else (lambda *a, **k: None)
    say(f"layout {args.layout} on {layout.P} ranks: reverse {args.digits} digits, "
        f"{len(x_train)} train / {len(x_test)} held-out, chance exact match {10.0 ** -args.digits:.0e}")
    step, exact = 0, 0.0
    for epoch in range(1, args.epochs + 1):
        t0, losses = time.perf_counter(), []
        order = rng.permutation(len(x_train))
        for i in range(steps):
            sel = order[i * args.batch:(i + 1) * args.batch]
            opt.zero_grad()
            losses.append(train_step(model, layout, loss_fn, x_train[sel], y_train[sel]))
            opt.lr = schedule(step)
            opt.step()
            step += 1
        exact, char = evaluate(model, layout, x_test, y_test, 64)
        say(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}  held-out exact match {exact:.3f}  "
            f"char accuracy {char:.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    say(f"final held-out exact-match accuracy: {exact:.4f} (chance {10.0 ** -args.digits:.0e})")
    model(x_train[:args.batch][layout.rows(args.batch)][:, layout.positions(x_train.shape[1])],
          layout.positions(x_train.shape[1]))  # one forward: the ledger counts saved activations
    ledgers = gather_ledgers(comm, memory_ledger(model, opt))
    say(f"memory ledger per rank (layout {args.layout}, after a forward of one batch):")
    say(format_ledgers(ledgers))
    if layout.grid is not None:
        layout.grid.free()
    return exact


if __name__ == "__main__":
    main()
