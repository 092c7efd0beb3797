"""GRU and LSTM: backward through time vs finite differences, PyTorch layout and equations, TT-RNN."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar.nn import GRU, LSTM, Module

T, B, I, H = 6, 2, 5, 3


class FlatLSTM(Module):
    """LSTM with its outputs flattened to (out, h_n, c_n) for the gradient checker."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h0=None, c0=None):
        out, (h, c) = self.lstm(x, None if h0 is None else (h0, c0))
        return out, h, c

    def backward(self, g_out, g_h, g_c):
        got = self.lstm.backward(g_out, g_h, g_c)
        return (got[0], *got[1]) if isinstance(got, tuple) else got


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_gradients(batch_first, bias):
    gru = GRU(I, H, num_layers=2, bias=bias, batch_first=batch_first, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    res = assert_gradients(gru, x)
    assert len(res) == 1 + 2 * (4 if bias else 2)
    h0 = rng.standard_normal((2, B, H))
    res = assert_gradients(gru, x, h0)
    assert "input1" in res


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_gradients(batch_first):
    lstm = LSTM(I, H, num_layers=2, batch_first=batch_first, seed=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    res = assert_gradients(FlatLSTM(lstm), x)
    assert len(res) == 1 + 8
    h0, c0 = rng.standard_normal((2, 2, B, H))
    res = assert_gradients(FlatLSTM(lstm), x, h0, c0)
    assert {"input1", "input2"} <= set(res)


@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_tt_rnn_gradients(cls):
    rnn = cls(24, 8, tt_input_shape=(2, 3, 4), tt_hidden_shape=(2, 2, 2), tt_rank=2, seed=4)
    names = [n for n, _ in rnn.named_parameters()]
    assert "weight_ih_l0" not in names and "tt_ih_l0.cores.2" in names
    assert rnn.tt_ih_l0.out_shape == (2 * rnn.gates, 2, 2)
    x = np.random.default_rng(5).standard_normal((T, B, 24))
    mod = FlatLSTM(rnn) if cls is LSTM else rnn
    res = assert_gradients(mod, x)
    assert sum("tt_ih_l0.cores" in k for k in res) == 3


def test_tt_rnn_parameter_counts():
    kw = {"tt_input_shape": (8, 20, 20, 18), "tt_hidden_shape": (4, 4, 4, 4), "tt_rank": [1, 4, 4, 4, 1]}
    gru, lstm = GRU(57600, 256, **kw), LSTM(57600, 256, **kw)
    # the TT input-to-hidden map alone (no bias): the counts of Yang et al.
    assert gru.tt_ih_l0.num_parameters() == 3232
    assert lstm.tt_ih_l0.num_parameters() == 3360
    assert 3 * 256 * 57600 == 44_236_800
    # the whole layer adds W_hh and the two biases
    assert gru.num_parameters() == 3232 + 3 * 256 * 256 + 2 * 3 * 256


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _torch_state(rng, G, layers, In):
    state = {}
    for k in range(layers):
        fan = In if k == 0 else H
        state[f"weight_ih_l{k}"] = rng.standard_normal((G * H, fan))
        state[f"weight_hh_l{k}"] = rng.standard_normal((G * H, H))
        state[f"bias_ih_l{k}"] = rng.standard_normal(G * H)
        state[f"bias_hh_l{k}"] = rng.standard_normal(G * H)
    return state


def test_gru_loaded_from_pytorch_layout_computes_the_equations():
    rng = np.random.default_rng(6)
    state = _torch_state(rng, 3, 2, I)
    gru = GRU(I, H, num_layers=2, batch_first=True, seed=0)
    gru.load_state_dict(state)
    x, h0 = rng.standard_normal((B, T, I)), rng.standard_normal((2, B, H))
    out, h_n = gru(x, h0)
    inp = x.transpose(1, 0, 2)
    for k in range(2):
        Wi, Wh = state[f"weight_ih_l{k}"], state[f"weight_hh_l{k}"]
        bi, bh = state[f"bias_ih_l{k}"], state[f"bias_hh_l{k}"]
        (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = np.split(Wi, 3), np.split(Wh, 3)
        (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = np.split(bi, 3), np.split(bh, 3)
        h, outs = h0[k], []
        for t in range(T):
            xt = inp[t]
            r = _sig(xt @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
            z = _sig(xt @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
            n = np.tanh(xt @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
            h = (1 - z) * n + z * h
            outs.append(h)
        inp = np.stack(outs)
        np.testing.assert_allclose(h_n[k], h, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out, inp.transpose(1, 0, 2), rtol=1e-13, atol=1e-13)
    assert list(gru.state_dict()) == list(state)


def test_lstm_loaded_from_pytorch_layout_computes_the_equations():
    rng = np.random.default_rng(7)
    state = _torch_state(rng, 4, 1, I)
    lstm = LSTM(I, H, seed=0)
    lstm.load_state_dict(state)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((2, 1, B, H))
    out, (h_n, c_n) = lstm(x, (h0, c0))
    Wi, Wh, bi, bh = (state[n] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    h, c = h0[0], c0[0]
    for t in range(T):
        a = x[t] @ Wi.T + bi + h @ Wh.T + bh
        i, f, g, o = np.split(a, 4, axis=1)
        i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(out[t], h, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(c_n[0], c, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(h_n[0], h, rtol=1e-13, atol=1e-13)


def test_state_round_trip_and_init():
    a, b = GRU(I, H, num_layers=2, seed=8), GRU(I, H, num_layers=2, seed=9)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(10).standard_normal((T, B, I))
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    assert np.abs(a.weight_hh_l1.data).max() <= 1 / np.sqrt(H)
    tt = LSTM(24, 8, tt_input_shape=(2, 3, 4), tt_hidden_shape=(2, 2, 2), tt_rank=2, seed=4)
    tt2 = LSTM(24, 8, tt_input_shape=(2, 3, 4), tt_hidden_shape=(2, 2, 2), tt_rank=2, seed=5)
    tt2.load_state_dict(tt.state_dict())
    x = np.random.default_rng(11).standard_normal((T, B, 24))
    np.testing.assert_array_equal(tt(x)[0], tt2(x)[0])


def test_float32_runs_in_float32():
    gru = GRU(I, H, dtype=np.float32, seed=0)
    out, h = gru(np.ones((T, B, I), np.float32))
    assert out.dtype == h.dtype == np.float32
    assert gru.backward(np.ones_like(out)).dtype == np.float32


class FakeCupy:
    dtype = np.dtype(np.float64)
    ndim = 3
    shape = (T, B, I)


FakeCupy.__module__ = "cupy._core"


def test_bad_input():
    gru = GRU(I, H, seed=0)
    with pytest.raises(TypeError, match="x"):
        gru(FakeCupy())
    with pytest.raises(TypeError, match="x has dtype float32"):
        gru(np.ones((T, B, I), np.float32))
    with pytest.raises(ValueError, match="x must have 5 features"):
        gru(np.ones((T, B, I + 1)))
    with pytest.raises(ValueError, match="x must be 3-D"):
        gru(np.ones((T, B, 2, I)))
    with pytest.raises(ValueError, match="x must have at least 3"):
        gru(np.ones((T, I)))
    with pytest.raises(ValueError, match="x contains NaN"):
        gru(np.full((T, B, I), np.inf))
    with pytest.raises(ValueError, match="hx must have shape"):
        gru(np.ones((T, B, I)), np.ones((1, B + 1, H)))
    with pytest.raises(TypeError, match="hx must be a"):
        LSTM(I, H)(np.ones((T, B, I)), np.ones((1, B, H)))
    with pytest.raises(ValueError, match="tt_input_shape .* has product 24, input_size is 25"):
        GRU(25, 8, tt_input_shape=(2, 3, 4), tt_hidden_shape=(2, 2, 2), tt_rank=2)
    with pytest.raises(ValueError, match="tt_hidden_shape"):
        GRU(24, 8, tt_input_shape=(2, 3, 4), tt_hidden_shape=(2, 2, 3), tt_rank=2)
    with pytest.raises(ValueError, match="needs tt_input_shape"):
        GRU(24, 8, tt_rank=2)
    with pytest.raises(TypeError, match="batch_first"):
        GRU(I, H, batch_first=1)  # type: ignore[arg-type]
    out, _ = gru(np.ones((T, B, I)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        gru.backward(np.ones((T, B, H + 1)))
    with pytest.raises(RuntimeError, match="before forward"):
        GRU(I, H).backward(out)


@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_compress_input_map_from_pytorch_weights(cls):
    rng = np.random.default_rng(12)
    state = _torch_state(rng, cls.gates, 1, 24)
    rnn = cls(24, H, seed=0)
    rnn.load_state_dict(state)
    x = rng.standard_normal((T, B, 24))
    dense_out = rnn(x)[0]
    tt = rnn.compress_input_map((2, 3, 4), (1, 3, 1), eps=1e-13)
    assert tt.out_shape == (cls.gates, 3, 1)
    np.testing.assert_allclose(tt.weight().to_dense(), state["weight_ih_l0"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rnn(x)[0], dense_out, rtol=1e-11, atol=1e-11)
    names = [n for n, _ in rnn.named_parameters()]
    assert "weight_ih_l0" not in names and "tt_ih_l0.cores.0" in names
    coarse = cls(24, H, seed=0)
    coarse.load_state_dict(state)
    tt = coarse.compress_input_map((2, 3, 4), (1, 3, 1), eps=0.3)
    W = state["weight_ih_l0"]
    assert np.linalg.norm(tt.weight().to_dense() - W) <= 0.3 * np.linalg.norm(W) * (1 + 1e-12)
    with pytest.raises(ValueError, match="already a TT-matrix"):
        coarse.compress_input_map((2, 3, 4), (1, 3, 1), eps=0.3)
