"""examples/transformer_lm.py --quick runs in a subprocess (with a timeout) and learns its task."""

from __future__ import annotations

import re

from mpi_subprocess import ROOT, run_python

SCRIPT = ROOT / "examples" / "transformer_lm.py"


def test_transformer_lm_quick_learns_above_chance():
    res = run_python([str(SCRIPT), "--quick"], timeout=180)
    assert res.returncode == 0, res.stderr
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)\s+held-out exact match ([\d.]+)", res.stdout, re.M)
    assert len(epochs) == 3, res.stdout
    assert float(epochs[-1][0]) < float(epochs[0][0])  # the loss falls
    m = re.search(r"final held-out exact-match accuracy: ([\d.]+) \(chance ([\de.+-]+)\)", res.stdout)
    assert m is not None, res.stdout
    exact, chance = float(m.group(1)), float(m.group(2))
    assert chance == 1e-4
    assert exact >= 0.5, res.stdout  # chance is 1e-4: far above it


def test_transformer_lm_model_gradients():
    """The example's model (embeddings, 2 causal blocks, final norm, head) against finite differences."""
    import importlib.util

    import numpy as np
    from gradcheck import assert_gradients

    spec = importlib.util.spec_from_file_location("transformer_lm_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.TransformerLM(6, 5, 4, 2, 2, dtype=np.float64, seed=0)
    idx = np.random.default_rng(1).integers(0, 6, size=(2, 5))
    res = assert_gradients(model, idx, max_entries=12)
    assert {"tok_emb.weight", "pos_emb.weight", "blocks.1.ff.linear2.bias", "head.weight"} <= set(res)
    x, y = mod.make_data("add", 50, 2, np.random.default_rng(0))
    assert x.shape == (50, 8) and (y[:, :5] == mod.IGNORE).all()
    a = x[:, :2] @ [10, 1] + x[:, 3:5] @ [10, 1]
    answer = np.concatenate([x[:, 6:], y[:, -1:]], axis=1)  # the sum, least significant digit first
    assert (answer @ [1, 10, 100] == a).all()
