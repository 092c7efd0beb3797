"""ZeRO-style sharded Adam: each data-parallel rank keeps and updates ``1/P`` of the optimizer state.

All parameters are viewed as one flat vector of ``n`` numbers, padded with
zeros to ``P m`` (``m = ceil(n / P)``); rank ``r`` owns entries
``[r m, (r+1) m)``. A step is (Rajbhandari et al., ZeRO stage 1):

1. **reduce-scatter** the flat gradient: rank ``r`` gets the sum over ranks
   of its ``m`` entries (divided by ``P``: the data-parallel mean);
2. the serial :class:`~tensorpar.nn.Adam` (or ``AdamW``) update of those
   ``m`` entries, with their moments -- the only optimizer state this rank
   keeps, ``2 m`` numbers instead of ``2 n``;
3. **all-gather** the updated entries into every rank's parameters.

Bytes per step, counted: the reduce-scatter's input and the all-gather's
output, ``P m w`` each for ``w``-byte numbers -- the same as the
all-reduce of plain data parallelism, on the wire too (a ring all-reduce
*is* a reduce-scatter and an all-gather). Optimizer state per rank is
exactly ``1/P`` of :class:`~tensorpar.nn.Adam`'s when ``P`` divides ``n``;
otherwise the last rank's shard holds up to ``P - 1`` padding zeros.

With tensor parallelism on a 2-D ``data x tensor`` grid
(:class:`~tensorpar.distributed.grid.ProcessGrid`), build the layers on the
tensor sub-communicator and this optimizer on the data sub-communicator:
each rank shards the state of the parameter shards it holds.
Gradients are not sharded (ZeRO stage 2): the layers accumulate full
gradients, which this optimizer reduce-scatters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import get_array_module
from ...distributed import comm as C
from ..module import Module, Parameter
from ..optim import Adam, AdamW, Optimizer
from .agreement import agree_on
from .data_parallel import broadcast_parameters

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ZeroAdam"]


class ZeroAdam:
    """Adam (or AdamW) with its state sharded over the data-parallel ranks of ``comm``.

    Parameters
    ----------
    params : Module or iterable of Parameter
        This rank's parameters (the whole model under data parallelism, the
        tensor-parallel shards on a 2-D grid), one dtype and array module.
    comm : mpi4py communicator, optional
        The data-parallel group (default ``COMM_WORLD``).
    lr, betas, eps, weight_decay
        As for :class:`~tensorpar.nn.Adam`.
    decoupled : bool
        AdamW's decoupled weight decay instead of Adam's L2 term.
    broadcast : bool
        When ``params`` is a Module, copy rank 0's values to every rank first.

    Notes
    -----
    The update of each entry is the serial optimizer's (it *is* a
    :class:`~tensorpar.nn.Adam` over this rank's shard), so training equals
    serial training on the whole batch. ``step()`` uses the gradients every
    rank accumulated for its own batch (do not also average them with
    :class:`DataParallel`); ``lr`` may be changed between steps.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import Linear, MSELoss
        from tensorpar.nn.parallel import ZeroAdam
        model, loss = Linear(4, 2, seed=0), MSELoss()
        opt = ZeroAdam(model, lr=1e-2)                  # 5 of the 10 entries' moments here
        x = np.random.default_rng(opt.rank).standard_normal((8, 4))
        loss(model(x), np.zeros((8, 2)))
        opt.zero_grad(); model.backward(loss.backward()); opt.step()

    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> lin = Linear(3, 2, seed=0)
    >>> opt = ZeroAdam(lin, lr=0.1)
    >>> lin.weight.grad[...] = 1.0; opt.step(); opt.state_bytes()   # 8 entries, 2 moments
    128
    """

    def __init__(self, params: Module | Iterable[Parameter], comm: MPI.Comm | None = None, *,
                 lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False,
                 broadcast: bool = True) -> None:
        module = params if isinstance(params, Module) else None
        plist = params.parameters() if isinstance(params, Module) else list(params)
        world = C.resolve_comm(comm)
        self.comm, self.rank, self.size = comm, world.Get_rank(), world.Get_size()

        def validate() -> None:
            if not plist:
                raise ValueError("params is empty: nothing to optimize")
            for i, p in enumerate(plist):
                if not isinstance(p, Parameter):
                    raise TypeError(f"params[{i}] must be a Parameter, got {type(p).__name__}")
            kinds = {(str(p.data.dtype), type(p.data).__module__) for p in plist}
            if len(kinds) > 1:
                raise TypeError(f"params must share one dtype and array module, got {sorted(kinds)}")

        agree_on(comm, {"layout": [(getattr(p, "shape", None), str(getattr(getattr(p, "data", None),
                                                                         "dtype", "")))
                                   for p in plist],
                        "lr": lr, "betas": tuple(betas), "eps": eps,
                        "weight_decay": weight_decay, "decoupled": decoupled}, validate)
        if module is not None and broadcast:
            broadcast_parameters(module, comm)
        self.params = plist
        self.numel = sum(p.size for p in plist)
        self.shard_size = -(-self.numel // self.size)
        lo = min(self.rank * self.shard_size, self.numel)
        hi = min(lo + self.shard_size, self.numel)
        xp = get_array_module(plist[0].data)
        shard = xp.zeros(self.shard_size, dtype=plist[0].data.dtype)
        shard[:hi - lo] = self._flat("data")[lo:hi]
        self.shard = Parameter(shard)
        kind = AdamW if decoupled else Adam
        self.inner: Optimizer = kind([self.shard], lr=lr, betas=betas, eps=eps,
                                     weight_decay=weight_decay)

    @property
    def lr(self) -> float:
        """Learning rate (settable, e.g. by a schedule)."""
        return self.inner.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.inner.lr = value

    @property
    def step_count(self) -> int:
        return self.inner.step_count

    def _flat(self, which: str) -> Any:
        xp = get_array_module(self.params[0].data)
        parts = [getattr(p, which).reshape(-1) for p in self.params]
        pad = self.shard_size * self.size - self.numel
        if pad:
            parts.append(xp.zeros(pad, dtype=self.params[0].data.dtype))
        return xp.concatenate(parts)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(3, 2, seed=0)
        >>> opt = ZeroAdam(lin, lr=0.1)
        >>> lin.weight.grad[...] = 1.0
        >>> opt.zero_grad()
        >>> float(abs(lin.weight.grad).sum())
        0.0
        """
        for p in self.params:
            p.grad[...] = 0

    def step(self, max_norm: float | None = None) -> float | None:
        """Reduce-scatter the gradients, update this rank's shard, all-gather the parameters.

        Parameters
        ----------
        max_norm : float, optional
            Clip the averaged gradient to this global norm first, as
            :func:`tensorpar.nn.clip_grad_norm` does (same factor, a
            non-finite norm skips the clipping): the squares of the shards
            are summed over ``comm`` (two all-reduces of one number). The
            norm is that of the parameters this optimizer holds, so under
            tensor parallelism it is not the whole model's.

        Returns
        -------
        float or None
            The norm before clipping, when ``max_norm`` is given.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(3, 2, seed=0)
        >>> opt = ZeroAdam(lin, lr=0.1)
        >>> lin.weight.grad[...] = 1.0
        >>> before = lin.weight.data.copy()
        >>> round(opt.step(max_norm=1.0), 6)   # sqrt(6): the weight's gradient only
        2.44949
        >>> bool(np.allclose(lin.weight.data, before - 0.1))   # Adam's first step is lr * sign
        True

        Under ``mpiexec -n 2`` the 8 entries are split 4 + 4: each rank
        updates its shard and the all-gather leaves the same parameters on
        both ranks.
        """
        def validate() -> None:
            if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(
                    max_norm, (int, float)) or not math.isfinite(max_norm) or max_norm < 0):
                raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")

        agree_on(self.comm, {"step": self.inner.step_count, "lr": self.inner.lr,
                             "max_norm": max_norm}, validate)
        grads = C.reduce_scatter_block(self.comm, self._flat("grad"))
        self.shard.grad[...] = grads * (1.0 / self.size)
        norm = None if max_norm is None else self._clip(float(max_norm))
        self.inner.step()
        full = C.allgatherv(self.comm, self.shard.data, counts=[self.shard_size] * self.size)
        start = 0
        for p in self.params:
            p.data[...] = full[start:start + p.size].reshape(p.shape)
            start += p.size
        return norm

    def _clip(self, max_norm: float) -> float:
        """Global norm of the averaged gradient from the shards; scale the shard like the serial clip."""
        g = self.shard.grad
        xp = get_array_module(g)
        local_max = float(xp.abs(g).max()) if g.size else 0.0
        scale = float(C.allreduce(self.comm, local_max, op="max"))
        if scale == 0.0 or not math.isfinite(scale):
            return scale
        s = g.astype(np.float64) / scale
        norm = scale * math.sqrt(float(C.allreduce(self.comm, float((s * s).sum()))))
        if math.isfinite(norm):
            coef = max_norm / (norm + 1e-6)
            if coef < 1.0:
                g *= coef
        return norm

    def state_bytes(self) -> int:
        """Bytes of optimizer state on this rank (the moments of its shard).

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(3, 2, seed=0)
        >>> opt = ZeroAdam(lin, lr=0.1)
        >>> lin.weight.grad[...] = 1.0; _ = opt.step()
        >>> opt.state_bytes()   # 8 float64 entries, two moments
        128

        Under ``mpiexec -n 2`` each rank holds 4 entries' moments: 64 bytes.
        """
        return self.inner.state_bytes()

    def __repr__(self) -> str:
        return (f"ZeroAdam(numel={self.numel}, shard={self.shard_size}, ranks={self.size}, "
                f"lr={self.lr})")


