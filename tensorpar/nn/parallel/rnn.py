"""Tensor-parallel GRU and LSTM: each gate's hidden units split over the ranks.

Rank ``r`` of ``P`` owns hidden units ``U_r = [r H/P, (r+1) H/P)`` of every
gate: the rows of ``weight_ih_l{k}``, ``weight_hh_l{k}`` and the biases that
compute them (:class:`~tensorpar.nn.parallel.sharding.ShardSpec` ``(0, G)``,
``G = 3`` gates for the GRU, 4 for the LSTM). A time step needs the whole
previous hidden state (``h W_hh^T`` mixes all units), so::

    forward, per step:   gates of my units from h (all units) -> my units of h'
                         -> all-gather h' (B H numbers)                       [1 message]
    backward, per step:  my units' gate gradients -> partial dh of all units
                         -> reduce-scatter to my units (B H numbers)           [1 message]

plus, per layer, one all-reduce of the input gradient (``T B I`` numbers,
the ``copy_to_tensor_parallel`` of the input map) in backward. The input
map ``x W_ih^T`` of all ``T`` steps is one local GEMM, as in the serial layer.

**Latency term.** The per-step messages are on the critical path: step
``t + 1`` cannot start before step ``t``'s all-gather ends, so a layer pays
``T (alpha log2 P + beta B H w (P-1)/P)`` forward and about the same
backward, in addition to ``1/P`` of the arithmetic. For small ``B H`` (the
usual RNN regime) the ``T alpha`` part dominates: with ``alpha = 5 us`` and
``T = 100`` steps that is at least 0.5 ms per layer per direction however
small the layer, which is why data parallelism (:class:`DataParallel`,
one all-reduce per training step) is the layout of choice for small RNNs
such as the TT-GRU, and this one for a hidden state too large for one rank.

The cell equations are PyTorch's (those of :class:`~tensorpar.nn.GRU` and
:class:`~tensorpar.nn.LSTM`), as cell functions over any block of units in
:mod:`~tensorpar.nn.rnn_cells`.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array
from ...distributed import comm as C
from ..checks import cached, check_grad, check_input
from ..module import Module, Parameter
from ..rnn import GRU, LSTM
from ..rnn_base import RNNBase
from ..rnn_cells import gru_cell_backward, gru_cell_forward, lstm_cell_backward, lstm_cell_forward
from .agreement import agree_on, agreed_build, check_serial, split_size
from .sharding import ShardSpec, shard

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ParallelGRU", "ParallelLSTM"]


class _ParallelRNN(Module):
    """Shared sharding, checks and the layer loop of :class:`ParallelGRU` and :class:`ParallelLSTM`."""

    gates = 0
    kind = ""
    serial_class: type[RNNBase] = RNNBase

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, *, comm: MPI.Comm | None = None,
                 dtype: Any = np.float64, seed: Any = None, xp: ModuleType = np) -> None:
        serial = agreed_build(
            comm, {"input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers,
                   "bias": bias, "batch_first": batch_first, "dtype": dtype, "seed": seed},
            lambda: self.serial_class(input_size, hidden_size, num_layers, bias, batch_first,
                                      dtype=dtype, seed=seed, xp=xp))
        self._shard(serial, comm)

    @classmethod
    def from_serial(cls, serial: RNNBase, comm: MPI.Comm | None = None) -> Any:
        """Split a serial layer with a dense input map (equal on every rank); it is not modified."""
        check_serial(comm, serial, cls.serial_class)
        obj = cls.__new__(cls)
        obj._shard(serial, comm)
        return obj

    def _shard(self, serial: RNNBase, comm: Any) -> None:
        world = C.resolve_comm(comm)
        P, rank = world.Get_size(), world.Get_rank()

        def validate() -> None:
            if serial.tt:
                raise TypeError("a TT input map is not split: train a TT-RNN with DataParallel")
            split_size(serial.hidden_size, P, "hidden_size")

        named = dict(serial.named_parameters())
        agree_on(comm, {"parameters": named and {k: v.data for k, v in named.items()}}, validate)
        Module.__init__(self)
        self.input_size, self.hidden_size = serial.input_size, serial.hidden_size
        self.num_layers, self.bias, self.batch_first = (serial.num_layers, serial.bias,
                                                        serial.batch_first)
        self.local_size = serial.hidden_size // P
        self.shard_comm, self.rank, self.size = comm, rank, P
        spec = ShardSpec(0, self.gates)
        self.shard_specs = {name: spec for name in named}
        for name, p in named.items():  # PyTorch's names and order
            setattr(self, name, Parameter(shard(p.data, spec, rank, P)))
        self.by_name = dict(self.named_parameters())

    def _p(self, name: str, k: int) -> Parameter | None:
        """A bias of layer ``k`` (None without biases)."""
        return self.by_name.get(f"{name}_l{k}")

    def _w(self, name: str, k: int) -> Parameter:
        """A weight of layer ``k``."""
        return self.by_name[f"{name}_l{k}"]

    def _agree_input(self, x: Any) -> Array:
        like = self._w("weight_hh", 0).data

        def validate() -> None:
            check_input(x, "x", like=like, features=self.input_size, min_ndim=3)
            if x.ndim != 3:
                raise ValueError(f"x must be 3-D, got shape {tuple(x.shape)}")

        agree_on(self.shard_comm, {"x.shape": tuple(getattr(x, "shape", ()))}, validate)
        xp = get_array_module(x)
        return xp.ascontiguousarray(x.transpose(1, 0, 2)) if self.batch_first else x

    def _mine(self, a: Array) -> Array:
        """This rank's units of a ``(..., H)`` array."""
        return a[..., self.rank * self.local_size:(self.rank + 1) * self.local_size]

    def _gather_units(self, h: Array) -> Array:
        return C.allgatherv(self.shard_comm, h, counts=[self.local_size] * self.size, axis=-1)

    def _input_map(self, k: int, inp: Array) -> Array:
        xw = inp @ self._w("weight_ih", k).data.T
        b = self._p("bias_ih", k)
        if b is not None:
            xw += b.data
        return xw.reshape(*inp.shape[:2], self.gates, self.local_size)

    def _recurrent(self, k: int, h_full: Array) -> Array:
        hh = h_full @ self._w("weight_hh", k).data.T
        b = self._p("bias_hh", k)
        if b is not None:
            hh += b.data
        return hh.reshape(h_full.shape[0], self.gates, self.local_size)

    def _weights_backward(self, k: int, inp: Array, hs_full: Array, dxw: Array,
                          dhh: Array) -> Array:
        """Accumulate the layer's gradients; return the (all-reduced) input gradient."""
        T, B = inp.shape[:2]
        d_in, d_hh = dxw.reshape(T * B, -1), dhh.reshape(T * B, -1)
        W_ih, W_hh = self._w("weight_ih", k), self._w("weight_hh", k)
        for name, d in (("bias_ih", d_in), ("bias_hh", d_hh)):
            b = self._p(name, k)
            if b is not None:
                b.grad += d.sum(axis=0)
        W_hh.grad += d_hh.T @ hs_full[:-1].reshape(T * B, -1)
        W_ih.grad += d_in.T @ inp.reshape(T * B, -1)
        return C.allreduce(self.shard_comm, (d_in @ W_ih.data).reshape(inp.shape))

    def _check_grad(self, grad_output: Array) -> Array:
        c = cached(self.cache, f"Parallel{self.kind}")
        like = c["like"]
        agree_on(self.shard_comm, {"grad_output.shape": tuple(getattr(grad_output, "shape", ()))},
                 lambda: check_grad(grad_output, c["out_shape"], "grad_output", like=like))
        xp = get_array_module(grad_output)
        return xp.ascontiguousarray(grad_output.transpose(1, 0, 2)) if self.batch_first \
            else grad_output

    def _output(self, out: Array) -> Array:
        xp = get_array_module(out)
        return xp.ascontiguousarray(out.transpose(1, 0, 2)) if self.batch_first else out

    def __repr__(self) -> str:
        return (f"Parallel{self.kind}({self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, local_units={self.local_size}, ranks={self.size})")


