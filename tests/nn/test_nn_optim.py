"""Optimizers, clipping and the schedule against plain numpy re-implementations of PyTorch's equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tensorpar.nn import SGD, Adam, AdamW, Linear, Parameter, WarmupCosine, clip_grad_norm
from tensorpar.nn.optim import global_norm

STEPS = 6


def _grads(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


def _run(opt_factory, w0, grads):
    p = Parameter(w0.copy())
    opt = opt_factory([p])
    for g in grads:
        opt.zero_grad()
        p.grad += g
        opt.step()
    return p.data


@pytest.mark.parametrize("momentum,wd,damp,nesterov", [(0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False),
                                                       (0.9, 0.01, 0.1, False), (0.8, 0.05, 0.0, True)])
def test_sgd(momentum, wd, damp, nesterov):
    w0 = np.random.default_rng(9).standard_normal((3, 4))
    grads = _grads(w0.shape, STEPS)
    lr = 0.05
    w, buf = w0.copy(), None
    for t, g in enumerate(grads):
        d = g + wd * w
        if momentum:
            buf = d.copy() if t == 0 else momentum * buf + (1 - damp) * d
            d = d + momentum * buf if nesterov else buf
        w = w - lr * d
    got = _run(lambda ps: SGD(ps, lr, momentum=momentum, weight_decay=wd, dampening=damp,
                              nesterov=nesterov), w0, grads)
    np.testing.assert_allclose(got, w, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("decoupled,wd", [(False, 0.0), (False, 0.1), (True, 0.1)])
def test_adam_adamw(decoupled, wd):
    w0 = np.random.default_rng(8).standard_normal((5,))
    grads = _grads(w0.shape, STEPS, seed=1)
    lr, b1, b2, eps = 0.01, 0.85, 0.99, 1e-8
    w, m, v = w0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * mhat / (np.sqrt(vhat) + eps)
    cls = AdamW if decoupled else Adam
    got = _run(lambda ps: cls(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), w0, grads)
    np.testing.assert_allclose(got, w, rtol=1e-13)


def test_optimizer_state_and_dtype():
    lin = Linear(3, 2, dtype=np.float32, seed=0)
    opt = Adam(lin, lr=1e-2)
    lin(np.ones((1, 3), dtype=np.float32))
    lin.backward(np.ones((1, 2), dtype=np.float32))
    opt.step()
    assert lin.weight.data.dtype == np.float32
    assert opt.state_bytes() == 2 * 4 * (6 + 2)
    assert AdamW([Parameter(np.zeros(2))]).weight_decay == 0.01


def test_optimizer_bad_input():
    with pytest.raises(ValueError, match="params is empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        SGD([np.zeros(2)], lr=0.1)  # type: ignore[list-item]
    p = [Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="lr"):
        SGD(p, lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(p, lr=0.1, momentum=float("nan"))
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        SGD(p, lr=0.1, nesterov=True)


def test_clip_grad_norm():
    rng = np.random.default_rng(0)
    ps = [Parameter(np.zeros(s)) for s in [(3, 4), (5,)]]
    for p in ps:
        p.grad += rng.standard_normal(p.shape)
    flat = np.concatenate([p.grad.ravel() for p in ps])
    norm = np.linalg.norm(flat)
    assert abs(clip_grad_norm(ps, 1e9) - norm) < 1e-14 * norm  # no clipping
    np.testing.assert_array_equal(np.concatenate([p.grad.ravel() for p in ps]), flat)
    assert abs(clip_grad_norm(ps, 0.5) - norm) < 1e-14 * norm
    clipped = np.concatenate([p.grad.ravel() for p in ps])
    np.testing.assert_allclose(clipped, flat * 0.5 / (norm + 1e-6), rtol=1e-14)


@pytest.mark.parametrize("scale", [1e-200, 1e-30, 1.0, 1e30, 1e200])
def test_global_norm_scale_safe(scale):
    a = np.array([3.0, 0.0]) * scale
    b = np.array([[4.0]]) * scale
    assert abs(global_norm([a, b]) / (5 * scale) - 1) < 1e-15
    if 1e-30 <= scale <= 1e30:  # float32 gradients: squares would overflow/underflow in float32
        assert abs(global_norm([a.astype(np.float32), b.astype(np.float32)]) / (5 * scale) - 1) < 1e-6


def test_clip_nonfinite_leaves_grads():
    p = Parameter(np.zeros(2))
    p.grad[:] = [np.inf, 1.0]
    assert clip_grad_norm([p], 1.0) == math.inf
    assert p.grad[1] == 1.0


def test_warmup_cosine():
    s = WarmupCosine(0.1, warmup_steps=10, total_steps=110, min_lr=0.01)
    assert s(0) == pytest.approx(0.01) and s(9) == pytest.approx(0.1)
    assert s(10) == pytest.approx(0.1) and s(60) == pytest.approx(0.055)
    assert s(110) == pytest.approx(0.01) and s(500) == pytest.approx(0.01)
    vals = [s(t) for t in range(10, 111)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosine(0.1, 10, 10)
    with pytest.raises(ValueError, match="min_lr"):
        WarmupCosine(0.1, 1, 10, min_lr=0.2)
