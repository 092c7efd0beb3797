"""Vocabulary-parallel embedding and softmax cross-entropy (Megatron's layout).

Rank ``r`` of ``P`` holds rows ``[r V/P, (r+1) V/P)`` of the ``V``-row table.

:class:`VocabParallelEmbedding` looks up the tokens it owns, writes zeros
for the others and sums over the ranks::

    idx -> local lookup (zeros elsewhere) -> reduce_from_tensor_parallel

(``reduce_scatter_to_sequence_parallel`` with ``sequence_parallel=True``).

:class:`VocabParallelCrossEntropy` takes logits split the same way (the
output of a :class:`ColumnParallelLinear` without ``gather_output``) and
never gathers them: the log-sum-exp needs only each row's maximum (one
all-reduce of ``N`` numbers) and the sums of exponentials together with the
target logits (one all-reduce of ``2 N`` numbers) for ``N`` tokens, instead
of the ``N V`` logits.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array
from ...distributed import comm as C
from ..checks import cached, check_indices, check_input
from ..embedding import Embedding, scatter_add_rows
from ..module import Module, Parameter
from .agreement import agree_on, agreed_build, check_serial, split_size
from .layers import agree_on_tensor
from .mappings import Mapping
from .sharding import ShardSpec, shard

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["VocabParallelCrossEntropy", "VocabParallelEmbedding", "vocab_range"]


def vocab_range(vocab_size: int, comm: Any) -> tuple[int, int]:
    """``(start, stop)`` of the rows of a ``vocab_size`` table this rank holds.

    Examples
    --------
    >>> vocab_range(10, None)
    (0, 10)
    """
    world = C.resolve_comm(comm)
    m = split_size(vocab_size, world.Get_size(), "vocab_size")
    return world.Get_rank() * m, (world.Get_rank() + 1) * m


class VocabParallelEmbedding(Embedding):
    """:class:`~tensorpar.nn.Embedding` with the rows (the vocabulary) split over ``comm``.

    Parameters
    ----------
    num_embeddings, embedding_dim, dtype, seed, xp
        As for :class:`~tensorpar.nn.Embedding` (the serial table drawn from
        ``seed`` is the one split); ``P`` must divide ``num_embeddings``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    sequence_parallel : bool
        Return this rank's block of the sequence axis (axis 1 of a ``(B, S)``
        index array), reduce-scattered instead of all-reduced.

    Notes
    -----
    ``weight`` holds ``V / P`` rows per rank (``1/P`` of the serial bytes).
    Communication for ``N`` tokens (``n = N E`` elements): one all-reduce of
    ``n`` forward and none backward (sequence parallel: one reduce-scatter
    forward, one all-gather backward). Kept for backward: the local indices
    and the mask of owned tokens.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import Embedding
        from tensorpar.nn.parallel import VocabParallelEmbedding
        serial = Embedding(10, 4, seed=0)
        par = VocabParallelEmbedding.from_serial(serial)     # 5 rows per rank
        idx = np.array([[1, 7, 3]])
        assert np.allclose(par(idx), serial(idx))

    >>> VocabParallelEmbedding(10, 4, seed=0).weight.shape
    (10, 4)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, comm: MPI.Comm | None = None,
                 sequence_parallel: bool = False, dtype: Any = np.float64, seed: Any = None,
                 xp: ModuleType = np) -> None:
        serial = agreed_build(
            comm, {"num_embeddings": num_embeddings, "embedding_dim": embedding_dim,
                   "dtype": dtype, "seed": seed},
            lambda: Embedding(num_embeddings, embedding_dim, dtype=dtype, seed=seed, xp=xp))
        self._shard(serial, comm, sequence_parallel)

    @classmethod
    def from_serial(cls, serial: Embedding, comm: MPI.Comm | None = None, *,
                    sequence_parallel: bool = False) -> VocabParallelEmbedding:
        """Split a serial table (equal on every rank); the serial layer is not modified.

        Examples
        --------
        >>> from tensorpar.nn import Embedding
        >>> serial = Embedding(10, 4, seed=0)
        >>> par = VocabParallelEmbedding.from_serial(serial)   # one process: all 10 rows
        >>> idx = np.array([[1, 7, 3]])
        >>> par.weight.shape, bool(np.allclose(par(idx), serial(idx)))
        ((10, 4), True)

        Under ``mpiexec -n 2`` rank 0 keeps rows 0..4 and rank 1 rows 5..9;
        the output (one all-reduce) is the serial one on both.
        """
        check_serial(comm, serial, Embedding)
        obj = cls.__new__(cls)
        obj._shard(serial, comm, sequence_parallel)
        return obj

    def _shard(self, serial: Embedding, comm: Any, sequence_parallel: bool) -> None:
        world = C.resolve_comm(comm)

        def validate() -> None:
            if not isinstance(sequence_parallel, bool):
                raise TypeError(f"sequence_parallel must be a bool, got "
                                f"{type(sequence_parallel).__name__}")
            split_size(serial.num_embeddings, world.Get_size(), "num_embeddings")

        agree_on(comm, {"weight": serial.weight.data, "sequence_parallel": sequence_parallel},
                 validate)
        Module.__init__(self)
        self.num_embeddings, self.embedding_dim = serial.num_embeddings, serial.embedding_dim

        self.weight = Parameter(shard(serial.weight.data, ShardSpec(0), world.Get_rank(),
                                      world.Get_size()))
        self.shard_specs = {"weight": ShardSpec(0)}
        self.shard_comm = comm
        self.start, self.stop = vocab_range(self.num_embeddings, comm)
        self.sequence_parallel = sequence_parallel
        self.exit = Mapping("reduce_scatter_to_sequence_parallel" if sequence_parallel
                            else "reduce_from_tensor_parallel", comm, check=False)

    def forward(self, idx: Array) -> Array:
        def validate() -> None:
            check_indices(idx, "idx", self.num_embeddings, like=self.weight.data)
            if self.sequence_parallel and idx.ndim < 2:
                raise ValueError(f"idx must be (batch, seq, ...) under sequence parallelism, "
                                 f"got shape {tuple(idx.shape)}")

        agree_on(self.shard_comm, {"idx.shape": tuple(getattr(idx, "shape", ()))}, validate)
        xp = get_array_module(self.weight.data)
        local = idx - self.start
        owned = (local >= 0) & (local < self.stop - self.start)
        local = xp.where(owned, local, 0)
        out = self.weight.data[local] * owned[..., None].astype(self.weight.data.dtype)
        self.cache = {"idx": local, "owned": owned, "shape": tuple(idx.shape)}
        return self.exit.forward(out)

    def backward(self, grad_out: Array) -> None:
        c = cached(self.cache, "VocabParallelEmbedding")
        shape = list(c["shape"]) + [self.embedding_dim]
        if self.sequence_parallel:
            shape[1] //= C.resolve_comm(self.shard_comm).Get_size()
        agree_on_tensor(self.shard_comm, grad_out, "grad_out", like=self.weight.data,
                        shape=tuple(shape))
        g = self.exit.backward(grad_out).reshape(-1, self.embedding_dim)
        keep = c["owned"].reshape(-1)
        scatter_add_rows(self.weight.grad, c["idx"].reshape(-1)[keep], g[keep])
        return None

    def __repr__(self) -> str:
        return (f"VocabParallelEmbedding({self.num_embeddings}, {self.embedding_dim}, "
                f"rows {self.start}:{self.stop})")


