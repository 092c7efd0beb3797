"""TT-compressed embedding table (Hrinchuk et al. 2020, "Tensorized Embedding Layers"; t3f).

The table ``E`` (``V x D``) is the TT-matrix with row modes ``voc_shape =
(v_k)`` (``prod v_k >= V``; rows past ``V`` are never looked up) and column
modes ``emb_shape = (d_k)`` (``prod d_k = D``), cores
``(r_k, v_k, d_k, r_{k+1})``. Row ``i`` with digits ``(i_0, ..., i_{d-1})`` (C
order over ``voc_shape``) is the product of the core slices
``G_k[:, i_k, :, :]``, computed for all looked-up indices at once by batched
matrix products:

* FLOPs per index: ``sum_{k>=1} 2 r_k d_k r_{k+1} prod_{j<k} d_j`` forward, twice that backward;
* parameters: ``sum_k r_k v_k d_k r_{k+1}`` against ``V D``;
* memory kept for backward: the partial rows ``n sum_k r_k prod_{j<k} d_j``
  for ``n`` indices (the core slices are gathered again).

The gradient of core ``k`` is a scatter-add of per-index slice gradients
into the rows ``i_k`` (repeated digits accumulate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from ..tt.matrix import TTMatrix
from .checks import cached, check_grad, check_indices, check_positive_int
from .embedding import scatter_add_rows
from .module import Module
from .tt_cores import TTCores, check_mode_shape, resolve_tt_ranks
from .tt_init import TTInit, tt_matrix_init

__all__ = ["TTEmbedding"]


class TTEmbedding(Module):
    """Embedding lookup ``E[idx]`` from a TT-matrix table.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        ``V`` and ``D``.
    voc_shape, emb_shape : sequence of int
        ``(v_k)`` with ``prod v_k >= V`` and ``(d_k)`` with ``prod d_k = D``, same length.
    rank : int, sequence of int or float
        TT ranks (see :func:`tensorpar.nn.tt_cores.resolve_tt_ranks`).
    init : {"glorot", "he", "lecun"}
        Variance of the full table (:mod:`tensorpar.nn.tt_init`, fan-in ``D``, fan-out ``V``).
    dtype, seed, xp
        Parameter dtype, seed and array module.

    Attributes
    ----------
    cores : TTCores
        Parameters ``cores.0, ...``, shapes ``(r_k, v_k, d_k, r_{k+1})``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import TTEmbedding
    >>> emb = TTEmbedding(1000, 64, (10, 10, 10), (4, 4, 4), rank=8, seed=0)
    >>> idx = np.array([[3, 999], [0, 3]])
    >>> out = emb(idx)
    >>> out.shape, bool(np.allclose(out[0, 0], emb.table()[3]))
    ((2, 2, 64), True)
    >>> emb.num_parameters(), 1000 * 64
    (3200, 64000)
    """

    cores: TTCores

    def __init__(self, num_embeddings: int, embedding_dim: int, voc_shape: Sequence[int],
                 emb_shape: Sequence[int], rank: Any, *, init: TTInit = "glorot",
                 dtype: Any = np.float64, seed: int | np.random.Generator | None = None,
                 xp: ModuleType = np) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.voc_shape = check_mode_shape(voc_shape, "voc_shape")
        self.emb_shape = check_mode_shape(emb_shape, "emb_shape")
        if len(self.voc_shape) != len(self.emb_shape):
            raise ValueError(f"voc_shape {self.voc_shape} and emb_shape {self.emb_shape} need the "
                             "same number of modes")
        if math.prod(self.voc_shape) < self.num_embeddings:
            raise ValueError(f"voc_shape {self.voc_shape} has product {math.prod(self.voc_shape)} "
                             f"< num_embeddings {self.num_embeddings}")
        if math.prod(self.emb_shape) != self.embedding_dim:
            raise ValueError(f"emb_shape {self.emb_shape} has product {math.prod(self.emb_shape)}, "
                             f"embedding_dim is {self.embedding_dim}")
        ranks = resolve_tt_ranks(rank, self.voc_shape, self.emb_shape)
        self.cores = TTCores(tt_matrix_init(self.voc_shape, self.emb_shape, ranks, init,
                                            rng=np.random.default_rng(seed), dtype=dtype, xp=xp))

    def table(self) -> Array:
        """The dense ``(num_embeddings, embedding_dim)`` table (small tables only).

        Examples
        --------
        >>> emb = TTEmbedding(90, 8, (10, 10), (2, 4), rank=3, seed=0)
        >>> T = emb.table()
        >>> T.shape, bool(np.allclose(emb(np.array([7, 89])), T[[7, 89]]))
        ((90, 8), True)
        """
        return TTMatrix(self.cores.data()).to_dense()[: self.num_embeddings]

    def _digits(self, flat: Array) -> list[Array]:
        out, rest = [], flat
        for v in reversed(self.voc_shape):
            out.append(rest % v)
            rest = rest // v
        return out[::-1]

    def forward(self, idx: Array) -> Array:
        cores = self.cores.data()
        check_indices(idx, "idx", self.num_embeddings, like=cores[0])
        xp = get_array_module(idx)
        digits = self._digits(idx.reshape(-1))
        n = digits[0].shape[0]
        Z = cores[0][0][digits[0]]                          # (n, d_0, r_1)
        partials = [Z]
        for k in range(1, len(cores)):
            r, _, dk, q = cores[k].shape
            S = cores[k].transpose(1, 0, 2, 3)[digits[k]].reshape(n, r, dk * q)
            Z = xp.matmul(Z, S).reshape(n, -1, q)           # (n, D_k d_k, r_{k+1})
            partials.append(Z)
        self.cache = {"digits": digits, "partials": partials[:-1], "shape": tuple(idx.shape)}
        return Z.reshape(*idx.shape, self.embedding_dim)

    def backward(self, grad_out: Array) -> None:
        """Accumulate the core gradients; an index input has no gradient (returns None).

        Examples
        --------
        >>> emb = TTEmbedding(90, 8, (10, 10), (2, 4), rank=3, seed=0)
        >>> out = emb(np.array([7, 89]))
        >>> emb.backward(np.ones_like(out)) is None
        True
        >>> [g.shape for g in emb.cores.grads()], bool(any(abs(g).sum() > 0 for g in emb.cores.grads()))
        ([(1, 10, 2, 3), (3, 10, 4, 1)], True)
        """
        cache = cached(self.cache, "TTEmbedding")
        cores, grads = self.cores.data(), self.cores.grads()
        check_grad(grad_out, (*cache["shape"], self.embedding_dim), like=cores[0])
        xp = get_array_module(grad_out)
        digits, partials = cache["digits"], cache["partials"]
        n = digits[0].shape[0]
        G = grad_out.reshape(n, self.embedding_dim, 1)
        for k in range(len(cores) - 1, 0, -1):
            r, _, dk, q = cores[k].shape
            Zin = partials[k - 1]                            # (n, D_k, r_k)
            S = cores[k].transpose(1, 0, 2, 3)[digits[k]].reshape(n, r, dk * q)
            G = G.reshape(n, Zin.shape[1], dk * q)
            dS = xp.matmul(Zin.transpose(0, 2, 1), G)        # (n, r_k, d_k r_{k+1})
            scatter_add_rows(grads[k].transpose(1, 0, 2, 3), digits[k], dS.reshape(n, r, dk, q))
            G = xp.matmul(G, S.transpose(0, 2, 1))           # (n, D_k, r_k)
        scatter_add_rows(grads[0][0], digits[0], G.reshape(n, *cores[0].shape[2:]))
        return None

    def __repr__(self) -> str:
        return (f"TTEmbedding({self.num_embeddings}, {self.embedding_dim}, voc_shape={self.voc_shape}, "
                f"emb_shape={self.emb_shape}, ranks={TTMatrix(self.cores.data()).ranks})")
