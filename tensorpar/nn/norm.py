"""Layer normalisation (PyTorch's ``nn.LayerNorm``), forward and backward side by side."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad, check_input, check_positive_int
from .linear import check_dtype_arg
from .module import Module, Parameter

__all__ = ["LayerNorm", "layer_norm_backward", "layer_norm_forward"]


def layer_norm_forward(x: Array, weight: Array | None, bias: Array | None,
                       eps: float) -> tuple[Array, Array, Array]:
    """Normalise the last axis: return ``(y, xhat, rstd)``.

    ``xhat = (x - mean) * rstd`` with ``rstd = 1 / sqrt(var + eps)`` (biased
    variance, as PyTorch), ``y = xhat * weight + bias``.

    Examples
    --------
    >>> import numpy as np
    >>> y, xhat, rstd = layer_norm_forward(np.array([[1.0, 3.0]]), None, None, 0.0)
    >>> y, rstd
    (array([[-1.,  1.]]), array([[1.]]))
    """
    xp = get_array_module(x)
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    rstd = 1 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    xhat = xc * rstd
    y = xhat if weight is None else xhat * weight
    if bias is not None:
        y = y + bias
    return y, xhat, rstd


def layer_norm_backward(grad_out: Array, xhat: Array, rstd: Array, weight: Array | None,
                        weight_grad: Array | None, bias_grad: Array | None) -> Array:
    """Accumulate ``dweight``, ``dbias``; return ``dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))``.

    Examples
    --------
    >>> import numpy as np
    >>> y, xhat, rstd = layer_norm_forward(np.array([[1.0, 3.0]]), None, None, 0.0)
    >>> layer_norm_backward(np.ones((1, 2)), xhat, rstd, None, None, None)  # shift-invariant
    array([[0., 0.]])
    """
    d = grad_out.shape[-1]
    if weight_grad is not None:
        weight_grad += (grad_out * xhat).reshape(-1, d).sum(axis=0)
    if bias_grad is not None:
        bias_grad += grad_out.reshape(-1, d).sum(axis=0)
    dxhat = grad_out if weight is None else grad_out * weight
    return rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                   - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))


class LayerNorm(Module):
    """Normalise each feature vector over its last axis, then scale and shift (PyTorch's ``LayerNorm``).

    Parameters
    ----------
    normalized_shape : int
        Size ``D`` of the last axis (PyTorch also accepts a tuple of trailing
        axes; here only the last axis is normalised).
    eps : float
        Added to the variance.
    elementwise_affine : bool
        Learn ``weight`` (ones) and ``bias`` (zeros), each of shape ``(D,)``.
    dtype, xp
        As for :class:`~tensorpar.nn.Linear`.

    Notes
    -----
    Memory kept for backward: ``xhat`` (``N D`` elements for ``N`` rows) and
    ``rstd`` (``N``). About ``8 N D`` FLOPs forward and ``12 N D`` backward.

    Examples
    --------
    >>> import numpy as np
    >>> ln = LayerNorm(4)
    >>> y = ln(np.arange(8.0).reshape(2, 4))
    >>> np.round(y.mean(axis=-1), 12), np.round(y.var(axis=-1), 4)
    (array([0., 0.]), array([1., 1.]))
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(self, normalized_shape: int | tuple[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, *, dtype: Any = np.float64,
                 xp: ModuleType = np) -> None:
        super().__init__()
        if isinstance(normalized_shape, tuple):
            if len(normalized_shape) != 1:
                raise ValueError(f"normalized_shape must be an int or a 1-tuple, got {normalized_shape}")
            normalized_shape = normalized_shape[0]
        self.normalized_shape = check_positive_int(normalized_shape, "normalized_shape")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"eps must be a non-negative number, got {eps!r}")
        self.eps = float(eps)
        dt = check_dtype_arg(dtype)
        d = self.normalized_shape
        self.weight = Parameter(xp.ones(d, dtype=dt)) if elementwise_affine else None
        self.bias = Parameter(xp.zeros(d, dtype=dt)) if elementwise_affine else None
        self.dtype = dt

    def forward(self, x: Array) -> Array:
        like = self.weight.data if self.weight is not None else None
        check_input(x, "x", like=like, features=self.normalized_shape)
        if like is None and x.dtype != self.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the layer is {self.dtype}")
        y, xhat, rstd = layer_norm_forward(x, None if self.weight is None else self.weight.data,
                                           None if self.bias is None else self.bias.data, self.eps)
        self.cache = {"xhat": xhat, "rstd": rstd}
        return y

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "LayerNorm")
        check_grad(grad_out, tuple(c["xhat"].shape), like=c["xhat"])
        w, b = self.weight, self.bias
        return layer_norm_backward(grad_out, c["xhat"], c["rstd"], None if w is None else w.data,
                                   None if w is None else w.grad, None if b is None else b.grad)

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps})"
