"""Whole MPI jobs in a subprocess (``mpiexec -n 2`` with a timeout): training and disagreement.

* a small data-parallel TT-GRU training run (the ``examples/tt_gru_sequence.py``
  model, scaled down) ends with the weights of the same run done serially;
* a rank that passes a different argument to a parallel layer makes every
  rank raise the same ValueError instead of hanging.

Only the serial pass starts subprocesses; under mpiexec these tests skip
(nested mpiexec launches are not portable).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402

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
    from tensorpar.nn.parallel import ParallelMultiheadAttention, ParallelTransformerBlock
    try:   # the serial constructor fails on rank 1 only (3 heads do not divide 8)
        ParallelMultiheadAttention(8, 4 if rank == 0 else 3, seed=0)
    except ValueError as exc:
        print(f"rank {rank} heads ValueError: {exc}", flush=True)
    try:   # valid on both ranks, but not the same block
        ParallelTransformerBlock(8, 2, 16 if rank == 0 else 32, seed=0)
    except ValueError as exc:
        print(f"rank {rank} block ValueError: {exc}", flush=True)
    print(f"rank {rank} done", flush=True)
"""


def test_data_parallel_tt_gru_training_equals_serial(tmp_path, serial_only):
    serial_out, par_out = tmp_path / "serial.npz", tmp_path / "par.npz"
    res = run_job(tmp_path, TRAIN, n=1, timeout=TIMEOUT, args=[str(serial_out)])
    assert res.returncode == 0, res.stderr
    res = run_job(tmp_path, TRAIN, n=2, timeout=TIMEOUT, args=[str(par_out), "parallel"])
    assert res.returncode == 0, res.stderr
    with np.load(serial_out) as a, np.load(par_out) as b:
        assert sorted(a.files) == sorted(b.files) and "gru.tt_ih_l0.cores.0" in a.files
        for name in a.files:
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-10, err_msg=name)


def test_a_different_argument_on_one_rank_raises_on_every_rank(tmp_path, serial_only):
    res = run_job(tmp_path, DISAGREE, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    for r in (0, 1):
        assert f"rank {r} ValueError: argument 'out_features' differs across ranks " \
               f"(rank 0: 8, rank 1: 6)" in res.stdout
        assert f"rank {r} forward ValueError: argument 'x.shape' differs across ranks" in res.stdout
        assert f"rank {r} heads ValueError: num_heads=3 does not divide embed_dim=8 (on rank 1 " \
               f"of 2)" in res.stdout
        assert f"rank {r} block ValueError: argument 'hidden_dim' differs across ranks" in res.stdout
        assert f"rank {r} done" in res.stdout
