"""Global gradient norm and clipping of a tensor-parallel model (Megatron's ``clip_grad_norm``).

A sharded parameter's squares are summed over its shard group; a
replicated one counts once. The norm equals the serial model's
(:func:`tensorpar.nn.optim.clip_grad_norm`), so clipping keeps parallel
training equal to serial training. Like the serial version the sum is
taken after dividing by the largest magnitude, so the norm of gradients
near the float range is right.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ...distributed import comm as C
from ..module import Module, Parameter
from .agreement import agree_on

__all__ = ["parallel_clip_grad_norm", "parallel_grad_norm"]


def _groups(module: Module) -> tuple[list[Parameter], list[tuple[Any, list[Parameter]]]]:
    """Replicated parameters, and the sharded ones per shard group (in module order)."""
    sharded: dict[int, tuple[Any, list[Parameter]]] = {}
    owner: dict[int, int] = {}
    for _, mod in module.named_modules():
        specs = getattr(mod, "shard_specs", None)
        if not specs:
            continue
        comm = getattr(mod, "shard_comm", None)
        key = id(C.resolve_comm(comm))
        own = dict(mod.named_parameters())
        for name in specs:
            if name in own:
                owner[id(own[name])] = key
                sharded.setdefault(key, (comm, []))
    replicated = []
    for p in module.parameters():
        if id(p) in owner:
            sharded[owner[id(p)]][1].append(p)
        else:
            replicated.append(p)
    return replicated, list(sharded.values())


def _max_abs(params: list[Parameter]) -> float:
    return max((float(get_array_module(p.grad).abs(p.grad).max()) for p in params if p.size),
               default=0.0)


def _sumsq(params: list[Parameter], scale: float) -> float:
    return sum(float(((p.grad.astype(np.float64) / scale) ** 2).sum()) for p in params if p.size)


def parallel_grad_norm(module: Module) -> float:
    """Euclidean norm of all of the serial model's gradients, from the shards (collective).

    Two all-reduces of one number per shard group (the largest magnitude,
    then the scaled sum of squares), after one agreement on the parameter
    layout.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> lin = Linear(2, 1, seed=0); lin.weight.grad[...] = [[3.0, 4.0]]
    >>> parallel_grad_norm(lin)
    5.0

    Under ``mpiexec -n 2 python script.py`` a replicated layer gives ``5.0``
    on both ranks (replicated gradients are counted once), and a
    ``ColumnParallelLinear(4, 6)`` whose weight gradients are all 1 gives
    ``sqrt(24)``, the serial ``(6, 4)`` weight's norm, on both ranks.
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")
    replicated, groups = _groups(module)
    for comm, params in groups:
        agree_on(comm, {"layout": [(p.shape, str(p.grad.dtype)) for p in params]})
    scale = _max_abs(replicated)
    for comm, params in groups:
        scale = max(scale, float(C.allreduce(comm, np.array(_max_abs(params)), op="max")))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    total = _sumsq(replicated, scale)
    for comm, params in groups:
        total += float(C.allreduce(comm, np.array(_sumsq(params, scale))))
    return scale * math.sqrt(total)


def parallel_clip_grad_norm(module: Module, max_norm: float) -> float:
    """Scale every gradient so the serial model's global norm is at most ``max_norm``.

    As :func:`tensorpar.nn.clip_grad_norm` (factor ``min(1, max_norm /
    (norm + 1e-6))``; a non-finite norm is returned and nothing changes),
    with the norm of :func:`parallel_grad_norm`. Returns the norm before.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> lin = Linear(2, 1, bias=False, seed=0); lin.weight.grad[...] = [[3.0, 4.0]]
    >>> parallel_clip_grad_norm(lin, 1.0), np.round(lin.weight.grad, 6)
    (5.0, array([[0.6, 0.8]]))

    Under ``mpiexec -n 2 python script.py`` every rank computes the same
    global norm and applies the same factor to its shard.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or \
            not math.isfinite(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    total = parallel_grad_norm(module)
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in module.parameters():
            p.grad *= coef
    return total
