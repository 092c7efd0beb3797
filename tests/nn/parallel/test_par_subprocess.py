"""Whole MPI jobs in a subprocess (``mpiexec -n 2`` with a timeout): training and disagreement.

* a small data-parallel TT-GRU training run (the ``examples/tt_gru_sequence.py``
  model, scaled down) ends with the weights of the same run done serially;
* a rank that passes a different argument to a parallel layer makes every
  rank raise the same ValueError instead of hanging.

Only the serial pass starts subprocesses; under mpiexec these tests skip
(nested mpiexec launches are not portable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("mpi4py")

pytestmark = pytest.mark.mpi

TIMEOUT = 120

TRAIN = """
    import sys
    import numpy as np
    from tensorpar.nn import GRU, Adam, Linear, Module, SoftmaxCrossEntropy, clip_grad_norm
    from tensorpar.nn.parallel import DataParallel

    def run(parallel, path):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((48, 12, 8))
        y = rng.integers(0, 3, 48)
        gru = GRU(8, 8, batch_first=True, tt_input_shape=(2, 4), tt_hidden_shape=(2, 4),
                  tt_rank=2, seed=1)
        head = Linear(8, 3, seed=2)
        net = Module()
        net.gru, net.head = gru, head                     # one container for both
        dp = DataParallel(net) if parallel else None      # broadcasts rank 0's weights
        rank, size = (dp.rank, dp.size) if dp else (0, 1)
        opt, loss_fn = Adam(net, lr=1e-2), SoftmaxCrossEntropy()
        for epoch in range(3):
            for i in range(0, 48, 16):
                idx = np.arange(i, i + 16)[rank::size]    # this rank's share of the batch
                net.zero_grad()
                out, _ = gru(x[idx])
                loss_fn(head(out[:, -1]), y[idx])
                g = np.zeros_like(out)
                g[:, -1] = head.backward(loss_fn.backward())
                gru.backward(g)
                if dp:
                    dp.sync_gradients(weight=len(idx))    # one all-reduce per bucket
                clip_grad_norm(net, 1.0)
                opt.step()
        if rank == 0:
            np.savez(path, **net.state_dict())

    run(len(sys.argv) > 2, sys.argv[1])
"""

DISAGREE = """
    from tensorpar.distributed import comm as C
    from tensorpar.nn.parallel import ColumnParallelLinear
    rank = C.resolve_comm().Get_rank()
    try:
        ColumnParallelLinear(4, 8 if rank == 0 else 6, seed=0)
    except ValueError as exc:
        print(f"rank {rank} ValueError: {exc}", flush=True)
    layer = ColumnParallelLinear(4, 8, seed=0)
    import numpy as np
    try:
        layer(np.ones((3 if rank == 0 else 2, 4)))
    except ValueError as exc:
        print(f"rank {rank} forward ValueError: {exc}", flush=True)
    print(f"rank {rank} done", flush=True)
"""


def _mpiexec() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _run(tmp_path, body: str, *args: str, n: int = 2) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "MPIR_", "HYDRA_", "MPICH_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable, str(script), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


@pytest.fixture
def serial_only(comm):
    if comm.size > 1:
        pytest.skip("starts its own mpiexec; runs in the serial pass")
    if _mpiexec() is None:
        pytest.skip("mpiexec not found")


def test_data_parallel_tt_gru_training_equals_serial(tmp_path, serial_only):
    serial_out, par_out = tmp_path / "serial.npz", tmp_path / "par.npz"
    res = _run(tmp_path, TRAIN, str(serial_out), n=1)
    assert res.returncode == 0, res.stderr
    res = _run(tmp_path, TRAIN, str(par_out), "parallel", n=2)
    assert res.returncode == 0, res.stderr
    with np.load(serial_out) as a, np.load(par_out) as b:
        assert sorted(a.files) == sorted(b.files) and "gru.tt_ih_l0.cores.0" in a.files
        for name in a.files:
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-10, err_msg=name)


def test_a_different_argument_on_one_rank_raises_on_every_rank(tmp_path, serial_only):
    res = _run(tmp_path, DISAGREE)
    assert res.returncode == 0, res.stderr
    for r in (0, 1):
        assert f"rank {r} ValueError: argument 'out_features' differs across ranks " \
               f"(rank 0: 8, rank 1: 6)" in res.stdout
        assert f"rank {r} forward ValueError: argument 'x.shape' differs across ranks" in res.stdout
        assert f"rank {r} done" in res.stdout
