"""Head-parallel multi-head attention: each rank owns ``H / P`` heads (Megatron's layout).

The serial :class:`~tensorpar.nn.MultiheadAttention` built with the local
heads (``num_heads = H / P``, the global ``head_dim``): its ``in_proj`` is a
:class:`ColumnParallelLinear` holding the query, key and value rows of this
rank's heads (``groups=3``), its ``out_proj`` a :class:`RowParallelLinear`
holding their columns. The serial layer's forward and backward run
unchanged between two named steps::

    x -> copy_to_tensor_parallel -> MultiheadAttention(local heads, out_proj without bias)
      -> reduce_from_tensor_parallel -> + out_proj.bias

With ``sequence_parallel=True`` the steps are ``gather_from_sequence_parallel``
and ``reduce_scatter_to_sequence_parallel`` (input and output are this rank's
tokens; attention itself sees every token).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..._typing import Array
from ...distributed import comm as C
from ..attention import MultiheadAttention
from ..checks import cached
from ..linear import Linear
from ..module import Module
from .agreement import agree_on, agreed_build, check_serial, split_size
from .layers import ColumnParallelLinear, RowParallelLinear, agree_on_tensor
from .mappings import Mapping

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ParallelMultiheadAttention"]


class ParallelMultiheadAttention(MultiheadAttention):
    """Multi-head self-attention with the heads split over the ranks of ``comm``.

    Parameters
    ----------
    embed_dim, num_heads, bias, causal, dtype, seed, xp
        As for :class:`~tensorpar.nn.MultiheadAttention` (the serial layer
        drawn from ``seed``, PyTorch's initialisation, is the one split);
        ``P`` must divide ``num_heads``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    sequence_parallel : bool
        Input and output are this rank's block of the sequence axis.
    regather : bool
        Under sequence parallelism keep only this rank's tokens of the input
        for backward and all-gather them again there (Megatron-SP): ``1/P``
        of the input's memory for one more all-gather of ``B S E`` numbers.

    Notes
    -----
    Parameter names are the serial layer's (``in_proj_weight``,
    ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``) with the
    shards' shapes; :func:`~tensorpar.nn.parallel.gather_parameters`
    rebuilds the serial ones. Per rank: ``4 E^2 / P + 3 E / P + E``
    parameters. Communication per step, ``n = B S E`` elements: one
    all-reduce forward and one backward (sequence parallel: one all-gather
    and one reduce-scatter each way). Kept for backward: ``x`` (``n``),
    ``3 n / P`` (q, k, v of the local heads), ``B H S^2 / P`` probabilities
    and the ``n / P`` context.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import MultiheadAttention
        from tensorpar.nn.parallel import ParallelMultiheadAttention
        serial = MultiheadAttention(8, 4, causal=True, seed=0)
        par = ParallelMultiheadAttention.from_serial(serial)   # 2 heads per rank
        x = np.ones((2, 5, 8))
        assert np.allclose(par(x), serial(x))

    >>> mha = ParallelMultiheadAttention(8, 2, seed=0)
    >>> [(n, p.shape) for n, p in mha.named_parameters()][:2]
    [('in_proj_weight', (24, 8)), ('in_proj_bias', (24,))]
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, causal: bool = False,
                 *, comm: MPI.Comm | None = None, sequence_parallel: bool = False,
                 regather: bool = False, dtype: Any = np.float64, seed: Any = None,
                 xp: ModuleType = np) -> None:
        serial = agreed_build(
            comm, {"embed_dim": embed_dim, "num_heads": num_heads, "bias": bias, "causal": causal,
                   "dtype": dtype, "seed": seed},
            lambda: MultiheadAttention(embed_dim, num_heads, bias, causal, dtype=dtype, seed=seed,
                                       xp=xp))
        self._shard(serial, comm, sequence_parallel, regather)

    @classmethod
    def from_serial(cls, serial: MultiheadAttention, comm: MPI.Comm | None = None, *,
                    sequence_parallel: bool = False,
                    regather: bool = False) -> ParallelMultiheadAttention:
        """Split a dense serial layer (equal on every rank); the serial layer is not modified.

        Examples
        --------
        >>> from tensorpar.nn import MultiheadAttention
        >>> serial = MultiheadAttention(8, 4, causal=True, seed=0)
        >>> par = ParallelMultiheadAttention.from_serial(serial)   # one process: 4 heads
        >>> x = np.random.default_rng(1).standard_normal((2, 5, 8))
        >>> bool(np.allclose(par(x), serial(x)))
        True

        Under ``mpiexec -n 2`` each rank keeps 2 of the 4 heads
        (``in_proj_weight`` of shape ``(12, 8)``); the output is the serial one.
        """
        check_serial(comm, serial, MultiheadAttention)
        obj = cls.__new__(cls)
        obj._shard(serial, comm, sequence_parallel, regather)
        return obj

    def _shard(self, serial: MultiheadAttention, comm: Any, sequence_parallel: bool,
               regather: bool) -> None:
        inp, out = serial.in_proj, serial.out_proj
        P = C.resolve_comm(comm).Get_size()

        def validate() -> None:
            if not isinstance(sequence_parallel, bool):
                raise TypeError(f"sequence_parallel must be a bool, got "
                                f"{type(sequence_parallel).__name__}")
            if not (isinstance(inp, Linear) and isinstance(out, Linear)):
                raise TypeError("serial's in_proj and out_proj must be dense Linear layers")
            split_size(serial.num_heads, P, "num_heads")

        agree_on(comm, {"embed_dim": serial.embed_dim, "num_heads": serial.num_heads,
                        "head_dim": serial.head_dim, "causal": serial.causal,
                        "sequence_parallel": sequence_parallel}, validate)
        inp, out = cast(Linear, inp), cast(Linear, out)  # checked in validate
        local_heads = serial.num_heads // P
        E, dh = serial.embed_dim, serial.head_dim
        made: list[Module] = [
            ColumnParallelLinear(E, 3 * serial.num_heads * dh, inp.bias is not None, comm=comm,
                                 serial=inp, mode="none", groups=3, dtype=inp.weight.data.dtype),
            RowParallelLinear(serial.num_heads * dh, E, out.bias is not None, comm=comm,
                              serial=out, mode="none", dtype=out.weight.data.dtype)]
        has_bias = inp.bias is not None
        MultiheadAttention.__init__(self, E, local_heads, has_bias, serial.causal, head_dim=dh,
                                    linear=lambda i, o, b: made.pop(0))
        self.full_num_heads = serial.num_heads
        self.sequence_parallel = sequence_parallel
        self.regather = bool(regather) and sequence_parallel
        self.shard_comm = comm
        self.enter = Mapping("gather_from_sequence_parallel" if sequence_parallel
                             else "copy_to_tensor_parallel", comm, check=False)
        self.exit = Mapping("reduce_scatter_to_sequence_parallel" if sequence_parallel
                            else "reduce_from_tensor_parallel", comm, check=False)

    @property
    def row_proj(self) -> RowParallelLinear:
        """``out_proj``, typed: the row-parallel output projection (its bias is added here)."""
        return cast(RowParallelLinear, self.out_proj)

    def forward(self, x: Array) -> Array:
        agree_on_tensor(self.shard_comm, x, "x", like=self.row_proj.weight.data,
                        features=self.embed_dim)
        if x.ndim != 3:  # agreed on: every rank raises
            raise ValueError(f"x must have shape (batch, seq, embed_dim), got {tuple(x.shape)}")
        y = self.exit.forward(super().forward(self.enter.forward(x)))
        self.cache["out_shape"] = tuple(y.shape)
        if self.regather:  # in_proj keeps only my tokens; backward gathers them again
            self.cache["x_shard"] = x
            self.in_proj.cache = {}
        bias = self.row_proj.bias
        return y if bias is None else y + bias.data

    def backward(self, grad_out: Array) -> Array:
        shape = cached(self.cache, "ParallelMultiheadAttention")["out_shape"]
        agree_on_tensor(self.shard_comm, grad_out, "grad_out", like=self.row_proj.weight.data,
                        shape=shape)
        g = self.exit.backward(grad_out)
        bias = self.row_proj.bias
        if bias is not None:  # from the whole (gathered) gradient: no partial sums to reduce
            bias.grad += g.reshape(-1, self.embed_dim).sum(axis=0)
        if self.regather:
            self.in_proj.cache = {"x": self.enter.forward(self.cache["x_shard"])}
        dx = self.enter.backward(super().backward(g))
        if self.regather:
            self.in_proj.cache = {}
        return dx

    def __repr__(self) -> str:
        return (f"ParallelMultiheadAttention(embed_dim={self.embed_dim}, "
                f"num_heads={self.full_num_heads}, local_heads={self.num_heads}, "
                f"causal={self.causal}, sequence_parallel={self.sequence_parallel})")
