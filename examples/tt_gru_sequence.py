"""A TT-GRU that must remember the first input of a long noisy sequence.

The task (generated here): each sequence has ``T = 60`` steps of 64-dimensional
inputs. Step 0 carries the class: one of 4 fixed random patterns plus noise;
steps 1..T-1 are pure noise of the same scale. The label is the class of step
0, read from the GRU's state after the last step, so the network must carry
it across 59 distracting steps (chance is 25 %).

The model is a one-layer GRU (hidden size 32) whose input-to-hidden map is
one TT-matrix for the three gates (TT-GRU, Yang et al. 2017: input modes
4*4*4, hidden modes 2*4*4 with the first multiplied by 3, TT rank 4),
followed by a linear classifier; trained with Adam and gradient clipping.
Every epoch prints one line; the run ends with the test accuracy.
``--quick`` uses fewer training sequences (used by the test suite).

Under MPI (``mpiexec -n 2 python examples/tt_gru_sequence.py``) the same model
trains data-parallel (:class:`tensorpar.nn.parallel.DataParallel`): every rank
takes its share of each batch, the gradients are averaged with one bucketed
all-reduce per step, and only rank 0 prints. The updates equal the serial
run's up to rounding, so the accuracy is the same. Without mpi4py installed
the example runs serially.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

from tensorpar.nn import GRU, Adam, Linear, Module, SoftmaxCrossEntropy, clip_grad_norm

FEATURES, CLASSES = 64, 4


def make_data(n: int, steps: int, rng: np.random.Generator,
              patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences ``(n, steps, 64)`` and labels: the class lives only in step 0."""
    y = rng.integers(0, CLASSES, n)
    x = rng.standard_normal((n, steps, FEATURES)) * 0.5
    x[:, 0] += patterns[y]
    return x, y


def evaluate(gru: GRU, head: Linear, x: np.ndarray, y: np.ndarray) -> float:
    gru.eval()
    out, _ = gru(x)
    gru.train()
    return float((head(out[:, -1]).argmax(axis=1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--train", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate-bias", type=float, default=3.0, help="initial update-gate bias")
    parser.add_argument("--quick", action="store_true", help="1024 training sequences")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    patterns = rng.standard_normal((CLASSES, FEATURES))
    n_train = 1024 if args.quick else args.train
    xtr, ytr = make_data(n_train, args.steps, rng, patterns)
    xte, yte = make_data(512, args.steps, rng, patterns)
    gru = GRU(FEATURES, 32, batch_first=True, tt_input_shape=(4, 4, 4), tt_hidden_shape=(2, 4, 4),
              tt_rank=4, seed=args.seed)
    # "chrono"-style start: a large update-gate bias makes z close to 1, so the state is
    # carried over the whole sequence from the first step and gradients reach step 0
    gru.bias_hh_l0.data[32:64] = args.gate_bias
    head = Linear(32, CLASSES, seed=args.seed + 1)
    net = Module()
    net.gru, net.head = gru, head
    dp = None
    if importlib.util.find_spec("mpi4py") is not None:
        from tensorpar.distributed.comm import allreduce
        from tensorpar.nn.parallel import DataParallel

        dp = DataParallel(net)  # rank 0's weights on every rank; one process: no messages
    rank, size = (dp.rank, dp.size) if dp is not None else (0, 1)
    params = net.parameters()
    loss_fn, opt = SoftmaxCrossEntropy(), Adam(params, lr=args.lr)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm, total = rng.permutation(n_train), 0.0
        for i in range(0, n_train, args.batch):
            idx = perm[i:i + args.batch][rank::size]  # this rank's share of the batch
            net.zero_grad()
            out, _ = gru(xtr[idx])
            total += loss_fn(head(out[:, -1]), ytr[idx]) * len(idx)
            g_last = head.backward(loss_fn.backward())
            g_out = np.zeros_like(out)
            g_out[:, -1] = g_last
            gru.backward(g_out)
            if dp is not None:
                dp.sync_gradients(weight=len(idx))  # the gradient of the whole batch
            clip_grad_norm(params, 1.0)
            opt.step()
        if size > 1:
            total = float(allreduce(None, np.array([total]))[0])
        acc = evaluate(gru, head, xte, yte)
        if rank == 0:
            print(f"epoch {epoch:2d}  loss {total / n_train:.4f}  test acc {acc:.4f}"
                  f"  ({time.perf_counter() - start:.1f} s, {size} process(es))", flush=True)
    tt = gru.tt_ih_l0
    acc = evaluate(gru, head, xte, yte)
    if rank == 0:
        print(f"TT input map: {tt.num_parameters()} weights against {3 * 32 * FEATURES} dense, "
              f"ranks {tt.ranks}")
        print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
