"""Token embedding (PyTorch's ``nn.Embedding``): a table lookup whose gradient is a scatter-add."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad, check_indices, check_positive_int
from .linear import check_dtype_arg
from .module import Module, Parameter

__all__ = ["Embedding", "scatter_add_rows"]


def scatter_add_rows(target: Array, index: Array, rows: Array) -> None:
    """``target[index[i]] += rows[i]``, repeated indices accumulated (``add.at``, ``cupyx.scatter_add``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((3, 2))
    >>> scatter_add_rows(t, np.array([2, 0, 2]), np.ones((3, 2))); t
    array([[1., 1.],
           [0., 0.],
           [2., 2.]])
    """
    xp = get_array_module(target, index, rows)
    if xp is np:
        np.add.at(target, index, rows)
    else:
        importlib.import_module("cupyx").scatter_add(target, index, rows)


class Embedding(Module):
    """A lookup table: ``forward(idx)`` returns ``weight[idx]``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Table size: ``weight`` has shape ``(num_embeddings, embedding_dim)``.
    dtype, seed, xp
        As for :class:`~tensorpar.nn.Linear`. The initialisation is PyTorch's,
        standard normal entries.

    Notes
    -----
    ``idx`` is an integer array of any shape with entries in
    ``[0, num_embeddings)``; the output has shape ``idx.shape + (embedding_dim,)``.
    ``backward(grad_out)`` adds ``grad_out`` into the rows of ``weight.grad``
    that were read (repeated indices accumulate) and returns None (indices have
    no gradient). Memory kept for backward: the indices, ``idx.size`` integers.
    FLOPs: none forward, ``idx.size * embedding_dim`` additions backward.

    Examples
    --------
    >>> import numpy as np
    >>> emb = Embedding(10, 3, seed=0)
    >>> y = emb(np.array([[1, 1, 4]]))
    >>> y.shape
    (1, 3, 3)
    >>> emb.backward(np.ones_like(y)) is None, emb.weight.grad[1]
    (True, array([2., 2., 2.]))
    """

    weight: Parameter

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        host = np.random.default_rng(seed).standard_normal(
            (self.num_embeddings, self.embedding_dim)).astype(check_dtype_arg(dtype))
        self.weight = Parameter(host if xp is np else xp.asarray(host))

    def forward(self, idx: Array) -> Array:
        check_indices(idx, "idx", self.num_embeddings, like=self.weight.data)
        self.cache = {"idx": idx}
        return self.weight.data[idx]

    def backward(self, grad_out: Array) -> None:
        idx = cached(self.cache, "Embedding")["idx"]
        check_grad(grad_out, (*idx.shape, self.embedding_dim), like=self.weight.data)
        scatter_add_rows(self.weight.grad, idx.reshape(-1), grad_out.reshape(-1, self.embedding_dim))
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"
