"""CP-compressed affine layer: the tensorized weight as a sum of ``R`` Kronecker products.

The weight ``W`` (``M x N``, ``M = prod m_k``, ``N = prod n_k``), viewed as a
``d``-way tensor with modes ``(m_k, n_k)`` (row and column index of mode ``k``
paired, as in a TT-matrix), has the CP form

``W[(i_0..i_{d-1}), (j_0..j_{d-1})] = sum_r prod_k F_k[i_k, j_k, r]``

so ``W = sum_r F_0[:, :, r] (x) ... (x) F_{d-1}[:, :, r]`` (Kronecker products).
``x W^T`` is a sweep over the modes with the rank as a batch index of the
stacked GEMMs: ``2 R B sum_k prod_{j<=k} m_j prod_{j>=k} n_j`` FLOPs forward
(``8^4 x 8^4``, ``B = 256``: ``6.7e7 R``), twice that backward; parameters
``R sum_k m_k n_k``; memory kept for backward: the input of every step,
``R B sum_k prod_{j<k} m_j prod_{j>=k} n_j`` elements. A CP weight is a
TT-matrix with diagonal rank-``R`` cores (:meth:`CPLinear.as_tt`), which the
tests use as the reference.
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
from .checks import cached, check_grad, check_input, check_positive_int
from .linear import check_dtype_arg, uniform_init
from .module import Module, Parameter
from .tt_cores import check_mode_shape
from .tt_init import TTInit, tt_target_variance

__all__ = ["CPLinear", "cp_matmat_forward", "cp_matmat_vjp"]


def cp_matmat_forward(factors: Sequence[Array], X: Array) -> tuple[Array, list[Array]]:
    """``Y = W X`` for the CP weight with ``factors`` ``(m_k, n_k, R)`` and ``X`` ``(N, B)``.

    Returns ``Y`` ``(M, B)`` and the list of step inputs (the tape of :func:`cp_matmat_vjp`).

    Examples
    --------
    >>> import numpy as np
    >>> F = [np.ones((2, 3, 1)), np.ones((2, 2, 1))]
    >>> cp_matmat_forward(F, np.ones((6, 1)))[0].ravel()
    array([6., 6., 6., 6.])
    """
    xp = get_array_module(X, *factors)
    B = X.shape[1]
    Z = X.reshape(1, 1, X.shape[0], B)    # (R or 1, L, n_k, S)
    tape = []
    L = 1
    for F in factors:
        m, n, R = F.shape
        Z = Z.reshape(Z.shape[0], L, n, -1)
        tape.append(Z)
        Z = xp.matmul(xp.ascontiguousarray(F.transpose(2, 0, 1))[:, None], Z)  # (R, L, m, S)
        L *= m
    return Z.sum(axis=0).reshape(L, B), tape


def cp_matmat_vjp(factors: Sequence[Array], tape: Sequence[Array],
                  grad_Y: Array) -> tuple[Array, list[Array]]:
    """Gradients of ``<grad_Y, W X>`` with respect to ``X`` and the factors.

    Examples
    --------
    >>> import numpy as np
    >>> F = [np.ones((2, 3, 1)), np.ones((2, 2, 1))]
    >>> Y, tape = cp_matmat_forward(F, np.ones((6, 1)))
    >>> dX, dF = cp_matmat_vjp(F, tape, np.ones((4, 1)))
    >>> dX.ravel(), dF[0][:, :, 0]
    (array([4., 4., 4., 4., 4., 4.]), array([[4., 4., 4.],
           [4., 4., 4.]]))
    """
    xp = get_array_module(grad_Y, *factors)
    R = factors[0].shape[2]
    M, B = grad_Y.shape
    G = xp.broadcast_to(grad_Y.reshape(1, M, B), (R, M, B))
    grads: list[Array] = [None] * len(factors)
    for k in range(len(factors) - 1, -1, -1):
        F, Z = factors[k], tape[k]
        m, n, _ = F.shape
        G = G.reshape(R, Z.shape[1], m, Z.shape[3])
        dF = xp.matmul(G, Z.swapaxes(-1, -2)).sum(axis=1)         # (R, m, n)
        grads[k] = xp.ascontiguousarray(dF.transpose(1, 2, 0))
        G = xp.matmul(xp.ascontiguousarray(F.transpose(2, 1, 0))[:, None], G)  # (R, L, n, S)
    return G.sum(axis=0).reshape(-1, B), grads


class CPLinear(Module):
    """Affine layer ``y = x W^T + b`` with a CP-factorized tensorized weight.

    Parameters
    ----------
    in_shape, out_shape : sequence of int
        ``(n_k)`` and ``(m_k)``, same length.
    rank : int
        CP rank ``R``.
    bias : bool
    init : {"glorot", "he", "lecun"}
        Variance of the full matrix: every factor entry has variance
        ``(sigma^2 / R) ** (1 / d)``.
    dtype, seed, xp
        As for :class:`tensorpar.nn.Linear`.

    Attributes
    ----------
    factors : Module
        Holds parameters ``factors.0, ...``, shapes ``(m_k, n_k, R)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import CPLinear
    >>> lay = CPLinear((4, 4), (2, 8), rank=3, seed=0)
    >>> [n for n, _ in lay.named_parameters()], lay.num_parameters()
    (['bias', 'factors.0', 'factors.1'], 136)
    >>> x = np.ones((5, 16))
    >>> bool(np.allclose(lay(x), x @ lay.to_dense().T + lay.bias.data))
    True
    """

    bias: Parameter | None
    factors: Module

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], rank: int,
                 bias: bool = True, *, init: TTInit = "glorot", dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        self.in_shape = check_mode_shape(in_shape, "in_shape")
        self.out_shape = check_mode_shape(out_shape, "out_shape")
        if len(self.in_shape) != len(self.out_shape):
            raise ValueError(f"in_shape {self.in_shape} and out_shape {self.out_shape} need the "
                             "same number of modes")
        self.rank = check_positive_int(rank, "rank")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        self.in_features, self.out_features = math.prod(self.in_shape), math.prod(self.out_shape)
        rng = np.random.default_rng(seed)
        dt = check_dtype_arg(dtype)
        d = len(self.in_shape)
        var = tt_target_variance(self.in_features, self.out_features, init)
        std = (var / self.rank) ** (1.0 / (2 * d))
        factors = Module()
        for k, (m, n) in enumerate(zip(self.out_shape, self.in_shape)):
            host = (std * rng.standard_normal((m, n, self.rank))).astype(dt)
            setattr(factors, str(k), Parameter(host if xp is np else xp.asarray(host)))
        self.factors = factors
        bound = 1.0 / math.sqrt(self.in_features)
        self.bias = Parameter(uniform_init((self.out_features,), bound, rng, dt, xp)) if bias else None

    def _factors(self) -> list[Parameter]:
        return [p for _, p in self.factors.named_parameters()]

    def as_tt(self) -> TTMatrix:
        """The weight as a TT-matrix with diagonal cores of rank ``R`` (exact).

        Examples
        --------
        >>> lay = CPLinear((4, 4), (2, 8), rank=3, seed=0)
        >>> W = lay.as_tt()
        >>> W.ranks, W.to_dense().shape
        ((1, 3, 1), (16, 16))
        """
        fs = [p.data for p in self._factors()]
        xp = get_array_module(*fs)
        R, d = self.rank, len(fs)
        cores = []
        for k, F in enumerate(fs):
            m, n, _ = F.shape
            core = xp.zeros((1 if k == 0 else R, m, n, 1 if k == d - 1 else R), F.dtype)
            for r in range(R):
                core[0 if k == 0 else r, :, :, 0 if k == d - 1 else r] = F[:, :, r]
            cores.append(core)
        if d == 1:  # one mode: the rank is summed inside the single core
            cores = [fs[0].sum(axis=2)[None, :, :, None]]
        return TTMatrix(cores)

    def to_dense(self) -> Array:
        """The full ``(out_features, in_features)`` weight (small layers only).

        Examples
        --------
        >>> lay = CPLinear((4, 4), (2, 8), rank=3, seed=0, bias=False)
        >>> x = np.random.default_rng(1).standard_normal((5, 16))
        >>> lay.to_dense().shape, bool(np.allclose(lay(x), x @ lay.to_dense().T))
        ((16, 16), True)
        """
        return self.as_tt().to_dense()

    def forward(self, x: Array) -> Array:
        fs = [p.data for p in self._factors()]
        check_input(x, "x", like=fs[0], features=self.in_features)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        xp = get_array_module(x2)
        Y, tape = cp_matmat_forward(fs, xp.ascontiguousarray(x2.T))
        y = xp.ascontiguousarray(Y.T)
        if self.bias is not None:
            y += self.bias.data
        self.cache = {"tape": tape, "shape": tuple(x.shape)}
        return y.reshape(*lead, self.out_features)

    def backward(self, grad_out: Array) -> Array:
        cache = cached(self.cache, "CPLinear")
        params = self._factors()
        shape = cache["shape"]
        check_grad(grad_out, (*shape[:-1], self.out_features), like=params[0].data)
        g2 = grad_out.reshape(-1, self.out_features)
        dX, dF = cp_matmat_vjp([p.data for p in params], cache["tape"], g2.T)
        for p, g in zip(params, dF):
            p.grad += g
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)
        return get_array_module(dX).ascontiguousarray(dX.T).reshape(shape)

    def __repr__(self) -> str:
        return (f"CPLinear(in_shape={self.in_shape}, out_shape={self.out_shape}, rank={self.rank}, "
                f"bias={self.bias is not None})")

