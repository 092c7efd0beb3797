"""Optimizers (SGD with momentum, Adam, AdamW), global-norm clipping and a warmup-cosine schedule.

The update equations are PyTorch's (``torch.optim`` documentation), with
its defaults; every update happens in place on ``Parameter.data`` in the
parameter's own dtype and array module. The learning rate is the public
attribute ``lr``, so a schedule sets it before each step::

    opt.lr = schedule(step); opt.step()

Optimizer state (momentum buffers, Adam moments) is allocated on the first
step, one array per parameter per moment: SGD with momentum keeps one
parameter-sized array, Adam and AdamW two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .module import Module, Parameter

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "WarmupCosine", "clip_grad_norm", "global_norm"]


def _as_params(params: Iterable[Parameter] | Module) -> list[Parameter]:
    if isinstance(params, Module):
        params = params.parameters()
    out = list(params)
    if not out:
        raise ValueError("params is empty: nothing to optimize")
    for i, p in enumerate(out):
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{i}] must be a Parameter, got {type(p).__name__}")
    return out


def _check_nonneg(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


class Optimizer:
    """Base of the optimizers: the parameter list, ``lr``, ``zero_grad`` and the step count.

    Parameters
    ----------
    params : iterable of Parameter, or a Module (its parameters)
    lr : float
        Learning rate (>= 0).

    Examples
    --------
    A training step with any optimizer:

    >>> import numpy as np
    >>> from tensorpar.nn import Linear, MSELoss
    >>> model, loss = Linear(3, 1, seed=0), MSELoss()
    >>> opt = SGD(model, lr=0.1)
    >>> x, y = np.ones((4, 3)), np.zeros((4, 1))
    >>> before = loss(model(x), y)
    >>> opt.zero_grad(); _ = model.backward(loss.backward()); opt.step()
    >>> loss(model(x), y) < before, opt.step_count
    (True, 1)
    """

    def __init__(self, params: Iterable[Parameter] | Module, lr: float) -> None:
        self.params = _as_params(params)
        self.lr = _check_nonneg(lr, "lr")
        self.step_count = 0
        self.state: list[dict[str, Array]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        """Apply one update with the accumulated gradients."""
        self.step_count += 1
        for p, st in zip(self.params, self.state):
            self.update(p, st)

    def update(self, p: Parameter, state: dict[str, Array]) -> None:
        raise NotImplementedError

    def state_bytes(self) -> int:
        """Bytes of optimizer state (moments, momentum buffers)."""
        return sum(int(a.nbytes) for st in self.state for a in st.values())


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay (PyTorch's ``SGD``).

    ``g = grad + weight_decay * p``; with momentum ``b = momentum * b + (1 -
    dampening) * g`` (``b = g`` on the first step) and ``g = b`` (or ``g +
    momentum * b`` with ``nesterov``); ``p -= lr * g``.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.array([1.0])); p.grad[:] = 2.0
    >>> opt = SGD([p], lr=0.1, momentum=0.9)
    >>> opt.step(); opt.step(); p.data
    array([0.42])
    """

    def __init__(self, params: Iterable[Parameter] | Module, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = _check_nonneg(momentum, "momentum")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.dampening = _check_nonneg(dampening, "dampening")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)

    def update(self, p: Parameter, state: dict[str, Array]) -> None:
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            buf = state["momentum_buffer"]
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam with bias correction (PyTorch's ``Adam``; ``weight_decay`` is L2, added to the gradient).

    ``g = grad + weight_decay * p``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g^2``; ``p -= lr * (m / (1 - b1^t)) /
    (sqrt(v / (1 - b2^t)) + eps)`` at step ``t = 1, 2, ...``.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.array([1.0])); p.grad[:] = 5.0
    >>> opt = Adam([p], lr=0.1)
    >>> opt.step(); p.data  # the first step moves every entry by about lr
    array([0.9])
    """

    decoupled = False

    def __init__(self, params: Iterable[Parameter] | Module, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _check_nonneg(eps, "eps")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")

    def update(self, p: Parameter, state: dict[str, Array]) -> None:
        b1, b2 = self.betas
        g = p.grad
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        if "exp_avg" not in state:
            xp = get_array_module(p.data)
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        t = self.step_count
        denom = get_array_module(v).sqrt(v) * (1 / math.sqrt(1 - b2 ** t)) + self.eps
        p.data -= (self.lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's ``AdamW``, default ``weight_decay=0.01``).

    ``p *= 1 - lr * weight_decay`` first, then the Adam step without decay.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.array([1.0]))  # zero gradient: only the decay acts
    >>> opt = AdamW([p], lr=0.1, weight_decay=0.5)
    >>> opt.step(); p.data
    array([0.95])
    """

    decoupled = True

    def __init__(self, params: Iterable[Parameter] | Module, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


def global_norm(arrays: Iterable[Array]) -> float:
    """Euclidean norm of all entries of ``arrays`` together, in float64, without overflow.

    Each array is divided by the largest magnitude before squaring, so
    gradients near the float range (or subnormal ones) give the right norm.

    Examples
    --------
    >>> import numpy as np
    >>> float(f"{global_norm([np.array([3e200]), np.array([4e200])]):.6g}")
    5e+200
    """
    arrays = list(arrays)
    scale = 0.0
    for a in arrays:
        if a.size:
            scale = max(scale, float(get_array_module(a).abs(a).max()))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    total = 0.0
    for a in arrays:
        if a.size:
            s = a.astype(np.float64) / scale
            total += float((s * s).sum())
    return scale * math.sqrt(total)


def clip_grad_norm(params: Iterable[Parameter] | Module, max_norm: float) -> float:
    """Scale all gradients so their global norm is at most ``max_norm``; return the norm before.

    As PyTorch's ``clip_grad_norm_``: the gradients are multiplied by
    ``min(1, max_norm / (norm + 1e-6))``. The norm is computed in float64 by
    :func:`global_norm`. A NaN or infinite norm is returned and the gradients
    are left unchanged (so the caller can skip the step).

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.zeros(2)); p.grad[:] = [3.0, 4.0]
    >>> clip_grad_norm([p], 1.0), np.round(p.grad, 6)
    (5.0, array([0.6, 0.8]))
    """
    plist = _as_params(params)
    max_norm = _check_nonneg(max_norm, "max_norm")
    total = global_norm(p.grad for p in plist)
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in plist:
            p.grad *= coef
    return total


class WarmupCosine:
    """Linear warmup to ``base_lr``, then cosine decay to ``min_lr`` at ``total_steps``.

    ``lr(t) = base_lr * (t + 1) / warmup_steps`` for ``t < warmup_steps``;
    then with ``u = (t - warmup_steps) / (total_steps - warmup_steps)``
    clipped to [0, 1], ``lr(t) = min_lr + (base_lr - min_lr) (1 + cos(pi u)) / 2``.
    Steps count from 0.

    Examples
    --------
    >>> s = WarmupCosine(1.0, warmup_steps=2, total_steps=6, min_lr=0.1)
    >>> [round(s(t), 3) for t in range(7)]
    [0.5, 1.0, 1.0, 0.868, 0.55, 0.232, 0.1]
    """

    def __init__(self, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> None:
        self.base_lr = _check_nonneg(base_lr, "base_lr")
        self.min_lr = _check_nonneg(min_lr, "min_lr")
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr={min_lr} exceeds base_lr={base_lr}")
        for name, v in (("warmup_steps", warmup_steps), ("total_steps", total_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if total_steps <= warmup_steps:
            raise ValueError(f"total_steps={total_steps} must exceed warmup_steps={warmup_steps}")
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        u = min(1.0, max(0.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)))
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * u))
