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

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..._backend import get_array_module
from ...distributed import comm as C
from ..module import Module, Parameter
from ..optim import Adam, AdamW, Optimizer
from .data_parallel import broadcast_parameters
from .mappings import agree_on

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
        """Set every parameter's gradient to zero."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        """Reduce-scatter the gradients, update this rank's shard, all-gather the parameters."""
        agree_on(self.comm, {"step": self.inner.step_count, "lr": self.inner.lr})
        grads = C.reduce_scatter_block(self.comm, self._flat("grad"))
        self.shard.grad[...] = grads * (1.0 / self.size)
        self.inner.step()
        full = C.allgatherv(self.comm, self.shard.data, counts=[self.shard_size] * self.size)
        start = 0
        for p in self.params:
            p.data[...] = full[start:start + p.size].reshape(p.shape)
            start += p.size

    def state_bytes(self) -> int:
        """Bytes of optimizer state on this rank (the moments of its shard)."""
        return self.inner.state_bytes()

    def __repr__(self) -> str:
        return (f"ZeroAdam(numel={self.numel}, shard={self.shard_size}, ranks={self.size}, "
                f"lr={self.lr})")


