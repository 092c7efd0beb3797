"""GRU and LSTM over sequences with PyTorch's parameters and equations, and TT-RNN input maps.

Parameters of layer ``k`` (PyTorch's names, shapes and gate orders, ``G = 3``
gates ``(r, z, n)`` for the GRU and ``G = 4`` gates ``(i, f, g, o)`` for the LSTM):
``weight_ih_l{k}`` ``(G H, I_k)``, ``weight_hh_l{k}`` ``(G H, H)``,
``bias_ih_l{k}`` and ``bias_hh_l{k}`` ``(G H,)``; initialised uniform on
``+-1/sqrt(H)`` as PyTorch does. Per step, with ``W_i* x`` the rows of
``weight_ih`` for gate ``*``::

    GRU   r = s(W_ir x + b_ir + W_hr h + b_hr)     z = s(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      h' = (1 - z) * n + z * h
    LSTM  i, f, o = s(W_i* x + b_i* + W_h* h + b_h*)   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
          c' = f * c + i * g                              h' = o * tanh(c')

TT-RNN (Yang, Krompass and Tresp, ICML 2017): with ``tt_input_shape``,
``tt_hidden_shape`` and ``tt_rank``, layer 0's ``weight_ih_l0`` is replaced
by one TT-matrix for all gates (a :class:`~tensorpar.nn.TTLinear` without
bias named ``tt_ih_l0``, parameters ``tt_ih_l0.cores.k``), whose output modes
are ``tt_hidden_shape`` with the first multiplied by ``G``, so rows
``[g H, (g+1) H)`` are gate ``g`` as in PyTorch's layout.

The input map of a layer runs once over all ``T B`` rows (one GEMM, or one
TT sweep); only the ``h W_hh^T`` products are sequential. Backward through
time keeps, per step, the gates and the previous state: ``T B (G + 2) H``
elements per layer (plus the layer input and, for TT, the sweep's tape).
"""

from __future__ import annotations

from typing import Any

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad
from .rnn_base import RNNBase
from .rnn_cells import gru_cell_backward, gru_cell_forward, lstm_cell_backward, lstm_cell_forward

__all__ = ["GRU", "LSTM"]


class GRU(RNNBase):
    """Multi-layer GRU (PyTorch's ``nn.GRU``: names, shapes, gate order r, z, n, equations).

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first
        As in PyTorch. Input ``(T, B, input_size)``, or ``(B, T, input_size)``
        with ``batch_first``.
    tt_input_shape, tt_hidden_shape, tt_rank, tt_implementation
        Make layer 0's input map a TT-matrix (TT-GRU); see the module notes.
    dtype, seed, xp
        Parameter dtype, initialisation seed and array module.

    Notes
    -----
    ``forward(x, hx=None)`` returns ``(output, h_n)``: ``output`` has shape
    ``(T, B, H)`` (``(B, T, H)`` with ``batch_first``) and ``h_n``
    ``(num_layers, B, H)``. ``backward(grad_output, grad_h_n=None)`` returns
    the input gradient, and ``(dx, dhx)`` when ``hx`` was given.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import GRU
    >>> gru = GRU(10, 4, num_layers=2, batch_first=True, seed=0)
    >>> [n for n, _ in gru.named_parameters()][:4]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    >>> out, h_n = gru(np.ones((3, 7, 10)))
    >>> out.shape, h_n.shape, gru.backward(np.ones_like(out)).shape
    ((3, 7, 4), (2, 3, 4), (3, 7, 10))
    >>> tt = GRU(57600, 256, tt_input_shape=(8, 20, 20, 18), tt_hidden_shape=(4, 4, 4, 4), tt_rank=4)
    >>> tt.tt_ih_l0.num_parameters(), 3 * 256 * 57600
    (3232, 44236800)
    """

    gates = 3
    kind = "GRU"

    def forward(self, x: Array, hx: Array | None = None) -> tuple[Array, Array]:
        seq, states = self._check(x, hx)
        xp = get_array_module(seq)
        T, B, _ = seq.shape
        H = self.hidden_size
        inp, layers, last = seq, [], []
        for k in range(self.num_layers):
            xw = self._input_map(k, inp)
            Whh, bhh = self._parameters[f"weight_hh_l{k}"].data, self._param("bias_hh", k)
            hs = xp.zeros((T + 1, B, H), dtype=seq.dtype)
            if states is not None:
                hs[0] = states[0][k]
            saved = xp.empty((T, B, 4, H), dtype=seq.dtype)   # r, z, n, W_hn h + b_hn
            for t in range(T):
                hh = hs[t] @ Whh.T
                if bhh is not None:
                    hh += bhh.data
                hs[t + 1], saved[t] = gru_cell_forward(xw[t].reshape(B, 3, H),
                                                       hh.reshape(B, 3, H), hs[t])
            layers.append({"inp": inp, "hs": hs, "saved": saved})
            inp = hs[1:]
            last.append(hs[T])
        self.cache = {"layers": layers, "has_hx": states is not None, "out_shape": tuple(x.shape[:-1]),
                      "saved": [a for lay in layers for a in lay.values()]}
        return self._output(inp), xp.stack(last)

    def backward(self, grad_output: Array, grad_h_n: Array | None = None) -> Any:
        c = cached(self.cache, "GRU")
        H = self.hidden_size
        like = self._parameters["weight_hh_l0"].data
        check_grad(grad_output, (*c["out_shape"], H), like=like)
        dout = self._grad_seq(grad_output)
        T, B = dout.shape[:2]
        if grad_h_n is not None:
            check_grad(grad_h_n, (self.num_layers, B, H), "grad_h_n", like=like)
        xp = get_array_module(dout)
        dh0 = []
        for k in range(self.num_layers - 1, -1, -1):
            lay = c["layers"][k]
            hs, saved = lay["hs"], lay["saved"]
            Whh = self._parameters[f"weight_hh_l{k}"].data
            dh = xp.zeros((B, H), like.dtype) if grad_h_n is None else grad_h_n[k].copy()
            dxw = xp.empty((T, B, 3 * H), like.dtype)
            dhh = xp.empty((T, B, 3 * H), like.dtype)
            for t in range(T - 1, -1, -1):
                dh = dh + dout[t]
                da, dh_hh, dh_direct = gru_cell_backward(dh, saved[t], hs[t])
                dxw[t], dhh[t] = da.reshape(B, 3 * H), dh_hh.reshape(B, 3 * H)
                dh = dh_direct + dhh[t] @ Whh
            self._hidden_backward(k, dhh, hs[:-1])
            dh0.append(dh)
            dout = self._input_map_backward(k, lay["inp"], dxw)
        dx = self._output(dout)
        return (dx, xp.stack(dh0[::-1])) if c["has_hx"] else dx