class ParallelGRU(_ParallelRNN):
    """:class:`~tensorpar.nn.GRU` with each gate's hidden units split over the ranks of ``comm``.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dtype, seed, xp
        As for :class:`~tensorpar.nn.GRU` (dense input maps; the serial layer
        drawn from ``seed`` is the one split). ``P`` must divide ``hidden_size``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).

    Notes
    -----
    ``forward(x)`` returns ``(output, h_n)`` as the serial layer, both whole
    on every rank (the initial state is zero; no ``hx``);
    ``backward(grad_output)`` returns the whole input gradient. Parameters
    per rank: ``1/P`` of the serial layer's. Communication per layer: ``T``
    all-gathers of ``B H`` numbers forward, ``T - 1`` reduce-scatters of
    ``B H`` and one all-reduce of ``T B I`` backward (see the module
    docstring for the latency term). Kept for backward per layer: the input,
    the whole hidden states ``(T + 1) B H`` and ``4 T B H / P`` gate values.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import GRU
        from tensorpar.nn.parallel import ParallelGRU
        serial = GRU(5, 8, seed=0)
        par = ParallelGRU.from_serial(serial)          # 4 units of each gate per rank
        x = np.ones((7, 2, 5))
        assert np.allclose(par(x)[0], serial(x)[0])

    >>> gru = ParallelGRU(5, 8, seed=0)
    >>> gru.weight_hh_l0.shape
    (24, 8)
    """

    gates = 3
    kind = "GRU"
    serial_class = GRU

    def forward(self, x: Array) -> tuple[Array, Array]:
        seq = self._agree_input(x)
        xp = get_array_module(seq)
        T, B, _ = seq.shape
        inp, layers, last = seq, [], []
        for k in range(self.num_layers):
            xw = self._input_map(k, inp)
            hs = xp.zeros((T + 1, B, self.hidden_size), dtype=seq.dtype)
            saved = xp.empty((T, B, 4, self.local_size), dtype=seq.dtype)
            for t in range(T):
                h1, saved[t] = gru_cell_forward(xw[t], self._recurrent(k, hs[t]), self._mine(hs[t]))
                hs[t + 1] = self._gather_units(h1)           # the one message of the step
            layers.append({"inp": inp, "hs": hs, "saved": saved})
            inp = hs[1:]
            last.append(hs[T])
        self.cache = {"layers": layers, "out_shape": (*x.shape[:-1], self.hidden_size),
                      "like": x[:0]}
        return self._output(inp), xp.stack(last)

    def backward(self, grad_output: Array) -> Array:
        dout = self._check_grad(grad_output)
        xp = get_array_module(dout)
        T, B = dout.shape[:2]
        for k in range(self.num_layers - 1, -1, -1):
            lay = self.cache["layers"][k]
            hs, saved = lay["hs"], lay["saved"]
            W_hh = self._w("weight_hh", k).data
            dh = xp.zeros((B, self.local_size), dtype=dout.dtype)
            dxw = xp.empty((T, B, 3, self.local_size), dtype=dout.dtype)
            dhh = xp.empty_like(dxw)
            for t in range(T - 1, -1, -1):
                dh = dh + self._mine(dout[t])
                dxw[t], dhh[t], dh = gru_cell_backward(dh, saved[t], self._mine(hs[t]))
                if t:  # the step's one message: my units of dh_prev, summed over the ranks
                    part = dhh[t].reshape(B, -1) @ W_hh
                    dh = dh + C.reduce_scatter_block(self.shard_comm, part, axis=-1)
            dout = self._weights_backward(k, lay["inp"], hs, dxw, dhh)
        return self._output(dout)


