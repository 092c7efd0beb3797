"""Rotated tensor parallelism (RTP): each rank keeps its own batch and 1/P of the weight.

:class:`RotatedLinear` computes ``y = x W^T + b`` like
:class:`~tensorpar.nn.Linear`, but rank ``r`` of ``P`` stores only shard
``r`` of the weight: output rows ``r m .. (r+1) m`` of ``W`` and ``b``
(``m = out_features / P``), packed as one ``(m, in + 1)`` block. Each rank
applies the layer to **its own** input rows (as in data parallelism), so no
activation is replicated; the weight shards travel around a ring instead:

forward
    at step ``t = 0 .. P-1`` rank ``r`` holds shard ``s = (r - t) mod P``,
    fills output columns ``s m .. (s+1) m`` of its rows, and passes the shard
    to rank ``r + 1`` (``P - 1`` ring steps of one shard).
backward
    the weight shards make the same round for ``dx = sum_s g_s W_s``, and a
    gradient accumulator travels with them, one step behind the weights: rank
    ``r`` starts the accumulator of shard ``r - 1``, each rank adds
    ``g_a^T x`` (and ``sum g_a``) for the shard ``a`` it holds, and after
    ``P - 1`` steps the accumulator of shard ``r`` has visited every rank and
    arrived at its owner ``r``. Each step carries one weight shard and one
    gradient shard (``P - 1`` ring steps of two shards).

The products are :func:`~tensorpar.nn.linear.linear_forward` and the two
halves of :func:`~tensorpar.nn.linear.linear_backward` on each shard, so the
layer is the serial one plus its ring steps. Communication per forward, in
``Sendrecv`` calls of :func:`tensorpar.distributed.comm.ring_shift`:
``P - 1`` calls of ``m (in + 1)`` elements (``m in`` without bias);
backward ``P - 1`` calls of twice that. Parameter memory per rank is
exactly ``1/P`` of the serial layer's.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array, Comm
from ...distributed.comm import agree, allgatherv, resolve_comm, ring_shift
from ..checks import cached, check_grad, check_input, check_positive_int
from ..linear import Linear, linear_forward
from ..module import Module, Parameter

__all__ = ["RotatedLinear", "gathered_state", "local_error", "rotated_traffic", "shard_rows"]

_TAG = 31


def local_error(fn: Any, *args: Any, **kwargs: Any) -> BaseException | None:
    """Run a local validation ``fn(*args, **kwargs)``; return its ValueError/TypeError or None.

    The collective entry points pass the result to
    :func:`tensorpar.distributed.comm.agree`, so a bad argument on one rank
    raises the same exception on every rank.

    Examples
    --------
    >>> local_error(int, "x")
    ValueError("invalid literal for int() with base 10: 'x'")
    >>> local_error(int, "3") is None
    True
    """
    try:
        fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        return exc
    return None


def shard_rows(n: int, parts: int, name: str) -> int:
    """Rows per shard of ``n`` rows split evenly in ``parts``; a ValueError naming ``name`` otherwise.

    Examples
    --------
    >>> shard_rows(12, 4, "out_features")
    3
    >>> shard_rows(10, 4, "out_features")
    Traceback (most recent call last):
    ...
    ValueError: out_features=10 is not divisible by 4 ranks; choose a multiple of 4
    """
    if n % parts:
        raise ValueError(f"{name}={n} is not divisible by {parts} ranks; choose a multiple of "
                         f"{parts}")
    return n // parts


def rotated_traffic(in_features: int, out_features: int, bias: bool, nranks: int,
                    itemsize: int = 8) -> dict[str, int]:
    """Counted ``Sendrecv`` calls and bytes per rank of one forward and one backward.

    Examples
    --------
    >>> rotated_traffic(4, 6, True, 3)
    {'forward_calls': 2, 'forward_bytes': 160, 'backward_calls': 2, 'backward_bytes': 320}
    """
    shard = out_features // nranks * (in_features + int(bias)) * itemsize
    steps = nranks - 1
    return {"forward_calls": steps, "forward_bytes": steps * shard,
            "backward_calls": steps, "backward_bytes": 2 * steps * shard}


class RotatedLinear(Module):
    """``y = x W^T + b`` with the weight in ``P`` row shards that rotate around a ring (RTP).

    Parameters
    ----------
    in_features, out_features : int
        As :class:`~tensorpar.nn.Linear`; ``out_features`` must be divisible
        by the number of ranks (checked on every rank).
    bias : bool
        Learned bias (sharded with the weight rows).
    comm : mpi4py communicator, optional
        The ring (default ``COMM_WORLD``).
    dtype, seed, xp
        As :class:`~tensorpar.nn.Linear`. The full layer is initialised
        exactly as ``Linear(in_features, out_features, bias, seed=seed)`` (so
        equal seeds give equal layers on any number of ranks) and each rank
        keeps its shard; pass the same integer seed on every rank.

    Attributes
    ----------
    weight : Parameter
        Shard ``rank``: rows ``rank m .. (rank+1) m`` of the serial weight,
        shape ``(m, in_features)``.
    bias : Parameter or None
        The same rows of the serial bias, shape ``(m,)``.

    Notes
    -----
    Collective: construction, :meth:`forward`, :meth:`backward` and
    :meth:`gathered` are called by every rank of ``comm``; each first agrees
    on its arguments (:func:`~tensorpar.distributed.comm.agree`). The input
    ``(..., in_features)`` holds this rank's own rows (any number, different
    per rank); the output is ``(..., out_features)`` for those rows. Memory
    kept for backward: this rank's input. Transient: two shard buffers (three
    in backward). Construction draws the whole serial layer once and keeps a
    shard (so the result does not depend on ``P``); that transient full
    copy is the price of seed-for-seed equality with the serial layer.

    Examples
    --------
    Under ``mpiexec -n 2`` (each rank its own batch)::

        lin = RotatedLinear(8, 6, seed=0)            # each rank stores 3 x 9 numbers
        y = lin(x_local)                             # one ring step of one shard
        dx = lin.backward(g_local)                   # one ring step of two shards
        full = lin.gathered()                        # {"weight": (6, 8), "bias": (6,)}

    >>> import numpy as np
    >>> lin = RotatedLinear(4, 2, seed=0)            # one rank: the serial layer
    >>> bool(np.allclose(lin(np.ones((3, 4))), Linear(4, 2, seed=0)(np.ones((3, 4)))))
    True
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 comm: Comm = None, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        comm = resolve_comm(comm)
        nranks = comm.Get_size()

        def check() -> None:
            check_positive_int(in_features, "in_features")
            check_positive_int(out_features, "out_features")
            shard_rows(out_features, nranks, "out_features")
        agree(comm, {"in_features": in_features, "out_features": out_features,
                     "bias": bias, "dtype": str(np.dtype(dtype)),
                     "seed": seed if not isinstance(seed, np.random.Generator) else None},
              error=local_error(check))
        self._take_shard(Linear(in_features, out_features, bias, dtype=dtype, seed=seed, xp=xp),
                         comm)

    @classmethod
    def from_linear(cls, linear: Linear, comm: Comm = None) -> RotatedLinear:
        """Shard an existing serial :class:`~tensorpar.nn.Linear` (equal on every rank; collective).

        The ranks agree on its shape, bias and dtype; each keeps its rows.

        Examples
        --------
        >>> RotatedLinear.from_linear(Linear(3, 2, seed=0))
        RotatedLinear(in_features=3, out_features=2, bias=True, ranks=1)
        """
        comm = resolve_comm(comm)

        def check() -> None:
            if not isinstance(linear, Linear):
                raise TypeError(f"linear must be a tensorpar.nn.Linear, got {type(linear).__name__}")
            shard_rows(linear.out_features, comm.Get_size(), "out_features")
        ok = isinstance(linear, Linear)
        agree(comm, {"shape": linear.weight.shape if ok else None,
                     "bias": ok and linear.bias is not None,
                     "dtype": str(linear.weight.data.dtype) if ok else None},
              error=local_error(check))
        self = cls.__new__(cls)
        Module.__init__(self)
        self._take_shard(linear, comm)
        return self

    def _take_shard(self, full: Linear, comm: Any) -> None:
        self.comm = comm
        self.nranks, self.rank = comm.Get_size(), comm.Get_rank()
        self.in_features, self.out_features = full.in_features, full.out_features
        self.shard = self.out_features // self.nranks
        rows = slice(self.rank * self.shard, (self.rank + 1) * self.shard)
        self.weight = Parameter(full.weight.data[rows].copy())
        self.bias = None if full.bias is None else Parameter(full.bias.data[rows].copy())

    # --- packing: one message per ring step ----------------------------------
    def _packed(self) -> Array:
        xp = get_array_module(self.weight.data)
        if self.bias is None:
            return self.weight.data
        return xp.concatenate([self.weight.data, self.bias.data[:, None]], axis=1)

    def _split(self, block: Array) -> tuple[Array, Array | None]:
        if self.bias is None:
            return block, None
        return block[:, :self.in_features], block[:, self.in_features]

    def _cols(self, s: int) -> slice:
        return slice(s * self.shard, (s + 1) * self.shard)

    def forward(self, x: Array) -> Array:
        agree(self.comm, {"in_features": self.in_features, "out_features": self.out_features},
              error=local_error(check_input, x, "x", like=self.weight.data,
                                features=self.in_features))
        xp = get_array_module(x)
        x2 = x.reshape(-1, self.in_features)
        y = xp.empty((x2.shape[0], self.out_features), dtype=x.dtype)
        block = self._packed()
        for t in range(self.nranks):
            w, b = self._split(block)
            y[:, self._cols((self.rank - t) % self.nranks)] = linear_forward(x2, w, b)
            if t < self.nranks - 1:
                block = ring_shift(self.comm, block, _TAG)
        self.cache = {"x": x}
        return y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "RotatedLinear")
        x = c["x"]
        agree(self.comm, {"in_features": self.in_features, "out_features": self.out_features},
              error=local_error(check_grad, grad_out, (*x.shape[:-1], self.out_features),
                                like=x))
        xp = get_array_module(x)
        x2 = x.reshape(-1, self.in_features)
        g2 = grad_out.reshape(-1, self.out_features)
        dx = xp.zeros_like(x2)
        block = self._packed()
        acc = xp.zeros_like(block)  # gradient of shard (rank - 1 - t), one step behind
        for t in range(self.nranks):
            w, _ = self._split(block)
            dx += g2[:, self._cols((self.rank - t) % self.nranks)] @ w
            g_a = g2[:, self._cols((self.rank - 1 - t) % self.nranks)]
            acc[:, :self.in_features] += g_a.T @ x2
            if self.bias is not None:
                acc[:, self.in_features] += g_a.sum(axis=0)
            if t < self.nranks - 1:
                both = ring_shift(self.comm, xp.concatenate([block, acc], axis=1), _TAG)
                block, acc = both[:, :block.shape[1]], both[:, block.shape[1]:]
        # acc now holds this rank's own shard's gradient, summed over every rank's rows
        self.weight.grad += acc[:, :self.in_features]
        if self.bias is not None:
            self.bias.grad += acc[:, self.in_features]
        return dx.reshape(x.shape)

    def gathered(self, grad: bool = False) -> dict[str, Array]:
        """The full (serial-layout) weight and bias, or their gradients, on every rank (collective).

        One ``Allgatherv`` per parameter; for tests, checkpoints and the example.
        """
        agree(self.comm, {"grad": grad, "out_features": self.out_features})
        out = {"weight": allgatherv(self.comm, self.weight.grad if grad else self.weight.data,
                                    [self.shard] * self.nranks)}
        if self.bias is not None:
            out["bias"] = allgatherv(self.comm, self.bias.grad if grad else self.bias.data,
                                     [self.shard] * self.nranks)
        return out

    def __repr__(self) -> str:
        return (f"RotatedLinear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, ranks={self.nranks})")


def gathered_state(module: Module, grad: bool = False) -> dict[str, Array]:
    """Every parameter of ``module`` (or its gradient) in the serial layout, keyed by its name.

    Sharded leaf layers (those with a ``gathered(grad)`` method, e.g.
    :class:`RotatedLinear` and :class:`~tensorpar.nn.parallel.SummaLinear`)
    contribute their gathered arrays; other parameters (replicated ones) are
    returned as this rank holds them. Collective when the module holds
    sharded layers (every rank calls it).

    Examples
    --------
    >>> from tensorpar.nn import Sequential
    >>> net = Sequential(RotatedLinear(3, 2, seed=0))
    >>> {k: v.shape for k, v in gathered_state(net).items()}
    {'0.weight': (2, 3), '0.bias': (2,)}
    """
    full: dict[int, Array] = {}
    for _, mod in module.named_modules():
        gathered = getattr(mod, "gathered", None)
        if callable(gathered):  # a sharded leaf layer: its own parameters, gathered
            got = gathered(grad)
            for name, p in mod.named_parameters():
                full[id(p)] = got[name]
    return {name: full.get(id(p), p.grad if grad else p.data)
            for name, p in module.named_parameters()}
