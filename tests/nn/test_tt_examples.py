"""The TT examples run to completion (subprocess with a timeout) and reach their printed targets."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick"], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _metric(out: str) -> float:
    found = re.findall(r"^test accuracy: ([0-9.]+)$", out, flags=re.M)
    assert len(found) == 1, out[-2000:]
    return float(found[0])


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="scikit-learn (the examples extra) is not installed")
def test_tt_mlp_digits_reaches_95_percent():
    out = _run("tt_mlp_digits.py", timeout=240)
    assert len(re.findall(r"^epoch ", out, flags=re.M)) == 6
    assert re.search(r"compression ratio [0-9.]+x", out)
    assert _metric(out) >= 0.95


def test_tt_gru_sequence_reaches_95_percent():
    out = _run("tt_gru_sequence.py", timeout=240)
    assert len(re.findall(r"^epoch ", out, flags=re.M)) == 8
    assert _metric(out) >= 0.95
