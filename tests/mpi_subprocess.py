"""Run Python in a child process, alone or under ``mpiexec -n P``, with a timeout (for the tests).

A disagreement between ranks must raise on every rank, not hang: running it
in a child job turns a hang into a timeout of this test, never a stuck run.
Usage from any test (pytest puts ``tests/`` on ``sys.path`` through
``tests/conftest.py``)::

    from mpi_subprocess import run_job
    def test_x(tmp_path, serial_only):          # fixture in tests/conftest.py
        res = run_job(tmp_path, "print(1)", n=3)
        assert res.returncode == 0, res.stderr

Only the serial pass starts child jobs (nested ``mpiexec`` launches are not
portable): the ``serial_only`` fixture skips under ``mpiexec`` and where no
``mpiexec`` is found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

#: the repository root (its ``tensorpar`` is the one the child jobs import)
ROOT = Path(__file__).resolve().parents[1]


def mpiexec() -> str | None:
    """The ``mpiexec`` next to this Python (the venv's MPI), else the one on ``PATH``, else None."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def child_env() -> dict[str, str]:
    """This process's environment for an independent child job.

    The variables of this (singleton) MPI process are dropped, the repository
    root goes first on ``PYTHONPATH``, and each rank runs one thread
    (several ranks already share the machine's cores).
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPICH_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def run_python(args: Sequence[str], *, n: int | None = None, timeout: float,
               cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` (under ``mpiexec -n n`` unless ``n`` is None); return the process.

    Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    """
    cmd = [sys.executable, *args]
    if n is not None:
        exe = mpiexec()
        if exe is None:
            raise RuntimeError("mpiexec not found (take the serial_only fixture)")
        cmd = [exe, "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=child_env(), cwd=cwd)


def run_job(tmp_path: Path, body: str | Path, n: int = 2, timeout: float = 90,
            args: Sequence[str] = (), name: str = "job.py") -> subprocess.CompletedProcess[str]:
    """Run ``body`` on ``n`` ranks: a script file, or a script's text written to ``tmp_path/name``."""
    if isinstance(body, Path):
        script = body
    else:
        script = tmp_path / name
        script.write_text(textwrap.dedent(body))
    return run_python([str(script), *args], n=n, timeout=timeout)


def read_cases(folder: Path, n: int) -> dict[str, dict[int, tuple[str, str]]]:
    """``{case: {rank: (kind, message)}}`` from the lines ``CASE|case|kind|message`` of a job.

    Rank ``r`` of the job writes its lines to ``folder/rank{r}.txt`` (one file
    per rank: lines printed by several ranks can interleave in ``mpiexec``'s
    output); ``kind`` is the exception's type name, or what the job writes
    for no exception. A rank that wrote no file (a job that hung or died)
    is missing from the result.
    """
    seen: dict[str, dict[int, tuple[str, str]]] = {}
    for rank in range(n):
        path = folder / f"rank{rank}.txt"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.startswith("CASE|"):
                _, name, kind, msg = line.split("|", 3)
                seen.setdefault(name, {})[rank] = (kind, msg)
    return seen


def assert_cases(seen: dict[str, dict[int, tuple[str, str]]],
                 expected: dict[str, tuple[str, str]], n: int) -> None:
    """Assert that every case of ``expected`` (and no other) was reported by all ``n`` ranks,
    each with the expected kind and a message containing the expected text."""
    assert set(seen) == set(expected), (sorted(seen), sorted(expected))
    for name, (kind, text) in expected.items():
        assert sorted(seen[name]) == list(range(n)), (name, seen[name])
        for rank, (got_kind, msg) in seen[name].items():
            assert got_kind == kind and text in msg, (name, rank, got_kind, msg)
