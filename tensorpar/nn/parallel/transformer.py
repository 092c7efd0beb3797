"""Tensor-parallel pre-LayerNorm transformer block, optionally sequence parallel (Megatron-SP).

The serial :class:`~tensorpar.nn.TransformerBlock` with its attention and
feed-forward layers replaced by :class:`ParallelMultiheadAttention` and
:class:`ParallelFeedForward`; the serial ``forward``/``backward`` run
unchanged. LayerNorms, residual additions and residual dropouts are
replicated (every rank computes them on the whole activation) in the 1D
layout; with ``sequence_parallel=True`` they work on this rank's block of
the tokens, which divides their activation memory by ``P``, and each of
the four all-reduces of a step becomes a reduce-scatter plus an all-gather
of the same size.

Under sequence parallelism every rank's LayerNorm gradients are partial
sums over its tokens; :meth:`ParallelTransformerBlock.backward` all-reduces
what the call added to them (one all-reduce of ``4 E`` elements, Megatron's
``allreduce_sequence_parallel_grads``), so the gradients equal the serial
ones on every rank.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array
from ...distributed import comm as C
from ..checks import cached
from ..module import Module, Parameter
from ..transformer import TransformerBlock
from .attention import ParallelMultiheadAttention
from .feedforward import ParallelFeedForward, rank_dropout
from .layers import agree_on_tensor

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ParallelTransformerBlock"]


class ParallelTransformerBlock(TransformerBlock):
    """Pre-LN transformer block split over the ranks of ``comm`` (heads and hidden units).

    Parameters
    ----------
    embed_dim, num_heads, hidden_dim, causal, dropout, activation, bias, eps, dtype, seed, xp
        As for :class:`~tensorpar.nn.TransformerBlock` (the serial block
        drawn from ``seed`` is the one split); ``P`` must divide
        ``num_heads`` and ``hidden_dim``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    sequence_parallel : bool
        Input and output are this rank's block of the sequence axis
        (``(B, S / P, E)``); ``P`` must divide ``S``.

    Notes
    -----
    Parameters per rank: the attention and feed-forward weights divided by
    ``P``, plus the replicated LayerNorms and output biases. Communication
    per step with ``n = B S E`` elements of ``w`` bytes: 1D, two all-reduces
    of ``n w`` forward and two backward; sequence parallel, two all-gathers
    and two reduce-scatters of ``n w`` forward and the same backward, plus
    one all-reduce of the ``4 E`` LayerNorm gradients. Residual dropout masks
    equal the serial block's in 1D (same seed on every rank) and are drawn per
    rank under sequence parallelism.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import TransformerBlock
        from tensorpar.nn.parallel import ParallelTransformerBlock, scatter_to_sequence_parallel
        serial = TransformerBlock(8, 2, 32, causal=True, seed=0)
        par = ParallelTransformerBlock.from_serial(serial, sequence_parallel=True)
        x = np.random.default_rng(0).standard_normal((2, 6, 8))
        y = par(scatter_to_sequence_parallel(x))       # this rank's 3 tokens
        assert np.allclose(y, scatter_to_sequence_parallel(serial(x)))

    >>> blk = ParallelTransformerBlock(8, 2, 32, causal=True, seed=0)
    >>> blk.num_parameters()
    872
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_dim: int, *, causal: bool = False,
                 dropout: float = 0.0, activation: str | Module = "gelu", bias: bool = True,
                 eps: float = 1e-5, comm: MPI.Comm | None = None, sequence_parallel: bool = False,
                 dtype: Any = np.float64, seed: Any = None, xp: ModuleType = np) -> None:
        serial = TransformerBlock(embed_dim, num_heads, hidden_dim, causal=causal,
                                  dropout=dropout, activation=activation, bias=bias, eps=eps,
                                  dtype=dtype, seed=seed, xp=xp)
        self._shard(serial, comm, sequence_parallel)

    @classmethod
    def from_serial(cls, serial: TransformerBlock, comm: MPI.Comm | None = None, *,
                    sequence_parallel: bool = False) -> ParallelTransformerBlock:
        """Split a dense serial block (equal on every rank); the serial block is not modified."""
        if not isinstance(serial, TransformerBlock):
            raise TypeError(f"serial must be a TransformerBlock, got {type(serial).__name__}")
        obj = cls.__new__(cls)
        obj._shard(serial, comm, sequence_parallel)
        return obj

    def _shard(self, serial: TransformerBlock, comm: Any, sequence_parallel: bool) -> None:
        if not isinstance(sequence_parallel, bool):
            raise TypeError(f"sequence_parallel must be a bool, got {type(sequence_parallel).__name__}")
        sp = sequence_parallel
        Module.__init__(self)  # same registration order as the serial block: same names
        self.embed_dim = serial.embed_dim
        self.norm1 = copy.deepcopy(serial.norm1)
        self.self_attn = ParallelMultiheadAttention.from_serial(serial.self_attn, comm,
                                                                sequence_parallel=sp)
        self.dropout1 = rank_dropout(serial.dropout1, comm) if sp else copy.deepcopy(serial.dropout1)
        self.norm2 = copy.deepcopy(serial.norm2)
        self.ff = ParallelFeedForward.from_serial(serial.ff, comm, sequence_parallel=sp)
        self.dropout2 = rank_dropout(serial.dropout2, comm) if sp else copy.deepcopy(serial.dropout2)
        self.sequence_parallel = sp
        self.shard_comm = comm

    def sequence_parallel_parameters(self) -> list[Parameter]:
        """Replicated parameters whose gradients are partial per rank under sequence parallelism."""
        return [p for m in (self.norm1, self.norm2) for p in m.parameters()]

    def forward(self, x: Array) -> Array:
        like = self.norm1.weight.data if self.norm1.weight is not None else None
        agree_on_tensor(self.shard_comm, x, "x", like=like, features=self.embed_dim)
        return super().forward(x)

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "ParallelTransformerBlock")
        agree_on_tensor(self.shard_comm, grad_out, "grad_out", like=c["like"], shape=c["shape"])
        params = self.sequence_parallel_parameters() if self.sequence_parallel else []
        before = [p.grad.copy() for p in params]
        dx = super().backward(grad_out)
        if params:  # reduce only what this call added (earlier gradients are already summed)
            xp = get_array_module(params[0].grad)
            added = xp.concatenate([(p.grad - b).reshape(-1) for p, b in zip(params, before)])
            total = C.allreduce(self.shard_comm, added)
            start = 0
            for p, b in zip(params, before):
                p.grad[...] = b + total[start:start + p.size].reshape(p.shape)
                start += p.size
        return dx
