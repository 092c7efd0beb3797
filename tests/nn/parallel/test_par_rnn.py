"""Tensor-parallel GRU and LSTM (hidden units of each gate split) against the serial layers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from parcheck import assert_close  # noqa: E402

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.nn import GRU, LSTM  # noqa: E402
from tensorpar.nn.parallel import ParallelGRU, ParallelLSTM, gather_parameters, memory_ledger  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
@pytest.mark.parametrize("layers,batch_first", [(1, False), (2, True)])
def test_parallel_rnn_equals_serial(comm, kind, layers, batch_first, xp):
    P = comm.size
    H, I, T, B = 2 * P, 5, 6, 3
    serial_cls, par_cls = (GRU, ParallelGRU) if kind == "GRU" else (LSTM, ParallelLSTM)
    serial = serial_cls(I, H, num_layers=layers, batch_first=batch_first, seed=9, xp=xp)
    par = par_cls.from_serial(serial, comm)
    rng = np.random.default_rng(5)
    x = xp.asarray(rng.standard_normal((B, T, I) if batch_first else (T, B, I)))
    g = xp.asarray(rng.standard_normal((B, T, H) if batch_first else (T, B, H)))
    out_ref, state_ref = serial(x)
    dx_ref = serial.backward(g)
    with C.count_traffic() as fwd:
        out, state = par(x)
    with C.count_traffic() as bwd:
        dx = par.backward(g)
    assert_close(out, out_ref)
    h_ref = state_ref if kind == "GRU" else state_ref[0]
    assert_close(state if kind == "GRU" else state[0], h_ref)
    assert_close(dx, dx_ref)
    ref = dict(serial.named_parameters())
    grads = gather_parameters(par, grads=True)
    assert list(grads) == list(ref)
    for name, full in grads.items():
        assert_close(full, ref[name].grad)
    assert memory_ledger(par).parameters * P == serial.parameter_bytes()
    if P > 1:  # per layer: T all-gathers of B H forward; T - 1 reduce-scatters + 1 all-reduce back
        w = 8
        assert fwd.calls["Allgatherv"] == layers * T
        assert fwd.nbytes["Allgatherv"] == layers * T * B * H * w
        assert bwd.calls["Reduce_scatter_block"] == layers * (T - 1)
        assert bwd.nbytes["Reduce_scatter_block"] == layers * (T - 1) * B * H * w
        assert bwd.calls["Allreduce"] == layers
        assert bwd.nbytes["Allreduce"] == T * B * (I + (layers - 1) * H) * w


def test_bad_sizes_raise_everywhere(comm):
    P = comm.size
    if P > 1:
        with pytest.raises(ValueError, match="hidden_size = .* not divisible"):
            ParallelGRU(3, 2 * P + 1, comm=comm, seed=0)
    with pytest.raises(TypeError, match="DataParallel"):
        ParallelGRU.from_serial(GRU(6, 4 * P, tt_input_shape=(2, 3), tt_hidden_shape=(2, 2 * P),
                                    tt_rank=2, seed=0), comm)
    gru = ParallelGRU(3, 2 * P, comm=comm, seed=0)
    with pytest.raises(ValueError, match="x must have 3 features"):
        gru(np.ones((4, 2, 3 if comm.rank else 2)))
