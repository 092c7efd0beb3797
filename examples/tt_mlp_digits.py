"""An MLP with a TT-compressed hidden layer on scikit-learn's handwritten digits.

The 1,797 8x8 digit images (scikit-learn's ``load_digits``; ``pip install
tensorpar[examples]``) are split 75/25 into train and test sets. The model is

    x (64 = 4*4*4) -> TTLinear(64 -> 512 = 8*8*8, TT rank 4) -> ReLU
                   -> TTLinear(512 -> 512, TT rank 4) -> ReLU -> Linear(512 -> 10)

trained with Adam on the softmax cross-entropy. Every epoch prints one line
(loss, train and test accuracy); the run ends with the test accuracy and the
compression ratio of the TT layers against dense layers of the same size.
``--quick`` trains fewer epochs (used by the test suite).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np

from tensorpar.nn import Adam, Linear, ReLU, Sequential, SoftmaxCrossEntropy, TTLinear


def load(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if importlib.util.find_spec("sklearn") is None:
        sys.exit("this example needs scikit-learn: pip install tensorpar[examples]")
    from sklearn.datasets import load_digits

    data = load_digits()
    X, y = data.data / 16.0, data.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.75 * len(y))
    tr, te = perm[:cut], perm[cut:]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0) + 1e-3   # train statistics only
    X = (X - mean) / std
    return X[tr], y[tr], X[te], y[te]


def accuracy(model: Sequential, X: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    pred = model(X).argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 epochs")
    args = parser.parse_args()
    epochs = 6 if args.quick else args.epochs
    Xtr, ytr, Xte, yte = load(args.seed)
    tt1 = TTLinear((4, 4, 4), (8, 8, 8), rank=args.rank, init="he", seed=args.seed)
    tt2 = TTLinear((8, 8, 8), (8, 8, 8), rank=args.rank, init="he", seed=args.seed + 1)
    model = Sequential(tt1, ReLU(), tt2, ReLU(), Linear(512, 10, seed=args.seed + 2))
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(model, lr=args.lr)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm, total = rng.permutation(len(ytr)), 0.0
        for i in range(0, len(perm), args.batch):
            idx = perm[i:i + args.batch]
            model.zero_grad()
            total += loss_fn(model(Xtr[idx]), ytr[idx]) * len(idx)
            model.backward(loss_fn.backward())
            opt.step()
        print(f"epoch {epoch:3d}  loss {total / len(ytr):.4f}  train acc {accuracy(model, Xtr, ytr):.4f}  "
              f"test acc {accuracy(model, Xte, yte):.4f}  ({time.perf_counter() - start:.1f} s)", flush=True)
    tt_params = sum(p.size for lay in (tt1, tt2) for p in lay.cores.parameters())
    dense = 64 * 512 + 512 * 512
    print(f"TT layers: {tt_params} weights against {dense} dense "
          f"(compression ratio {dense / tt_params:.1f}x; TT ranks {tt1.ranks}, {tt2.ranks})")
    print(f"test accuracy: {accuracy(model, Xte, yte):.4f}")


if __name__ == "__main__":
    main()
