"""How a parallel layer's parameters are cut from the serial ones, and how to put them back.

A sharded parameter is described by a :class:`ShardSpec` ``(axis, groups)``:
the serial array's ``axis`` is made of ``groups`` equal blocks (the query,
key and value rows of ``in_proj_weight``: 3; the gates of a GRU: 3; a plain
linear layer: 1), and each block is split into ``P`` equal pieces, rank
``r`` keeping piece ``r`` of every block, concatenated. Parallel layers
list their sharded parameters in a ``shard_specs`` dict (parameter name to
spec) and their group in ``shard_comm``; :func:`gather_parameters` uses
them to rebuild the serial state (values or gradients) on every rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..._backend import to_numpy
from ..._typing import Array
from ...distributed import comm as C
from ..module import Module, Parameter
from .agreement import agree_on, split_size

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ShardSpec", "gather_parameters", "gather_shard", "shard"]


class ShardSpec(NamedTuple):
    """``axis`` of the serial parameter, made of ``groups`` blocks each split over the ranks.

    Examples
    --------
    A fused ``(3 E, E)`` input projection (query, key, value) is three blocks
    of rows, each split over the ranks:

    >>> spec = ShardSpec(0, groups=3)
    >>> shard(np.arange(6.0), spec, rank=0, size=1)   # one process: the whole axis
    array([0., 1., 2., 3., 4., 5.])
    >>> shard(np.arange(6.0), spec, rank=1, size=2)   # what rank 1 keeps under mpiexec -n 2
    array([1., 3., 5.])
    """

    axis: int
    groups: int = 1


def _grouped(x: Array, spec: ShardSpec) -> tuple[Array, int]:
    """``x`` with ``spec.axis`` reshaped to ``(groups, rest)``; the axis of ``rest``."""
    ax = spec.axis % x.ndim
    n = x.shape[ax]
    if n % spec.groups:
        raise ValueError(f"axis {ax} of size {n} is not made of {spec.groups} equal blocks")
    return x.reshape(*x.shape[:ax], spec.groups, n // spec.groups, *x.shape[ax + 1:]), ax + 1


def shard(full: Array, spec: ShardSpec, rank: int, size: int) -> Array:
    """Rank ``rank``'s piece (a copy) of the serial parameter ``full``.

    Examples
    --------
    >>> import numpy as np
    >>> shard(np.arange(8.0), ShardSpec(0, groups=2), rank=1, size=2)   # blocks [0..3], [4..7]
    array([2., 3., 6., 7.])
    """
    g, ax = _grouped(full, spec)
    m = split_size(g.shape[ax], size, f"a block of axis {spec.axis % full.ndim}")
    index = [slice(None)] * g.ndim
    index[ax] = slice(rank * m, (rank + 1) * m)
    piece = g[tuple(index)]
    return piece.reshape(*full.shape[:spec.axis % full.ndim], -1,
                         *full.shape[spec.axis % full.ndim + 1:]).copy()


def gather_shard(comm: MPI.Comm | None, local: Array, spec: ShardSpec) -> Array:
    """Inverse of :func:`shard`: every rank's piece put back in serial order (one all-gather).

    Collective over ``comm``; the ranks first agree on the piece's shape.
    The result is on every rank.

    Examples
    --------
    >>> import numpy as np
    >>> gather_shard(None, np.arange(4.0), ShardSpec(0, groups=2))
    array([0., 1., 2., 3.])

    Under ``mpiexec -n 2 python script.py`` with pieces ``[0., 1.]`` on rank
    0 and ``[2., 3.]`` on rank 1 (``ShardSpec(0)``) both ranks get
    ``array([0., 1., 2., 3.])``.
    """
    size = C.resolve_comm(comm).Get_size()
    agree_on(comm, {"shape": tuple(getattr(local, "shape", ())), "spec": tuple(spec)},
             lambda: _grouped(local, spec))
    g, ax = _grouped(local, spec)
    full = C.allgatherv(comm, g, counts=[g.shape[ax]] * size, axis=ax)
    a = spec.axis % local.ndim
    return full.reshape(*local.shape[:a], -1, *local.shape[a + 1:])


def gather_parameters(module: Module, *, grads: bool = False) -> dict[str, np.ndarray]:
    """The serial state of a parallel model (values, or gradients), on every rank, as numpy.

    Sharded parameters (those in a layer's ``shard_specs``) are all-gathered
    over the layer's ``shard_comm``; replicated ones are copied. Names are
    those of :meth:`~tensorpar.nn.Module.named_parameters`, which the
    parallel layers keep equal to the serial layer's, so the result loads
    into the serial model with ``load_state_dict``. Collective over every
    group the model uses (every rank of each group must call it).

    Examples
    --------
    >>> from tensorpar.nn import Linear
    >>> sorted(gather_parameters(Linear(2, 3, seed=0)))
    ['bias', 'weight']

    Under ``mpiexec -n 2 python script.py`` a ``ColumnParallelLinear(4, 6)``
    holds a ``(3, 4)`` weight per rank, and ``gather_parameters`` returns the
    serial ``(6, 4)`` weight and ``(6,)`` bias on both ranks.
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")
    owner: dict[int, tuple[ShardSpec, Any]] = {}
    for _, mod in module.named_modules():
        specs = getattr(mod, "shard_specs", None)
        if not specs:
            continue
        own = dict(mod.named_parameters())
        for pname, spec in specs.items():
            p = own.get(pname)
            if isinstance(p, Parameter):
                owner[id(p)] = (spec, getattr(mod, "shard_comm", None))
    out: dict[str, np.ndarray] = {}
    for name, p in module.named_parameters():
        arr = p.grad if grads else p.data
        if id(p) in owner:
            spec, comm = owner[id(p)]
            arr = gather_shard(comm, arr, spec)
        out[name] = np.array(to_numpy(arr))
    return out
