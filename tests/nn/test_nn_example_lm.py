"""examples/transformer_lm.py --quick runs in a subprocess (with a timeout) and learns its task."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "transformer_lm.py"


def test_transformer_lm_quick_learns_above_chance():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPT.parents[1]), env.get("PYTHONPATH", "")])
    env["OPENBLAS_NUM_THREADS"] = "1"
    res = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                         timeout=180, env=env)
    assert res.returncode == 0, res.stderr
    epochs = re.findall(r"^epoch\s+\d+\s+loss ([\d.]+)\s+held-out exact match ([\d.]+)", res.stdout, re.M)
    assert len(epochs) == 3, res.stdout
    assert float(epochs[-1][0]) < float(epochs[0][0])  # the loss falls
    m = re.search(r"final held-out exact-match accuracy: ([\d.]+) \(chance ([\de.+-]+)\)", res.stdout)
    assert m is not None, res.stdout
    exact, chance = float(m.group(1)), float(m.group(2))
    assert chance == 1e-4
    assert exact >= 0.5, res.stdout  # chance is 1e-4: far above it
