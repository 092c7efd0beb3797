"""Shared fixtures (``xp``, ``comm``, ``shared_dir``, ``serial_only``) and the MPI pass-flag reduction.

Tests marked ``mpi`` run under ``mpiexec -n 2, 3, 4`` as well as serially.
For them, every rank's outcome is reduced over ``COMM_WORLD`` before pytest
sees it, so a failure on one rank fails the test on all ranks and nobody is
left waiting in a collective of the next test.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile

import numpy as np
import pytest
from mpi_subprocess import mpiexec

HAS_MPI = importlib.util.find_spec("mpi4py") is not None


def _gpu_available() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any CUDA failure means "no GPU here"
        return False


GPU = _gpu_available()


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy always, cupy where a GPU is present."""
    if request.param == "cupy":
        if not GPU:
            pytest.skip("cupy with a CUDA GPU is not available on this machine")
        import cupy

        return cupy
    return np


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _world():
    from mpi4py import MPI

    return MPI.COMM_WORLD


@pytest.fixture
def comm():
    """``MPI.COMM_WORLD`` (size 1 in the serial run)."""
    if not HAS_MPI:
        pytest.skip("mpi4py is not installed (pip install 'tensorpar[mpi]')")
    return _world()


@pytest.fixture
def shared_dir(comm):
    """One temporary directory, the same on every rank; removed after the test."""
    path = comm.bcast(tempfile.mkdtemp(prefix="tp_shared_") if comm.rank == 0 else None)
    yield path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serial_only(comm):
    """Skip unless this is the serial pass and an ``mpiexec`` can start child jobs.

    For tests that run a job of their own through ``mpi_subprocess``: nested
    ``mpiexec`` launches are not portable.
    """
    if comm.size > 1:
        pytest.skip("starts its own mpiexec; runs in the serial pass")
    if mpiexec() is None:
        pytest.skip("mpiexec not found")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if HAS_MPI and os.environ.get("TENSORPAR_MPI_TEST") == "1":
        rank = _world().rank
        if rank != 0:
            # Only rank 0 reports; flags are reduced so rank 0 fails whenever any rank does.
            config.option.verbose = -2
            tr = config.pluginmanager.getplugin("terminalreporter")
            if tr is not None:
                config.pluginmanager.unregister(tr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not HAS_MPI or item.get_closest_marker("mpi") is None:
        return (yield)
    world = _world()
    if world.size == 1:
        return (yield)
    skipped = pytest.skip.Exception
    error = None
    try:
        result = yield
    except skipped:
        raise
    except BaseException as exc:  # noqa: BLE001 - re-raised below on this rank
        error = exc
    failed = world.allgather(error is not None)
    if error is not None:
        raise error
    if any(failed):
        bad = [r for r, f in enumerate(failed) if f]
        pytest.fail(f"failed on rank(s) {bad} of {world.size}", pytrace=False)
    return result
