"""Activations and losses: gradients, reference equations, stability, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import assert_gradients
from scipy.special import erf as scipy_erf

from tensorpar._backend import to_numpy
from tensorpar.nn import GELU, MSELoss, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh

ACTIVATIONS = [ReLU, Tanh, Sigmoid, GELU, lambda: GELU("tanh")]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["relu", "tanh", "sigmoid", "gelu", "gelu_tanh"])
def test_activation_gradients(make):
    x = np.random.default_rng(0).standard_normal((3, 7)) * 2
    assert_gradients(make(), x)


def test_activation_equations():
    x = np.linspace(-6, 6, 101)
    np.testing.assert_allclose(ReLU()(x), np.where(x > 0, x, 0))
    np.testing.assert_allclose(Tanh()(x), np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(GELU()(x), 0.5 * x * (1 + scipy_erf(x / math.sqrt(2))), rtol=1e-15)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_allclose(GELU("tanh")(x), 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3))),
                               rtol=1e-15)
    assert GELU().approximate == "none"  # PyTorch's default: exact erf
    big = np.array([-800.0, 800.0])
    assert np.array_equal(Sigmoid()(big), [0.0, 1.0])


@pytest.mark.parametrize("make", ACTIVATIONS, ids=["relu", "tanh", "sigmoid", "gelu", "gelu_tanh"])
def test_activation_float32_and_bad_input(make, xp):
    x = np.random.default_rng(1).standard_normal((4, 5))
    act = make()
    y32 = act(xp.asarray(x, dtype=np.float32))
    assert y32.dtype == np.float32
    g32 = act.backward(xp.ones((4, 5), dtype=np.float32))
    assert g32.dtype == np.float32
    ref = make()
    np.testing.assert_allclose(to_numpy(y32), ref(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(g32), ref.backward(np.ones((4, 5))), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="x contains NaN"):
        act(xp.asarray([np.nan, 1.0]))
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        act(xp.asarray([1, 2]))
    with pytest.raises(ValueError, match="grad_out has shape"):
        act(xp.asarray(x))
        act.backward(xp.ones(3))


def test_gelu_bad_option():
    with pytest.raises(ValueError, match="approximate"):
        GELU("fast")  # type: ignore[arg-type]


def _ce_reference(z, t, ignore=None):
    keep = np.ones(t.shape, bool) if ignore is None else t != ignore
    zs = z - z.max(-1, keepdims=True)
    logp = zs - np.log(np.exp(zs).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, np.where(keep, t, 0)[..., None], -1)[..., 0]
    return -(picked * keep).sum() / keep.sum()


@pytest.mark.parametrize("ignore", [None, -100])
def test_cross_entropy(ignore):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 3, 6))
    t = rng.integers(0, 6, size=(4, 3))
    if ignore is not None:
        t[0, 1] = t[2, 2] = ignore
    loss = SoftmaxCrossEntropy(ignore_index=ignore)
    assert abs(loss(z, t) - _ce_reference(z, t, ignore)) < 1e-14
    res = assert_gradients(loss, z, t)
    assert set(res) == {"input0"}
    g = loss.backward()
    if ignore is not None:
        assert not g[0, 1].any() and not g[2, 2].any()


def test_cross_entropy_stable_and_scale():
    z = np.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]])
    loss = SoftmaxCrossEntropy()
    val = loss(z, np.array([0, 1]))
    assert val == 0.0
    assert np.isfinite(loss.backward()).all()
    # float32 close to float64 at large logits (the shift keeps exp in range)
    z = np.random.default_rng(0).standard_normal((5, 10)) * 30
    t = np.arange(5)
    assert abs(loss(z.astype(np.float32), t) - loss(z, t)) < 1e-4 * max(1.0, loss(z, t))
    loss_all_ignored = SoftmaxCrossEntropy(ignore_index=-1)
    assert loss_all_ignored(z, -np.ones(5, dtype=int)) == 0.0
    assert not loss_all_ignored.backward().any()


def test_cross_entropy_bad_input():
    loss = SoftmaxCrossEntropy()
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="target has entries outside"):
        loss(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="target has shape"):
        loss(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="target must be an integer"):
        loss(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="logits contains NaN"):
        loss(np.array([[np.inf, 0.0, 0.0]]), np.array([0]))
    with pytest.raises(TypeError, match="ignore_index"):
        SoftmaxCrossEntropy(ignore_index=1.5)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()


def test_mse():
    rng = np.random.default_rng(4)
    p, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = MSELoss()
    assert abs(loss(p, t) - ((p - t) ** 2).mean()) < 1e-15
    assert_gradients(loss, p, t)
    with pytest.raises(ValueError, match="target has shape"):
        loss(p, t[:2])
    with pytest.raises(TypeError, match="target has dtype"):
        loss(p, t.astype(np.float32))
    with pytest.raises(ValueError, match="pred contains NaN"):
        loss(np.full((2,), np.nan), np.zeros(2))
