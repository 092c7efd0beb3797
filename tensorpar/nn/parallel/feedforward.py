"""Tensor-parallel feed-forward block: a column-parallel ``linear1``, a row-parallel ``linear2``.

The serial :class:`~tensorpar.nn.FeedForward` with its two linear maps
replaced by their Megatron shards; its ``forward``/``backward`` run
unchanged::

    x -> copy_to_tensor_parallel -> linear1 shard -> act -> dropout -> linear2 shard
      -> reduce_from_tensor_parallel

so the block makes **one all-reduce forward** (the output, ``B S E``
elements) and **one backward** (the input gradient, ``B S E``). With
``sequence_parallel=True`` the input and output are this rank's block of
the sequence axis, and the two all-reduces become an all-gather of the
input and a reduce-scatter of the output forward (and a reduce-scatter
and an all-gather backward), each ``B S E`` elements counted.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ...distributed import comm as C
from ..dropout import Dropout
from ..linear import Linear
from ..module import Module
from ..transformer import FeedForward
from .agreement import agree_on, agreed_build, check_serial
from .layers import ColumnParallelLinear, RowParallelLinear

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ParallelFeedForward", "rank_dropout"]


def rank_dropout(dropout: Dropout, comm: Any) -> Dropout:
    """A copy of ``dropout`` whose mask sequence depends on the rank (seed ``+ 7919 rank``).

    Inside a tensor-parallel region each rank holds different units, so
    their masks must be independent draws (Megatron's model-parallel RNG);
    masks therefore differ from the serial layer's, and the equality tests
    run with dropout off.

    Examples
    --------
    >>> rank_dropout(Dropout(0.1, seed=3), None).seed   # rank 0 keeps the seed
    3
    """
    rank = C.resolve_comm(comm).Get_rank()
    return Dropout(dropout.p, seed=None if dropout.seed is None else dropout.seed + 7919 * rank)


class ParallelFeedForward(FeedForward):
    """:class:`~tensorpar.nn.FeedForward` with ``hidden_dim`` split over the ranks of ``comm``.

    Parameters
    ----------
    embed_dim, hidden_dim, activation, dropout, bias, dtype, seed, xp
        As for :class:`~tensorpar.nn.FeedForward` (the serial block drawn
        from ``seed`` is the one split); ``P`` must divide ``hidden_dim``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    sequence_parallel : bool
        Input and output are this rank's block of the sequence axis (axis 1
        of ``(B, S, E)``); ``P`` must divide ``S``.
    regather : bool
        Under sequence parallelism keep only this rank's tokens of the input
        for backward and all-gather them again there
        (:class:`ColumnParallelLinear`'s ``regather``).

    Notes
    -----
    Parameters per rank: ``2 E F / P + F / P + E`` (the ``linear2`` bias is
    replicated). Communication per step, ``n = B S E`` elements of ``w``
    bytes: one all-reduce of ``n w`` forward and one backward; sequence
    parallel: one all-gather and one reduce-scatter of ``n w`` each, forward
    and backward. Kept for backward: the input (``n``, the gathered one in
    sequence parallel), ``2 B S F / P`` and the dropout mask.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import FeedForward
        from tensorpar.nn.parallel import ParallelFeedForward
        serial = FeedForward(8, 32, seed=0)
        par = ParallelFeedForward.from_serial(serial)   # 16 hidden units per rank
        x = np.ones((2, 5, 8))
        assert np.allclose(par(x), serial(x))

    >>> ff = ParallelFeedForward(4, 16, seed=0)
    >>> ff.linear1.weight.shape, ff.linear2.weight.shape
    ((16, 4), (4, 16))
    """

    def __init__(self, embed_dim: int, hidden_dim: int, activation: str | Module = "gelu", *,
                 dropout: float = 0.0, bias: bool = True, comm: MPI.Comm | None = None,
                 sequence_parallel: bool = False, regather: bool = False,
                 dtype: Any = np.float64, seed: Any = None, xp: ModuleType = np) -> None:
        serial = agreed_build(
            comm, {"embed_dim": embed_dim, "hidden_dim": hidden_dim, "activation": repr(activation),
                   "dropout": dropout, "bias": bias, "dtype": dtype, "seed": seed},
            lambda: FeedForward(embed_dim, hidden_dim, activation, dropout=dropout, bias=bias,
                                dtype=dtype, seed=seed, xp=xp))
        self._shard(serial, comm, sequence_parallel, regather)

    @classmethod
    def from_serial(cls, serial: FeedForward, comm: MPI.Comm | None = None, *,
                    sequence_parallel: bool = False, regather: bool = False) -> ParallelFeedForward:
        """Split a dense serial block (equal on every rank); the serial block is not modified.

        Examples
        --------
        >>> from tensorpar.nn import FeedForward
        >>> serial = FeedForward(4, 16, seed=0)
        >>> par = ParallelFeedForward.from_serial(serial)   # one process: a copy
        >>> x = np.ones((2, 3, 4))
        >>> par.linear1.weight.shape, bool(np.allclose(par(x), serial(x)))
        ((16, 4), True)

        Under ``mpiexec -n 2`` each rank keeps 8 of the 16 hidden units
        (``linear1.weight`` of shape ``(8, 4)``) and the output still equals
        the serial one on every rank.
        """
        check_serial(comm, serial, FeedForward)
        obj = cls.__new__(cls)
        obj._shard(serial, comm, sequence_parallel, regather)
        return obj

    def _shard(self, serial: FeedForward, comm: Any, sequence_parallel: bool,
               regather: bool) -> None:
        l1, l2 = serial.linear1, serial.linear2

        def validate() -> None:
            if not isinstance(sequence_parallel, bool):
                raise TypeError(f"sequence_parallel must be a bool, got "
                                f"{type(sequence_parallel).__name__}")
            if not (isinstance(l1, Linear) and isinstance(l2, Linear)):
                raise TypeError("serial.linear1 and serial.linear2 must be dense Linear layers")

        agree_on(comm, {"embed_dim": serial.embed_dim, "hidden_dim": serial.hidden_dim,
                        "activation": repr(serial.activation), "dropout": serial.dropout.p,
                        "sequence_parallel": sequence_parallel}, validate)
        l1, l2 = cast(Linear, l1), cast(Linear, l2)  # checked in validate
        Module.__init__(self)
        self.embed_dim, self.hidden_dim = serial.embed_dim, serial.hidden_dim
        self.sequence_parallel = sequence_parallel
        self.linear1 = ColumnParallelLinear(
            l1.in_features, l1.out_features, l1.bias is not None, comm=comm, serial=l1,
            mode="sequence" if sequence_parallel else "copy", regather=regather,
            dtype=l1.weight.data.dtype)
        self.activation = copy.deepcopy(serial.activation)
        self.dropout = rank_dropout(serial.dropout, comm)
        self.linear2 = RowParallelLinear(
            l2.in_features, l2.out_features, l2.bias is not None, comm=comm, serial=l2,
            mode="sequence" if sequence_parallel else "reduce", dtype=l2.weight.data.dtype)
