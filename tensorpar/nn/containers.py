"""Container modules: :class:`Sequential`."""

from __future__ import annotations

from .._typing import Array
from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear, ReLU
    >>> net = Sequential(Linear(4, 3, seed=0), ReLU(), Linear(3, 2, seed=1))
    >>> y = net(np.ones((5, 4)))
    >>> net.backward(np.ones_like(y)).shape
    (5, 4)
    >>> [name for name, _ in net.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}] must be a Module, got {type(m).__name__}")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x: Array) -> Array:
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_out: Array) -> Array:
        for m in reversed(list(self._modules.values())):
            grad_out = m.backward(grad_out)
        return grad_out
