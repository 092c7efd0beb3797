"""Per-rank memory ledger and per-layer communication counters of a (parallel) model.

:func:`memory_ledger` adds up, on this rank, the bytes of

* **parameters** -- the arrays this rank holds (a shard under tensor
  parallelism, everything under data parallelism);
* **gradients** -- one array per parameter, as large as it;
* **optimizer state** -- ``optimizer.state_bytes()`` (Adam: two moments per
  parameter; a ZeRO optimizer: the moments of its shard only);
* **activations** -- what every layer keeps between forward and backward,
  :meth:`tensorpar.nn.Module.saved_bytes` (read it after a forward).

:func:`traffic_by_layer` counts the collectives each layer makes during
its ``forward`` and ``backward`` (inclusive: a block's counts contain its
sub-layers'), with the counters of :mod:`tensorpar.distributed.comm`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ...distributed import comm as C
from ..module import Module
from .agreement import agree_on

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["MemoryLedger", "format_ledgers", "gather_ledgers", "memory_ledger",
           "traffic_by_layer"]


@dataclass(frozen=True)
class MemoryLedger:
    """Bytes held by one rank, by kind.

    Examples
    --------
    >>> MemoryLedger(parameters=80, gradients=80, optimizer_state=160, activations=32).total
    352
    """

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        """Sum of the four kinds."""
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def as_dict(self) -> dict[str, int]:
        """The four kinds and the total, by name.

        Examples
        --------
        >>> MemoryLedger(parameters=80, gradients=80, optimizer_state=0, activations=32).as_dict()
        {'parameters': 80, 'gradients': 80, 'optimizer_state': 0, 'activations': 32, 'total': 192}
        """
        return {**asdict(self), "total": self.total}


def memory_ledger(module: Module, optimizer: Any = None) -> MemoryLedger:
    """The :class:`MemoryLedger` of ``module`` (and ``optimizer``) on this rank (no message).

    Parameters
    ----------
    module : Module
        The model as this rank holds it (shards for parallel layers).
    optimizer : object with ``state_bytes()``, optional
        Any optimizer of :mod:`tensorpar.nn.optim` or
        :class:`~tensorpar.nn.parallel.ZeroAdam`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> lin = Linear(4, 2, seed=0)
    >>> _ = lin(np.ones((3, 4)))
    >>> memory_ledger(lin)
    MemoryLedger(parameters=80, gradients=80, optimizer_state=0, activations=96)
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")
    params = module.parameters()
    state = 0
    if optimizer is not None:
        if not callable(getattr(optimizer, "state_bytes", None)):
            raise TypeError("optimizer must have a state_bytes() method")
        state = int(optimizer.state_bytes())
    return MemoryLedger(parameters=sum(int(p.data.nbytes) for p in params),
                        gradients=sum(int(p.grad.nbytes) for p in params),
                        optimizer_state=state, activations=int(module.saved_bytes()))


def gather_ledgers(comm: MPI.Comm | None, ledger: MemoryLedger) -> list[MemoryLedger]:
    """Every rank's ledger in rank order, on every rank (one small metadata message).

    Examples
    --------
    >>> gather_ledgers(None, MemoryLedger(1, 1, 0, 0))
    [MemoryLedger(parameters=1, gradients=1, optimizer_state=0, activations=0)]

    Under ``mpiexec -n 2 python script.py`` both ranks get the two ledgers,
    rank 0's first.
    """
    def validate() -> None:
        if not isinstance(ledger, MemoryLedger):
            raise TypeError(f"ledger must be a MemoryLedger, got {type(ledger).__name__}")

    agree_on(comm, {}, validate)
    return [MemoryLedger(**d) for d in C.allgather_object(comm, asdict(ledger))]


def format_ledgers(ledgers: list[MemoryLedger]) -> str:
    """A text table, one row per rank, in MiB.

    Examples
    --------
    >>> print(format_ledgers([MemoryLedger(2 ** 20, 2 ** 20, 0, 0)]))
    rank  params MiB  grads MiB  optim MiB  activ MiB  total MiB
       0       1.000      1.000      0.000      0.000      2.000
    """
    mib = float(2 ** 20)
    lines = [f"{'rank':>4}  {'params MiB':>10}  {'grads MiB':>9}  {'optim MiB':>9}  "
             f"{'activ MiB':>9}  {'total MiB':>9}"]
    for r, led in enumerate(ledgers):
        lines.append(f"{r:>4}  {led.parameters / mib:>10.3f}  {led.gradients / mib:>9.3f}  "
                     f"{led.optimizer_state / mib:>9.3f}  {led.activations / mib:>9.3f}  "
                     f"{led.total / mib:>9.3f}")
    return "\n".join(lines)


@contextlib.contextmanager
def traffic_by_layer(module: Module) -> Iterator[dict[str, C.CommCounter]]:
    """Count the collectives of every layer's ``forward`` and ``backward`` inside the block.

    Yields a dict from dotted module name (``""`` for ``module`` itself) to a
    :class:`~tensorpar.distributed.comm.CommCounter`; counts are inclusive
    (a block's contain its sub-layers'). The methods are wrapped on the
    instances for the duration of the block and restored afterwards.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear, Sequential
    >>> net = Sequential(Linear(2, 2, seed=0))
    >>> with traffic_by_layer(net) as per_layer:
    ...     _ = net(np.ones((1, 2)))
    >>> sorted(per_layer), per_layer["0"].total_bytes   # one process: nothing sent
    (['', '0'], 0)

    Under ``mpiexec -n 2 python script.py`` with
    ``Sequential(ColumnParallelLinear(2, 4, seed=0, gather_output=True))`` the
    layer ``"0"`` counts one ``Allgatherv`` of 32 bytes (plus one metadata
    check) on each rank, also listed under ``"0.exit"``.
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")
    counters: dict[str, C.CommCounter] = {}
    patched: list[Module] = []

    def wrap(mod: Module, method: Any, counter: C.CommCounter) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with C.count_traffic() as c:
                out = method(*args, **kwargs)
            for op, n in c.calls.items():
                counter.calls[op] = counter.calls.get(op, 0) + n
            for op, n in c.nbytes.items():
                counter.nbytes[op] = counter.nbytes.get(op, 0) + n
            for name, per in c.by_comm.items():
                mine = counter.by_comm.setdefault(name, {})
                for op, n in per.items():
                    mine[op] = mine.get(op, 0) + n
            counter.events.extend(c.events)
            return out
        return counted

    try:
        for name, mod in module.named_modules():
            if mod in patched:
                continue  # a shared sub-module is counted under its first name
            counters[name] = counter = C.CommCounter()
            for meth in ("forward", "backward"):
                object.__setattr__(mod, meth, wrap(mod, getattr(mod, meth), counter))
            patched.append(mod)
        yield counters
    finally:
        for mod in patched:
            for meth in ("forward", "backward"):
                mod.__dict__.pop(meth, None)
