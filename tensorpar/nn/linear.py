"""Dense affine layer ``y = x W^T + b`` with PyTorch's names, shapes and initialisation.

The forward and backward maths are the two functions :func:`linear_forward`
and :func:`linear_backward` (llm.c style, side by side); :class:`Linear`
is the module that owns the parameters and the cache. Tensor-parallel
layouts (Megatron's column and row parallel layers) are a :class:`Linear`
holding a slice of the weight plus a named communication step.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from .._typing import Array
from .checks import cached, check_grad, check_input, check_positive_int
from .module import Module, Parameter

__all__ = ["Linear", "check_dtype_arg", "linear_backward", "linear_forward", "uniform_init"]


def check_dtype_arg(dtype: Any) -> np.dtype[Any]:
    """Return ``dtype`` as a numpy dtype if it is float32 or float64 (TypeError otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> check_dtype_arg(np.float32)
    dtype('float32')
    """
    try:
        dt: np.dtype[Any] = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt.type not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def uniform_init(shape: tuple[int, ...], bound: float, rng: np.random.Generator, dtype: Any,
                 xp: ModuleType = np) -> Array:
    """Entries uniform on ``[-bound, bound)``, drawn on the host (so numpy and cupy agree).

    Examples
    --------
    >>> import numpy as np
    >>> w = uniform_init((2, 3), 0.5, np.random.default_rng(0), np.float64)
    >>> bool(abs(w).max() <= 0.5)
    True
    """
    host = rng.uniform(-bound, bound, size=shape).astype(check_dtype_arg(dtype))
    return host if xp is np else xp.asarray(host)


def linear_forward(x: Array, weight: Array, bias: Array | None) -> Array:
    """``y = x W^T + b`` over the last axis of ``x``: ``2 N in out`` FLOPs for ``N`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> linear_forward(np.ones((1, 2)), np.array([[1.0, 2.0]]), np.array([0.5]))
    array([[3.5]])
    """
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(grad_out: Array, x: Array, weight: Array, weight_grad: Array,
                    bias_grad: Array | None) -> Array:
    """Accumulate ``dW += g^T x`` and ``db += sum g``; return ``dx = g W``.

    ``4 N in out`` FLOPs (two matrix products) for ``N`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> W, dW = np.array([[1.0, 2.0]]), np.zeros((1, 2))
    >>> linear_backward(np.ones((1, 1)), np.array([[3.0, 4.0]]), W, dW, None), dW
    (array([[1., 2.]]), array([[3., 4.]]))
    """
    g2 = grad_out.reshape(-1, grad_out.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    weight_grad += g2.T @ x2
    if bias_grad is not None:
        bias_grad += g2.sum(axis=0)
    return grad_out @ weight


class Linear(Module):
    """Affine map ``y = x W^T + b`` over the last axis (PyTorch's ``nn.Linear``).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last axis of the input and the output.
    bias : bool
        Whether to add a learned bias.
    dtype : float32 or float64
        Parameter dtype; inputs must have the same dtype.
    seed : int or numpy Generator, optional
        Seeds the initialisation, which is PyTorch's: ``weight`` and ``bias``
        uniform on :math:`\\pm 1/\\sqrt{\\text{in\\_features}}` (Kaiming-uniform with
        ``a = sqrt(5)``).
    xp : module
        ``numpy`` or ``cupy``: where the parameters live.

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_features, in_features)``.
    bias : Parameter or None
        Shape ``(out_features,)``.

    Notes
    -----
    Input ``(..., in_features)``, output ``(..., out_features)``. For ``N`` rows
    (the product of the leading axes) forward costs :math:`2 N \\cdot in \\cdot out`
    FLOPs and backward :math:`4 N \\cdot in \\cdot out`. Memory kept for backward:
    ``cache["x"]``, the input, :math:`N \\cdot in` elements.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import Linear
    >>> lin = Linear(4, 3, seed=0)
    >>> lin.weight.shape, lin.bias.shape
    ((3, 4), (3,))
    >>> y = lin(np.ones((2, 4)))
    >>> lin.backward(np.ones_like(y)).shape, lin.saved_bytes()
    ((2, 4), 64)
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: Any = np.float64, seed: int | np.random.Generator | None = None,
                 xp: ModuleType = np) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(uniform_init((self.out_features, self.in_features), bound, rng,
                                             dtype, xp))
        self.bias = Parameter(uniform_init((self.out_features,), bound, rng, dtype, xp)) \
            if bias else None

    def forward(self, x: Array) -> Array:
        check_input(x, "x", like=self.weight.data, features=self.in_features)
        self.cache = {"x": x}
        return linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out: Array) -> Array:
        x = cached(self.cache, "Linear")["x"]
        check_grad(grad_out, (*x.shape[:-1], self.out_features), like=x)
        return linear_backward(grad_out, x, self.weight.data, self.weight.grad,
                               None if self.bias is None else self.bias.grad)

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.data.dtype})")
