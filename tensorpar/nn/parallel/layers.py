"""Megatron's 1D tensor-parallel linear layers: a :class:`~tensorpar.nn.Linear` shard plus a step.

:class:`ColumnParallelLinear` splits the output features (rows of
``weight``) over the ``P`` ranks of ``comm``; :class:`RowParallelLinear`
splits the input features (columns of ``weight``). Read the forward pass as
Megatron's::

    column:  x -> copy_to_tensor_parallel -> x W_r^T + b_r -> [gather_from_tensor_parallel]
    row:     x_r -> x_r W_r^T -> reduce_from_tensor_parallel -> + b

With ``mode="sequence"`` (Megatron-SP) the column layer's input is a shard
of the tokens, all-gathered along the sequence axis (backward:
reduce-scatter), and the row layer's output is reduce-scattered along the
sequence axis (backward: all-gather). With ``mode="none"`` the layer makes
no message and the caller owns the step (and, for the row layer, the bias:
Megatron's ``skip_bias_add``); the parallel attention uses this.

Both are built from the serial layer they split (``serial=``, or one drawn
with the serial initialisation from ``seed``), so the parallel model starts
from, and computes, exactly the serial model's numbers. Sizes that ``P``
does not divide raise a ValueError on every rank; there is no padding.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array
from ...distributed import comm as C
from ..checks import cached, check_grad, check_input
from ..linear import Linear, linear_backward, linear_forward
from .agreement import agree_on, split_size
from .mappings import Mapping
from .sharding import ShardSpec, shard

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ColumnParallelLinear", "ColumnMode", "RowMode", "RowParallelLinear",
           "agree_on_tensor"]

#: Communication step of a column-parallel layer's input.
ColumnMode = Literal["copy", "sequence", "none"]
#: Communication step of a row-parallel layer's output.
RowMode = Literal["reduce", "sequence", "none"]


def agree_on_tensor(comm: Any, x: Any, name: str, *, like: Array | None = None,
                    features: int | None = None, shape: tuple[int, ...] | None = None,
                    min_ndim: int = 1) -> None:
    """Check ``x`` locally and agree on its shape and dtype across ``comm`` (one small message).

    The entry check of every parallel layer's ``forward`` and ``backward``:
    a bad input on one rank raises on every rank (see
    :func:`~tensorpar.nn.parallel.mappings.agree_on`). ``min_ndim`` is the
    fewest axes accepted (a sequence-parallel input needs a sequence axis
    before the features).

    Examples
    --------
    >>> import numpy as np
    >>> agree_on_tensor(None, np.ones((2, 3)), "x", features=3)
    """
    def validate() -> None:
        if shape is not None:
            check_grad(x, shape, name, like=like)
        else:
            check_input(x, name, like=like, features=features, min_ndim=min_ndim)

    agree_on(comm, {f"{name}.shape": tuple(getattr(x, "shape", ())),
                    f"{name}.dtype": str(getattr(x, "dtype", ""))}, validate)


def serial_linear(in_features: int, out_features: int, bias: bool, serial: Linear | None,
                  dtype: Any, seed: Any, xp: ModuleType) -> Linear:
    """The serial layer to shard: ``serial`` (checked) or a new one from ``seed``.

    Examples
    --------
    >>> serial_linear(3, 2, True, None, np.float64, 0, np).weight.shape
    (2, 3)
    """
    if serial is None:
        return Linear(in_features, out_features, bias, dtype=dtype, seed=seed, xp=xp)
    if not isinstance(serial, Linear):
        raise TypeError(f"serial must be a tensorpar.nn.Linear, got {type(serial).__name__}")
    got = (serial.in_features, serial.out_features, serial.bias is not None)
    if got != (in_features, out_features, bias):
        raise ValueError(f"serial is Linear{got}, expected (in, out, bias) = "
                         f"{(in_features, out_features, bias)}")
    return serial


class _ParallelLinear(Linear):
    """Shared construction: agree, draw or check the serial layer, keep this rank's shard."""

    shard_specs: dict[str, ShardSpec]

    def _build(self, in_features: int, out_features: int, bias: bool, comm: Any,
               split: str, groups: int, serial: Linear | None, dtype: Any, seed: Any,
               xp: ModuleType, options: dict[str, Any], modes: tuple[str, ...]) -> Linear:
        world = C.resolve_comm(comm)
        P = world.Get_size()
        full: list[Linear] = []

        def validate() -> None:
            if options["mode"] not in modes:
                raise ValueError(f"mode must be one of {modes}, got {options['mode']!r}")
            n = in_features if split == "in" else out_features
            split_size(n, P * groups, f"{split}_features / groups")
            full.append(serial_linear(in_features, out_features, bias, serial, dtype, seed, xp))

        agree_on(comm, {"in_features": in_features, "out_features": out_features, "bias": bias,
                        "groups": groups, **options}, validate)
        src = full[0]
        agree_on(comm, {"weight": src.weight.data})  # equal serial weights on every rank
        local_in = in_features // P if split == "in" else in_features
        local_out = out_features // P if split == "out" else out_features
        # the shards take the serial layer's dtype and array module, whatever dtype= says
        Linear.__init__(self, local_in, local_out, bias, dtype=src.weight.data.dtype, seed=0,
                        xp=get_array_module(src.weight.data))
        self.shard_comm = comm
        self.full_in_features, self.full_out_features = in_features, out_features
        rank = world.Get_rank()
        w_spec = ShardSpec(0, groups) if split == "out" else ShardSpec(1, 1)
        self.weight.data[...] = shard(src.weight.data, w_spec, rank, P)
        self.shard_specs = {"weight": w_spec}
        if self.bias is not None and src.bias is not None:
            if split == "out":
                self.shard_specs["bias"] = ShardSpec(0, groups)
                self.bias.data[...] = shard(src.bias.data, ShardSpec(0, groups), rank, P)
            else:
                self.bias.data[...] = src.bias.data
        return src


