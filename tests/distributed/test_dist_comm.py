"""The communication module: buffer collectives, counters, trees and error agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.comm import check_all  # noqa: E402
from tensorpar.distributed.errors import collective_guard  # noqa: E402

pytestmark = pytest.mark.mpi


def _rows(comm, counts, width=3, base=0.0):
    """Rows of rank r hold the value base + global row index, so results are checkable."""
    start = sum(counts[: comm.rank])
    rows = np.arange(start, start + counts[comm.rank], dtype=np.float64) + base
    return np.repeat(rows[:, None], width, axis=1)


def test_resolve_comm(comm):
    from mpi4py import MPI

    assert C.resolve_comm(None) == MPI.COMM_WORLD
    assert C.resolve_comm(comm) is comm
    with pytest.raises(TypeError, match="comm must be an mpi4py Intracomm"):
        C.resolve_comm("world")


def test_allreduce_values_and_count(comm):
    x = np.full((2, 3), float(comm.rank + 1))
    with C.count_traffic() as c:
        s = C.allreduce(comm, x)
        m = C.allreduce(comm, x, op="max")
    P = comm.size
    np.testing.assert_array_equal(s, np.full((2, 3), P * (P + 1) / 2))
    np.testing.assert_array_equal(m, np.full((2, 3), float(P)))
    assert s is not x
    scalar = C.allreduce(comm, 2.0)
    assert scalar.shape == () and float(scalar) == 2.0 * P
    expected = 2 * x.nbytes if P > 1 else 0
    assert c.total_bytes == expected
    assert c.calls.get("Allreduce", 0) == (2 if P > 1 else 0)
    with pytest.raises(ValueError, match="op must be one of"):
        C.allreduce(comm, x, op="mean")


def test_reduce_scatter_uneven_counts(comm):
    P = comm.size
    counts = [r % 3 for r in range(P)]  # includes empty parts
    total = sum(counts)
    x = np.arange(total * 2, dtype=np.float64).reshape(total, 2) * (comm.rank + 1)
    with C.count_traffic() as c:
        mine = C.reduce_scatter(comm, x, counts)
    start = sum(counts[: comm.rank])
    ref = np.arange(total * 2, dtype=np.float64).reshape(total, 2)[start:start + counts[comm.rank]]
    np.testing.assert_array_equal(mine, ref * P * (P + 1) / 2)
    assert c.nbytes.get("Reduce_scatter", 0) == (x.nbytes if P > 1 else 0)
    with pytest.raises(ValueError, match="counts sum to"):
        C.reduce_scatter(comm, x[:0] if total else np.ones((1, 2)), counts)
    with pytest.raises(ValueError, match="non-negative row counts"):
        C.reduce_scatter(comm, x, counts + [1])


def test_reduce_scatter_along_axis_and_block(comm):
    P = comm.size
    x = np.ones((2, 3 * P)) * (comm.rank + 1)
    mine = C.reduce_scatter(comm, x, [3] * P, axis=1)
    assert mine.shape == (2, 3)
    np.testing.assert_array_equal(mine, P * (P + 1) / 2)
    blk = C.reduce_scatter_block(comm, x, axis=-1)
    np.testing.assert_array_equal(blk, mine)
    if P > 1:
        with pytest.raises(ValueError, match="not a multiple"):
            C.reduce_scatter_block(comm, np.ones((P + 1, 2)))


@pytest.mark.parametrize("give_counts", [True, False])
def test_allgatherv(comm, give_counts):
    counts = [(r + 1) % 3 for r in range(comm.size)]
    x = _rows(comm, counts)
    with C.count_traffic() as c:
        full = C.allgatherv(comm, x, counts if give_counts else None)
    np.testing.assert_array_equal(full, _rows_all(counts))
    assert c.nbytes.get("Allgatherv", 0) == (full.nbytes if comm.size > 1 else 0)
    meta = 0 if give_counts or comm.size == 1 else 1
    assert c.calls.get("meta", 0) == meta
    xt = C.allgatherv(comm, np.ascontiguousarray(x.T), counts, axis=1)
    np.testing.assert_array_equal(xt, _rows_all(counts).T)


def _rows_all(counts, width=3):
    rows = np.arange(sum(counts), dtype=np.float64)
    return np.repeat(rows[:, None], width, axis=1)


@pytest.mark.parametrize("with_shape", [True, False])
def test_bcast(comm, with_shape):
    root = comm.size - 1
    x = np.arange(6.0).reshape(2, 3) if comm.rank == root else None
    with C.count_traffic() as c:
        if with_shape:
            y = C.bcast(comm, x, root=root, shape=(2, 3), dtype=np.float64)
        else:
            y = C.bcast(comm, x, root=root)
    np.testing.assert_array_equal(y, np.arange(6.0).reshape(2, 3))
    assert c.nbytes.get("Bcast", 0) == (48 if comm.size > 1 else 0)
    assert c.calls.get("meta", 0) == (0 if with_shape or comm.size == 1 else 1)


def test_gatherv_scatterv_roundtrip(comm):
    counts = [2 * r + 1 for r in range(comm.size)]
    root = comm.size // 2
    full = _rows_all(counts) if comm.rank == root else None
    with C.count_traffic() as c:
        part = C.scatterv(comm, full, counts, root=root)
        back = C.gatherv(comm, part, counts, root=root)
    np.testing.assert_array_equal(part, _rows(comm, counts))
    if comm.rank == root:
        np.testing.assert_array_equal(back, _rows_all(counts))
    else:
        assert back is None
    if comm.size > 1:
        mine = part.nbytes if comm.rank != root else _rows_all(counts).nbytes
        assert c.nbytes["Scatterv"] == mine and c.nbytes["Gatherv"] == mine


def test_send_recv_ring(comm):
    if comm.size == 1:
        pytest.skip("point-to-point needs two ranks")
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    x = np.full((comm.rank + 1, 2), float(comm.rank), dtype=np.float32)
    with C.count_traffic() as c:
        if comm.rank % 2 == 0:
            C.send(comm, x, right)
            y = C.recv(comm, left)
        else:
            y = C.recv(comm, left)
            C.send(comm, x, right)
    assert y.dtype == np.float32 and y.shape == (left + 1, 2)
    np.testing.assert_array_equal(y, float(left))
    assert c.nbytes["Send"] == x.nbytes and c.nbytes["Recv"] == y.nbytes


@pytest.mark.parametrize("root_at_end", [False, True])
def test_tree_reduce_is_ordered(comm, root_at_end):
    root = comm.size - 1 if root_at_end else 0
    x = np.array([[float(comm.rank)]])
    with C.count_traffic() as c:
        out = C.tree_reduce(comm, x, lambda a, b: np.vstack([a, b]), root=root)
    if comm.rank == root:
        # relative to the root, ranks are stacked in increasing order
        want = [(root + k) % comm.size for k in range(comm.size)]
        assert out[:, 0].tolist() == want
    else:
        assert out is None
    levels = math.ceil(math.log2(comm.size)) if comm.size > 1 else 0
    assert c.calls.get("Recv", 0) + c.calls.get("Send", 0) <= levels


def test_tree_schedule_depth():
    for P in range(1, 20):
        steps = C.tree_schedule(P, 0)
        assert len(steps) == (math.ceil(math.log2(P)) if P > 1 else 0)
        assert all(role == "recv" for _, role in steps)
        # every non-root rank sends exactly once, as its last step
        for r in range(1, P):
            s = C.tree_schedule(P, r)
            assert s[-1][1] == "send" and sum(role == "send" for _, role in s) == 1


def test_counters_by_comm_and_nesting(comm):
    g = C.traffic()
    before = g.calls.get("Allreduce", 0)
    with C.count_traffic() as outer:
        with C.count_traffic() as inner:
            C.allreduce(comm, np.ones(4))
        C.allreduce(comm, np.ones(2))
    n = 1 if comm.size > 1 else 0
    assert inner.calls.get("Allreduce", 0) == n and outer.calls.get("Allreduce", 0) == 2 * n
    assert g.calls.get("Allreduce", 0) - before == 2 * n
    if comm.size > 1:
        assert outer.by_comm[comm.Get_name()]["Allreduce"] == 48
        assert outer.events == [("Allreduce", comm.size, 32), ("Allreduce", comm.size, 16)]


def test_metadata_objects_and_any_true(comm):
    with C.count_traffic() as c:
        got = C.bcast_object(comm, {"shape": (2, 3)} if comm.rank == 0 else None)
        every = C.allgather_object(comm, comm.rank * 10)
        flag = C.any_true(comm, comm.rank == comm.size - 1)
        none = C.any_true(comm, False)
    assert got == {"shape": (2, 3)} and every == [10 * r for r in range(comm.size)]
    assert flag is True and none is False
    assert c.total_bytes == 0 and c.total_calls == 0  # metadata only
    assert c.calls.get("meta", 0) == (4 if comm.size > 1 else 0)


def test_check_all_raises_everywhere(comm):
    check_all(comm, True, "unused")
    bad = comm.size - 1
    with pytest.raises(ValueError) as info:
        check_all(comm, comm.rank != bad, f"bad input on {comm.rank}")
    if comm.rank == bad:
        assert str(info.value) == f"bad input on {bad}"
    else:
        assert f"rank(s) [{bad}]" in str(info.value) and f"bad input on {bad}" in str(info.value)


def test_agree_equal_values_cost_one_metadata_call(comm):
    with C.count_traffic() as c:
        C.agree(comm, {"rank": 3, "tol": 1e-8, "shape": (4, 5), "A": np.arange(6.0)})
    assert c.total_calls == 0 and c.calls.get("meta", 0) == (1 if comm.size > 1 else 0)


def test_agree_names_the_argument_and_every_rank_value(comm):
    if comm.size == 1:
        pytest.skip("needs at least two ranks to differ")
    last = comm.size - 1
    with pytest.raises(ValueError) as info:
        C.agree(comm, {"rank": 3, "max_iter": 4 if comm.rank == last else 5})
    msg = str(info.value)
    assert "argument 'max_iter' differs across ranks" in msg and "'rank'" not in msg
    assert f"rank {last}: 4" in msg and "rank 0: 5" in msg


def test_agree_raises_the_local_error_type_on_every_rank(comm):
    last = comm.size - 1
    err = TypeError("mode must be an integer, got str") if comm.rank == last else None
    with pytest.raises(TypeError, match="mode must be an integer") as info:
        C.agree(comm, {"mode": 1}, error=err)
    if comm.size > 1:
        assert f"(on rank {last} of {comm.size})" in str(info.value)
    err = KeyError("x") if comm.rank == 0 else None   # other types become RuntimeError
    with pytest.raises(KeyError if comm.size == 1 else RuntimeError):
        C.agree(comm, error=err)


def test_fingerprint_distinguishes_values_not_identity():
    a = np.arange(6.0)
    assert C.fingerprint(a) == C.fingerprint(a.copy()) == C.fingerprint(a.reshape(2, 3).ravel())
    assert C.fingerprint(a) != C.fingerprint(a.reshape(2, 3))
    assert C.fingerprint(a) != C.fingerprint(a.astype(np.float32))
    assert C.fingerprint({"b": 1, "a": (2, 3)}) == C.fingerprint({"a": (2, 3), "b": 1})
    assert C.fingerprint([1, 2]) != C.fingerprint((1, 2))
    assert 0 <= C.fingerprint("x") < 2 ** 62


def test_collective_guard(comm):
    with collective_guard(comm):
        pass
    bad = 0
    with pytest.raises((KeyError, RuntimeError)) as info:
        with collective_guard(comm):
            if comm.rank == bad:
                raise KeyError("missing piece")
    if comm.rank == bad:
        assert info.type is KeyError
    else:
        assert info.type is RuntimeError and "missing piece" in str(info.value)


def test_cupy_arrays_are_staged(comm, xp):
    x = xp.full((3,), float(comm.rank + 1))
    s = C.allreduce(comm, x)
    assert type(s) is type(x)
    P = comm.size
    assert float(s.sum()) == pytest.approx(3 * P * (P + 1) / 2)
    full = C.allgatherv(comm, x[:1], [1] * P)
    assert type(full) is type(x) and full.shape == (P,)
