"""Multi-head self-attention with PyTorch's parameter layout and a hand-written backward.

The layer is three steps, each its own forward/backward pair: the input
projection (a Linear sub-module, ``E -> 3 H Dh``), scaled dot-product
attention per head (:func:`attention_forward` / :func:`attention_backward`,
no parameters) and the output projection (a Linear, ``H Dh -> E``). A
head-parallel layout splits the heads: each rank builds this layer with its
share of the heads (``num_heads`` local, ``head_dim`` global) and the rows
of ``in_proj_weight`` / columns of ``out_proj.weight`` that belong to them,
then adds its communication steps around the projections.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad, check_input, check_positive_int
from .linear import Linear, check_dtype_arg, uniform_init
from .module import Module

__all__ = ["LinearFactory", "MultiheadAttention", "attention_backward", "attention_forward",
           "dense_factory"]

#: ``(in_features, out_features, bias) -> Module``: builds every linear map of a block.
LinearFactory = Callable[[int, int, bool], Module]


def dense_factory(*, dtype: Any = np.float64, seed: int | np.random.Generator | None = None,
                  xp: ModuleType = np) -> LinearFactory:
    """A factory of dense :class:`~tensorpar.nn.Linear` layers drawing from one seeded generator.

    Examples
    --------
    >>> make = dense_factory(seed=0)
    >>> make(4, 2, False)
    Linear(in_features=4, out_features=2, bias=False, dtype=float64)
    """
    rng = np.random.default_rng(seed)
    return lambda i, o, b: Linear(i, o, b, dtype=dtype, seed=rng, xp=xp)


def attention_forward(q: Array, k: Array, v: Array, causal: bool) -> tuple[Array, Array]:
    """Scaled dot-product attention over the last two axes: return ``(out, probs)``.

    ``probs = softmax(q k^T / sqrt(Dh))`` along the key axis, with key
    positions after the query's set to :math:`-\\infty` when ``causal``;
    ``out = probs v``. ``q, k, v`` have shape ``(..., S, Dh)``. The softmax
    subtracts each row's maximum (finite: a query always sees itself), so no
    score overflows. ``4 S^2 Dh`` FLOPs per leading index.

    Examples
    --------
    >>> import numpy as np
    >>> q = k = np.zeros((3, 2)); v = np.arange(6.0).reshape(3, 2)
    >>> out, probs = attention_forward(q, k, v, causal=True)
    >>> out
    array([[0., 1.],
           [1., 2.],
           [2., 3.]])
    """
    xp = get_array_module(q, k, v)
    s = q.shape[-2]
    scores = (q @ xp.swapaxes(k, -1, -2)) * q.dtype.type(1 / math.sqrt(q.shape[-1]))
    if causal:  # an additive mask: plain broadcasting, the same on numpy and cupy
        scores += xp.triu(xp.full((s, s), -xp.inf, dtype=scores.dtype), k=1)
    scores -= scores.max(axis=-1, keepdims=True)
    probs = xp.exp(scores, out=scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ v, probs


def attention_backward(grad_out: Array, q: Array, k: Array, v: Array,
                       probs: Array) -> tuple[Array, Array, Array]:
    """Gradients ``(dq, dk, dv)`` of :func:`attention_forward` from its saved ``probs``.

    ``dv = P^T g``; ``dP = g v^T``; ``dS = P (dP - rowsum(dP P))`` (masked
    entries have ``P = 0`` and get no gradient); ``dq = dS k / sqrt(Dh)``,
    ``dk = dS^T q / sqrt(Dh)``. ``8 S^2 Dh`` FLOPs per leading index.

    Examples
    --------
    >>> import numpy as np
    >>> q = k = np.zeros((3, 2)); v = np.arange(6.0).reshape(3, 2)
    >>> out, probs = attention_forward(q, k, v, causal=False)
    >>> dq, dk, dv = attention_backward(np.ones((3, 2)), q, k, v, probs)
    >>> dv
    array([[1., 1.],
           [1., 1.],
           [1., 1.]])
    """
    xp = get_array_module(grad_out, probs)
    scale = q.dtype.type(1 / math.sqrt(q.shape[-1]))
    dv = xp.swapaxes(probs, -1, -2) @ grad_out
    dp = grad_out @ xp.swapaxes(v, -1, -2)
    ds = probs * (dp - (dp * probs).sum(axis=-1, keepdims=True))
    ds *= scale
    return ds @ k, xp.swapaxes(ds, -1, -2) @ q, dv


class MultiheadAttention(Module):
    """Multi-head self-attention, PyTorch's ``nn.MultiheadAttention`` with ``batch_first=True``.

    Parameters
    ----------
    embed_dim : int
        Model width ``E``; input and output are ``(B, S, E)`` (batch first).
    num_heads : int
        Heads ``H``; ``head_dim`` defaults to ``E // H`` (``E`` must divide).
    bias : bool
        Biases on both projections.
    causal : bool
        Query ``i`` attends to keys ``j <= i`` only.
    head_dim : int, optional
        Width ``Dh`` of each head; set it to build a layer with a subset of
        the heads of a wider one (head-parallel layouts).
    linear : callable, optional
        ``(in_features, out_features, bias) -> Module`` building the two
        projections (dense :class:`~tensorpar.nn.Linear` by default; a TT
        layer factory makes them TT). With the default, ``dtype``, ``seed``
        and ``xp`` set the parameters and the initialisation is PyTorch's:
        ``in_proj_weight`` Xavier-uniform, biases zero, ``out_proj.weight``
        uniform :math:`\\pm 1/\\sqrt{E}`.

    Attributes
    ----------
    in_proj : Module
        ``E -> 3 H Dh``; a dense one is named as PyTorch's flat parameters
        ``in_proj_weight`` ``(3 H Dh, E)`` (rows: all query heads, then keys,
        then values; head ``h`` owns rows ``h Dh .. (h+1) Dh`` of each) and
        ``in_proj_bias`` ``(3 H Dh,)``.
    out_proj : Module
        ``H Dh -> E``: ``out_proj.weight`` ``(E, H Dh)``, ``out_proj.bias`` ``(E,)``.

    Notes
    -----
    ``y = out_proj(concat_h softmax(q_h k_h^T / sqrt(Dh) + mask) v_h)`` with
    ``[q, k, v] = in_proj(x)``: the output of
    ``torch.nn.MultiheadAttention(E, H, batch_first=True)(x, x, x,
    need_weights=False, attn_mask=causal_mask)[0]``. Self-attention only
    (query = key = value), no attention dropout, no padding mask; the
    attention probabilities of the last forward are ``cache["probs"]``.

    Memory kept for backward, with ``I = H Dh``: ``x`` (``B S E``, in
    ``in_proj``), ``qkv`` (``3 B S I``), ``probs`` (``B H S^2``) and the
    context (``B S I``, in ``out_proj``). FLOPs forward
    ``2 B S E (3 I) + 4 B S^2 I + 2 B S I E``; backward twice that.

    Examples
    --------
    >>> import numpy as np
    >>> mha = MultiheadAttention(8, 2, causal=True, seed=0)
    >>> for name, p in mha.named_parameters():
    ...     print(name, p.shape)
    in_proj_weight (24, 8)
    in_proj_bias (24,)
    out_proj.weight (8, 8)
    out_proj.bias (8,)
    >>> y = mha(np.ones((2, 5, 8)))
    >>> mha.backward(np.ones_like(y)).shape
    (2, 5, 8)
    """

    in_proj: Module
    out_proj: Module

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, causal: bool = False, *,
                 head_dim: int | None = None, linear: LinearFactory | None = None,
                 dtype: Any = np.float64, seed: int | np.random.Generator | None = None,
                 xp: ModuleType = np) -> None:
        super().__init__()
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        if head_dim is None:
            if embed_dim % num_heads:
                raise ValueError(f"num_heads={num_heads} does not divide embed_dim={embed_dim}")
            head_dim = embed_dim // num_heads
        self.head_dim = check_positive_int(head_dim, "head_dim")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
        self.causal = causal
        inner = self.num_heads * self.head_dim
        rng = np.random.default_rng(seed)
        make = linear if linear is not None else dense_factory(dtype=dtype, seed=rng, xp=xp)
        in_proj, out_proj = make(self.embed_dim, 3 * inner, bias), make(inner, self.embed_dim, bias)
        for name, mod in (("linear", in_proj), ("linear", out_proj)):
            if not isinstance(mod, Module):
                raise TypeError(f"{name} must return a Module, got {type(mod).__name__}")
        if linear is None and isinstance(in_proj, Linear) and isinstance(out_proj, Linear):
            self._torch_init(in_proj, out_proj, rng, dtype, xp)
        self.register_module("in_proj", in_proj, flat=isinstance(in_proj, Linear))
        self.out_proj = out_proj

    @staticmethod
    def _torch_init(in_proj: Linear, out_proj: Linear, rng: np.random.Generator, dtype: Any,
                    xp: ModuleType) -> None:
        fan_out, fan_in = in_proj.weight.shape
        in_proj.weight.data[...] = uniform_init((fan_out, fan_in), math.sqrt(6 / (fan_in + fan_out)),
                                                rng, check_dtype_arg(dtype), xp)
        for lin in (in_proj, out_proj):
            if lin.bias is not None:
                lin.bias.data[...] = 0

    def forward(self, x: Array) -> Array:
        params = self.parameters()
        check_input(x, "x", like=params[0].data if params else None, features=self.embed_dim)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (batch, seq, embed_dim), got {tuple(x.shape)}")
        b, s, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        qkv = self.in_proj(x).reshape(b, s, 3, h, dh)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B, H, S, Dh) views
        out, probs = attention_forward(q, k, v, self.causal)
        self.cache = {"qkv": qkv, "probs": probs}
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(b, s, h * dh))

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "MultiheadAttention")
        qkv, probs = c["qkv"], c["probs"]
        b, s, _, h, dh = qkv.shape
        check_grad(grad_out, (b, s, self.embed_dim), like=qkv)
        dctx = self.out_proj.backward(grad_out).reshape(b, s, h, dh).transpose(0, 2, 1, 3)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        dqkv = get_array_module(qkv).empty_like(qkv)
        for i, d in enumerate(attention_backward(dctx, q, k, v, probs)):
            dqkv[:, :, i] = d.transpose(0, 2, 1, 3)
        return self.in_proj.backward(dqkv.reshape(b, s, 3 * h * dh))

    def __repr__(self) -> str:
        return (f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"head_dim={self.head_dim}, causal={self.causal})")
