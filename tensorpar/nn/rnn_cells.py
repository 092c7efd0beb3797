"""GRU and LSTM cells over a block of hidden units, forward and backward side by side.

The equations are PyTorch's; this is their one implementation. Each
function works on any block of ``U`` units of every gate: all ``H`` of them
in the serial :class:`~tensorpar.nn.GRU` and :class:`~tensorpar.nn.LSTM`,
a rank's block in the tensor-parallel RNNs (:mod:`tensorpar.nn.parallel.rnn`).
Gate arrays are ``(B, G, U)``.
"""

from __future__ import annotations

from .._backend import get_array_module
from .._typing import Array
from .rnn_base import sigmoid

__all__ = ["gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward"]


def gru_cell_forward(a: Array, hh: Array, h: Array) -> tuple[Array, Array]:
    """One GRU step for a block of ``U`` units: return ``(h', saved)``.

    ``a`` ``(B, 3, U)``: the input map ``W_i* x + b_i*``; ``hh`` ``(B, 3, U)``:
    ``W_h* h + b_h*``; ``h`` ``(B, U)``: the previous state of these units.
    ``saved = [r, z, n, hh_n]`` ``(B, 4, U)``.

    Examples
    --------
    >>> import numpy as np
    >>> h1, saved = gru_cell_forward(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.ones((1, 2)))
    >>> h1                     # z = 1/2, n = 0: half the old state
    array([[0.5, 0.5]])
    """
    xp = get_array_module(a)
    r = sigmoid(a[:, 0] + hh[:, 0])
    z = sigmoid(a[:, 1] + hh[:, 1])
    n = xp.tanh(a[:, 2] + r * hh[:, 2])
    return (1 - z) * n + z * h, xp.stack([r, z, n, hh[:, 2]], axis=1)


def gru_cell_backward(dh: Array, saved: Array, h: Array) -> tuple[Array, Array, Array]:
    """Gradients of :func:`gru_cell_forward`: ``(da, dhh, dh_direct)``.

    ``da`` and ``dhh`` ``(B, 3, U)`` are the gradients of ``a`` and ``hh``;
    ``dh_direct = dh z`` is the part of the previous state's gradient that
    does not go through ``W_hh``.

    Examples
    --------
    >>> import numpy as np
    >>> _, saved = gru_cell_forward(np.zeros((1, 3, 1)), np.zeros((1, 3, 1)), np.ones((1, 1)))
    >>> da, dhh, dh = gru_cell_backward(np.ones((1, 1)), saved, np.ones((1, 1)))
    >>> dh
    array([[0.5]])
    """
    xp = get_array_module(dh)
    r, z, n, hn = saved[:, 0], saved[:, 1], saved[:, 2], saved[:, 3]
    dan = dh * (1 - z) * (1 - n * n)
    dar = dan * hn * r * (1 - r)
    daz = dh * (h - n) * z * (1 - z)
    return xp.stack([dar, daz, dan], axis=1), xp.stack([dar, daz, dan * r], axis=1), dh * z


def lstm_cell_forward(a: Array, hh: Array, c: Array) -> tuple[Array, Array, Array]:
    """One LSTM step for a block of ``U`` units: return ``(h', c', saved)``.

    ``a``, ``hh`` ``(B, 4, U)`` (gates i, f, g, o); ``c`` ``(B, U)``.
    ``saved = [i, f, g, o, tanh(c'), c]`` ``(B, 6, U)``.

    Examples
    --------
    >>> import numpy as np
    >>> h1, c1, _ = lstm_cell_forward(np.zeros((1, 4, 1)), np.zeros((1, 4, 1)), np.ones((1, 1)))
    >>> c1                    # f = 1/2, g = 0
    array([[0.5]])
    """
    xp = get_array_module(a)
    s = a + hh
    i, f, o = sigmoid(s[:, 0]), sigmoid(s[:, 1]), sigmoid(s[:, 3])
    g = xp.tanh(s[:, 2])
    c1 = f * c + i * g
    tc = xp.tanh(c1)
    return o * tc, c1, xp.stack([i, f, g, o, tc, c], axis=1)


def lstm_cell_backward(dh: Array, dc: Array, saved: Array) -> tuple[Array, Array]:
    """Gradients of :func:`lstm_cell_forward`: ``(da, dc_prev)``; ``da`` is also ``dhh``.

    Examples
    --------
    >>> import numpy as np
    >>> _, _, saved = lstm_cell_forward(np.zeros((1, 4, 1)), np.zeros((1, 4, 1)), np.ones((1, 1)))
    >>> da, dc = lstm_cell_backward(np.zeros((1, 1)), np.ones((1, 1)), saved)
    >>> dc
    array([[0.5]])
    """
    xp = get_array_module(dh)
    i, f, g, o, tc, c = (saved[:, k] for k in range(6))
    dc = dc + dh * o * (1 - tc * tc)
    da = xp.stack([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g),
                   dh * tc * o * (1 - o)], axis=1)
    return da, dc * f