class VocabParallelCrossEntropy(Module):
    """Mean softmax cross-entropy of logits split along the vocabulary, never gathered.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    ignore_index : int, optional
        As for :class:`~tensorpar.nn.SoftmaxCrossEntropy`.

    Notes
    -----
    ``forward(logits, target)``: ``logits`` ``(..., V / P)``, this rank's
    columns ``[r V/P, (r+1) V/P)`` of the serial logits; ``target`` the same
    integer array ``(...)`` on every rank, entries in ``[0, V)``. Returns the
    serial loss (a float, equal on every rank);
    ``backward()`` returns the gradient of this rank's logits (no message).
    Communication for ``N`` tokens: an all-reduce (max) of ``N`` numbers and
    an all-reduce (sum) of ``2 N``, against ``N V`` for gathering the logits.
    Kept for backward: the local probabilities (``N V / P``).

    Examples
    --------
    >>> import numpy as np
    >>> loss = VocabParallelCrossEntropy()       # one process: the serial loss
    >>> round(loss(np.zeros((2, 4)), np.array([1, 3])), 6) == round(float(np.log(4)), 6)
    True

    Under ``mpiexec -n 2 python script.py`` each rank passes its two columns,
    ``logits[:, 2 * rank:2 * rank + 2]``, and the same ``target``; both ranks
    return ``log 4`` and the logits are never gathered.
    """

    def __init__(self, comm: MPI.Comm | None = None, ignore_index: int | None = None) -> None:
        super().__init__()
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
        self.comm, self.ignore_index = comm, ignore_index

    def forward(self, logits: Array, target: Array) -> float:
        P = C.resolve_comm(self.comm).Get_size()
        rank = C.resolve_comm(self.comm).Get_rank()

        def validate() -> None:
            check_input(logits, "logits")
            check_indices(target, "target", logits.shape[-1] * P, like=logits,
                          ignore=self.ignore_index)
            if tuple(target.shape) != tuple(logits.shape[:-1]):
                raise ValueError(f"target has shape {tuple(target.shape)}; logits of shape "
                                 f"{tuple(logits.shape)} need {tuple(logits.shape[:-1])}")

        agree_on(self.comm, {"logits.shape": tuple(getattr(logits, "shape", ())),
                             "target": target}, validate)
        xp = get_array_module(logits)
        v = logits.shape[-1]
        z = logits.reshape(-1, v)
        t = target.reshape(-1)
        keep = xp.ones(t.shape, dtype=bool) if self.ignore_index is None else t != self.ignore_index
        zmax = C.allreduce(self.comm, z.max(axis=1), op="max")
        e = xp.exp(z - zmax[:, None])
        local_t = t - rank * v
        mine = keep & (local_t >= 0) & (local_t < v)
        rows = xp.arange(t.shape[0])
        picked = xp.where(mine, z[rows, xp.where(mine, local_t, 0)] - zmax, 0.0)
        sums = C.allreduce(self.comm, xp.stack([e.sum(axis=1), picked]))
        count = int(keep.sum())
        loss = -float(((sums[1] - xp.log(sums[0])) * keep).sum()) / max(count, 1)
        self.cache = {"probs": e / sums[0][:, None], "local_t": local_t, "mine": mine,
                      "keep": keep, "count": count, "shape": tuple(logits.shape)}
        return loss

    def backward(self, grad_out: Any = None) -> Array:
        """Gradient of the mean loss with respect to this rank's logits (no message).

        Examples
        --------
        >>> loss = VocabParallelCrossEntropy()
        >>> _ = loss(np.zeros((1, 4)), np.array([2]))
        >>> loss.backward()   # one process: the serial gradient
        array([[ 0.25,  0.25, -0.75,  0.25]])

        Under ``mpiexec -n 2`` with ``logits[:, 2 * rank:2 * rank + 2]``, rank
        0 gets ``[[0.25, 0.25]]`` and rank 1 ``[[-0.75, 0.25]]``.
        """
        if grad_out is not None:
            raise ValueError("grad_out must be None: a loss is the end of the graph")
        c = cached(self.cache, "VocabParallelCrossEntropy")
        xp = get_array_module(c["probs"])
        g = c["probs"].copy()
        rows = xp.arange(g.shape[0])[c["mine"]]
        g[rows, c["local_t"][c["mine"]]] -= 1
        g *= c["keep"][:, None] * (1.0 / max(c["count"], 1))
        return g.reshape(c["shape"])
