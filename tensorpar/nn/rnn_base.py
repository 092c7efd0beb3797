"""Shared parameters, checks, input maps and state handling of :class:`~tensorpar.nn.GRU` and
:class:`~tensorpar.nn.LSTM` (see :mod:`tensorpar.nn.rnn` for the equations and the TT-RNN option)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import check_input, check_positive_int
from .linear import uniform_init
from .module import Module, Parameter
from .tt_cores import check_mode_shape
from .tt_linear import TTLinear

__all__ = ["RNNBase", "sigmoid"]


def sigmoid(x: Array) -> Array:
    """Logistic function as ``(1 + tanh(x / 2)) / 2`` (no overflow for large ``|x|``).

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid(np.array([0.0, 1000.0, -1000.0]))
    array([0.5, 1. , 0. ])
    """
    return 0.5 * (1.0 + get_array_module(x).tanh(0.5 * x))


class RNNBase(Module):
    """Shared parameters, checks and layer loop of :class:`GRU` and :class:`LSTM`."""

    gates = 0
    kind = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, *, tt_input_shape: Sequence[int] | None = None,
                 tt_hidden_shape: Sequence[int] | None = None, tt_rank: Any = None,
                 tt_implementation: Any = "auto", dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = H = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        for name, flag in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        self.bias, self.batch_first = bias, batch_first
        self.tt = tt_input_shape is not None or tt_hidden_shape is not None or tt_rank is not None
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(H)
        G = self.gates
        for k in range(self.num_layers):
            fan_in = self.input_size if k == 0 else H
            if k == 0 and self.tt:
                self._tt_map(tt_input_shape, tt_hidden_shape, tt_rank, tt_implementation,
                             dtype, rng, xp)
            else:
                setattr(self, f"weight_ih_l{k}",
                        Parameter(uniform_init((G * H, fan_in), bound, rng, dtype, xp)))
            setattr(self, f"weight_hh_l{k}", Parameter(uniform_init((G * H, H), bound, rng, dtype, xp)))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(uniform_init((G * H,), bound, rng, dtype, xp)))
                setattr(self, f"bias_hh_l{k}", Parameter(uniform_init((G * H,), bound, rng, dtype, xp)))

    def _tt_map(self, in_shape: Any, hidden_shape: Any, rank: Any, implementation: Any,
                dtype: Any, rng: np.random.Generator, xp: ModuleType) -> None:
        if in_shape is None or hidden_shape is None or rank is None:
            raise ValueError("a TT input map needs tt_input_shape, tt_hidden_shape and tt_rank")
        ins = check_mode_shape(in_shape, "tt_input_shape")
        hid = check_mode_shape(hidden_shape, "tt_hidden_shape")
        if math.prod(ins) != self.input_size:
            raise ValueError(f"tt_input_shape {ins} has product {math.prod(ins)}, "
                             f"input_size is {self.input_size}")
        if math.prod(hid) != self.hidden_size:
            raise ValueError(f"tt_hidden_shape {hid} has product {math.prod(hid)}, "
                             f"hidden_size is {self.hidden_size}")
        self.tt_ih_l0 = TTLinear(ins, (self.gates * hid[0], *hid[1:]), rank, bias=False,
                                 implementation=implementation, dtype=dtype, seed=rng, xp=xp)

    def compress_input_map(self, tt_input_shape: Sequence[int], tt_hidden_shape: Sequence[int], *,
                           eps: float | None = None, rank: int | None = None,
                           implementation: Any = "auto") -> TTLinear:
        """Replace the dense ``weight_ih_l0`` by its TT-SVD (TT-RNN), e.g. after loading PyTorch weights.

        ``||W - W_TT||_F <= eps ||W||_F`` (see :meth:`TTLinear.from_dense`); the
        parameter ``weight_ih_l0`` is removed and ``tt_ih_l0.cores.k`` added.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.nn import GRU
        >>> gru = GRU(8, 4, seed=0)
        >>> x = np.random.default_rng(1).standard_normal((5, 2, 8))
        >>> before = gru(x)[0]
        >>> tt = gru.compress_input_map((2, 4), (2, 2), eps=1e-12)
        >>> bool(np.allclose(gru(x)[0], before)), "weight_ih_l0" in gru.state_dict()
        (True, False)
        """
        if self.tt:
            raise ValueError("the input map is already a TT-matrix")
        W = self._parameters["weight_ih_l0"].data
        hid = check_mode_shape(tt_hidden_shape, "tt_hidden_shape")
        if math.prod(hid) != self.hidden_size:
            raise ValueError(f"tt_hidden_shape {hid} has product {math.prod(hid)}, "
                             f"hidden_size is {self.hidden_size}")
        tt = TTLinear.from_dense(W, tt_input_shape, (self.gates * hid[0], *hid[1:]), eps=eps, rank=rank,
                                 implementation=implementation)
        del self._parameters["weight_ih_l0"]
        object.__delattr__(self, "weight_ih_l0")
        self.tt = True
        self.tt_ih_l0 = tt
        return tt

    def _param(self, name: str, k: int) -> Array | None:
        p = self._parameters.get(f"{name}_l{k}")
        return None if p is None else p

    def _check(self, x: Any, hx: Any) -> tuple[Array, list[Array] | None]:
        like = self._parameters["weight_hh_l0"].data
        check_input(x, "x", like=like, features=self.input_size, min_ndim=3)
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D ({'batch, seq' if self.batch_first else 'seq, batch'}, "
                             f"features), got shape {tuple(x.shape)}")
        xp = get_array_module(x)
        seq = xp.ascontiguousarray(x.transpose(1, 0, 2)) if self.batch_first else x
        B = seq.shape[1]
        states = None
        if hx is not None:
            parts = list(hx) if isinstance(hx, (tuple, list)) else [hx]
            names = ["hx[0]", "hx[1]"] if self.kind == "LSTM" else ["hx"]
            if len(parts) != len(names):
                raise TypeError(f"hx must be {'a (h_0, c_0) tuple' if self.kind == 'LSTM' else 'an array'}")
            want = (self.num_layers, B, self.hidden_size)
            for p, name in zip(parts, names):
                check_input(p, name, like=like)
                if tuple(p.shape) != want:
                    raise ValueError(f"{name} must have shape {want}, got {tuple(p.shape)}")
            states = parts
        return seq, states

    def _input_map(self, k: int, seq: Array) -> Array:
        T, B, In = seq.shape
        flat = seq.reshape(T * B, In)
        if k == 0 and self.tt:
            xw = self.tt_ih_l0.forward(flat)
        else:
            xw = flat @ self._parameters[f"weight_ih_l{k}"].data.T
        b = self._param("bias_ih", k)
        if b is not None:
            xw += b.data
        return xw.reshape(T, B, -1)

    def _input_map_backward(self, k: int, seq: Array, dxw: Array) -> Array:
        T, B, In = seq.shape
        d2 = dxw.reshape(T * B, -1)
        b = self._param("bias_ih", k)
        if b is not None:
            b.grad += d2.sum(axis=0)
        if k == 0 and self.tt:
            return self.tt_ih_l0.backward(d2).reshape(T, B, In)
        W = self._parameters[f"weight_ih_l{k}"]
        W.grad += d2.T @ seq.reshape(T * B, In)
        return (d2 @ W.data).reshape(T, B, In)

    def _hidden_backward(self, k: int, dhh: Array, h_prev: Array) -> None:
        """``W_hh`` and ``b_hh`` gradients of all steps at once: one GEMM over ``T B`` rows."""
        G = dhh.shape[-1]
        d2, h2 = dhh.reshape(-1, G), h_prev.reshape(-1, self.hidden_size)
        self._parameters[f"weight_hh_l{k}"].grad += d2.T @ h2
        b = self._param("bias_hh", k)
        if b is not None:
            b.grad += d2.sum(axis=0)

    def _output(self, out: Array) -> Array:
        xp = get_array_module(out)
        return xp.ascontiguousarray(out.transpose(1, 0, 2)) if self.batch_first else out

    def _grad_seq(self, grad_output: Array) -> Array:
        xp = get_array_module(grad_output)
        return xp.ascontiguousarray(grad_output.transpose(1, 0, 2)) if self.batch_first else grad_output

    def __repr__(self) -> str:
        tt = f", tt_ranks={self.tt_ih_l0.ranks}" if self.tt else ""
        return (f"{self.kind}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}{tt})")
