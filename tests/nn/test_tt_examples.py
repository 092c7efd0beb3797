"""The TT examples run to completion (subprocess with a timeout) and reach their printed targets."""

from __future__ import annotations

import importlib.util
import re

import pytest
from mpi_subprocess import ROOT, run_python


def _run(script: str, timeout: float, n: int | None = None) -> str:
    proc = run_python([str(ROOT / "examples" / script), "--quick"], n=n, timeout=timeout)
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


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs the mpi extra")
def test_tt_gru_sequence_data_parallel_matches_serial(serial_only):
    """``mpiexec -n 2`` trains data-parallel: one output stream, the serial run's accuracy."""
    serial = _run("tt_gru_sequence.py", timeout=240)
    out = _run("tt_gru_sequence.py", timeout=300, n=2)
    assert len(re.findall(r"^epoch ", out, flags=re.M)) == 8   # rank 0 prints, once per epoch
    assert "2 process(es)" in out
    assert _metric(out) >= 0.95
    assert abs(_metric(out) - _metric(serial)) <= 1 / 512   # at most one test sequence apart
