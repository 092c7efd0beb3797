"""Data parallelism: every rank holds the whole model and its own batch; gradients are averaged.

:class:`DataParallel` wraps any :class:`~tensorpar.nn.Module` (dense,
TT and CP layers, GRU/LSTM, a tensor-parallel model on a sub-communicator):
``forward`` and ``backward`` are the module's, and after ``backward`` the
gradients are averaged over ``comm`` with **bucketed all-reduces**: the
gradients are packed, in reverse registration order (the order backward
produces them), into flat buckets of at most ``bucket_bytes`` (a new bucket
also starts where the dtype or array module changes), and each bucket is
one ``Allreduce``. Bytes per step: the gradient bytes, exactly; calls per
step: the number of buckets.

TT layers (:class:`~tensorpar.nn.TTLinear`, a TT-GRU's ``tt_ih_l0``) are
data-parallel as they are: their cores are small and replicated, and the
batch dimension of the TT contraction is what the ranks split, so the
all-reduce moves the core gradients only (3,232 numbers for the UCF11 TT-GRU
input map instead of 44 million).

Averaging the per-rank gradients of per-rank **mean** losses gives the
gradient of the mean over the whole batch when every rank has the same
number of samples; with unequal local batches, pass the local sample count
to :meth:`DataParallel.sync_gradients` (``weight=``) to weight the average.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..._backend import get_array_module
from ..._typing import Array
from ...distributed import comm as C
from ..module import Module, Parameter
from .agreement import agree_on

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["DataParallel", "broadcast_parameters", "plan_buckets"]


def _check_module(module: Any) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")


def _layout(params: list[Parameter]) -> list[tuple[tuple[int, ...], str]]:
    return [(p.shape, str(p.data.dtype)) for p in params]


def broadcast_parameters(module: Module, comm: MPI.Comm | None = None, root: int = 0) -> None:
    """Copy ``root``'s parameter values to every rank (collective; one ``Bcast`` per parameter).

    The ranks first agree on the parameter names, shapes and dtypes.

    Examples
    --------
    >>> from tensorpar.nn import Linear
    >>> broadcast_parameters(Linear(3, 2, seed=0))   # one process: nothing to do

    Under ``mpiexec -n 2 python script.py``, ``Linear(3, 2, seed=comm.rank)``
    has rank 0's values on both ranks afterwards.
    """
    named = list(module.named_parameters()) if isinstance(module, Module) else []
    agree_on(comm, {"parameters": [(n, p.shape, str(p.data.dtype)) for n, p in named],
                    "root": root}, lambda: _check_module(module))
    if C.resolve_comm(comm).Get_size() == 1:
        return
    for p in module.parameters():
        got = C.bcast(comm, p.data, root=root, shape=p.shape, dtype=p.data.dtype)
        p.data[...] = get_array_module(p.data).asarray(got)


def plan_buckets(params: list[Parameter], bucket_bytes: int) -> list[list[int]]:
    """Indices of ``params`` per bucket: reverse order, at most ``bucket_bytes`` each.

    A parameter larger than ``bucket_bytes`` gets a bucket of its own; a
    change of dtype or array module closes the bucket.

    Examples
    --------
    >>> import numpy as np
    >>> ps = [Parameter(np.zeros(n)) for n in (4, 4, 4)]   # 32 bytes each
    >>> plan_buckets(ps, 64)
    [[2, 1], [0]]
    """
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) or bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be a positive int, got {bucket_bytes!r}")
    buckets: list[list[int]] = []
    size, kind = 0, None
    for i in reversed(range(len(params))):
        p = params[i]
        k = (str(p.data.dtype), type(p.data).__module__)
        if buckets and k == kind and size + p.data.nbytes <= bucket_bytes:
            buckets[-1].append(i)
            size += p.data.nbytes
        else:
            buckets.append([i])
            size, kind = p.data.nbytes, k
    return buckets


class DataParallel(Module):
    """Replicate ``module`` on every rank of ``comm`` and average its gradients after backward.

    Parameters
    ----------
    module : Module
        The model (its parameters are registered under ``module.``, as in
        PyTorch's ``DistributedDataParallel``).
    comm : mpi4py communicator, optional
        The data-parallel group (default ``COMM_WORLD``; the data axis of a
        :class:`~tensorpar.distributed.grid.ProcessGrid` for 2-D layouts).
    bucket_bytes : int
        Largest bucket (default 25 MiB, PyTorch's).
    broadcast : bool
        Copy rank 0's parameters to every rank at construction, so the
        replicas start equal.

    Notes
    -----
    ``forward(*args)`` and ``backward(*args)`` are the module's; backward
    then calls :meth:`sync_gradients` unless inside :meth:`no_sync`
    (gradient accumulation). Memory per rank: the whole model, plus one
    bucket of staging. Communication per step: one all-reduce per bucket,
    the gradient bytes in total (``len(self.buckets)`` calls); on the wire a
    ring all-reduce moves ``2 (P-1)/P`` times that.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import Linear, MSELoss, Adam
        from tensorpar.nn.parallel import DataParallel
        model = DataParallel(Linear(4, 1, seed=0))
        opt, loss = Adam(model, lr=1e-2), MSELoss()
        x = np.random.default_rng(model.rank).standard_normal((8, 4))   # this rank's batch
        loss(model(x), x.sum(axis=1, keepdims=True))
        opt.zero_grad(); model.backward(loss.backward()); opt.step()   # same update everywhere

    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> dp = DataParallel(Linear(3, 2, seed=0))
    >>> [n for n, _ in dp.named_parameters()], dp.buckets
    (['module.weight', 'module.bias'], [[1, 0]])
    """

    def __init__(self, module: Module, comm: MPI.Comm | None = None, *,
                 bucket_bytes: int = 25 * 2 ** 20, broadcast: bool = True) -> None:
        super().__init__()
        params = module.parameters() if isinstance(module, Module) else []
        def validate() -> None:
            _check_module(module)
            plan_buckets(params, bucket_bytes)

        agree_on(comm, {"layout": _layout(params), "bucket_bytes": bucket_bytes}, validate)
        self.module = module
        self.comm = comm
        self.buckets = plan_buckets(params, bucket_bytes)
        self.rank = C.resolve_comm(comm).Get_rank()
        self.size = C.resolve_comm(comm).Get_size()
        self.require_sync = True
        if broadcast:
            broadcast_parameters(module, comm)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.module.backward(*args, **kwargs)
        if self.require_sync:
            self.sync_gradients()
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate gradients locally inside the block (sync on the next backward outside).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.nn import Linear
        >>> dp = DataParallel(Linear(3, 2, seed=0))
        >>> with dp.no_sync():
        ...     _ = dp(np.ones((4, 3))); _ = dp.backward(np.ones((4, 2)))
        ...     print(dp.require_sync)
        False
        >>> dp.require_sync
        True

        Under ``mpiexec -n 2`` the gradients inside the block stay local to
        each rank (no all-reduce); the first backward after it averages the
        accumulated sum.
        """
        old, self.require_sync = self.require_sync, False
        try:
            yield
        finally:
            self.require_sync = old

    def sync_gradients(self, weight: float | None = None) -> None:
        """Average every gradient over the ranks: one all-reduce per bucket (collective).

        Parameters
        ----------
        weight : float, optional
            This rank's share, e.g. its number of samples: gradients become
            ``sum_r weight_r grad_r / sum_r weight_r``. Default: the plain
            mean (equal local batches).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.nn import Linear
        >>> dp = DataParallel(Linear(3, 2, seed=0))
        >>> dp.module.bias.grad[...] = 2.0
        >>> dp.sync_gradients(weight=5)   # one process: the mean of one rank
        >>> dp.module.bias.grad
        array([2., 2.])

        Under ``mpiexec -n 2`` with bias gradients 2 on rank 0 and 4 on rank 1,
        ``sync_gradients()`` leaves 3 on both, and
        ``sync_gradients(weight=1 + 2 * rank)`` leaves ``(2 + 3 * 4) / 4 = 3.5``.
        """
        params = self.module.parameters()
        w = 1.0 if weight is None else weight

        def validate() -> None:
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
                raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")

        agree_on(self.comm, {"layout": _layout(params), "weighted": weight is not None}, validate)
        if self.size == 1:
            return
        total = float(C.allreduce(self.comm, float(w))) if weight is not None else float(self.size)
        if total == 0:
            raise ValueError("the weights sum to zero on every rank")
        for bucket in self.buckets:
            group = [params[i] for i in bucket]
            xp = get_array_module(group[0].grad)
            flat = xp.concatenate([p.grad.reshape(-1) for p in group])
            if weight is not None:
                flat *= w
            summed: Array = C.allreduce(self.comm, flat)
            start = 0
            for p in group:
                p.grad[...] = (summed[start:start + p.size] / total).reshape(p.shape)
                start += p.size

    def __repr__(self) -> str:
        return f"DataParallel({type(self.module).__name__}, ranks={self.size}, buckets={len(self.buckets)})"
