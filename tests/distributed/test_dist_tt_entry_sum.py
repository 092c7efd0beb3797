"""Distributed entry sums: equal to the serial ones, three messages, exact in scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tensorpar import TTTensor, random_tt, tt_scale  # noqa: E402
from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.distributed.tt.entry_sum import dist_tt_entry_mean, dist_tt_entry_sum  # noqa: E402
from tensorpar.distributed.tt.tensor import DistTTTensor  # noqa: E402
from tensorpar.tt.entry_sum import tt_entry_mean, tt_entry_sum  # noqa: E402

pytestmark = pytest.mark.mpi


def _scatter(x, comm):
    return DistTTTensor.scatter(x if comm.rank == 0 else None, comm)


@pytest.mark.parametrize("shape, rank", [((7, 5, 6, 4), 3), ((11,), 1), ((4, 9, 7), 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_equal_to_serial_and_message_count(comm, shape, rank, dtype):
    x = random_tt(shape, rank, seed=3, dtype=dtype)
    X = _scatter(x, comm)
    with C.count_traffic() as c:
        s, m = dist_tt_entry_sum(X), dist_tt_entry_mean(X)
    assert s == pytest.approx(tt_entry_sum(x), rel=1e-13)
    assert m == pytest.approx(tt_entry_mean(x), rel=1e-13)
    if comm.size > 1:  # per call: agree (meta), exponents (max) and mode sums (sum)
        assert c.calls == {"meta": 2, "Allreduce": 4}
        words = sum(a * b for a, b in zip(X.ranks[:-1], X.ranks[1:]))
        item = np.dtype(dtype).itemsize
        assert c.nbytes["Allreduce"] == 2 * (8 * len(shape) + item * words)


@pytest.mark.parametrize("k", [-300, -150, 0, 150, 300])
def test_scale(comm, k):
    x = random_tt((5, 6, 7), 3, seed=1)
    X = _scatter(tt_scale(x, 10.0 ** k), comm)
    assert dist_tt_entry_sum(X) == pytest.approx(10.0 ** k * tt_entry_sum(x), rel=1e-13)


def test_long_train(comm):
    # mode sums 2**12 and 2**-12: naive running products overflow after 86 cores
    cores = [np.full((1, 4, 1), 2.0**10)] * 200 + [np.full((1, 4, 1), 2.0**-14)] * 200
    X = _scatter(TTTensor(cores), comm)
    assert dist_tt_entry_sum(X) == 1.0
    assert dist_tt_entry_mean(X) == math.ldexp(1.0, -800)   # 4**400 entries


def test_bad_input(comm):
    with pytest.raises(TypeError, match="x must be a DistTTTensor"):
        dist_tt_entry_sum(random_tt((4, 4), 2, seed=0))
