"""Linear, the Module base and state files: gradients, PyTorch layout and init, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar._backend import to_numpy
from tensorpar.nn import Linear, Module, ReLU, Sequential, load_state, save_state


class FakeCupy:
    """An array-like whose type lives in a module named cupy (mixing must be refused)."""

    dtype = np.dtype(np.float64)
    ndim = 2
    shape = (2, 4)


FakeCupy.__module__ = "cupy._core"


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias):
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, bias=bias, seed=1)
    x = rng.standard_normal((2, 5, 4))
    res = assert_gradients(lin, x)
    assert set(res) == {"input0", "weight"} | ({"bias"} if bias else set())


def test_linear_equations_and_pytorch_init():
    lin = Linear(50, 7, seed=3)
    assert lin.weight.shape == (7, 50) and lin.bias.shape == (7,)
    bound = 1 / math.sqrt(50)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    # uniform on +-bound: the sample variance is close to bound^2 / 3
    assert abs(lin.weight.data.var() / (bound ** 2 / 3) - 1) < 0.2
    x = np.random.default_rng(1).standard_normal((4, 50))
    np.testing.assert_allclose(lin(x), x @ lin.weight.data.T + lin.bias.data, rtol=1e-14)
    again = Linear(50, 7, seed=3)
    assert np.array_equal(again.weight.data, lin.weight.data)
    assert not np.array_equal(Linear(50, 7, seed=4).weight.data, lin.weight.data)


def test_linear_backward_accumulates_and_zero_grad():
    lin = Linear(3, 2, seed=0)
    x = np.ones((4, 3))
    lin(x)
    lin.backward(np.ones((4, 2)))
    lin.backward(np.ones((4, 2)))
    np.testing.assert_allclose(lin.weight.grad, 8 * np.ones((2, 3)))
    np.testing.assert_allclose(lin.bias.grad, [8.0, 8.0])
    lin.zero_grad()
    assert not lin.weight.grad.any() and not lin.bias.grad.any()


def test_linear_float32_close_to_float64():
    x = np.random.default_rng(2).standard_normal((8, 16))
    l64, l32 = Linear(16, 5, seed=0), Linear(16, 5, seed=0, dtype=np.float32)
    y32 = l32(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, l64(x), rtol=1e-5, atol=1e-5)
    g32 = l32.backward(np.ones_like(y32))
    assert g32.dtype == np.float32 and l32.weight.grad.dtype == np.float32


def test_linear_bad_input():
    lin = Linear(4, 3, seed=0)
    with pytest.raises(ValueError, match="x must have 4 features"):
        lin(np.ones((2, 5)))
    with pytest.raises(TypeError, match="x has dtype float32"):
        lin(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        lin(np.ones((2, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="x must be a numpy or cupy array"):
        lin([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match="x contains NaN"):
        lin(np.array([[1.0, np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="x contains NaN or infinite"):
        lin(np.array([[1.0, np.inf, 0.0, 0.0]]))
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        lin(FakeCupy())
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(4, 3).backward(np.ones((2, 3)))
    lin(np.ones((2, 4)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        lin.backward(np.ones((2, 4)))
    with pytest.raises(TypeError, match="grad_out has dtype"):
        lin.backward(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)
    with pytest.raises(TypeError, match="out_features"):
        Linear(3, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        Linear(3, 2, dtype=np.int32)


def test_sequential_state_dict_round_trip(tmp_path):
    net = Sequential(Linear(4, 6, seed=0), ReLU(), Linear(6, 2, seed=1))
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sd["0.weight"].shape == (6, 4)
    other = Sequential(Linear(4, 6, seed=5), ReLU(), Linear(6, 2, seed=6))
    other.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(other(x), net(x))
    third = Sequential(Linear(4, 6, seed=7), ReLU(), Linear(6, 2, seed=8))
    save_state(net, tmp_path / "net.npz")
    load_state(third, tmp_path / "net.npz")
    np.testing.assert_array_equal(third(x), net(x))
    with pytest.raises(ValueError, match="missing keys"):
        other.load_state_dict({"0.weight": sd["0.weight"]})
    with pytest.raises(ValueError, match="has shape"):
        other.load_state_dict({**sd, "0.bias": np.ones(5)})
    assert_gradients(net, x)


def test_register_module_flat_names():
    m = Module()
    m.register_module("in_proj", Linear(2, 6, seed=0), flat=True)
    m.out_proj = Linear(2, 2, seed=1)
    assert [n for n, _ in m.named_parameters()] == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    m.eval()
    assert not m.in_proj.training
    outer = Module()
    outer.attn = m
    assert [n for n, _ in outer.named_parameters()][:2] == ["attn.in_proj_weight", "attn.in_proj_bias"]
    with pytest.raises(TypeError, match="module must be a Module"):
        m.register_module("x", 3)  # type: ignore[arg-type]


def test_linear_array_modules(xp):
    """The same layer on xp arrays (numpy, and cupy where a GPU is present) equals numpy's."""
    lin = Linear(4, 3, seed=0, xp=xp)
    ref = Linear(4, 3, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 4))
    y = lin(xp.asarray(x))
    np.testing.assert_allclose(to_numpy(y), ref(x), rtol=1e-12)
    g = lin.backward(xp.ones_like(y))
    np.testing.assert_allclose(to_numpy(g), ref.backward(np.ones((5, 3))), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(lin.weight.grad), ref.weight.grad, rtol=1e-12)
    if xp is not np:
        with pytest.raises(TypeError, match="mix numpy and cupy"):
            lin(x)


def test_tied_parameters_listed_once():
    a, b = Linear(3, 3, seed=0), Linear(3, 3, seed=1)
    b.weight = a.weight  # weight tying (re-registered, so it now follows b.bias)
    net = Sequential(a, b)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias", "1.weight"]
    assert len(net.parameters()) == 3 and net.num_parameters() == 9 + 3 + 3
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert_gradients(net, x, params=False)
    net.zero_grad()
    net(x)
    net.backward(np.ones((2, 3)))
    # both uses accumulate into the one gradient: compare with two untied copies
    a2, b2 = Linear(3, 3, seed=0), Linear(3, 3, seed=0)
    b2.bias.data[...] = b.bias.data
    untied = Sequential(a2, b2)
    untied(x)
    untied.backward(np.ones((2, 3)))
    np.testing.assert_allclose(a.weight.grad, a2.weight.grad + b2.weight.grad, rtol=1e-14)
