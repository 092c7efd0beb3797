"""MultiheadAttention, FeedForward and TransformerBlock: gradients, PyTorch layout, equations."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar._backend import to_numpy
from tensorpar.nn import (
    FeedForward,
    Linear,
    Module,
    MultiheadAttention,
    Sequential,
    TransformerBlock,
)


def _reference_mha(x, sd, num_heads, causal):
    """PyTorch's documented equations, written out in numpy (batch first)."""
    b, s, e = x.shape
    dh = sd["in_proj_weight"].shape[0] // 3 // num_heads
    qkv = x @ sd["in_proj_weight"].T + sd["in_proj_bias"]
    q, k, v = np.split(qkv, 3, axis=-1)
    heads = []
    for h in range(num_heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = q[..., sl] @ k[..., sl].transpose(0, 2, 1) / math.sqrt(dh)
        if causal:
            scores = scores + np.triu(np.full((s, s), -np.inf), k=1)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        heads.append(p @ v[..., sl])
    return np.concatenate(heads, -1) @ sd["out_proj.weight"].T + sd["out_proj.bias"]


def _pytorch_layout_dict(e, inner, rng):
    return {"in_proj_weight": rng.standard_normal((3 * inner, e)) / math.sqrt(e),
            "in_proj_bias": rng.standard_normal(3 * inner),
            "out_proj.weight": rng.standard_normal((e, inner)) / math.sqrt(inner),
            "out_proj.bias": rng.standard_normal(e)}


@pytest.mark.parametrize("causal", [False, True])
def test_mha_loaded_from_pytorch_layout_matches_equations(causal):
    rng = np.random.default_rng(0)
    sd = _pytorch_layout_dict(8, 8, rng)
    mha = MultiheadAttention(8, 2, causal=causal, seed=1)
    mha.load_state_dict(sd)
    x = rng.standard_normal((3, 5, 8))
    np.testing.assert_allclose(mha(x), _reference_mha(x, sd, 2, causal), rtol=1e-12, atol=1e-13)
    out = mha.state_dict()
    assert list(out) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    for k in sd:
        np.testing.assert_array_equal(out[k], sd[k])
    if causal:  # the first position sees only itself: its output ignores later tokens
        x2 = x.copy()
        x2[:, 1:] += 1.0
        np.testing.assert_allclose(mha(x2)[:, 0], mha(x)[:, 0], rtol=1e-14)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_mha_against_torch():
    import torch

    rng = np.random.default_rng(0)
    sd = _pytorch_layout_dict(8, 8, rng)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = rng.standard_normal((2, 4, 8))
    mask = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    tx = torch.from_numpy(x)
    want = ref(tx, tx, tx, need_weights=False, attn_mask=mask)[0].detach().numpy()
    mha = MultiheadAttention(8, 2, causal=True)
    mha.load_state_dict(sd)
    np.testing.assert_allclose(mha(x), want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("causal,bias", [(False, True), (True, True), (True, False)])
def test_mha_gradients(causal, bias):
    x = np.random.default_rng(2).standard_normal((2, 4, 6))
    mha = MultiheadAttention(6, 3, bias=bias, causal=causal, seed=3)
    if bias:  # PyTorch initialises the biases to zero; make them count
        mha.in_proj.bias.data[:] = np.random.default_rng(4).standard_normal(18)
    res = assert_gradients(mha, x)
    assert len(res) == 1 + (4 if bias else 2)


def test_mha_head_dim_and_head_split():
    """Heads are independent: a layer equals the sum of layers holding subsets of its heads."""
    rng = np.random.default_rng(5)
    e, h, dh = 4, 3, 2
    sd = _pytorch_layout_dict(e, h * dh, rng)
    full = MultiheadAttention(e, h, head_dim=dh, causal=True)
    full.load_state_dict(sd)
    x = rng.standard_normal((2, 5, e))
    np.testing.assert_allclose(full(x), _reference_mha(x, sd, h, True), rtol=1e-12)
    total = np.zeros((2, 5, e))
    for heads in ([0], [1, 2]):
        rows = np.concatenate([np.arange(j * h * dh + i * dh, j * h * dh + (i + 1) * dh)
                               for j in range(3) for i in heads])
        cols = np.concatenate([np.arange(i * dh, (i + 1) * dh) for i in heads])
        part = MultiheadAttention(e, len(heads), head_dim=dh, causal=True)
        part.load_state_dict({"in_proj_weight": sd["in_proj_weight"][rows],
                              "in_proj_bias": sd["in_proj_bias"][rows],
                              "out_proj.weight": sd["out_proj.weight"][:, cols],
                              "out_proj.bias": sd["out_proj.bias"] * (heads == [0])})
        total += part(x)
    np.testing.assert_allclose(total, full(x), rtol=1e-12, atol=1e-14)


def test_mha_pytorch_init_memory_and_float32():
    mha = MultiheadAttention(16, 4, seed=0)
    bound = math.sqrt(6 / (16 + 48))
    w = mha.in_proj.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not mha.in_proj.bias.data.any() and not mha.out_proj.bias.data.any()
    b, s, e, h = 2, 7, 16, 4
    x = np.random.default_rng(1).standard_normal((b, s, e))
    y = mha(x)
    assert mha.saved_bytes() == 8 * (5 * b * s * e + b * h * s * s)
    m32 = MultiheadAttention(16, 4, causal=False, dtype=np.float32)
    m32.load_state_dict(mha.state_dict())
    y32 = m32(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-4, atol=1e-5)
    g32 = m32.backward(np.ones_like(y32))
    np.testing.assert_allclose(g32, mha.backward(np.ones_like(y)), rtol=1e-3, atol=1e-4)


def test_mha_bad_input():
    with pytest.raises(ValueError, match="num_heads=3 does not divide embed_dim=8"):
        MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="num_heads"):
        MultiheadAttention(8, 0)
    with pytest.raises(TypeError, match="causal"):
        MultiheadAttention(8, 2, causal=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="linear must return a Module"):
        MultiheadAttention(8, 2, linear=lambda i, o, b: np.zeros((o, i)))  # type: ignore[arg-type,return-value]
    mha = MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="x must have 8 features"):
        mha(np.ones((1, 3, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, seq, embed_dim\)"):
        mha(np.ones((3, 8)))
    with pytest.raises(TypeError, match="x has dtype float32"):
        mha(np.ones((1, 3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="x contains NaN"):
        mha(np.full((1, 3, 8), np.nan))
    mha(np.ones((1, 3, 8)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        mha.backward(np.ones((1, 3, 4)))


def test_feedforward_gradients():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for act in ("gelu", "relu", "gelu_tanh"):
        ff = FeedForward(4, 10, act, seed=1)
        res = assert_gradients(ff, x)
        assert set(res) == {"input0", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"}
    ff = FeedForward(4, 10, dropout=0.3, seed=1)
    assert_gradients(ff, x, before_forward=lambda: ff.dropout.reseed(9))
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(4, 8, "swish")


def _reseed_all(module: Module, seed: int = 11) -> None:
    for _, m in module.named_modules():
        if hasattr(m, "reseed"):
            m.reseed(seed)


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_transformer_block_gradients(dropout):
    rng = np.random.default_rng(7)
    blk = TransformerBlock(6, 2, 12, causal=True, dropout=dropout, seed=8)
    for name, p in blk.named_parameters():  # move LayerNorm/bias parameters off their init values
        if name.startswith("norm") or name.endswith("bias"):
            p.data[:] = rng.standard_normal(p.shape)
    x = rng.standard_normal((2, 4, 6))
    res = assert_gradients(blk, x, before_forward=lambda: _reseed_all(blk))
    assert len(res) == 1 + len(list(blk.named_parameters()))


def test_transformer_block_equations_and_names():
    rng = np.random.default_rng(3)
    blk = TransformerBlock(8, 2, 16, causal=True, activation="relu", seed=0)
    names = list(blk.state_dict())
    assert names == ["norm1.weight", "norm1.bias", "self_attn.in_proj_weight", "self_attn.in_proj_bias",
                     "self_attn.out_proj.weight", "self_attn.out_proj.bias", "norm2.weight", "norm2.bias",
                     "ff.linear1.weight", "ff.linear1.bias", "ff.linear2.weight", "ff.linear2.bias"]
    sd = {k: rng.standard_normal(v.shape) * 0.5 for k, v in blk.state_dict().items()}
    blk.load_state_dict(sd)
    x = rng.standard_normal((2, 5, 8))

    def ln(z, w, b):
        return (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5) * w + b

    attn_sd = {k[len("self_attn."):]: v for k, v in sd.items() if k.startswith("self_attn.")}
    h = x + _reference_mha(ln(x, sd["norm1.weight"], sd["norm1.bias"]), attn_sd, 2, True)
    f = np.maximum(ln(h, sd["norm2.weight"], sd["norm2.bias"]) @ sd["ff.linear1.weight"].T
                   + sd["ff.linear1.bias"], 0)
    y = h + f @ sd["ff.linear2.weight"].T + sd["ff.linear2.bias"]
    np.testing.assert_allclose(blk(x), y, rtol=1e-12, atol=1e-12)
    b, s, e, hid = 2, 5, 8, 16
    n = b * s
    expected = 2 * (n * e + n) + 5 * n * e + b * 2 * s * s + n * e + 2 * n * hid
    assert blk.saved_bytes() == 8 * expected
    blk.eval()
    np.testing.assert_allclose(blk(x), y, rtol=1e-12, atol=1e-12)


def test_transformer_block_linear_factory():
    """Every linear map comes from the factory; a non-Linear module (low-rank pair) works too."""
    calls = []

    def low_rank(i: int, o: int, bias: bool) -> Module:
        calls.append((i, o, bias))
        return Sequential(Linear(i, 3, False, seed=len(calls)), Linear(3, o, bias, seed=100 + len(calls)))

    blk = TransformerBlock(6, 2, 10, causal=True, linear=low_rank, seed=0)
    assert calls == [(6, 18, True), (6, 6, True), (6, 10, True), (10, 6, True)]
    names = [n for n, _ in blk.named_parameters()]
    assert "self_attn.in_proj.0.weight" in names and "ff.linear2.1.bias" in names
    x = np.random.default_rng(1).standard_normal((2, 3, 6))
    assert_gradients(blk, x)


def test_transformer_block_float32_and_array_modules(xp):
    x = np.random.default_rng(4).standard_normal((2, 5, 8))
    ref = TransformerBlock(8, 2, 16, causal=True, seed=0)
    blk = TransformerBlock(8, 2, 16, causal=True, seed=0, dtype=np.float32, xp=xp)
    y32 = blk(xp.asarray(x, dtype=np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(to_numpy(y32), ref(x), rtol=1e-4, atol=1e-5)
    g = blk.backward(xp.ones(y32.shape, dtype=np.float32))
    np.testing.assert_allclose(to_numpy(g), ref.backward(np.ones(x.shape)), rtol=1e-3, atol=1e-4)
    blk64 = TransformerBlock(8, 2, 16, causal=True, seed=0, xp=xp)
    np.testing.assert_allclose(to_numpy(blk64(xp.asarray(x))), ref(x), rtol=1e-12, atol=1e-13)
    with pytest.raises(TypeError, match="x has dtype float64"):
        blk(xp.asarray(x))
