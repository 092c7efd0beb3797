"""TT-compressed affine layer ``y = x W^T + b`` with ``W`` a TT-matrix (Novikov et al. 2015).

The weight ``W`` (``out_features x in_features``) is the :class:`~tensorpar.TTMatrix`
with cores ``G_k`` of shape ``(r_k, m_k, n_k, r_{k+1})``, row modes
``out_shape = (m_k)`` and column modes ``in_shape = (n_k)``. The forward is
:func:`tensorpar.tt.matrix_grad.ttm_matmat_forward` on ``x`` as it comes (rows,
``batch_first=True``: no transposed copies) unless that layout makes the plan's
stacked steps cost more than the copies save (:meth:`TTLinear.rows_layout`),
then on ``x^T``; the backward is its VJP. This module only owns parameters
and the cache; the cores container and the shape and rank rules shared with
the other TT layers live in :mod:`tensorpar.nn.tt_cores`.

Counts (``B`` rows, ``M = prod m_k``, ``N = prod n_k``):

* parameters: ``sum_k r_k m_k n_k r_{k+1}`` (plus ``M`` for the bias), against ``M N`` dense;
* FLOPs: those of the plan (:func:`tensorpar.tt.matrix_plan.plan_ttm_matmat`);
  the plain left-to-right sweep costs
  ``sum_k 2 B r_k m_k n_k r_{k+1} prod_{j<k} m_j prod_{j>k} n_j`` forward and
  twice that backward; the reconstructed path forms ``W`` (about ``2 M N r``)
  and costs ``2 B M N`` forward and ``4 B M N`` backward like a dense layer;
* memory kept for backward: the input of every step of the sweep and the
  merged cores (``TTMatmatPlan.saved_elements``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from ..tt.matrix import TTMatrix
from ..tt.matrix_grad import ttm_matmat_forward, ttm_matmat_vjp
from ..tt.matrix_plan import Implementation, TTMatmatPlan, plan_ttm_matmat, stacked_gemms
from .checks import cached, check_grad, check_input, check_positive_int
from .linear import uniform_init
from .module import Module, Parameter
from .tt_cores import TTCores, check_mode_shape, resolve_tt_ranks
from .tt_init import TTInit, tt_matrix_init

__all__ = ["ROWS_FLOPS_PER_COPIED", "TTLinear", "tt_factory", "tt_modes"]


#: Flops of stacked small GEMMs worth one element of transposed copy (see
#: :meth:`TTLinear.rows_layout`): fitted between rank 4 (384, rows faster) and
#: rank 8 (768, columns faster) of the 4096 x 4096 layer at batch 256.
ROWS_FLOPS_PER_COPIED = 500


class TTLinear(Module):
    """Affine layer with a TT-matrix weight: ``y = x W^T + b`` over the last axis.

    Parameters
    ----------
    in_shape, out_shape : sequence of int
        Modes ``(n_k)`` and ``(m_k)`` of the same length ``d``:
        ``in_features = prod n_k``, ``out_features = prod m_k``.
    rank : int, sequence of int or float
        TT ranks, see :func:`resolve_tt_ranks` (a float is a fraction of the
        dense parameter count).
    bias : bool
    implementation : {"auto", "factorized", "sweep", "reconstructed"}
        Contraction family (:data:`tensorpar.tt.matrix_plan.Implementation`):
        "factorized" never forms ``W``; "reconstructed" forms ``W`` and runs a
        dense GEMM; "auto" takes the cheaper under the FLOP-and-bandwidth model
        for the batch at hand.
    init : {"glorot", "he", "lecun"}
        Variance of the full matrix at initialisation (:mod:`tensorpar.nn.tt_init`).
    dtype, seed, xp
        As for :class:`tensorpar.nn.Linear`; the bias is PyTorch's uniform
        ``+-1/sqrt(in_features)``.

    Attributes
    ----------
    cores : TTCores
        Parameters ``cores.0, ..., cores.{d-1}``, shapes ``(r_k, m_k, n_k, r_{k+1})``.
    bias : Parameter or None
        Shape ``(out_features,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import TTLinear
    >>> lay = TTLinear((4, 8, 8), (2, 8, 8), rank=4, seed=0)
    >>> [name for name, _ in lay.named_parameters()]
    ['bias', 'cores.0', 'cores.1', 'cores.2']
    >>> x = np.ones((5, 256))
    >>> bool(np.allclose(lay(x), x @ lay.weight().to_dense().T + lay.bias.data))
    True
    >>> lay.backward(np.ones((5, 128))).shape
    (5, 256)
    """

    bias: Parameter | None
    cores: TTCores

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], rank: Any,
                 bias: bool = True, implementation: Implementation = "auto", *,
                 init: TTInit = "glorot", dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np,
                 cores: Sequence[Array] | None = None) -> None:
        super().__init__()
        self.in_shape = check_mode_shape(in_shape, "in_shape")
        self.out_shape = check_mode_shape(out_shape, "out_shape")
        if len(self.in_shape) != len(self.out_shape):
            raise ValueError(f"in_shape {self.in_shape} and out_shape {self.out_shape} need the "
                             "same number of modes")
        if implementation not in ("auto", "factorized", "sweep", "reconstructed"):
            raise ValueError("implementation must be 'auto', 'factorized', 'sweep' or "
                             f"'reconstructed', got {implementation!r}")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        self.implementation: Implementation = implementation
        self.in_features, self.out_features = math.prod(self.in_shape), math.prod(self.out_shape)
        rng = np.random.default_rng(seed)
        if cores is None:
            ranks = resolve_tt_ranks(rank, self.out_shape, self.in_shape)
            cores = tt_matrix_init(self.out_shape, self.in_shape, ranks, init, rng=rng,
                                   dtype=dtype, xp=xp)
        self.cores = TTCores(cores)
        W = self.weight()
        if W.row_shape != self.out_shape or W.col_shape != self.in_shape:
            raise ValueError(f"cores have row modes {W.row_shape} and column modes {W.col_shape}; "
                             f"expected {self.out_shape} and {self.in_shape}")
        bound = 1.0 / math.sqrt(self.in_features)
        c0 = W.cores[0]
        self.bias = Parameter(uniform_init((self.out_features,), bound, rng, c0.dtype,
                                           get_array_module(c0))) if bias else None

    @property
    def ranks(self) -> tuple[int, ...]:
        return self.weight().ranks

    def weight(self) -> TTMatrix:
        """The weight as a :class:`~tensorpar.TTMatrix` viewing the parameter arrays.

        Examples
        --------
        >>> layer = TTLinear((4, 4), (4, 4), rank=2, seed=0)
        >>> layer.weight().ranks, layer.weight().row_shape
        ((1, 2, 1), (4, 4))
        """
        return TTMatrix(self.cores.data())

    @classmethod
    def from_dense(cls, W: Array, in_shape: Sequence[int], out_shape: Sequence[int], *,
                   rank: int | None = None, eps: float | None = None, bias: Array | None = None,
                   implementation: Implementation = "auto") -> TTLinear:
        """Compress a dense ``(out_features, in_features)`` weight by TT-SVD.

        ``eps`` bounds the relative Frobenius error ``||W - W_TT|| <= eps ||W||``
        (the default 1e-12 when only ``rank`` is given); ``rank`` caps every TT
        rank (the error bound then no longer holds). ``bias`` (shape
        ``(out_features,)``) is copied; without it the layer has no bias.

        Examples
        --------
        >>> import numpy as np
        >>> W = np.random.default_rng(0).standard_normal((16, 12))
        >>> lay = TTLinear.from_dense(W, (3, 4), (4, 4), eps=1e-10)
        >>> bool(np.linalg.norm(lay.weight().to_dense() - W) <= 1e-10 * np.linalg.norm(W))
        True
        """
        in_shape, out_shape = check_mode_shape(in_shape, "in_shape"), check_mode_shape(out_shape, "out_shape")
        check_input(W, "W", min_ndim=2)
        if W.ndim != 2 or tuple(W.shape) != (math.prod(out_shape), math.prod(in_shape)):
            raise ValueError(f"W has shape {tuple(W.shape)}; out_shape x in_shape needs "
                             f"{(math.prod(out_shape), math.prod(in_shape))}")
        if rank is None and eps is None:
            raise ValueError("from_dense needs rank=... or eps=...")
        T = TTMatrix.from_dense(W, out_shape, in_shape, eps=1e-12 if eps is None else eps,
                                max_rank=rank)
        lay = cls(in_shape, out_shape, None, bias=bias is not None, implementation=implementation,
                  cores=[get_array_module(c).ascontiguousarray(c) for c in T.cores])
        if bias is not None:
            check_input(bias, "bias", like=W, features=lay.out_features)
            lay.bias.data[...] = bias  # type: ignore[union-attr]
        return lay

    def plan(self, batch: int) -> TTMatmatPlan:
        """The contraction plan (and its FLOP and memory model) for ``batch`` rows.

        Examples
        --------
        >>> TTLinear((4, 4), (4, 4), rank=2, seed=0).plan(8).groups   # one core per step
        ((0, 1), (1, 2))
        """
        return plan_ttm_matmat(self.out_shape, self.in_shape, self.ranks, batch, self.implementation,
                               itemsize=self.cores.data()[0].dtype.itemsize)

    def rows_layout(self, plan: TTMatmatPlan, batch: int) -> bool:
        """Whether the forward runs on ``x`` as it comes (rows) rather than on ``x^T``.

        Rows save four transposed copies of ``batch x features`` (``x``, ``y``,
        ``grad_out``, ``grad_x``: ~3 ms each at 256 x 4096 float64 on a 2-core
        box) but put the batch into the stack of the plan's stacked steps: more,
        smaller GEMMs (:func:`~tensorpar.tt.matrix_plan.stacked_gemms`). Rows are
        taken unless they add more than ``batch`` GEMMs, or their stacked steps
        do more than :data:`ROWS_FLOPS_PER_COPIED` flops per element the copies
        would move (at 256 x 4096 with 8 * 8 * 8 * 8 modes: rank 4 runs faster
        in rows, ranks 8 to 32 in columns, measured).

        Examples
        --------
        >>> r4, r8 = (TTLinear((8, 8, 8, 8), (8, 8, 8, 8), rank=r) for r in (4, 8))
        >>> r4.rows_layout(r4.plan(256), 256), r8.rows_layout(r8.plan(256), 256)
        (True, False)
        """
        args = (plan, self.out_shape, self.in_shape, self.ranks, batch)
        (rows, rows_flops), (cols, _) = stacked_gemms(*args, True), stacked_gemms(*args, False)
        copied = 2 * batch * (self.in_features + self.out_features)
        return rows <= cols + batch and rows_flops <= ROWS_FLOPS_PER_COPIED * copied

    def forward(self, x: Array) -> Array:
        cores = self.cores.data()
        check_input(x, "x", like=cores[0], features=self.in_features)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        B = x2.shape[0]
        plan = self.plan(B)
        first = self.rows_layout(plan, B)
        Y, tape = ttm_matmat_forward(cores, x2 if first else x2.T, plan, keep=self.training,
                                     batch_first=first)
        y = Y if first else get_array_module(Y).ascontiguousarray(Y.T)
        if self.bias is not None:
            y += self.bias.data   # y is a fresh array (the last GEMM's output or its copy)
        saved = [] if tape is None else tape.inputs + [a for steps in tape.merge_steps for a in steps[1:]]
        self.cache = {"tape": tape, "shape": tuple(x.shape), "saved": saved}
        return y.reshape(*lead, self.out_features)

    def backward(self, grad_out: Array) -> Array:
        cache = cached(self.cache, "TTLinear")
        if cache["tape"] is None:
            raise RuntimeError("TTLinear.backward after a forward in eval mode (nothing was kept)")
        shape = cache["shape"]
        check_grad(grad_out, (*shape[:-1], self.out_features), like=self.cores.data()[0])
        g2 = grad_out.reshape(-1, self.out_features)
        first = cache["tape"].batch_first
        dX, dcores = ttm_matmat_vjp(cache["tape"], g2 if first else g2.T)
        for p, g in zip(self.cores.grads(), dcores):
            p += g
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)
        if dX is None:  # unreachable: need_input defaults to True
            raise RuntimeError("the TT-matrix VJP returned no input gradient")
        return (dX if first else get_array_module(dX).ascontiguousarray(dX.T)).reshape(shape)

    def flops(self, batch: int) -> dict[str, int]:
        """Forward and backward FLOPs of this layer's plan and of a dense layer for ``batch`` rows.

        Examples
        --------
        >>> f = TTLinear((8, 8, 8), (8, 8, 8), rank=4, seed=0).flops(64)
        >>> round(f["dense_forward"] / f["forward"], 2)   # dense FLOPs over the plan's
        1.77
        """
        p = self.plan(batch)
        dense = 2 * batch * self.in_features * self.out_features
        return {"forward": p.forward_flops, "backward": p.backward_flops,
                "dense_forward": dense, "dense_backward": 2 * dense}

    def compression(self) -> float:
        """Dense weight parameters over TT weight parameters (biases not counted).

        Examples
        --------
        >>> TTLinear((4, 4), (4, 4), rank=2, seed=0).compression()   # 256 / (32 + 32)
        4.0
        """
        return float(self.in_features * self.out_features / sum(c.size for c in self.cores.data()))

    def __repr__(self) -> str:
        return (f"TTLinear(in_shape={self.in_shape}, out_shape={self.out_shape}, ranks={self.ranks}, "
                f"bias={self.bias is not None}, implementation={self.implementation!r})")


def tt_modes(n: int, d: int) -> tuple[int, ...]:
    """Split ``n`` into ``d`` factors as equal as its prime factors allow (largest first).

    Examples
    --------
    >>> tt_modes(4096, 4), tt_modes(192, 3), tt_modes(7, 2)
    ((8, 8, 8, 8), (8, 6, 4), (7, 1))
    """
    n, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    primes, rest, p = [], n, 2
    while p * p <= rest:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    if rest > 1:
        primes.append(rest)
    modes = [1] * d
    for q in sorted(primes, reverse=True):   # largest prime into the smallest mode so far
        modes[modes.index(min(modes))] *= q
    return tuple(sorted(modes, reverse=True))


def tt_factory(rank: Any, d: int = 3, implementation: Implementation = "auto", *,
               init: TTInit = "glorot", dtype: Any = np.float64,
               seed: int | np.random.Generator | None = None,
               xp: ModuleType = np) -> Callable[[int, int, bool], TTLinear]:
    """A ``linear=`` factory for :class:`~tensorpar.nn.TransformerBlock` and friends.

    Each ``(in_features, out_features, bias)`` becomes a :class:`TTLinear`
    with ``d`` modes per side from :func:`tt_modes` and TT ranks ``rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.nn import TransformerBlock
    >>> block = TransformerBlock(64, 4, 256, linear=tt_factory(4, d=3, seed=0), seed=0)
    >>> block(np.ones((2, 5, 64))).shape
    (2, 5, 64)
    """
    rng = np.random.default_rng(seed)

    def make(in_features: int, out_features: int, bias: bool) -> TTLinear:
        return TTLinear(tt_modes(in_features, d), tt_modes(out_features, d), rank, bias=bias,
                        implementation=implementation, init=init, dtype=dtype, seed=rng, xp=xp)

    return make
