"""Embedding, LayerNorm and Dropout: gradients, reference equations, memory, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar._backend import to_numpy
from tensorpar.nn import Dropout, Embedding, LayerNorm, Linear, Sequential


def test_embedding_lookup_and_scatter_add_gradient():
    emb = Embedding(7, 3, seed=0)
    assert emb.weight.shape == (7, 3)
    idx = np.array([[0, 3, 3], [6, 0, 3]])
    y = emb(idx)
    np.testing.assert_array_equal(y, emb.weight.data[idx])
    g = np.random.default_rng(1).standard_normal(y.shape)
    assert emb.backward(g) is None
    ref = np.zeros((7, 3))
    for i, row in zip(idx.ravel(), g.reshape(-1, 3)):
        ref[i] += row
    np.testing.assert_allclose(emb.weight.grad, ref, rtol=1e-15)
    assert emb.saved_bytes() == idx.nbytes
    # finite differences through a following Linear (the embedding has no input gradient)
    net = Sequential(emb, Linear(3, 2, seed=2))
    assert "0.weight" in assert_gradients(net, idx)


def test_embedding_bad_input():
    emb = Embedding(5, 2)
    with pytest.raises(ValueError, match="idx has entries outside"):
        emb(np.array([5]))
    with pytest.raises(ValueError, match="idx has entries outside"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="idx must be an integer"):
        emb(np.array([1.0]))
    with pytest.raises(ValueError, match="num_embeddings"):
        Embedding(0, 2)
    emb(np.array([1, 2]))
    with pytest.raises(ValueError, match="grad_out has shape"):
        emb.backward(np.ones((2, 3)))


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_gradients_and_equations(affine):
    rng = np.random.default_rng(0)
    ln = LayerNorm(6, elementwise_affine=affine)
    if affine:  # non-trivial scale and shift so their gradients are exercised
        ln.weight.data[:] = rng.standard_normal(6)
        ln.bias.data[:] = rng.standard_normal(6)
    x = rng.standard_normal((2, 3, 6)) * 3 + 1
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-5)
    if affine:
        ref = ref * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(x), ref, rtol=1e-13, atol=1e-14)
    assert ln.saved_bytes() == 8 * (x.size + x.size // 6)
    res = assert_gradients(ln, x)
    assert set(res) == ({"input0", "weight", "bias"} if affine else {"input0"})


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e6])
def test_layernorm_scale_invariant_and_float32(scale):
    x = np.random.default_rng(3).standard_normal((4, 8))
    y = LayerNorm(8, eps=0.0)(x * scale)
    np.testing.assert_allclose(y, LayerNorm(8, eps=0.0)(x), rtol=1e-9, atol=1e-9)
    y32 = LayerNorm(8, eps=0.0, dtype=np.float32)((x * scale).astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-4, atol=1e-4)


def test_layernorm_bad_input():
    ln = LayerNorm(4)
    with pytest.raises(ValueError, match="x must have 4 features"):
        ln(np.ones((2, 3)))
    with pytest.raises(TypeError, match="x has dtype float32"):
        ln(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="x contains NaN"):
        ln(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="eps"):
        LayerNorm(4, eps=-1.0)
    with pytest.raises(ValueError, match="normalized_shape"):
        LayerNorm((2, 3))  # type: ignore[arg-type]


def test_dropout_statistics_seed_and_eval():
    x = np.ones((200, 100))
    d = Dropout(0.3, seed=5)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(d.backward(x), y)  # grad = mask
    y2 = d(x)
    assert not np.array_equal(y, y2)  # a new mask per forward
    d.reseed(5)
    np.testing.assert_array_equal(d(x), y)  # same seed, same mask
    assert d.saved_bytes() == x.nbytes
    d.eval()
    assert d(x) is x and d.saved_bytes() == 0
    np.testing.assert_array_equal(d.backward(x), x)
    assert not Dropout(1.0, seed=0)(x).any()
    assert Dropout(0.0)(x) is x
    y32 = Dropout(0.5, seed=1)(x.astype(np.float32))
    assert y32.dtype == np.float32


def test_dropout_gradients():
    x = np.random.default_rng(0).standard_normal((4, 6))
    d = Dropout(0.4, seed=3)
    assert_gradients(d, x, before_forward=lambda: d.reseed(3))


def test_dropout_bad_input():
    with pytest.raises(ValueError, match="p must be a probability"):
        Dropout(1.5)
    with pytest.raises(TypeError, match="seed"):
        Dropout(0.5, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x contains NaN"):
        Dropout(0.5)(np.array([np.nan]))


def test_layers_array_modules(xp):
    """Embedding/LayerNorm/Dropout on xp arrays (numpy, and cupy with a GPU) against numpy."""
    x = np.random.default_rng(0).standard_normal((3, 5))
    ln, ref = LayerNorm(5, xp=xp), LayerNorm(5)
    np.testing.assert_allclose(to_numpy(ln(xp.asarray(x))), ref(x), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(ln.backward(xp.asarray(x))), ref.backward(x), rtol=1e-12, atol=1e-14)
    emb, eref = Embedding(6, 5, seed=0, xp=xp), Embedding(6, 5, seed=0)
    idx = np.array([1, 1, 4])
    np.testing.assert_array_equal(to_numpy(emb(xp.asarray(idx))), eref(idx))
    emb.backward(xp.asarray(x))
    eref.backward(x)
    np.testing.assert_allclose(to_numpy(emb.weight.grad), eref.weight.grad, rtol=1e-14)
    d = Dropout(0.5, seed=0)
    y = to_numpy(d(xp.asarray(x)))
    assert set(np.unique(np.round(y / x, 12))) <= {0.0, 2.0}


class _FakeCupy:
    """An array-like whose type lives in a module named cupy: mixing it with numpy must be refused."""

    ndim = 3
    shape = (2, 3, 4)

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


_FakeCupy.__module__ = "cupy._core"


@pytest.mark.parametrize("make", ["linear", "layernorm", "mha", "block", "feedforward", "embedding",
                                  "cross_entropy", "mse"])
def test_mixed_numpy_cupy_rejected(make):
    from tensorpar.nn import FeedForward, MSELoss, MultiheadAttention, SoftmaxCrossEntropy, TransformerBlock

    fake_f, fake_i = _FakeCupy(np.float64), _FakeCupy(np.int64)
    calls = {
        "linear": lambda: Linear(4, 2)(fake_f),
        "layernorm": lambda: LayerNorm(4)(fake_f),
        "mha": lambda: MultiheadAttention(4, 2)(fake_f),
        "block": lambda: TransformerBlock(4, 2, 8)(fake_f),
        "feedforward": lambda: FeedForward(4, 8)(fake_f),
        "embedding": lambda: Embedding(5, 4)(fake_i),
        "cross_entropy": lambda: SoftmaxCrossEntropy()(np.zeros((2, 3, 4)), fake_i),
        "mse": lambda: MSELoss()(np.zeros((2, 3, 4)), fake_f),
    }
    with pytest.raises(TypeError, match="mix numpy and cupy"):
        calls[make]()
