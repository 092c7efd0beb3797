"""Named communication steps: values against numpy, adjointness, counted bytes, agreement."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.nn.parallel import Mapping  # noqa: E402
from tensorpar.nn.parallel import mappings as M  # noqa: E402

pytestmark = pytest.mark.mpi


def _data(comm, shape, seed=0):
    """The same global array on every rank (rank-independent seed)."""
    return np.random.default_rng(seed).standard_normal(shape)


def test_tensor_parallel_steps(comm):
    P, r = comm.size, comm.rank
    x = _data(comm, (2, 3, 4 * P))
    mine = x[..., 4 * r:4 * (r + 1)]
    np.testing.assert_array_equal(M.scatter_to_tensor_parallel(x, comm), mine)
    np.testing.assert_array_equal(M.scatter_to_tensor_parallel_backward(mine, comm), x)
    np.testing.assert_array_equal(M.gather_from_tensor_parallel(mine, comm), x)
    np.testing.assert_array_equal(M.gather_from_tensor_parallel_backward(x, comm), mine)
    part = x * (r + 1)
    total = x * (P * (P + 1) / 2)
    with C.count_traffic() as c:
        np.testing.assert_allclose(M.reduce_from_tensor_parallel(part, comm), total, rtol=1e-15)
        np.testing.assert_allclose(M.copy_to_tensor_parallel_backward(part, comm), total,
                                   rtol=1e-15)
    assert M.copy_to_tensor_parallel(part, comm) is part
    assert M.reduce_from_tensor_parallel_backward(part, comm) is part
    assert c.nbytes.get("Allreduce", 0) == (2 * x.nbytes if P > 1 else 0)


def test_sequence_parallel_steps(comm):
    P, r = comm.size, comm.rank
    x = _data(comm, (2, 3 * P, 5))
    mine = x[:, 3 * r:3 * (r + 1)]
    part = x * (r + 1)
    total = x * (P * (P + 1) / 2)
    with C.count_traffic() as c:
        np.testing.assert_array_equal(M.scatter_to_sequence_parallel(x, comm), mine)
        np.testing.assert_array_equal(M.scatter_to_sequence_parallel_backward(mine, comm), x)
        np.testing.assert_array_equal(M.gather_from_sequence_parallel(mine, comm), x)
        rs = M.gather_from_sequence_parallel_backward(part, comm)
        np.testing.assert_allclose(rs, total[:, 3 * r:3 * (r + 1)], rtol=1e-15)
        rs = M.reduce_scatter_to_sequence_parallel(part, comm)
        np.testing.assert_allclose(rs, total[:, 3 * r:3 * (r + 1)], rtol=1e-15)
        np.testing.assert_array_equal(M.reduce_scatter_to_sequence_parallel_backward(mine, comm), x)
    if P > 1:  # three all-gathers (whole output) and two reduce-scatters (whole input)
        assert c.calls == {"Allgatherv": 3, "Reduce_scatter_block": 2, "meta": 6}
        assert c.nbytes["Allgatherv"] == 3 * x.nbytes
        assert c.nbytes["Reduce_scatter_block"] == 2 * x.nbytes
    else:
        assert c.total_calls == 0


@pytest.mark.parametrize("step", ["copy_to_tensor_parallel", "reduce_from_tensor_parallel",
                                  "scatter_to_tensor_parallel", "gather_from_tensor_parallel",
                                  "scatter_to_sequence_parallel", "gather_from_sequence_parallel",
                                  "reduce_scatter_to_sequence_parallel"])
def test_backward_is_the_adjoint(comm, step):
    """<forward(x), g> summed over ranks equals <x, backward(g)> summed over ranks."""
    P, r = comm.size, comm.rank
    m = Mapping(step, comm)
    rng = np.random.default_rng(100 + r)   # rank-dependent data: the adjoint must hold anyway
    x_shape = (2, 4 * P, 4 * P)
    x = rng.standard_normal(x_shape)
    if step in ("copy_to_tensor_parallel", "scatter_to_tensor_parallel",
                "scatter_to_sequence_parallel"):
        x = _data(comm, x_shape, seed=7)  # replicated input
    y = m(x)
    g = rng.standard_normal(y.shape)
    # gather_from_sequence_parallel feeds a column-parallel layer: each rank uses its copy of
    # the gathered tokens with its own weight shard, so its output gradients are independent
    if step in ("reduce_from_tensor_parallel", "gather_from_tensor_parallel"):
        g = _data(comm, y.shape, seed=8)  # replicated output gradient
    dx = m.backward(g)
    # replicated arrays count once: weight each rank's copy by 1/P
    wy = 1 / P if step in ("reduce_from_tensor_parallel", "gather_from_tensor_parallel") else 1.0
    wx = 1 / P if step in ("copy_to_tensor_parallel", "scatter_to_tensor_parallel",
                           "scatter_to_sequence_parallel") else 1.0
    lhs = float(C.allreduce(comm, np.array(wy * np.vdot(y, g))))
    rhs = float(C.allreduce(comm, np.array(wx * np.vdot(x, dx))))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_bad_input_raises_on_every_rank(comm):
    P, r = comm.size, comm.rank
    if P > 1:
        x = np.ones((2, 3 if r == 0 else 4))
        with pytest.raises(ValueError, match="differs across ranks"):
            M.reduce_from_tensor_parallel(x, comm)
        with pytest.raises(ValueError, match="not divisible"):
            M.scatter_to_sequence_parallel(np.ones((2, 2 * P + 1, 3)), comm)
    bad = np.ones(3, dtype=np.int64) if r == 0 else np.ones(3)
    with pytest.raises(TypeError, match="float32 or float64"):
        M.copy_to_tensor_parallel_backward(bad, comm)
    with pytest.raises(ValueError, match="step must be one of"):
        Mapping("broadcast")
