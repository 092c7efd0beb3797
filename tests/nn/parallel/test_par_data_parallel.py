"""Data parallelism and the ZeRO-sharded Adam against serial training on the whole batch.

Each rank trains on its block of a global batch; after 20 Adam steps the
weights equal serial training's within 1e-10 (float64), plain and sharded,
including TT layers, a TT-GRU, and a 2-D data x tensor grid.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.grid import ProcessGrid  # noqa: E402
from tensorpar.nn import GELU, GRU, Adam, FeedForward, Linear, MSELoss, Sequential, TTLinear  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    DataParallel,
    ParallelFeedForward,
    ZeroAdam,
    gather_parameters,
    memory_ledger,
)

pytestmark = pytest.mark.mpi

STEPS = 20


def mlp(seed=0):
    return Sequential(Linear(6, 8, seed=seed), GELU(), Linear(8, 3, seed=seed + 1))


def tt_mlp(seed=0):
    return Sequential(TTLinear((2, 3), (2, 4), 2, seed=seed), GELU(), Linear(8, 3, seed=seed + 1))


class GRUHead(Sequential):
    """A TT-GRU read out at every step (batch first), for the data-parallel test."""

    def __init__(self, seed=0):
        super().__init__(GRU(6, 4, batch_first=True, tt_input_shape=(2, 3),
                             tt_hidden_shape=(2, 2), tt_rank=2, seed=seed),
                         Linear(4, 3, seed=seed + 1))

    def forward(self, x):
        out, _ = self[0](x)
        return self[1](out)

    def backward(self, g):
        return self[0].backward(self[1].backward(g))


def batches(kind, P, steps=STEPS):
    rng = np.random.default_rng(42)
    shape = (4 * P, 5, 6) if kind == "gru" else (4 * P, 6)
    out_shape = shape[:-1] + (3,)
    return [(rng.standard_normal(shape), rng.standard_normal(out_shape)) for _ in range(steps)]


def build(kind, seed=0):
    return {"mlp": mlp, "tt": tt_mlp, "gru": GRUHead}[kind](seed)


def train(model, opt, data, lo=0, hi=None, backward=None):
    loss = MSELoss()
    for x, y in data:
        opt.zero_grad()
        loss(model(x[lo:hi]), y[lo:hi])
        (backward or model.backward)(loss.backward())
        opt.step()
    return model


def rows(comm, n):
    m = n // comm.size
    return comm.rank * m, (comm.rank + 1) * m


@pytest.mark.parametrize("kind", ["mlp", "tt", "gru"])
def test_data_parallel_adam_equals_serial(comm, kind):
    data = batches(kind, comm.size)
    ref = build(kind)
    train(ref, Adam(ref, lr=1e-2), data)
    # rank-dependent initial values: the constructor's broadcast must make the replicas equal
    dp = DataParallel(build(kind, seed=comm.rank), comm)
    lo, hi = rows(comm, data[0][0].shape[0])
    train(dp, Adam(dp, lr=1e-2), data, lo, hi)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(dict(dp.named_parameters())["module." + name].data, p.data,
                                   rtol=0, atol=1e-10)


def test_bucketed_allreduce_counts(comm):
    model = mlp()
    nbytes = model.parameter_bytes()
    dp = DataParallel(model, comm, bucket_bytes=250)   # 24 + 192 | 64 | 384 bytes
    assert dp.buckets == [[3, 2], [1], [0]]
    x, y = batches("mlp", comm.size, 1)[0]
    loss = MSELoss()
    loss(dp(x), y)
    with C.count_traffic() as c:
        dp.backward(loss.backward())
    if comm.size > 1:
        assert c.calls == {"Allreduce": 3, "meta": 1}
        assert c.nbytes["Allreduce"] == nbytes
    else:
        assert c.total_calls == 0


def test_weighted_average_for_unequal_batches(comm):
    P, r = comm.size, comm.rank
    x, y = batches("mlp", P, 1)[0]
    sizes = [1 + (k % 3) for k in range(P)]            # unequal local batches
    lo = sum(sizes[:r])
    x, y = x[:sum(sizes)], y[:sum(sizes)]
    ref, loss = mlp(), MSELoss()
    loss(ref(x), y)
    ref.backward(loss.backward())
    dp = DataParallel(mlp(), comm)
    with dp.no_sync():
        loss(dp(x[lo:lo + sizes[r]]), y[lo:lo + sizes[r]])
        dp.backward(loss.backward())
    dp.sync_gradients(weight=sizes[r])
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(dict(dp.named_parameters())["module." + name].grad, p.grad,
                                   rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", ["mlp", "tt"])
def test_zero_adam_equals_serial(comm, kind):
    P = comm.size
    data = batches(kind, P)
    ref = build(kind)
    ref_opt = Adam(ref, lr=1e-2)
    train(ref, ref_opt, data)
    model = build(kind, seed=10 * comm.rank)     # rank-dependent start: rank 0's is broadcast
    opt = ZeroAdam(model, comm, lr=1e-2)
    lo, hi = rows(comm, data[0][0].shape[0])
    with C.count_traffic() as c:
        train(model, opt, data, lo, hi)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(dict(model.named_parameters())[name].data, p.data, rtol=0,
                                   atol=1e-10)
    n = model.num_parameters()
    padded = -(-n // P) * P
    assert opt.state_bytes() == 2 * 8 * padded // P
    if n % P == 0:
        assert opt.state_bytes() * P == ref_opt.state_bytes()
    if P > 1:  # per step: reduce-scatter of the flat gradient, all-gather of the flat weights
        assert c.calls["Reduce_scatter_block"] == c.calls["Allgatherv"] == STEPS
        assert c.nbytes["Reduce_scatter_block"] == c.nbytes["Allgatherv"] == STEPS * padded * 8


def test_zero_state_is_exactly_one_pth(comm):
    P = comm.size
    model = Linear(12, 2 * P, bias=False, seed=0)       # 24 P entries: divisible by P
    opt = ZeroAdam(model, comm, lr=0.1)
    model.weight.grad[...] = 1.0
    opt.step()
    led = memory_ledger(model, opt)
    assert led.optimizer_state * P == 2 * model.parameter_bytes()


def grids(P):
    return [(d, P // d) for d in range(1, P + 1) if P % d == 0]


@pytest.mark.parametrize("sharded", [False, True])
def test_data_times_tensor_grid(comm, sharded):
    """2-D grid: tensor-parallel feed-forward on the rows, data parallel (or ZeRO) on the columns."""
    P = comm.size
    for D, T in grids(P):
        with ProcessGrid((D, T), comm) as grid:
            tcomm, dcomm = grid.slice_comm(0), grid.slice_comm(1)   # same data / tensor coord
            d = grid.coords[0]
            rng = np.random.default_rng(7)
            data = [(rng.standard_normal((2 * D, 3, 6)), rng.standard_normal((2 * D, 3, 6)))
                    for _ in range(STEPS)]
            ref = FeedForward(6, 12, seed=3)
            train(ref, Adam(ref, lr=1e-2), data)
            par = ParallelFeedForward.from_serial(FeedForward(6, 12, seed=3), tcomm)
            if sharded:
                opt = ZeroAdam(par, dcomm, lr=1e-2)
                train(par, opt, data, 2 * d, 2 * d + 2)
            else:
                dp = DataParallel(par, dcomm)
                train(dp, Adam(dp, lr=1e-2), data, 2 * d, 2 * d + 2)
            for name, full in gather_parameters(par).items():
                np.testing.assert_allclose(full, dict(ref.named_parameters())[name].data,
                                           rtol=0, atol=1e-10, err_msg=f"grid {(D, T)} {name}")


def test_mismatched_models_raise_everywhere(comm):
    if comm.size == 1:
        pytest.skip("needs two ranks")
    model = Linear(3, 2 + comm.rank, seed=0)
    with pytest.raises(ValueError, match="'layout' differs across ranks"):
        DataParallel(model, comm)
    with pytest.raises(ValueError, match="'lr' differs across ranks"):
        ZeroAdam(Linear(3, 2, seed=0), comm, lr=0.1 * (1 + comm.rank))