class ColumnParallelLinear(_ParallelLinear):
    """``y = x W^T + b`` with the output features split over the ranks of ``comm``.

    Parameters
    ----------
    in_features, out_features : int
        The serial layer's sizes; ``P * groups`` must divide ``out_features``.
    bias : bool
        A bias, split like the output features.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    mode : {"copy", "sequence", "none"}
        Step before the local product: ``copy_to_tensor_parallel`` (input
        replicated; backward all-reduces the input gradient),
        ``gather_from_sequence_parallel`` (input is this rank's block of the
        sequence axis ``seq_axis``; backward reduce-scatters), or none.
    regather : bool
        With ``mode="sequence"``, keep only this rank's tokens for backward
        and all-gather them again there (Megatron-SP's choice: ``1/P`` of the
        input's memory for one more all-gather of ``n w`` bytes backward).
    gather_output : bool
        All-gather the output features (``gather_from_tensor_parallel``), so
        every rank gets the serial output; otherwise each rank returns its
        ``out_features / P`` features.
    groups : int
        The output features are ``groups`` equal blocks (e.g. query, key,
        value) each split over the ranks (:class:`~tensorpar.nn.parallel.sharding.ShardSpec`).
    serial : Linear, optional
        The serial layer to split (equal on every rank); by default one is
        drawn with :class:`~tensorpar.nn.Linear`'s initialisation from ``seed``.
    seq_axis : int
        Sequence axis for ``mode="sequence"``.
    dtype, seed, xp
        As for :class:`~tensorpar.nn.Linear`.

    Notes
    -----
    Per rank: parameters ``(out/P) (in + 1)``, exactly ``1/P`` of the serial
    layer's. Communication for ``N`` input rows (``n = N in`` elements,
    ``w`` bytes each): mode "copy" none forward and one all-reduce of
    ``n w`` bytes backward; mode "sequence" one all-gather of ``n w``
    (whole output) forward and one reduce-scatter of ``n w`` backward;
    ``gather_output`` adds one all-gather of ``N out w`` forward;
    ``regather`` one all-gather of ``n w`` backward. Kept for backward: the
    (gathered) input, ``N in`` elements (``N in / P`` with ``regather``).
    Construction and each forward and backward make one agreement message
    (:func:`agree_on_tensor`).

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import Linear
        from tensorpar.nn.parallel import ColumnParallelLinear
        serial = Linear(4, 6, seed=0)
        col = ColumnParallelLinear(4, 6, serial=serial, gather_output=True)
        x = np.ones((5, 4))
        assert np.allclose(col(x), serial(x))    # each rank holds 3 of the 6 rows

    >>> col = ColumnParallelLinear(4, 6, seed=0)   # one process: the serial layer
    >>> col.weight.shape
    (6, 4)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 comm: MPI.Comm | None = None, mode: ColumnMode = "copy",
                 gather_output: bool = False, groups: int = 1, serial: Linear | None = None,
                 seq_axis: int = 1, regather: bool = False, dtype: Any = np.float64,
                 seed: Any = None, xp: ModuleType = np) -> None:
        self._build(in_features, out_features, bias, comm, "out", groups, serial, dtype, seed, xp,
                    {"mode": mode, "gather_output": gather_output, "seq_axis": seq_axis,
                     "regather": regather}, ("copy", "sequence", "none"))
        self.mode, self.gather_output = mode, bool(gather_output)
        self.regather = bool(regather) and mode == "sequence"
        step = {"copy": "copy_to_tensor_parallel", "sequence": "gather_from_sequence_parallel",
                "none": "identity"}[mode]
        self.enter = Mapping(step, comm, seq_axis=seq_axis, check=False)
        self.exit = Mapping("gather_from_tensor_parallel" if gather_output else "identity", comm,
                            check=False)

    def forward(self, x: Array) -> Array:
        agree_on_tensor(self.shard_comm, x, "x", like=self.weight.data,
                        features=self.full_in_features,
                        min_ndim=self.enter.seq_axis + 2 if self.mode == "sequence" else 1)
        y = self.exit.forward(super().forward(self.enter.forward(x)))
        if self.regather:  # keep only my tokens; backward gathers them again
            self.cache = {"x_shard": x, "shape": tuple(self.cache["x"].shape)}
        return y

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "ColumnParallelLinear")
        like = c["x_shard"] if self.regather else c["x"]
        lead = c["shape"][:-1] if self.regather else tuple(c["x"].shape[:-1])
        out = self.full_out_features if self.gather_output else self.out_features
        agree_on_tensor(self.shard_comm, grad_out, "grad_out", like=like, shape=(*lead, out))
        if self.regather:
            self.cache = {"x": self.enter.forward(c["x_shard"])}
        dx = self.enter.backward(super().backward(self.exit.backward(grad_out)))
        if self.regather:
            self.cache = c
        return dx

    def __repr__(self) -> str:
        return (f"ColumnParallelLinear(in_features={self.full_in_features}, "
                f"out_features={self.full_out_features}, local_out={self.out_features}, "
                f"mode={self.mode!r}, gather_output={self.gather_output})")


class RowParallelLinear(_ParallelLinear):
    """``y = x W^T + b`` with the input features split over the ranks of ``comm``.

    Parameters
    ----------
    in_features, out_features : int
        The serial layer's sizes; ``P`` must divide ``in_features``.
    bias : bool
        A bias, replicated, added once after the reduction.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    mode : {"reduce", "sequence", "none"}
        Step after the local product: ``reduce_from_tensor_parallel``
        (all-reduce; backward identity), ``reduce_scatter_to_sequence_parallel``
        (each rank gets its block of the sequence axis; backward all-gather),
        or none: the output is this rank's partial sum **without the bias**,
        and the caller reduces it and adds ``bias`` (Megatron's
        ``skip_bias_add``); backward then leaves ``bias.grad`` to the caller.
    input_is_parallel : bool
        The input is already this rank's block of the features (the output
        of a column-parallel layer). When False the full input is split first
        (``scatter_to_tensor_parallel``; backward all-gathers).
    serial, seq_axis, dtype, seed, xp
        As for :class:`ColumnParallelLinear`.

    Notes
    -----
    Per rank: weight ``out in / P`` and the bias ``out``. Communication for
    ``N`` rows (``n = N out`` output elements of ``w`` bytes): mode "reduce"
    one all-reduce of ``n w`` forward and none backward; mode "sequence" one
    reduce-scatter of ``n w`` (whole input) forward and one all-gather of
    ``n w`` (whole output) backward. Kept for backward: the local input,
    ``N in / P`` elements.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import Linear
        from tensorpar.nn.parallel import RowParallelLinear
        serial = Linear(6, 4, seed=0)
        row = RowParallelLinear(6, 4, serial=serial, input_is_parallel=False)
        x = np.ones((5, 6))
        assert np.allclose(row(x), serial(x))    # one all-reduce of 5 x 4 numbers

    >>> RowParallelLinear(6, 4, seed=0).weight.shape
    (4, 6)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 comm: MPI.Comm | None = None, mode: RowMode = "reduce",
                 input_is_parallel: bool = True, serial: Linear | None = None,
                 seq_axis: int = 1, dtype: Any = np.float64, seed: Any = None,
                 xp: ModuleType = np) -> None:
        self._build(in_features, out_features, bias, comm, "in", 1, serial, dtype, seed, xp,
                    {"mode": mode, "input_is_parallel": input_is_parallel, "seq_axis": seq_axis},
                    ("reduce", "sequence", "none"))
        self.mode, self.input_is_parallel = mode, bool(input_is_parallel)
        self.enter = Mapping("identity" if input_is_parallel else "scatter_to_tensor_parallel",
                             comm, check=False)
        step = {"reduce": "reduce_from_tensor_parallel",
                "sequence": "reduce_scatter_to_sequence_parallel", "none": "identity"}[mode]
        self.exit = Mapping(step, comm, seq_axis=seq_axis, check=False)

    def forward(self, x: Array) -> Array:
        agree_on_tensor(self.shard_comm, x, "x", like=self.weight.data,
                        features=self.in_features if self.input_is_parallel
                        else self.full_in_features,
                        min_ndim=self.exit.seq_axis + 2 if self.mode == "sequence" else 1)
        x = self.enter.forward(x)
        self.cache = {"x": x}
        y = self.exit.forward(linear_forward(x, self.weight.data, None))
        if self.bias is not None and self.mode != "none":
            y += self.bias.data
        return y

    def backward(self, grad_out: Array) -> Array:
        x = cached(self.cache, "RowParallelLinear")["x"]
        agree_on_tensor(self.shard_comm, grad_out, "grad_out", like=x,
                        shape=(*self.out_rows(x), self.out_features))
        g = self.exit.backward(grad_out)
        bias_grad = None if self.bias is None or self.mode == "none" else self.bias.grad
        return self.enter.backward(linear_backward(g, x, self.weight.data, self.weight.grad,
                                                   bias_grad))

    def out_rows(self, x: Array) -> tuple[int, ...]:
        """Leading shape of the output for the kept input ``x`` (sequence axis split in SP).

        Examples
        --------
        >>> row = RowParallelLinear(6, 4, mode="sequence", seed=0)
        >>> row.out_rows(np.ones((2, 8, 6)))   # one process: nothing is split
        (2, 8)

        Under ``mpiexec -n 2`` the same call gives ``(2, 4)``: in sequence
        mode the output is reduce-scattered along the sequence axis.
        """
        lead = list(x.shape[:-1])
        if self.mode == "sequence":
            lead[self.exit.seq_axis] //= C.resolve_comm(self.shard_comm).Get_size()
        return tuple(lead)

    def __repr__(self) -> str:
        return (f"RowParallelLinear(in_features={self.full_in_features}, "
                f"out_features={self.full_out_features}, local_in={self.in_features}, "
                f"mode={self.mode!r})")
