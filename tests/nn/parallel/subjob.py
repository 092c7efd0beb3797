"""Run a script under ``mpiexec -n N`` in a subprocess with a timeout (for hang-prone cases).

A disagreement between ranks must raise on every rank, not hang: running it
in a child job turns a hang into a timeout of this test, never a stuck run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def run_job(tmp_path: Path, body: str | Path, n: int = 2, timeout: float = 90,
            args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``body`` (a Python script's text, or a script file) on ``n`` ranks; return the process."""
    if isinstance(body, Path):
        script = body
    else:
        script = tmp_path / "job.py"
        script.write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPICH_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    exe = mpiexec()
    assert exe is not None
    return subprocess.run([exe, "-n", str(n), sys.executable, str(script), *(args or [])],
                          capture_output=True, text=True, timeout=timeout, env=env)
