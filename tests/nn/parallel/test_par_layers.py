"""Column- and row-parallel linear layers against the serial Linear (float64, every rank count)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from parcheck import assert_close  # noqa: E402

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.nn import Linear  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    ColumnParallelLinear,
    RowParallelLinear,
    gather_parameters,
    memory_ledger,
)
from tensorpar.nn.parallel.mappings import local_slice  # noqa: E402

pytestmark = pytest.mark.mpi


def serial_run(layer, x, g):
    y = layer(x)
    dx = layer.backward(g)
    return y, dx, {n: p.grad.copy() for n, p in layer.named_parameters()}


@pytest.mark.parametrize("gather_output", [False, True])
def test_column_parallel_equals_serial(comm, gather_output, xp):
    P = comm.size
    rng = np.random.default_rng(0)
    serial = Linear(5, 12, seed=1, xp=xp)
    x, g = xp.asarray(rng.standard_normal((3, 4, 5))), xp.asarray(rng.standard_normal((3, 4, 12)))
    col = ColumnParallelLinear(5, 12, comm=comm, serial=serial, gather_output=gather_output)
    y_ref, dx_ref, grads = serial_run(serial, x, g)
    g_local = g if gather_output else local_slice(g, comm, -1)
    with C.count_traffic() as c:
        y = col(x)
        dx = col.backward(g_local)
    assert_close(y, y_ref if gather_output else local_slice(y_ref, comm, -1))
    assert_close(dx, dx_ref)
    for name, full in gather_parameters(col, grads=True).items():
        assert_close(full, grads[name])
    if P > 1:
        assert c.nbytes["Allreduce"] == x.nbytes and c.calls["Allreduce"] == 1
        assert c.nbytes.get("Allgatherv", 0) == (y_ref.nbytes if gather_output else 0)
    led = memory_ledger(col)
    assert led.parameters * P == Linear(5, 12, seed=1).parameter_bytes()


@pytest.mark.parametrize("input_is_parallel", [True, False])
def test_row_parallel_equals_serial(comm, input_is_parallel, xp):
    P = comm.size
    rng = np.random.default_rng(1)
    serial = Linear(12, 5, seed=2, xp=xp)
    x, g = xp.asarray(rng.standard_normal((3, 4, 12))), xp.asarray(rng.standard_normal((3, 4, 5)))
    row = RowParallelLinear(12, 5, comm=comm, serial=serial, input_is_parallel=input_is_parallel)
    y_ref, dx_ref, grads = serial_run(serial, x, g)
    x_in = local_slice(x, comm, -1) if input_is_parallel else x
    with C.count_traffic() as c:
        y = row(x_in)
        dx = row.backward(g)
    assert_close(y, y_ref)
    assert_close(dx, local_slice(dx_ref, comm, -1) if input_is_parallel else dx_ref)
    for name, full in gather_parameters(row, grads=True).items():
        assert_close(full, grads[name])
    if P > 1:
        assert c.calls["Allreduce"] == 1 and c.nbytes["Allreduce"] == y_ref.nbytes
        assert c.nbytes.get("Allgatherv", 0) == (0 if input_is_parallel else x.nbytes)


def test_sequence_parallel_column_then_row(comm, xp):
    """SP: tokens split; column all-gathers them, row reduce-scatters its output."""
    P = comm.size
    rng = np.random.default_rng(2)
    s1, s2 = Linear(6, 8 * P, seed=3, xp=xp), Linear(8 * P, 6, seed=4, xp=xp)
    x, g = (xp.asarray(rng.standard_normal((2, 3 * P, 6))),
            xp.asarray(rng.standard_normal((2, 3 * P, 6))))
    y_ref = s2(s1(x))
    dx_ref = s1.backward(s2.backward(g))
    col = ColumnParallelLinear(6, 8 * P, comm=comm, serial=s1, mode="sequence")
    row = RowParallelLinear(8 * P, 6, comm=comm, serial=s2, mode="sequence")
    with C.count_traffic() as c:
        y = row(col(local_slice(x, comm, 1)))
        dx = col.backward(row.backward(local_slice(g, comm, 1)))
    assert_close(y, local_slice(y_ref, comm, 1))
    assert_close(dx, local_slice(dx_ref, comm, 1))
    for lay, ser in ((col, s1), (row, s2)):
        for name, full in gather_parameters(lay, grads=True).items():
            assert_close(full, dict(ser.named_parameters())[name].grad)
    if P > 1:  # forward all-gather + reduce-scatter, backward the same: b s h elements each
        assert c.calls == {"Allgatherv": 2, "Reduce_scatter_block": 2, "meta": 4}
        assert c.nbytes["Allgatherv"] == 2 * x.nbytes
        assert c.nbytes["Reduce_scatter_block"] == 2 * x.nbytes


def test_sequence_parallel_needs_a_sequence_axis(comm):
    col = ColumnParallelLinear(4, 2 * comm.size, comm=comm, mode="sequence", seed=0)
    with pytest.raises(ValueError, match="at least 3"):
        col(np.ones((6, 4)))       # (tokens, features): axis 1 would be the features


def test_float32_follows_the_serial_layer(comm):
    P = comm.size
    serial = Linear(4, 2 * P, dtype=np.float32, seed=0)
    col = ColumnParallelLinear(4, 2 * P, comm=comm, serial=serial, gather_output=True)
    assert col.weight.data.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = col(x)
    assert y.dtype == np.float32
    assert_close(y, serial(x), tol=1e-6)
    with pytest.raises(TypeError, match="dtype"):
        col(x.astype(np.float64))


def test_sizes_not_divisible_raise_everywhere(comm):
    P = comm.size
    if P == 1:
        pytest.skip("every size divides by one rank")
    with pytest.raises(ValueError, match="not divisible by the"):
        ColumnParallelLinear(4, 4 * P + 1, comm=comm, seed=0)
    with pytest.raises(ValueError, match="not divisible by the"):
        RowParallelLinear(4 * P + 1, 4, comm=comm, seed=0)


def test_different_arguments_raise_everywhere(comm):
    P = comm.size
    if P == 1:
        pytest.skip("needs two ranks")
    with pytest.raises(ValueError, match="'weight' differs across ranks"):
        ColumnParallelLinear(4, 2 * P, comm=comm, seed=comm.rank)
    col = ColumnParallelLinear(4, 2 * P, comm=comm, seed=0)
    with pytest.raises(ValueError, match="differs across ranks"):
        col(np.ones((2 + comm.rank, 4)))
    with pytest.raises(ValueError, match="x must have 4 features"):
        col(np.ones((2, 4 if comm.rank else 3)))
