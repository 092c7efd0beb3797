"""Vocabulary-parallel embedding and cross-entropy against the serial layers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from parcheck import assert_close  # noqa: E402

from tensorpar.distributed import comm as C  # noqa: E402
from tensorpar.nn import Embedding, Linear, SoftmaxCrossEntropy  # noqa: E402
from tensorpar.nn.parallel import (  # noqa: E402
    ColumnParallelLinear,
    VocabParallelCrossEntropy,
    VocabParallelEmbedding,
    gather_parameters,
    memory_ledger,
)
from tensorpar.nn.parallel.mappings import local_slice  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("sp", [False, True])
def test_vocab_parallel_embedding(comm, sp):
    P = comm.size
    V, E = 5 * P, 4
    serial = Embedding(V, E, seed=3)
    par = VocabParallelEmbedding.from_serial(serial, comm, sequence_parallel=sp)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, V, size=(3, 2 * P))
    g = rng.standard_normal((3, 2 * P, E))
    y_ref = serial(idx)
    serial.backward(g)
    cut = (lambda a: local_slice(a, comm, 1)) if sp else (lambda a: a)
    with C.count_traffic() as c:
        y = par(idx)
        assert par.backward(cut(g)) is None
    assert_close(y, cut(y_ref))
    assert_close(gather_parameters(par, grads=True)["weight"], serial.weight.grad)
    assert memory_ledger(par).parameters * P == serial.parameter_bytes()
    if P > 1:
        want = {"Reduce_scatter_block": 1, "Allgatherv": 1} if sp else {"Allreduce": 1}
        assert {k: v for k, v in c.calls.items() if k != "meta"} == want
        assert c.total_bytes == len(want) * y_ref.nbytes


@pytest.mark.parametrize("ignore_index", [None, 2])
def test_vocab_parallel_cross_entropy_never_gathers_logits(comm, ignore_index):
    P = comm.size
    V, N = 7 * P, 6
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, N, V)) * 30   # large: the shifted log-sum-exp matters
    target = rng.integers(0, V, size=(2, N))
    if ignore_index is not None:
        target[0, :2] = ignore_index
    ref = SoftmaxCrossEntropy(ignore_index=ignore_index)
    loss_ref = ref(logits, target)
    g_ref = ref.backward()
    par = VocabParallelCrossEntropy(comm, ignore_index=ignore_index)
    with C.count_traffic() as c:
        loss = par(local_slice(logits, comm, -1), target)
        g = par.backward()
    assert abs(loss - loss_ref) <= 1e-12 * abs(loss_ref)
    assert_close(g, local_slice(g_ref, comm, -1))
    if P > 1:  # N max values, then N sums of exponentials and N target logits
        assert c.calls["Allreduce"] == 2
        assert c.nbytes["Allreduce"] == 3 * target.size * 8


def test_column_parallel_head_with_vocab_parallel_loss(comm):
    """A language-model head: logits stay split from the column layer to the loss."""
    P = comm.size
    serial = Linear(5, 3 * P, bias=False, seed=4)
    head = ColumnParallelLinear(5, 3 * P, bias=False, comm=comm, serial=serial)
    rng = np.random.default_rng(2)
    x, target = rng.standard_normal((4, 5)), rng.integers(0, 3 * P, size=4)
    ref = SoftmaxCrossEntropy()
    loss_ref = ref(serial(x), target)
    dx_ref = serial.backward(ref.backward())
    loss_fn = VocabParallelCrossEntropy(comm)
    loss = loss_fn(head(x), target)
    dx = head.backward(loss_fn.backward())
    assert abs(loss - loss_ref) <= 1e-12 * abs(loss_ref)
    assert_close(dx, dx_ref)
    assert_close(gather_parameters(head, grads=True)["weight"], serial.weight.grad)


def test_bad_targets_raise_everywhere(comm):
    P = comm.size
    loss = VocabParallelCrossEntropy(comm)
    logits = np.zeros((3, 2))
    with pytest.raises(ValueError, match="outside"):
        loss(logits, np.array([0, 1, 2 * P if comm.rank == 0 else 0]))
    if P > 1:
        with pytest.raises(ValueError, match="'target' differs across ranks"):
            loss(logits, np.array([0, 1, comm.rank]))
        with pytest.raises(ValueError, match="num_embeddings = .* not divisible"):
            VocabParallelEmbedding(P + 1, 2, comm=comm, seed=0)