class LSTM(RNNBase):
    """Multi-layer LSTM (PyTorch's ``nn.LSTM``: names, shapes, gate order i, f, g, o, equations).

    Parameters are those of :class:`GRU` (with ``G = 4`` gates).

    Notes
    -----
    ``forward(x, hx=None)`` with ``hx = (h_0, c_0)`` returns
    ``(output, (h_n, c_n))``. ``backward(grad_output, grad_h_n=None,
    grad_c_n=None)`` returns the input gradient, and ``(dx, (dh_0, dc_0))``
    when ``hx`` was given.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import LSTM
    >>> lstm = LSTM(6, 5, seed=0)
    >>> lstm.weight_ih_l0.shape, lstm.weight_hh_l0.shape
    ((20, 6), (20, 5))
    >>> out, (h_n, c_n) = lstm(np.ones((8, 2, 6)))
    >>> out.shape, c_n.shape
    ((8, 2, 5), (1, 2, 5))
    >>> tt = LSTM(57600, 256, tt_input_shape=(8, 20, 20, 18), tt_hidden_shape=(4, 4, 4, 4), tt_rank=4)
    >>> tt.tt_ih_l0.num_parameters()
    3360
    """

    gates = 4
    kind = "LSTM"

    def forward(self, x: Array, hx: tuple[Array, Array] | None = None) -> tuple[Array, tuple[Array, Array]]:
        seq, states = self._check(x, hx)
        xp = get_array_module(seq)
        T, B, _ = seq.shape
        H = self.hidden_size
        inp, layers, last_h, last_c = seq, [], [], []
        for k in range(self.num_layers):
            xw = self._input_map(k, inp)
            Whh, bhh = self._parameters[f"weight_hh_l{k}"].data, self._param("bias_hh", k)
            hs = xp.zeros((T + 1, B, H), dtype=seq.dtype)
            c = xp.zeros((B, H), dtype=seq.dtype) if states is None else states[1][k]
            if states is not None:
                hs[0] = states[0][k]
            saved = xp.empty((T, B, 6, H), dtype=seq.dtype)   # i, f, g, o, tanh(c'), c
            for t in range(T):
                hh = hs[t] @ Whh.T
                if bhh is not None:
                    hh += bhh.data
                hs[t + 1], c, saved[t] = lstm_cell_forward(xw[t].reshape(B, 4, H),
                                                           hh.reshape(B, 4, H), c)
            layers.append({"inp": inp, "hs": hs, "saved": saved})
            inp = hs[1:]
            last_h.append(hs[T])
            last_c.append(c)
        self.cache = {"layers": layers, "has_hx": states is not None, "out_shape": tuple(x.shape[:-1]),
                      "saved": [a for lay in layers for a in lay.values()]}
        return self._output(inp), (xp.stack(last_h), xp.stack(last_c))

    def backward(self, grad_output: Array, grad_h_n: Array | None = None,
                 grad_c_n: Array | None = None) -> Any:
        c = cached(self.cache, "LSTM")
        H = self.hidden_size
        like = self._parameters["weight_hh_l0"].data
        check_grad(grad_output, (*c["out_shape"], H), like=like)
        dout = self._grad_seq(grad_output)
        T, B = dout.shape[:2]
        for g, name in ((grad_h_n, "grad_h_n"), (grad_c_n, "grad_c_n")):
            if g is not None:
                check_grad(g, (self.num_layers, B, H), name, like=like)
        xp = get_array_module(dout)
        dh0, dc0 = [], []
        for k in range(self.num_layers - 1, -1, -1):
            lay = c["layers"][k]
            hs, saved = lay["hs"], lay["saved"]
            Whh = self._parameters[f"weight_hh_l{k}"].data
            dh = xp.zeros((B, H), like.dtype) if grad_h_n is None else grad_h_n[k].copy()
            dc = xp.zeros((B, H), like.dtype) if grad_c_n is None else grad_c_n[k].copy()
            da = xp.empty((T, B, 4 * H), like.dtype)
            for t in range(T - 1, -1, -1):
                dh = dh + dout[t]
                da_t, dc = lstm_cell_backward(dh, dc, saved[t])
                da[t] = da_t.reshape(B, 4 * H)
                dh = da[t] @ Whh
            self._hidden_backward(k, da, hs[:-1])
            dh0.append(dh)
            dc0.append(dc)
            dout = self._input_map_backward(k, lay["inp"], da)
        dx = self._output(dout)
        return (dx, (xp.stack(dh0[::-1]), xp.stack(dc0[::-1]))) if c["has_hx"] else dx
