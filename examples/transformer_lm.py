"""A 2-layer character-level transformer language model that learns multi-digit addition.

The language is generated here. ``--task add`` (the default): two ``L``-digit
numbers (zero-padded), ``+``, ``=`` and their sum written least-significant
digit first on ``L + 1`` digits, e.g. ``86523+00018=145680`` (86523 + 18 =
086541) for ``L = 5``; writing the sum backwards lets a left-to-right model
produce each digit after the carry it depends on. ``--task reverse``: ``L``
digits, ``=``, the same digits reversed (``3071=1703``). The model is trained
as a causal language model (next-character prediction) with the loss on the
answer characters only; positions come from a learned position embedding.

The score is the exact-match accuracy on held-out sentences (never seen in
training): the fraction whose whole answer is predicted correctly. It is
computed with teacher forcing in one forward pass, which equals greedy
decoding exactly: if every answer character is the arg-max given the true
prefix, greedy decoding reproduces that prefix step by step, and
conversely. Chance is one in the number of possible answers, ``10**-(L+1)``
for addition (1e-6 at the default ``L = 5``) and ``10**-L`` for reversal.

Run ``python examples/transformer_lm.py`` (6 epochs of about 10 s on one core
reach an exact match above 0.99; ``--quick`` is a 1-second run on 4-digit
reversal for the test suite). Everything is tensorpar.nn: Embedding,
TransformerBlock (pre-LayerNorm, causal), LayerNorm, Linear,
SoftmaxCrossEntropy, AdamW with global-norm clipping and a warmup-cosine
schedule. To compress the blocks, pass a TT layer factory as ``linear=`` to
``TransformerBlock``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tensorpar.nn import (
    AdamW,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    Sequential,
    SoftmaxCrossEntropy,
    TransformerBlock,
    WarmupCosine,
    clip_grad_norm,
)

PLUS, SEP = 10, 11  # token ids of "+" and "="; digits are 0..9
VOCAB = 12
IGNORE = -1


class TransformerLM(Module):
    """Token + position embeddings, ``n_layers`` causal pre-LN blocks, final LayerNorm, linear head."""

    def __init__(self, vocab: int, max_len: int, dim: int, heads: int, n_layers: int, *,
                 dtype: Any, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.tok_emb = Embedding(vocab, dim, dtype=dtype, seed=rng)
        self.pos_emb = Embedding(max_len, dim, dtype=dtype, seed=rng)
        for emb in (self.tok_emb, self.pos_emb):  # GPT-2's N(0, 0.02^2) start
            emb.weight.data *= 0.02
        self.blocks = Sequential(*[TransformerBlock(dim, heads, 4 * dim, causal=True, dtype=dtype,
                                                    seed=rng) for _ in range(n_layers)])
        self.ln_f = LayerNorm(dim, dtype=dtype)
        self.head = Linear(dim, vocab, dtype=dtype, seed=rng)

    def forward(self, idx: np.ndarray) -> Any:
        x = self.tok_emb(idx) + self.pos_emb(np.arange(idx.shape[1]))
        return self.head(self.ln_f(self.blocks(x)))

    def backward(self, grad_logits: np.ndarray) -> None:
        g = self.blocks.backward(self.ln_f.backward(self.head.backward(grad_logits)))
        self.tok_emb.backward(g)
        self.pos_emb.backward(g.sum(axis=0))


def sentence(task: str, d: np.ndarray) -> np.ndarray:
    """One sentence from the random digits ``d``: prompt, "=", answer."""
    if task == "reverse":
        return np.concatenate([d, [SEP], d[::-1]])
    n = len(d) // 2
    a, b = (int("".join(map(str, half))) for half in (d[:n], d[n:]))
    answer = [int(c) for c in str(a + b).zfill(n + 1)][::-1]  # least significant digit first
    return np.concatenate([d[:n], [PLUS], d[n:], [SEP], answer])


def make_data(task: str, n: int, digits: int, rng: np.random.Generator,
              exclude: set[bytes] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct sentences not in ``exclude``: inputs and targets (prompt targets ignored)."""
    seen = set() if exclude is None else exclude
    rows: list[np.ndarray] = []
    keys: set[bytes] = set()
    width = digits if task == "reverse" else 2 * digits
    while len(rows) < n:
        d = rng.integers(0, 10, size=width)
        key = d.astype(np.int8).tobytes()
        if key in seen or key in keys:
            continue
        keys.add(key)
        rows.append(sentence(task, d))
    seq = np.array(rows)
    x, y = seq[:, :-1], seq[:, 1:].copy()
    prompt = int(np.argmax(seq[0] == SEP))
    y[:, :prompt] = IGNORE  # predicting the random prompt is impossible; score the answer only
    if exclude is not None:
        exclude |= keys
    return x, y


