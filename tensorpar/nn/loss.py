"""Losses: softmax cross-entropy over class logits and the mean squared error.

A loss is a :class:`~tensorpar.nn.Module` whose ``forward(pred, target)``
returns a Python float (the mean loss) and whose ``backward()`` takes no
argument and returns the gradient of that mean with respect to ``pred``.
"""

from __future__ import annotations

from typing import Any

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_indices, check_input
from .module import Module

__all__ = ["MSELoss", "SoftmaxCrossEntropy", "log_softmax"]


def log_softmax(logits: Array, axis: int = -1) -> Array:
    """``log softmax`` by the shifted log-sum-exp (no overflow for any finite logits).

    Examples
    --------
    >>> import numpy as np
    >>> np.exp(log_softmax(np.array([1000.0, 1000.0])))
    array([0.5, 0.5])
    """
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class SoftmaxCrossEntropy(Module):
    """Mean of :math:`-\\log \\operatorname{softmax}(z)_t` over the targets (PyTorch's ``CrossEntropyLoss``).

    Parameters
    ----------
    ignore_index : int, optional
        Targets equal to it contribute neither loss nor gradient, and the mean
        is over the other targets (padding). When every target is ignored the
        loss is 0.0 with a zero gradient (PyTorch returns NaN).

    Notes
    -----
    ``forward(logits, target)``: ``logits`` of shape ``(..., C)`` (float32 or
    float64), ``target`` integer of shape ``logits.shape[:-1]`` with entries in
    ``[0, C)`` or ``ignore_index``. The softmax is computed from
    ``logits - max`` (stable log-sum-exp). Memory kept for backward: the
    softmax probabilities, ``logits.size`` elements, and the targets.

    Examples
    --------
    >>> import numpy as np
    >>> loss = SoftmaxCrossEntropy()
    >>> abs(loss(np.zeros((2, 4)), np.array([1, 3])) - float(np.log(4))) < 1e-15
    True
    >>> loss.backward()
    array([[ 0.125, -0.375,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """

    def __init__(self, ignore_index: int | None = None) -> None:
        super().__init__()
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
        self.ignore_index = ignore_index

    def forward(self, logits: Array, target: Array) -> float:
        check_input(logits, "logits")
        c = logits.shape[-1]
        check_indices(target, "target", c, like=logits, ignore=self.ignore_index)
        if tuple(target.shape) != tuple(logits.shape[:-1]):
            raise ValueError(f"target has shape {tuple(target.shape)}; logits of shape "
                             f"{tuple(logits.shape)} need {tuple(logits.shape[:-1])}")
        xp = get_array_module(logits)
        logp = log_softmax(logits.reshape(-1, c))
        t = target.reshape(-1)
        keep = xp.ones(t.shape, dtype=bool) if self.ignore_index is None else t != self.ignore_index
        safe_t = xp.where(keep, t, 0)
        count = int(keep.sum())
        picked = logp[xp.arange(t.shape[0]), safe_t]
        loss = -float((picked * keep).sum()) / max(count, 1)
        self.cache = {"probs": xp.exp(logp), "target": safe_t, "keep": keep, "count": count,
                      "shape": tuple(logits.shape)}
        return loss

    def backward(self, grad_out: Any = None) -> Array:
        """Gradient of the mean loss with respect to ``logits`` (``grad_out`` must be None).

        Examples
        --------
        >>> import numpy as np
        >>> loss = SoftmaxCrossEntropy(ignore_index=-1)
        >>> _ = loss(np.zeros((2, 2)), np.array([0, -1]))
        >>> g = loss.backward()
        >>> g[0], bool((g[1] == 0).all())   # the ignored row gets no gradient
        (array([-0.5,  0.5]), True)
        """
        if grad_out is not None:
            raise ValueError("grad_out must be None: a loss is the end of the graph")
        c = cached(self.cache, "SoftmaxCrossEntropy")
        xp = get_array_module(c["probs"])
        g = c["probs"].copy()
        g[xp.arange(g.shape[0]), c["target"]] -= 1
        g *= c["keep"][:, None] * (1.0 / max(c["count"], 1))
        return g.reshape(c["shape"])


class MSELoss(Module):
    """Mean over all elements of :math:`(\\text{pred} - \\text{target})^2` (PyTorch's ``MSELoss``).

    Notes
    -----
    ``pred`` and ``target`` have the same shape and dtype. Memory kept for
    backward: the difference, ``pred.size`` elements.

    Examples
    --------
    >>> import numpy as np
    >>> loss = MSELoss()
    >>> loss(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    5.0
    >>> loss.backward()
    array([1., 3.])
    """

    def forward(self, pred: Array, target: Array) -> float:
        check_input(pred, "pred")
        check_input(target, "target", like=pred)
        if tuple(target.shape) != tuple(pred.shape):
            raise ValueError(f"target has shape {tuple(target.shape)}, pred has shape {tuple(pred.shape)}")
        diff = pred - target
        self.cache = {"diff": diff}
        return float((diff * diff).sum()) / max(int(diff.size), 1)

    def backward(self, grad_out: Any = None) -> Array:
        """Gradient of the mean squared error with respect to ``pred``.

        Examples
        --------
        >>> import numpy as np
        >>> loss = MSELoss()
        >>> _ = loss(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))
        >>> loss.backward()   # 2 (pred - target) / size
        array([[ 1., -2.]])
        """
        if grad_out is not None:
            raise ValueError("grad_out must be None: a loss is the end of the graph")
        diff = cached(self.cache, "MSELoss")["diff"]
        return diff * (2.0 / max(diff.size, 1))
