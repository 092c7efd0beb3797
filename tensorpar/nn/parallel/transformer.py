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
from .agreement import agree_on, agreed_build, check_serial
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
    regather : bool
        Under sequence parallelism, the attention and the first feed-forward
        layer keep only this rank's tokens of their inputs and all-gather them
        again in backward (Megatron-SP): every activation the block keeps is
        then ``1/P`` of the serial block's (split by tokens, heads or hidden
        units), for two more all-gathers of ``n w`` bytes backward.

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
                 regather: bool = False, dtype: Any = np.float64, seed: Any = None,
                 xp: ModuleType = np) -> None:
        serial = agreed_build(
            comm, {"embed_dim": embed_dim, "num_heads": num_heads, "hidden_dim": hidden_dim,
                   "causal": causal, "dropout": dropout, "activation": repr(activation),
                   "bias": bias, "eps": eps, "dtype": dtype, "seed": seed},
            lambda: TransformerBlock(embed_dim, num_heads, hidden_dim, causal=causal,
                                     dropout=dropout, activation=activation, bias=bias, eps=eps,
                                     dtype=dtype, seed=seed, xp=xp))
        self._shard(serial, comm, sequence_parallel, regather)

    @classmethod
    def from_serial(cls, serial: TransformerBlock, comm: MPI.Comm | None = None, *,
                    sequence_parallel: bool = False,
                    regather: bool = False) -> ParallelTransformerBlock:
        """Split a dense serial block (equal on every rank); the serial block is not modified.

        Examples
        --------
        >>> from tensorpar.nn import TransformerBlock
        >>> serial = TransformerBlock(8, 2, 32, causal=True, seed=0)
        >>> par = ParallelTransformerBlock.from_serial(serial)   # one process
        >>> x = np.random.default_rng(1).standard_normal((2, 6, 8))
        >>> bool(np.allclose(par(x), serial(x)))
        True

        Under ``mpiexec -n 2`` each rank holds one head and 16 of the 32
        hidden units; with ``sequence_parallel=True`` it also takes and returns
        only its 3 of the 6 tokens (see the class example).
        """
        check_serial(comm, serial, TransformerBlock)
        obj = cls.__new__(cls)
        obj._shard(serial, comm, sequence_parallel, regather)
        return obj

    def _shard(self, serial: TransformerBlock, comm: Any, sequence_parallel: bool,
               regather: bool) -> None:
        def validate() -> None:
            if not isinstance(sequence_parallel, bool):
                raise TypeError(f"sequence_parallel must be a bool, got "
                                f"{type(sequence_parallel).__name__}")

        agree_on(comm, {"embed_dim": serial.embed_dim, "sequence_parallel": sequence_parallel,
                        "dropout": (serial.dropout1.p, serial.dropout2.p),
                        "regather": regather}, validate)
        sp = sequence_parallel
        Module.__init__(self)  # same registration order as the serial block: same names
        self.embed_dim = serial.embed_dim
        self.norm1 = copy.deepcopy(serial.norm1)
        self.self_attn = ParallelMultiheadAttention.from_serial(serial.self_attn, comm,
                                                                sequence_parallel=sp,
                                                                regather=regather)
        self.dropout1 = rank_dropout(serial.dropout1, comm) if sp else copy.deepcopy(serial.dropout1)
        self.norm2 = copy.deepcopy(serial.norm2)
        self.ff = ParallelFeedForward.from_serial(serial.ff, comm, sequence_parallel=sp,
                                                  regather=regather)
        self.dropout2 = rank_dropout(serial.dropout2, comm) if sp else copy.deepcopy(serial.dropout2)
        self.sequence_parallel = sp
        self.shard_comm = comm

    def sequence_parallel_parameters(self) -> list[Parameter]:
        """Replicated parameters whose gradients are partial per rank under sequence parallelism.

        Examples
        --------
        >>> blk = ParallelTransformerBlock(8, 2, 32, seed=0)
        >>> [p.shape for p in blk.sequence_parallel_parameters()]   # the two LayerNorms
        [(8,), (8,), (8,), (8,)]

        Under ``mpiexec -n 2`` with ``sequence_parallel=True`` each rank's
        gradients of these cover only its tokens: sum them over the ranks
        (an all-reduce) before the optimizer step.
        """
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