class ParallelLSTM(_ParallelRNN):
    """:class:`~tensorpar.nn.LSTM` with each gate's hidden units split over the ranks of ``comm``.

    Parameters are those of :class:`ParallelGRU` (``G = 4`` gates). The cell
    state of a rank's units never leaves the rank.

    Notes
    -----
    ``forward(x)`` returns ``(output, (h_n, c_n))`` with ``output`` and
    ``h_n`` whole and ``c_n`` this rank's units ``(L, B, H / P)``;
    ``backward(grad_output)`` returns the whole input gradient.
    Communication as :class:`ParallelGRU`.

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``::

        import numpy as np
        from tensorpar.nn import LSTM
        from tensorpar.nn.parallel import ParallelLSTM
        serial = LSTM(5, 8, seed=0)
        par = ParallelLSTM.from_serial(serial)
        x = np.ones((7, 2, 5))
        assert np.allclose(par(x)[0], serial(x)[0])

    >>> ParallelLSTM(5, 8, seed=0).weight_ih_l0.shape
    (32, 5)
    """

    gates = 4
    kind = "LSTM"
    serial_class = LSTM

    def forward(self, x: Array) -> tuple[Array, tuple[Array, Array]]:
        seq = self._agree_input(x)
        xp = get_array_module(seq)
        T, B, _ = seq.shape
        inp, layers, last_h, last_c = seq, [], [], []
        for k in range(self.num_layers):
            xw = self._input_map(k, inp)
            hs = xp.zeros((T + 1, B, self.hidden_size), dtype=seq.dtype)
            c = xp.zeros((B, self.local_size), dtype=seq.dtype)
            saved = xp.empty((T, B, 6, self.local_size), dtype=seq.dtype)
            for t in range(T):
                h1, c, saved[t] = lstm_cell_forward(xw[t], self._recurrent(k, hs[t]), c)
                hs[t + 1] = self._gather_units(h1)           # the one message of the step
            layers.append({"inp": inp, "hs": hs, "saved": saved})
            inp = hs[1:]
            last_h.append(hs[T])
            last_c.append(c)
        self.cache = {"layers": layers, "out_shape": (*x.shape[:-1], self.hidden_size),
                      "like": x[:0]}
        return self._output(inp), (xp.stack(last_h), xp.stack(last_c))

    def backward(self, grad_output: Array) -> Array:
        dout = self._check_grad(grad_output)
        xp = get_array_module(dout)
        T, B = dout.shape[:2]
        for k in range(self.num_layers - 1, -1, -1):
            lay = self.cache["layers"][k]
            hs, saved = lay["hs"], lay["saved"]
            W_hh = self._w("weight_hh", k).data
            dh = xp.zeros((B, self.local_size), dtype=dout.dtype)
            dc = xp.zeros_like(dh)
            da = xp.empty((T, B, 4, self.local_size), dtype=dout.dtype)
            for t in range(T - 1, -1, -1):
                dh = dh + self._mine(dout[t])
                da[t], dc = lstm_cell_backward(dh, dc, saved[t])
                if t:
                    part = da[t].reshape(B, -1) @ W_hh
                    dh = C.reduce_scatter_block(self.shard_comm, part, axis=-1)
            dout = self._weights_backward(k, lay["inp"], hs, da, da)
        return self._output(dout)
