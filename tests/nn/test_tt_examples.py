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


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs the mpi extra")
def test_tt_gru_sequence_data_parallel_matches_serial():
    """``mpiexec -n 2`` trains data-parallel: one output stream, the serial run's accuracy."""
    if os.environ.get("TENSORPAR_MPI_TEST"):
        pytest.skip("starts its own mpiexec; runs in the serial pass")
    serial = _run("tt_gru_sequence.py", timeout=240)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, str(ROOT / "examples" / "tt_gru_sequence.py"),
                           "--quick"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(re.findall(r"^epoch ", proc.stdout, flags=re.M)) == 8   # rank 0 prints, once per epoch
    assert "2 process(es)" in proc.stdout
    assert _metric(proc.stdout) >= 0.95
    assert abs(_metric(proc.stdout) - _metric(serial)) <= 1 / 512   # at most one test sequence apart
