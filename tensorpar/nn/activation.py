"""Element-wise activations: ReLU, GELU (exact erf or tanh approximation), Tanh, Sigmoid.

Each keeps one array of the input's size for backward (the input for GELU,
the output for the others) and accepts float32 or float64, numpy or cupy.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Literal

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad, check_input
from .module import Module

__all__ = ["GELU", "ReLU", "Sigmoid", "Tanh", "erf", "make_activation"]


def erf(x: Array) -> Array:
    """The error function of a numpy or cupy array (scipy's / cupyx's ``special.erf``).

    Examples
    --------
    >>> import numpy as np
    >>> float(erf(np.array(0.5)))  # doctest: +ELLIPSIS
    0.5204998778...
    """
    xp = get_array_module(x)
    special = importlib.import_module("scipy.special" if xp is np else "cupyx.scipy.special")
    return special.erf(x)


class _Elementwise(Module):
    """Shared forward/backward bookkeeping of the element-wise activations."""

    def forward(self, x: Array) -> Array:
        check_input(x, "x", min_ndim=0)
        y = self.apply(x)
        self.cache = {"saved": self.saved(x, y), "shape": tuple(x.shape)}
        return y

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, type(self).__name__)
        check_grad(grad_out, c["shape"], like=c["saved"])
        return self.derivative_times(grad_out, c["saved"])

    def apply(self, x: Array) -> Array:
        raise NotImplementedError

    def saved(self, x: Array, y: Array) -> Array:
        return y

    def derivative_times(self, g: Array, saved: Array) -> Array:
        raise NotImplementedError


class ReLU(_Elementwise):
    """``max(x, 0)``. Keeps the output (``x.size`` elements) for backward.

    Examples
    --------
    >>> import numpy as np
    >>> r = ReLU()
    >>> r(np.array([-1.0, 2.0])), r.backward(np.ones(2))
    (array([0., 2.]), array([0., 1.]))
    """

    def apply(self, x: Array) -> Array:
        return get_array_module(x).maximum(x, 0)

    def derivative_times(self, g: Array, y: Array) -> Array:
        return g * (y > 0)


class Tanh(_Elementwise):
    """``tanh(x)``; derivative ``1 - y^2``. Keeps the output (``x.size`` elements).

    Examples
    --------
    >>> import numpy as np
    >>> t = Tanh()
    >>> _ = t(np.zeros(2)); t.backward(np.ones(2))
    array([1., 1.])
    """

    def apply(self, x: Array) -> Array:
        return get_array_module(x).tanh(x)

    def derivative_times(self, g: Array, y: Array) -> Array:
        return g * (1 - y * y)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` (overflow-free form); derivative ``y (1 - y)``. Keeps the output.

    Examples
    --------
    >>> import numpy as np
    >>> s = Sigmoid()
    >>> s(np.array([0.0, -1000.0])), s.backward(np.ones(2))
    (array([0.5, 0. ]), array([0.25, 0.  ]))
    """

    def apply(self, x: Array) -> Array:
        xp = get_array_module(x)
        e = xp.exp(-xp.abs(x))  # never overflows; the sign picks the stable branch
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))

    def derivative_times(self, g: Array, y: Array) -> Array:
        return g * y * (1 - y)


GeluApproximate = Literal["none", "tanh"]


class GELU(_Elementwise):
    """Gaussian error linear unit, PyTorch's ``nn.GELU(approximate=...)``.

    Parameters
    ----------
    approximate : {"none", "tanh"}
        ``"none"`` (the default, as in PyTorch) is exact:
        :math:`x \\Phi(x) = \\tfrac12 x (1 + \\operatorname{erf}(x/\\sqrt2))`.
        ``"tanh"`` is :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))`
        (GPT-2's). Each backward is the exact derivative of its forward.

    Notes
    -----
    Keeps the input (``x.size`` elements) for backward.

    Examples
    --------
    >>> import numpy as np
    >>> g = GELU()
    >>> g(np.array([0.0, 1.0]))  # doctest: +ELLIPSIS
    array([0.        , 0.841344...])
    >>> GELU("tanh")(np.array([1.0]))  # doctest: +ELLIPSIS
    array([0.841191...])
    """

    def __init__(self, approximate: GeluApproximate = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def saved(self, x: Array, y: Array) -> Array:
        return x

    def apply(self, x: Array) -> Array:
        xp = get_array_module(x)
        if self.approximate == "tanh":
            c = math.sqrt(2 / math.pi)
            return 0.5 * x * (1 + xp.tanh(c * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))

    def derivative_times(self, g: Array, x: Array) -> Array:
        xp = get_array_module(x)
        if self.approximate == "tanh":
            c = math.sqrt(2 / math.pi)
            t = xp.tanh(c * (x + 0.044715 * x ** 3))
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
        cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


def make_activation(name: str | Module) -> Module:
    """An activation module from its name ("relu", "gelu", "gelu_tanh", "tanh", "sigmoid").

    A :class:`~tensorpar.nn.Module` is returned unchanged.

    Examples
    --------
    >>> make_activation("gelu_tanh")
    GELU(approximate='tanh')
    """
    if isinstance(name, Module):
        return name
    table: dict[str, Any] = {"relu": ReLU, "gelu": GELU, "gelu_tanh": lambda: GELU("tanh"),
                             "tanh": Tanh, "sigmoid": Sigmoid}
    if name not in table:
        raise ValueError(f"activation must be one of {sorted(table)} or a Module, got {name!r}")
    module: Module = table[name]()
    return module
