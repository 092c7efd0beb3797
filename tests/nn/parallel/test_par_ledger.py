"""Memory ledger and per-layer traffic of parallel models, against the formulas."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.nn import Adam, Linear, TransformerBlock  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    MemoryLedger,
    ParallelTransformerBlock,
    ZeroAdam,
    format_ledgers,
    gather_ledgers,
    memory_ledger,
    traffic_by_layer,
)
from tensorpar.nn.parallel.mappings import local_slice  # noqa: E402

pytestmark = pytest.mark.mpi


def test_ledger_of_a_serial_layer_with_adam():
    lin = Linear(4, 3, seed=0)
    opt = Adam(lin, lr=0.1)
    lin(np.ones((5, 4)))
    lin.backward(np.ones((5, 3)))
    opt.step()
    led = memory_ledger(lin, opt)
    assert led == MemoryLedger(parameters=120, gradients=120, optimizer_state=240,
                               activations=5 * 4 * 8)
    assert led.total == 120 + 120 + 240 + 160
    with pytest.raises(TypeError, match="state_bytes"):
        memory_ledger(lin, object())


def test_block_ledger_and_per_layer_traffic(comm):
    P = comm.size
    E, H, F, B, S = 12, P, 4 * P, 2, 2 * P
    serial = TransformerBlock(E, H, F, seed=0)
    par = ParallelTransformerBlock.from_serial(serial, comm)
    x = np.random.default_rng(0).standard_normal((B, S, E))
    with traffic_by_layer(par) as per:
        par(x)
        par.backward(x)
    assert "forward" not in par.__dict__       # the instance methods are restored
    if P > 1:
        n = B * S * E * 8
        for name in ("self_attn", "ff"):       # one all-reduce forward, one backward
            assert per[name].calls["Allreduce"] == 2 and per[name].nbytes["Allreduce"] == 2 * n
        assert per["ff.linear2"].nbytes["Allreduce"] == n    # forward: reduce_from
        assert per["ff.linear1"].nbytes["Allreduce"] == n    # backward: copy_to
        assert per["norm1"].total_calls == 0
        assert per[""].total_bytes == 4 * n
    # parameter bytes: sharded weights / P plus the replicated LayerNorms and output biases
    replicated = (4 * E + 2 * E) * 8
    sharded = serial.parameter_bytes() - replicated
    led = memory_ledger(par)
    assert led.parameters == sharded // P + replicated
    assert led.gradients == led.parameters
    assert led.activations == par.saved_bytes() > 0
    ledgers = gather_ledgers(comm, led)
    assert len(ledgers) == P and ledgers[comm.rank] == led
    assert format_ledgers(ledgers).count("\n") == P


def test_sequence_parallel_divides_layernorm_activations(comm):
    P = comm.size
    E, B, S = 12, 2, 4 * P
    serial = TransformerBlock(E, P, 4 * P, seed=0)
    x = np.random.default_rng(1).standard_normal((B, S, E))
    full = ParallelTransformerBlock.from_serial(serial, comm)
    sp = ParallelTransformerBlock.from_serial(serial, comm, sequence_parallel=True)
    full(x)
    sp(local_slice(x, comm, 1))
    for name in ("norm1", "norm2"):            # xhat (N E) and rstd (N) of this rank's tokens
        a = dict(full.named_modules())[name].saved_bytes()
        b = dict(sp.named_modules())[name].saved_bytes()
        assert a == B * S * (E + 1) * 8 and b * P == a


def test_zero_ledger(comm):
    P = comm.size
    model = Linear(6, 4 * P, bias=False, seed=0)
    opt = ZeroAdam(model, comm, lr=0.1)
    model.weight.grad[...] = 1.0
    opt.step()
    assert memory_ledger(model, opt).optimizer_state == 2 * model.parameter_bytes() // P
