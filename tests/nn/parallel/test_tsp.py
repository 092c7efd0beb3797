"""TSP (folded tensor + sequence parallel) layers against the serial ones at any rank count."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402
from parcheck import assert_close  # noqa: E402

from tensorpar.distributed.comm import count_traffic  # noqa: E402
from tensorpar.nn import FeedForward, MultiheadAttention, TransformerBlock  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    RotatedLinear,
    TSPAttention,
    TSPFeedForward,
    TSPTransformerBlock,
    gathered_state,
    memory_ledger,
    tsp_gather,
    tsp_positions,
    tsp_split,
)
from tensorpar.nn.parallel.tsp import block_traffic, causal_work, tsp_traffic  # noqa: E402

pytestmark = pytest.mark.mpi


def check_against_serial(comm, serial, par, x, g, causal):
    """Forward, input gradient and gathered parameter gradients of ``par`` equal ``serial``'s."""
    y_ref = serial(x)
    dx_ref = serial.backward(g)
    y = par(tsp_split(x, comm, causal))
    dx = par.backward(tsp_split(g, comm, causal))
    assert_close(tsp_gather(y, comm, causal), y_ref)
    assert_close(tsp_gather(dx, comm, causal), dx_ref)
    grads = gathered_state(par, grad=True)
    ref = dict(serial.named_parameters())
    assert set(grads) == set(ref)
    for name, gr in grads.items():
        assert_close(gr, ref[name].grad, err_msg=name)


def test_positions_partition_the_sequence(comm):
    P = comm.Get_size()
    for causal in (False, True):
        got = np.sort(np.concatenate([tsp_positions(4 * P, P, r, causal) for r in range(P)]))
        assert (got == np.arange(4 * P)).all()
    work = causal_work(8 * P, P)
    assert len(set(work)) == 1 and sum(work) == 8 * P * (8 * P + 1) // 2


@pytest.mark.parametrize("causal", [False, True])
def test_tsp_attention_equals_serial(comm, causal):
    P = comm.Get_size()
    E, H, S = 3 * P * 2, 3, 4 * P
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((2, S, E)), rng.standard_normal((2, S, E))
    serial = MultiheadAttention(E, H, causal=causal, seed=4)
    check_against_serial(comm, serial, TSPAttention(E, H, causal=causal, seed=4), x, g, causal)


def test_tsp_feedforward_equals_serial(comm):
    P = comm.Get_size()
    E, F, S = 2 * P, 4 * P, 3 * P
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, S, E)), rng.standard_normal((2, S, E))
    check_against_serial(comm, FeedForward(E, F, seed=1), TSPFeedForward(E, F, seed=1), x, g, False)


@pytest.mark.parametrize("causal", [False, True])
def test_tsp_block_equals_serial(comm, causal, xp):
    P = comm.Get_size()
    E, H, F, S = 2 * P, 2, 4 * P, 2 * P
    rng = np.random.default_rng(5)
    x, g = (xp.asarray(rng.standard_normal((3, S, E))) for _ in range(2))
    serial = TransformerBlock(E, H, F, causal=causal, seed=9, xp=xp)
    par = TSPTransformerBlock(E, H, F, causal=causal, seed=9, xp=xp)
    check_against_serial(comm, serial, par, x, g, causal)


def test_zigzag_balances_the_causal_work(comm):
    """Every rank computes 2P + 1 of its 4P score chunk products (a contiguous split would not)."""
    P = comm.Get_size()
    attn = TSPAttention(2 * P, 2, causal=True, seed=0)
    attn(np.ones((1, 4, 2 * P)))
    assert attn.chunk_products == 2 * P + 1
    got = comm.allgather(attn.chunk_products)
    assert got == [2 * P + 1] * P


def test_tsp_attention_traffic_is_the_formula(comm):
    P = comm.Get_size()
    E, S, B = 2 * P, 2 * P, 2
    attn = TSPAttention(E, 2, causal=True, seed=0)
    x = np.random.default_rng(0).standard_normal((B, S // P, E))
    with count_traffic() as fwd:
        y = attn(x)
    with count_traffic() as bwd:
        attn.backward(np.ones_like(y))
    att = tsp_traffic(B, S, E, P)
    rot = [RotatedLinear(E, 3 * E), RotatedLinear(E, E)]
    from tensorpar.nn.parallel.rotated import rotated_traffic
    proj = [rotated_traffic(r.in_features, r.out_features, True, P) for r in rot]
    assert fwd.nbytes.get("Sendrecv", 0) == att["forward_bytes"] + sum(p["forward_bytes"] for p in proj)
    assert bwd.nbytes.get("Sendrecv", 0) == att["backward_bytes"] + sum(p["backward_bytes"] for p in proj)
    assert fwd.calls.get("Sendrecv", 0) == 3 * (P - 1)
    assert bwd.calls.get("Sendrecv", 0) == (3 * (P - 1) + 1 if P > 1 else 0)
    assert fwd.total_bytes == fwd.nbytes.get("Sendrecv", 0)


def test_tsp_block_traffic_and_memory(comm):
    P = comm.Get_size()
    E, H, F, B, S = 2 * P, 2, 4 * P, 2, 2 * P
    blk = TSPTransformerBlock(E, H, F, causal=True, seed=0)
    serial = TransformerBlock(E, H, F, causal=True, seed=0)
    x = np.random.default_rng(0).standard_normal((B, S // P, E))
    with count_traffic() as fwd:
        y = blk(x)
    with count_traffic() as bwd:
        blk.backward(np.ones_like(y))
    want = block_traffic(B, S, E, F, P)
    assert fwd.nbytes.get("Sendrecv", 0) == want["forward_bytes"]
    assert bwd.nbytes.get("Sendrecv", 0) == want["backward_bytes"]
    assert bwd.nbytes.get("Allreduce", 0) == (4 * E * 8 if P > 1 else 0)   # the LayerNorm grads
    # memory: every matrix (and its bias) 1/P exactly, the LayerNorms (4 E) replicated
    norms = 4 * E * 8
    assert (memory_ledger(blk).parameters - norms) * P == serial.parameter_bytes() - norms
    attn = TSPAttention(E, H, seed=0)
    assert memory_ledger(attn).parameters * P == MultiheadAttention(E, H, seed=0).parameter_bytes()


def test_tsp_indivisible_sequence_raises_everywhere(comm):
    P = comm.Get_size()
    with pytest.raises(ValueError, match="seq_len=.* must be divisible by"):
        tsp_positions(2 * P + 1, P, comm.Get_rank(), causal=True)


def test_tsp_bad_input_on_one_rank_raises_everywhere(comm):
    attn = TSPAttention(2 * comm.Get_size(), 2, seed=0)
    bad = comm.Get_rank() == 0
    x = np.ones((1, 3 if bad else 2, 2 * comm.Get_size()))
    if comm.Get_size() == 1:
        attn(x)
        return
    with pytest.raises(ValueError, match="'shape' differs across ranks"):
        attn(x)


def test_tsp_disagreeing_causal_raises_on_every_rank(tmp_path, serial_only):
    res = run_job(tmp_path, """
        from tensorpar.distributed.comm import resolve_comm
        from tensorpar.nn.parallel import TSPAttention
        rank = resolve_comm().Get_rank()
        try:
            TSPAttention(4, 2, causal=rank == 0, seed=0)
        except ValueError as exc:
            print(f"rank {rank}: {exc}", flush=True)
    """)
    assert res.returncode == 0, res.stderr
    for rank in (0, 1):
        assert f"rank {rank}: argument 'causal' differs across ranks" in res.stdout, res.stdout
