"""Feed-forward block and pre-LayerNorm transformer block; every linear map from a factory.

The ``linear`` argument is a callable ``(in_features, out_features, bias) ->
Module`` that builds each linear map (the attention projections and both
feed-forward layers). The default builds dense :class:`~tensorpar.nn.Linear`
layers; passing a factory of TT layers, e.g.
``lambda i, o, b: TTLinear(shape_of(i), shape_of(o), rank, bias=b)``, makes
them TT-compressed without changing the block. The factory's modules must
take ``(..., in_features)`` inputs and follow the Module protocol
(``forward``, ``backward``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._typing import Array
from .activation import make_activation
from .attention import LinearFactory, MultiheadAttention, dense_factory
from .checks import cached, check_grad, check_input, check_positive_int
from .dropout import Dropout
from .module import Module
from .norm import LayerNorm

__all__ = ["FeedForward", "TransformerBlock"]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2 ** 31))


class FeedForward(Module):
    """``linear2(dropout(act(linear1(x))))``: ``E -> hidden_dim -> E`` (PyTorch's layer names).

    Parameters
    ----------
    embed_dim, hidden_dim : int
        Widths ``E`` and ``F``.
    activation : str or Module
        "gelu" (exact erf, the default), "gelu_tanh", "relu", "tanh", "sigmoid",
        or a Module.
    dropout : float
        Dropout probability after the activation (PyTorch's
        ``TransformerEncoderLayer`` places one there); 0 disables it.
    bias : bool
        Biases on both linear maps.
    linear : callable, optional
        ``(in_features, out_features, bias) -> Module``; see the module docstring.
    dtype, seed, xp
        Used by the default dense factory and the dropout seed.

    Notes
    -----
    For ``N`` tokens (dense linears): FLOPs ``4 N E F`` forward, ``8 N E F``
    backward; memory kept for backward ``N E`` (input) + ``N F`` (activation
    input) + ``N F`` (activation output, in ``linear2``) + ``N F`` (dropout
    mask, training with ``dropout > 0``) elements.

    Examples
    --------
    >>> import numpy as np
    >>> ff = FeedForward(4, 16, seed=0)
    >>> [n for n, _ in ff.named_parameters()]
    ['linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']
    >>> ff(np.ones((2, 3, 4))).shape
    (2, 3, 4)
    """

    def __init__(self, embed_dim: int, hidden_dim: int, activation: str | Module = "gelu", *,
                 dropout: float = 0.0, bias: bool = True, linear: LinearFactory | None = None,
                 dtype: Any = np.float64, seed: int | np.random.Generator | None = None,
                 xp: ModuleType = np) -> None:
        super().__init__()
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        rng = np.random.default_rng(seed)
        make = linear if linear is not None else dense_factory(dtype=dtype, seed=rng, xp=xp)
        self.linear1 = make(self.embed_dim, self.hidden_dim, bias)
        self.activation = make_activation(activation)
        self.dropout = Dropout(dropout, seed=_seed(rng))
        self.linear2 = make(self.hidden_dim, self.embed_dim, bias)

    def forward(self, x: Array) -> Array:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def backward(self, grad_out: Array) -> Array:
        g = self.dropout.backward(self.linear2.backward(grad_out))
        return self.linear1.backward(self.activation.backward(g))


class TransformerBlock(Module):
    """Pre-LayerNorm transformer block: ``h = x + drop(attn(ln1(x)))``, ``y = h + drop(ff(ln2(h)))``.

    Parameters
    ----------
    embed_dim, num_heads, hidden_dim : int
        Width ``E``, heads ``H`` and feed-forward width ``F``.
    causal : bool
        Causal self-attention (language models).
    dropout : float
        Dropout on both residual branches and inside the feed-forward block.
    activation : str or Module
        Feed-forward activation (default "gelu", exact erf).
    bias : bool
        Biases on every linear map.
    linear : callable, optional
        ``(in_features, out_features, bias) -> Module`` building all four
        linear maps (dense by default; TT with a TT factory); see the module
        docstring.
    eps : float
        LayerNorm epsilon.
    dtype, seed, xp
        Parameter dtype and array module of the LayerNorms and the default
        dense factory, and the seed of the initialisation and dropout masks.

    Notes
    -----
    Input and output ``(B, S, E)``, batch first. Parameter names:
    ``norm1.*``, ``self_attn.in_proj_weight``, ``self_attn.in_proj_bias``,
    ``self_attn.out_proj.*``, ``norm2.*``, ``ff.linear1.*``, ``ff.linear2.*``
    (PyTorch's ``TransformerEncoderLayer(norm_first=True)`` has the same
    tensors, with ``linear1``/``linear2`` directly under the layer).

    Memory kept for backward (elements, ``N = B S`` tokens, dense linears):
    the two LayerNorms ``2 (N E + N)``, attention ``5 N E + B H S^2``,
    feed-forward ``N E + 2 N F``, and in training with ``dropout > 0`` three
    masks ``2 N E + N F``. FLOPs forward ``8 N E^2 + 4 N S E + 4 N E F``
    (projections, attention, feed-forward), backward about twice that.

    Examples
    --------
    >>> import numpy as np
    >>> blk = TransformerBlock(8, 2, 32, causal=True, seed=0)
    >>> y = blk(np.random.default_rng(0).standard_normal((2, 5, 8)))
    >>> blk.backward(np.ones_like(y)).shape, blk.num_parameters()
    ((2, 5, 8), 872)
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_dim: int, *, causal: bool = False,
                 dropout: float = 0.0, activation: str | Module = "gelu", bias: bool = True,
                 linear: LinearFactory | None = None, eps: float = 1e-5, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.norm1 = LayerNorm(embed_dim, eps, dtype=dtype, xp=xp)
        self.self_attn = MultiheadAttention(embed_dim, num_heads, bias, causal, linear=linear,
                                            dtype=dtype, seed=rng, xp=xp)
        self.dropout1 = Dropout(dropout, seed=_seed(rng))
        self.norm2 = LayerNorm(embed_dim, eps, dtype=dtype, xp=xp)
        self.ff = FeedForward(embed_dim, hidden_dim, activation, dropout=dropout, bias=bias,
                              linear=linear, dtype=dtype, seed=rng, xp=xp)
        self.dropout2 = Dropout(dropout, seed=_seed(rng))

    def forward(self, x: Array) -> Array:
        params = self.parameters()
        check_input(x, "x", like=params[0].data if params else None, features=self.embed_dim, min_ndim=3)
        h = x + self.dropout1(self.self_attn(self.norm1(x)))
        self.cache = {"shape": tuple(x.shape), "like": x[:0]}
        return h + self.dropout2(self.ff(self.norm2(h)))

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "TransformerBlock")
        check_grad(grad_out, c["shape"], like=c["like"])
        dh = grad_out + self.norm2.backward(self.ff.backward(self.dropout2.backward(grad_out)))
        return dh + self.norm1.backward(self.self_attn.backward(self.dropout1.backward(dh)))
