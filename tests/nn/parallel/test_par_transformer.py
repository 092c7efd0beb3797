"""Parallel feed-forward, attention and transformer block against the serial layers.

Forward output, input gradient and gathered parameter gradients equal the
serial layer's within 1e-12 (float64), in the 1D and the sequence-parallel
layouts, with the counted bytes of each step equal to the formula.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from parcheck import assert_close  # noqa: E402

from tensorpar._backend import to_numpy  # noqa: E402
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.nn import Adam, FeedForward, MSELoss, MultiheadAttention, TransformerBlock  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    ParallelFeedForward,
    ParallelMultiheadAttention,
    ParallelTransformerBlock,
    gather_parameters,
    memory_ledger,
)
from tensorpar.nn.parallel.mappings import local_slice  # noqa: E402

pytestmark = pytest.mark.mpi


E = 12  # divisible by 1, 2, 3 and 4 ranks


def make(kind, P, xp):
    if kind == "ff":
        return FeedForward(E, 4 * P, seed=5, xp=xp), ParallelFeedForward
    if kind == "attn":  # head_dim given explicitly: 2P heads of 3
        return MultiheadAttention(E, 2 * P, causal=True, head_dim=3, seed=6, xp=xp), \
            ParallelMultiheadAttention
    return TransformerBlock(E, P, 4 * P, causal=True, seed=7, xp=xp), ParallelTransformerBlock


def run(comm, kind, sp, xp=np):
    P = comm.size
    serial, cls = make(kind, P, xp)
    par = cls.from_serial(serial, comm, sequence_parallel=sp)
    rng = np.random.default_rng(11)
    x = xp.asarray(rng.standard_normal((2, 2 * P, E)))
    g = xp.asarray(rng.standard_normal((2, 2 * P, E)))
    y_ref = serial(x)
    dx_ref = serial.backward(g)
    cut = (lambda a: local_slice(a, comm, 1)) if sp else (lambda a: a)
    with C.count_traffic() as fwd:
        y = par(cut(x))
    with C.count_traffic() as bwd:
        dx = par.backward(cut(g))
    assert_close(y, cut(y_ref))
    assert_close(dx, cut(dx_ref))
    ref = dict(serial.named_parameters())
    grads = gather_parameters(par, grads=True)
    assert sorted(grads) == sorted(ref)
    for name, full in grads.items():
        assert_close(full, ref[name].grad)
    for name, full in gather_parameters(par).items():
        np.testing.assert_array_equal(full, to_numpy(ref[name].data))
    return x, fwd, bwd


@pytest.mark.parametrize("kind", ["ff", "attn"])
def test_one_allreduce_forward_one_backward(comm, kind, xp):
    x, fwd, bwd = run(comm, kind, sp=False, xp=xp)
    if comm.size > 1:
        for c in (fwd, bwd):
            assert {k: v for k, v in c.calls.items() if k != "meta"} == {"Allreduce": 1}
            assert c.nbytes["Allreduce"] == x.nbytes        # b * s * h elements


@pytest.mark.parametrize("kind", ["ff", "attn"])
def test_sequence_parallel_reduce_scatter_plus_all_gather(comm, kind, xp):
    x, fwd, bwd = run(comm, kind, sp=True, xp=xp)
    if comm.size > 1:
        for c in (fwd, bwd):
            assert {k: v for k, v in c.calls.items() if k != "meta"} == \
                {"Allgatherv": 1, "Reduce_scatter_block": 1}
            assert c.nbytes["Allgatherv"] == c.nbytes["Reduce_scatter_block"] == x.nbytes


@pytest.mark.parametrize("sp", [False, True])
def test_transformer_block(comm, sp, xp):
    x, fwd, bwd = run(comm, "block", sp=sp, xp=xp)
    if comm.size == 1:
        return
    if not sp:
        assert fwd.calls["Allreduce"] == bwd.calls["Allreduce"] == 2
        assert fwd.total_bytes == bwd.total_bytes == 2 * x.nbytes
    else:
        assert fwd.calls["Allgatherv"] == fwd.calls["Reduce_scatter_block"] == 2
        assert fwd.total_bytes == 4 * x.nbytes
        ln_bytes = 4 * E * 8  # two LayerNorms, weight and bias of E float64
        assert bwd.calls["Allreduce"] == 1 and bwd.nbytes["Allreduce"] == ln_bytes
        assert bwd.total_bytes == 4 * x.nbytes + ln_bytes


def test_regather_keeps_one_pth_of_the_tokens(comm, xp):
    """Megatron-SP: every activation the block keeps is this rank's tokens; two more all-gathers."""
    P = comm.size
    serial = TransformerBlock(E, P, 4 * P, causal=True, seed=7, xp=xp)
    keep = ParallelTransformerBlock.from_serial(serial, comm, sequence_parallel=True)
    par = ParallelTransformerBlock.from_serial(serial, comm, sequence_parallel=True, regather=True)
    rng = np.random.default_rng(11)
    x = xp.asarray(rng.standard_normal((2, 2 * P, E)))
    g = xp.asarray(rng.standard_normal((2, 2 * P, E)))
    y_ref = serial(x)
    dx_ref = serial.backward(g)
    keep(local_slice(x, comm, 1))
    y = par(local_slice(x, comm, 1))
    n = x.size * x.itemsize
    # the attention's and linear1's inputs: the whole sequence in `keep`, my tokens here
    assert keep.saved_bytes() - par.saved_bytes() == 2 * (n - n // P)
    assert par.saved_bytes() * P == serial.saved_bytes()     # every kept activation: 1/P
    with C.count_traffic() as bwd:
        dx = par.backward(local_slice(g, comm, 1))
    assert_close(y, local_slice(y_ref, comm, 1))
    assert_close(dx, local_slice(dx_ref, comm, 1))
    ref = dict(serial.named_parameters())
    for name, full in gather_parameters(par, grads=True).items():
        assert_close(full, ref[name].grad)
    if P > 1:
        assert bwd.calls["Allgatherv"] == 4 and bwd.nbytes["Allgatherv"] == 4 * n
        assert bwd.calls["Reduce_scatter_block"] == 2


def test_block_gradients_accumulate_like_serial(comm):
    """Two backward calls under sequence parallelism: LayerNorm gradients summed once each."""
    P = comm.size
    serial = TransformerBlock(E, P, 4 * P, seed=8)
    par = ParallelTransformerBlock.from_serial(serial, comm, sequence_parallel=True)
    rng = np.random.default_rng(3)
    for _ in range(2):
        x, g = rng.standard_normal((2, 2 * P, E)), rng.standard_normal((2, 2 * P, E))
        serial(x)
        serial.backward(g)
        par(local_slice(x, comm, 1))
        par.backward(local_slice(g, comm, 1))
    ref = dict(serial.named_parameters())
    for name, full in gather_parameters(par, grads=True).items():
        assert_close(full, ref[name].grad)


@pytest.mark.parametrize("sp", [False, True])
def test_twenty_adam_steps_equal_serial_training(comm, sp):
    P = comm.size
    serial = TransformerBlock(E, P, 4 * P, causal=True, seed=9)
    par = ParallelTransformerBlock.from_serial(serial, comm, sequence_parallel=sp)
    opt_ref, opt = Adam(serial, lr=1e-2), Adam(par, lr=1e-2)
    cut = (lambda a: local_slice(a, comm, 1)) if sp else (lambda a: a)
    rng = np.random.default_rng(4)
    loss_ref, loss = MSELoss(), MSELoss()
    for _ in range(20):
        x, y = rng.standard_normal((2, 2 * P, E)), rng.standard_normal((2, 2 * P, E))
        opt_ref.zero_grad()
        loss_ref(serial(x), y)
        serial.backward(loss_ref.backward())
        opt_ref.step()
        opt.zero_grad()
        loss(par(cut(x)), cut(y))
        g = loss.backward()
        par.backward(g / P if sp else g)   # the mean over all tokens is 1/P of each shard's mean
        opt.step()
    ref = dict(serial.named_parameters())
    for name, full in gather_parameters(par).items():
        assert_close(full, ref[name].data, tol=1e-10)


def test_parameter_memory_is_one_pth(comm):
    P = comm.size
    serial = FeedForward(6, 4 * P, bias=False, seed=0)
    par = ParallelFeedForward.from_serial(serial, comm)
    assert memory_ledger(par).parameters * P == serial.parameter_bytes()
    attn = MultiheadAttention(6, 2 * P, bias=False, head_dim=3, seed=0)
    pattn = ParallelMultiheadAttention.from_serial(attn, comm)
    assert memory_ledger(pattn).parameters * P == attn.parameter_bytes()


def test_heads_not_divisible_raise_everywhere(comm):
    P = comm.size
    if P == 1:
        pytest.skip("every size divides by one rank")
    with pytest.raises(ValueError, match="num_heads = 5 is not divisible"):
        ParallelMultiheadAttention(10, 5, comm=comm, seed=0)
    with pytest.raises(ValueError, match="not divisible"):
        ParallelFeedForward(4, 4 * P + 1, comm=comm, seed=0)
    blk = ParallelTransformerBlock(E, P, 4 * P, comm=comm, seed=0, sequence_parallel=True)
    with pytest.raises(ValueError, match="'x.shape' differs across ranks"):
        blk(np.ones((1, 2 + comm.rank, E)))    # token shards of different lengths