def evaluate(model: TransformerLM, x: np.ndarray, y: np.ndarray, batch: int) -> tuple[float, float]:
    """Exact-match and per-character accuracy on the answer positions (eval mode)."""
    model.eval()
    exact, chars, total = 0, 0, 0
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch])
        t = y[i:i + batch]
        mask = t != IGNORE
        ok = (logits.argmax(-1) == t) | ~mask
        exact += int(ok.all(axis=1).sum())
        chars += int((ok & mask).sum())
        total += int(mask.sum())
    model.train()
    return exact / len(x), chars / total


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["add", "reverse"], default="add")
    ap.add_argument("--digits", type=int, default=None,
                    help="digits per operand (add, default 5) or string length (reverse, default 8)")
    ap.add_argument("--dim", type=int, default=64, help="model width")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train", type=int, default=16000, help="training sentences")
    ap.add_argument("--test", type=int, default=1000, help="held-out sentences")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="short run for the test suite")
    args = ap.parse_args(argv)
    if args.quick:
        args.task, args.digits, args.dim, args.epochs, args.train, args.test = "reverse", 4, 32, 3, 2000, 300
    if args.digits is None:
        args.digits = 5 if args.task == "add" else 8
    answer_len = args.digits + (args.task == "add")
    chance = 10.0 ** -answer_len

    rng = np.random.default_rng(args.seed)
    held: set[bytes] = set()
    x_test, y_test = make_data(args.task, args.test, args.digits, rng, exclude=held)
    x_train, y_train = make_data(args.task, args.train, args.digits, rng, exclude=held)  # disjoint from test
    dtype = np.dtype(args.dtype)
    model = TransformerLM(VOCAB, x_train.shape[1], args.dim, args.heads, args.layers,
                          dtype=dtype, seed=args.seed)
    loss_fn = SoftmaxCrossEntropy(ignore_index=IGNORE)
    opt = AdamW(model, lr=args.lr, weight_decay=0.01)
    steps_per_epoch = len(x_train) // args.batch
    total = steps_per_epoch * args.epochs
    schedule = WarmupCosine(args.lr, warmup_steps=max(1, total // 20), total_steps=total,
                            min_lr=args.lr / 20)
    print(f"task {args.task} ({args.digits} digits, e.g. {''.join('0123456789+='[t] for t in x_test[0])}"
          f"{'0123456789+='[y_test[0, -1]]}): {len(x_train)} train / {len(x_test)} held-out sentences, "
          f"{model.num_parameters():,} parameters, chance exact match {chance:.0e}")
    step = 0
    for epoch in range(1, args.epochs + 1):
        t0, losses = time.perf_counter(), []
        order = rng.permutation(len(x_train))
        for i in range(steps_per_epoch):
            sel = order[i * args.batch:(i + 1) * args.batch]
            opt.zero_grad()
            losses.append(loss_fn(model(x_train[sel]), y_train[sel]))
            model.backward(loss_fn.backward())
            clip_grad_norm(model, 1.0)
            opt.lr = schedule(step)
            opt.step()
            step += 1
        exact, char = evaluate(model, x_test, y_test, 256)
        print(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}  held-out exact match {exact:.3f}  "
              f"char accuracy {char:.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"final held-out exact-match accuracy: {exact:.4f} (chance {chance:.0e})")
    return exact


if __name__ == "__main__":
    main()
