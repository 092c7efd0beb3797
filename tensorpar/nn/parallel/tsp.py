"""Folded tensor + sequence parallelism (TSP): one axis of ``P`` ranks, 1/P of weights and tokens.

Rank ``r`` holds ``1/P`` of every weight matrix (row shards of
:class:`~tensorpar.nn.parallel.RotatedLinear`) **and** ``1/P`` of the
tokens of every sequence. Nothing is replicated except the LayerNorms'
``4 E`` numbers:

feed-forward (:class:`TSPFeedForward`)
    both linear maps circulate their weight shards in a ring over the local
    tokens, exactly as RTP does over a local batch.
attention (:class:`TSPAttention`)
    the projections are rotated layers; the attention itself keeps the local
    queries and passes the key/value blocks around the ring (``P - 1`` steps
    of the ``(K, V)`` block, ``2 B S E / P`` elements), combining the blocks
    with a running (online) softmax. Backward passes the blocks again with
    their gradient accumulators (``P - 1`` steps of ``(K, V, dK, dV)``),
    then one step returns ``(dK, dV)`` to the owner.
token split (:func:`tsp_positions`)
    non-causal: contiguous blocks of ``S / P``. Causal: the zigzag split --
    the sequence is cut into ``2 P`` chunks and rank ``r`` takes chunks ``r``
    and ``2 P - 1 - r``, so every rank has the same number of unmasked
    query-key pairs (:func:`causal_work`). Scores are computed per pair of
    chunks and a key chunk entirely in a query chunk's future is skipped, so
    every rank computes exactly ``2 P + 1`` of its ``4 P`` chunk products
    (a contiguous split would give rank ``r`` ``4 r + 3``: the last rank
    does ``(4 P - 1) / 3`` times the work of the first).

Counted ``Sendrecv`` bytes per block call, ``w`` bytes per element, ``N =
B S / P`` local tokens (:func:`tsp_traffic`): the rotated layers as in
:func:`~tensorpar.nn.parallel.rotated.rotated_traffic`, attention forward
``(P-1) 2 N E w`` and backward ``(P-1) 4 N E w + 2 N E w`` (when ``P > 1``).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array, Comm
from ...distributed.comm import agree, allreduce, resolve_comm, ring_shift
from ..activation import make_activation
from ..attention import MultiheadAttention
from ..checks import cached, check_grad, check_input
from ..linear import Linear
from ..module import Module
from ..transformer import FeedForward, TransformerBlock
from .rotated import RotatedLinear, local_error, rotated_traffic
from .tsp_tokens import (
    block_scores,
    causal_work,
    tsp_gather,
    tsp_positions,
    tsp_split,
    tsp_traffic,
)

__all__ = ["TSPAttention", "TSPFeedForward", "TSPTransformerBlock", "block_scores", "block_traffic",
           "causal_work", "tsp_gather", "tsp_positions", "tsp_split", "tsp_traffic"]

_TAG = 37


class TSPAttention(Module):
    """Self-attention over this rank's tokens with K/V blocks passed around a ring (TSP).

    Build it with :meth:`from_serial` from a :class:`~tensorpar.nn.MultiheadAttention`
    (equal on every rank), or directly with the serial constructor's
    arguments (the layer ``MultiheadAttention(E, H, bias, causal, seed=seed)``
    is built and sharded). Input ``(B, S/P, E)``: this rank's tokens in the
    order of :func:`tsp_positions`; output the same. ``3 E`` and ``E`` must
    divide by ``P`` (the projections' row shards). Collective; each call
    agrees on its arguments first.

    Examples
    --------
    Under ``mpiexec -n 2``::

        attn = TSPAttention(8, 2, causal=True, seed=0)
        y_loc = attn(tsp_split(x, causal=True))       # 1 ring step of (K, V)

    >>> import numpy as np
    >>> attn = TSPAttention(4, 2, causal=True, seed=0)
    >>> attn(np.ones((1, 6, 4))).shape
    (1, 6, 4)
    """

    in_proj: RotatedLinear
    out_proj: RotatedLinear

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, causal: bool = False,
                 *, comm: Comm = None, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        comm = resolve_comm(comm)
        agree(comm, {"embed_dim": embed_dim, "num_heads": num_heads, "bias": bias,
                     "causal": causal,
                     "seed": seed if not isinstance(seed, np.random.Generator) else None})
        self._take(MultiheadAttention(embed_dim, num_heads, bias, causal, dtype=dtype, seed=seed,
                                      xp=xp), comm)

    @classmethod
    def from_serial(cls, mha: MultiheadAttention, comm: Comm = None) -> TSPAttention:
        """Shard a dense serial attention layer (equal on every rank; collective)."""
        if not isinstance(mha, MultiheadAttention) or not isinstance(mha.in_proj, Linear):
            raise TypeError("mha must be a MultiheadAttention with dense projections")
        self = cls.__new__(cls)
        Module.__init__(self)
        self._take(mha, resolve_comm(comm))
        return self

    def _take(self, mha: MultiheadAttention, comm: Any) -> None:
        if not isinstance(mha.in_proj, Linear) or not isinstance(mha.out_proj, Linear):
            raise TypeError("the attention layer must have dense Linear projections")
        self.comm, self.nranks, self.rank = comm, comm.Get_size(), comm.Get_rank()
        self.embed_dim, self.num_heads, self.head_dim = mha.embed_dim, mha.num_heads, mha.head_dim
        self.causal = mha.causal
        self.register_module("in_proj", RotatedLinear.from_linear(mha.in_proj, comm), flat=True)
        self.out_proj = RotatedLinear.from_linear(mha.out_proj, comm)

    def _positions(self, n: int, rank: int) -> np.ndarray:
        return tsp_positions(n * self.nranks, self.nranks, rank, self.causal)

    def forward(self, x: Array) -> Array:
        err = local_error(check_input, x, "x", like=self.in_proj.weight.data,
                          features=self.embed_dim, min_ndim=3)
        shape = tuple(x.shape) if err is None else None
        agree(self.comm, {"shape": shape}, error=err)
        b, n, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        xp = get_array_module(x)
        qkv = self.in_proj(x).reshape(b, n, 3, h, dh).transpose(2, 0, 3, 1, 4)  # (3, B, H, n, Dh)
        q = qkv[0]
        kv = xp.ascontiguousarray(qkv[1:])
        qpos, products = self._positions(n, self.rank), 0
        m: Array = None  # running row maximum, sum and weighted values of the online softmax
        l_: Array = None
        acc: Array = None
        scores: list[Array | None] = []
        for t in range(self.nranks):
            kpos = self._positions(n, (self.rank - t) % self.nranks)
            s, done = block_scores(q, kv[0], qpos, kpos, self.causal)
            products += done
            if s is None:
                scores.append(None)  # the whole key block lies in these queries' future
            else:
                # step 0 is this rank's own block: every query sees itself, so m is finite
                m_new = s.max(axis=-1, keepdims=True) if m is None else \
                    xp.maximum(m, s.max(axis=-1, keepdims=True))
                e = xp.exp(s - m_new)
                if m is None:
                    l_, acc = e.sum(axis=-1, keepdims=True), e @ kv[1]
                else:
                    alpha = xp.exp(m - m_new)
                    l_, acc = l_ * alpha + e.sum(axis=-1, keepdims=True), acc * alpha + e @ kv[1]
                m = m_new
                scores.append(s)
            if t < self.nranks - 1:
                kv = ring_shift(self.comm, kv, _TAG)
        out = acc / l_
        probs = [None if s is None else xp.exp(s - m) / l_ for s in scores]
        self.cache = {"q": q, "kv": xp.ascontiguousarray(qkv[1:]), "probs": probs, "out": out}
        self.chunk_products = products  # score products of the last forward (load balance)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(b, n, h * dh))

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "TSPAttention")
        q, kv, probs, out = c["q"], c["kv"], c["probs"], c["out"]
        b, h, n, dh = q.shape
        err = local_error(check_grad, grad_out, (b, n, self.embed_dim), like=q)
        agree(self.comm, {"shape": (b, n, self.embed_dim)}, error=err)
        xp = get_array_module(q)
        g = self.out_proj.backward(grad_out).reshape(b, n, h, dh).transpose(0, 2, 1, 3)
        d = (g * out).sum(axis=-1, keepdims=True)  # rowsum(dP * P) = rowsum(g * out)
        scale = q.dtype.type(1.0 / math.sqrt(dh))
        dq = xp.zeros_like(q)
        dkv = xp.zeros_like(kv)  # gradient accumulators travelling with the K/V block
        for t in range(self.nranks):
            p = probs[t]
            if p is not None:
                dkv[1] += xp.swapaxes(p, -1, -2) @ g
                ds = p * (g @ xp.swapaxes(kv[1], -1, -2) - d) * scale
                dq += ds @ kv[0]
                dkv[0] += xp.swapaxes(ds, -1, -2) @ q
            if t < self.nranks - 1:
                both = ring_shift(self.comm, xp.concatenate([kv, dkv]), _TAG)
                kv, dkv = both[:2], both[2:]
        if self.nranks > 1:  # the accumulators sit one rank before their owner: one more step
            dkv = ring_shift(self.comm, xp.ascontiguousarray(dkv), _TAG)
        dqkv = xp.concatenate([dq[None], dkv]).transpose(1, 3, 0, 2, 4)  # (B, n, 3, H, Dh)
        return self.in_proj.backward(dqkv.reshape(b, n, 3 * h * dh))


class TSPFeedForward(Module):
    """``linear2(act(linear1(x)))`` over this rank's tokens with rotated weight shards (TSP/RTP).

    Built from a serial :class:`~tensorpar.nn.FeedForward` without dropout
    (:meth:`from_serial`) or from its arguments. ``hidden_dim`` and
    ``embed_dim`` must divide by ``P``.

    Examples
    --------
    >>> import numpy as np
    >>> ff = TSPFeedForward(4, 8, seed=0)
    >>> ff(np.ones((2, 3, 4))).shape
    (2, 3, 4)
    """

    def __init__(self, embed_dim: int, hidden_dim: int, activation: str = "gelu", *,
                 bias: bool = True, comm: Comm = None, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        comm = resolve_comm(comm)
        agree(comm, {"embed_dim": embed_dim, "hidden_dim": hidden_dim, "activation": activation,
                     "seed": seed if not isinstance(seed, np.random.Generator) else None})
        serial = FeedForward(embed_dim, hidden_dim, activation, bias=bias, dtype=dtype, seed=seed,
                             xp=xp)
        self._take(serial, comm, activation)

    @classmethod
    def from_serial(cls, ff: FeedForward, comm: Comm = None,
                    activation: str = "gelu") -> TSPFeedForward:
        """Shard a dense serial feed-forward block (equal on every rank; collective)."""
        if not isinstance(ff, FeedForward) or ff.dropout.p != 0:
            raise ValueError("ff must be a FeedForward without dropout (TSP has no dropout)")
        self = cls.__new__(cls)
        Module.__init__(self)
        self._take(ff, resolve_comm(comm), activation)
        return self

    def _take(self, ff: FeedForward, comm: Any, activation: str) -> None:
        if not isinstance(ff.linear1, Linear) or not isinstance(ff.linear2, Linear):
            raise TypeError("the feed-forward block must have dense Linear layers")
        self.linear1 = RotatedLinear.from_linear(ff.linear1, comm)
        self.activation = make_activation(activation)
        self.linear2 = RotatedLinear.from_linear(ff.linear2, comm)

    def forward(self, x: Array) -> Array:
        return self.linear2(self.activation(self.linear1(x)))

    def backward(self, grad_out: Array) -> Array:
        return self.linear1.backward(self.activation.backward(self.linear2.backward(grad_out)))


class TSPTransformerBlock(Module):
    """Pre-LN transformer block under TSP: the serial block's maths, 1/P of weights and tokens.

    Same arguments and parameter names as :class:`~tensorpar.nn.TransformerBlock`
    (no dropout; gelu by default). The LayerNorms are replicated (``4 E``
    numbers per rank) and their gradients all-reduced at the end of
    :meth:`backward` (one ``Allreduce`` of ``4 E`` elements); every matrix
    is a rotated shard, so the sharded parameter bytes are exactly ``1/P``.

    Examples
    --------
    >>> import numpy as np
    >>> blk = TSPTransformerBlock(8, 2, 16, causal=True, seed=0)
    >>> y = blk(np.ones((1, 4, 8)))
    >>> blk.backward(np.ones_like(y)).shape
    (1, 4, 8)
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_dim: int, *, causal: bool = False,
                 activation: str = "gelu", bias: bool = True, eps: float = 1e-5,
                 comm: Comm = None, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        comm = resolve_comm(comm)
        agree(comm, {"embed_dim": embed_dim, "num_heads": num_heads, "hidden_dim": hidden_dim,
                     "causal": causal, "activation": activation, "bias": bias, "eps": eps,
                     "seed": seed if not isinstance(seed, np.random.Generator) else None})
        serial = TransformerBlock(embed_dim, num_heads, hidden_dim, causal=causal,
                                  activation=activation, bias=bias, eps=eps, dtype=dtype,
                                  seed=seed, xp=xp)
        self.comm = comm
        self.embed_dim = serial.embed_dim
        self.norm1 = serial.norm1
        self.self_attn = TSPAttention.from_serial(serial.self_attn, comm)
        self.norm2 = serial.norm2
        self.ff = TSPFeedForward.from_serial(serial.ff, comm, activation)

    def forward(self, x: Array) -> Array:
        h = x + self.self_attn(self.norm1(x))
        return h + self.ff(self.norm2(h))

    def backward(self, grad_out: Array) -> Array:
        norms = [p for ln in (self.norm1, self.norm2) for p in ln.parameters()]
        before = [p.grad.copy() for p in norms]
        dh = grad_out + self.norm2.backward(self.ff.backward(grad_out))
        dx = dh + self.norm1.backward(self.self_attn.backward(dh))
        # LayerNorm gradients summed over every rank's tokens (this call's part only)
        xp = get_array_module(dx)
        local = xp.concatenate([(p.grad - b).ravel() for p, b in zip(norms, before)])
        total = allreduce(self.comm, local)
        start = 0
        for p, b in zip(norms, before):
            p.grad[...] = b + total[start:start + p.size].reshape(p.shape)
            start += p.size
        return dx


def block_traffic(batch: int, seq_len: int, embed_dim: int, hidden_dim: int, nranks: int,
                  itemsize: int = 8) -> dict[str, int]:
    """``Sendrecv`` bytes per rank of one :class:`TSPTransformerBlock` forward and backward.

    Examples
    --------
    >>> block_traffic(1, 4, 4, 8, 1)
    {'forward_bytes': 0, 'backward_bytes': 0}
    """
    out = {"forward_bytes": 0, "backward_bytes": 0}
    att = tsp_traffic(batch, seq_len, embed_dim, nranks, itemsize)
    for fin, fout in ((embed_dim, 3 * embed_dim), (embed_dim, embed_dim),
                      (embed_dim, hidden_dim), (hidden_dim, embed_dim)):
        rot = rotated_traffic(fin, fout, True, nranks, itemsize)
        out["forward_bytes"] += rot["forward_bytes"]
        out["backward_bytes"] += rot["backward_bytes"]
    out["forward_bytes"] += att["forward_bytes"]
    out["backward_bytes"] += att["backward_bytes"]
    return out

