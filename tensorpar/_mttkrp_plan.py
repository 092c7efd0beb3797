"""Blocked MTTKRP: memory layout, the 1-step/2-step plan, the dimension-tree sweep.

Written once against the array module ``xp`` (numpy or cupy) and two kernels
of an engine (:mod:`tensorpar.kernels`): ``khatri_rao_t`` (a transposed partial
Khatri-Rao product) and ``multi_ttv``. The GEMMs go to the BLAS
through ``xp.matmul`` (OpenBLAS via numpy, cuBLAS via cupy).

The tensor is read in its memory layout: its axes are ordered by decreasing
stride, giving a C-contiguous view ``Xc`` (``X`` itself for C order, ``X.T``
for F order) whose memory positions ``j`` hold original modes ``perm[j]``.
Everything below works on memory positions.

Plan of one MTTKRP (Hayashi, Ballard, Jiang, Tobia, PPoPP 2018). With ``n``
the output mode, the other modes split into three groups of consecutive
memory positions: a GEMM group ``G`` at one end of the memory order (the
*head* ``[0, s)`` with ``s <= n``, or the *tail* ``[s, N)`` with ``s > n``),
and the modes ``A`` before ``n`` and ``B`` after ``n`` that are not in ``G``.
Then ``Xc`` is a matrix ``(K, cols)`` (head; C view) or ``(cols, K)`` (tail;
its transpose is an F view), ``K = |G|``, and its columns run over
``(a, i_n, b)`` in C order:

1. GEMM ``T = KR(G)^T @ X_view``, shape ``(R, cols)``;
2. multi-TTV ``M^T[r, i] = sum_{a,b} T[r, (a, i, b)] KR(A)[a, r] KR(B)[b, r]``.

When ``G`` holds every mode but ``n`` this is the 1-step algorithm (``A``
and ``B`` empty); otherwise it is the 2-step one. Steps 1-2 run on column
blocks of ``X_view`` so that ``T`` stays a cache-sized work buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any, cast

import numpy as np

#: Work-buffer size (elements of ``T``) per column block on the host: 4 MB of
#: float64, about the L2 of two cores, so ``T`` is still in cache when the
#: multi-TTV reads it (2^16..2^20 measured; 2^19-2^20 best on 300^3, flat on 60^4).
HOST_BLOCK = 1 << 19

#: Largest slab (bytes) copied at a time when ``X`` is a strided view.
SLAB_BYTES = 32 << 20


@dataclass(frozen=True)
class Layout:
    """``X`` seen as the C-contiguous ``Xc = X.transpose(perm)``."""

    Xc: Any
    perm: tuple[int, ...]


def contiguous_layout(X: Any) -> Layout | None:
    """The C-contiguous axis order of ``X``, or None for a strided view (no copy)."""
    N = X.ndim
    if X.flags.c_contiguous:
        return Layout(X, tuple(range(N)))
    if X.flags.f_contiguous:
        return Layout(X.T, tuple(range(N - 1, -1, -1)))
    order = tuple(sorted(range(N), key=lambda k: (-abs(X.strides[k]), k)))
    Xc = X.transpose(order)
    return Layout(Xc, order) if Xc.flags.c_contiguous else None


@dataclass(frozen=True)
class Plan:
    """GEMM group ``[0, split)`` (head) or ``[split, N)`` (tail) for output position ``n``."""

    dims: tuple[int, ...]
    n: int
    head: bool
    split: int

    @property
    def gemm(self) -> range:
        return range(0, self.split) if self.head else range(self.split, len(self.dims))

    @property
    def a_modes(self) -> range:
        return range(self.split, self.n) if self.head else range(0, self.n)

    @property
    def b_modes(self) -> range:
        return range(self.n + 1, len(self.dims) if self.head else self.split)

    @property
    def K(self) -> int:
        return prod(self.dims[k] for k in self.gemm)

    @property
    def one_step(self) -> bool:
        return len(self.gemm) == len(self.dims) - 1


def choose_plan(dims: Sequence[int], n: int) -> Plan:
    """Pick the GEMM group for output memory position ``n``.

    Rule: among the head groups ``[0, s)``, ``1 <= s <= n``, and the tail
    groups ``[s, N)``, ``n < s <= N - 1``, take the one whose size ``K``
    maximizes ``min(K, N_total / K)`` -- the GEMM ``(R, K) @ (K, cols)`` runs
    best when neither its inner dimension nor its column count is small, and
    the Khatri-Rao products and multi-TTV stay small. Ties go to a head group
    (the C view streams ``X`` in its natural orientation), then to the
    smaller ``K``. The 1-step algorithm is the case where the chosen group
    holds every mode but ``n``.
    """
    dims = tuple(int(d) for d in dims)
    N, total = len(dims), prod(dims)
    best, best_key = None, None
    for head, splits in ((True, range(1, n + 1)), (False, range(n + 1, N))):
        for s in splits:
            plan = Plan(dims, n, head, s)
            K = plan.K
            key = (min(K, total // K), head, -K)
            if best_key is None or key > best_key:
                best, best_key = plan, key
    assert best is not None  # N >= 2 always leaves a head or a tail group
    return best


def _gemm_view(Xc: Any, head: bool, K: int) -> Any:
    """``Xc`` as the GEMM operand ``(K, cols)``: C view (head) or F view (tail)."""
    cols = Xc.size // K
    return Xc.reshape(K, cols) if head else Xc.reshape(cols, K).T


class Engine:
    """The array module and kernels one engine runs the blocked MTTKRP with."""

    def __init__(self, xp: Any, kr: Callable[..., Any], ttv: Callable[..., Any],
                 block: int | None) -> None:
        self.xp, self.kr, self.ttv, self.block = xp, kr, ttv, block

    def run(self, Xc: Any, fmem: Sequence[Any], plan: Plan, rank: int) -> Any:
        """Transposed MTTKRP ``M^T`` (float64, ``(R, I_n)``) of ``Xc`` by ``plan``."""
        xp, d, R = self.xp, plan.dims, rank
        KT = self.kr([fmem[k] for k in plan.gemm], R, Xc.dtype)
        KA = self.kr([fmem[k] for k in plan.a_modes], R, Xc.dtype)
        KB = self.kr([fmem[k] for k in plan.b_modes], R, Xc.dtype)
        A, I, B = KA.shape[1], d[plan.n], KB.shape[1]
        X2 = _gemm_view(Xc, plan.head, KT.shape[1])
        MT = xp.zeros((R, I), dtype=np.float64)
        slab = I * B
        if self.block is None or slab * R <= self.block:
            na = A if self.block is None else max(1, self.block // (slab * R))
            ni = I
        else:  # one a-slab exceeds the block: split it along i
            na, ni = 1, max(1, self.block // (B * R))
        buf = xp.empty(R * min(X2.shape[1], na * ni * B), dtype=Xc.dtype)
        for a0 in range(0, A, na):
            a1 = min(A, a0 + na)
            for i0 in range(0, I, ni):
                i1 = min(I, i0 + ni)
                c0, c1 = ((a0 * slab, a1 * slab) if ni == I
                          else ((a0 * I + i0) * B, (a0 * I + i1) * B))
                T = buf[:R * (c1 - c0)].reshape(R, c1 - c0)
                xp.matmul(KT, X2[:, c0:c1], out=T)
                self.ttv(T, KA, KB, a0, i0, i1 - i0, MT)
        return MT

    def partial_mttkrp(self, Y: Any, dims: Sequence[int], fmem: Sequence[Any], p: int,
                       rank: int) -> Any:
        """``M^T`` of position ``p`` from a partial ``Y`` of shape ``(R, prod dims)``."""
        KA = self.kr([fmem[k] for k in range(p)], rank, Y.dtype)
        KB = self.kr([fmem[k] for k in range(p + 1, len(dims))], rank, Y.dtype)
        MT = self.xp.zeros((rank, dims[p]), dtype=np.float64)
        self.ttv(Y, KA, KB, 0, 0, dims[p], MT)
        return MT

    def finish(self, MT: Any, dtype: Any, out: Any = None) -> Any:
        """``M = MT^T`` in ``dtype``, written to ``out`` when given."""
        if out is None:
            return self.xp.ascontiguousarray(MT.T, dtype=dtype)
        out[...] = MT.T
        return out


def mttkrp_layout(eng: Engine, layout: Layout, factors: Sequence[Any], mode: int, rank: int,
                  dtype: Any, out: Any = None) -> Any:
    """One MTTKRP of a contiguous tensor, by the plan of :func:`choose_plan`."""
    perm = layout.perm
    fmem = [factors[k] for k in perm]
    n = perm.index(mode)
    MT = eng.run(layout.Xc, fmem, choose_plan(layout.Xc.shape, n), rank)
    return eng.finish(MT, dtype, out)


def mttkrp_strided(eng: Engine, X: Any, factors: Sequence[Any], mode: int, rank: int,
                   dtype: Any, out: Any = None) -> Any:
    """MTTKRP of a strided view: slabs along its outermost axis, each copied once.

    The slab copies are at most :data:`SLAB_BYTES` (or one slice of the
    outermost axis when that is larger); the MTTKRP is linear in ``X``, so the
    slabs' results add up (or fill the output rows when the slab axis is
    ``mode``).
    """
    xp = eng.xp
    k = max((a for a in range(X.ndim) if X.shape[a] > 1),
            key=lambda a: abs(X.strides[a]), default=0)
    per = max(1, X.nbytes // max(1, X.shape[k]))
    step = max(1, SLAB_BYTES // per)
    fortran = abs(X.strides[0]) < abs(X.strides[-1])
    MT = xp.zeros((rank, X.shape[mode]), dtype=np.float64)
    for s0 in range(0, X.shape[k], step):
        sl = slice(s0, min(X.shape[k], s0 + step))
        idx = tuple(sl if a == k else slice(None) for a in range(X.ndim))
        slab = xp.asfortranarray(X[idx]) if fortran else xp.ascontiguousarray(X[idx])
        part = [f[sl] if (a == k and a != mode) else f for a, f in enumerate(factors)]
        # a fresh C or F copy always has a contiguous layout
        layout = cast(Layout, contiguous_layout(slab))
        perm = layout.perm
        sub = eng.run(layout.Xc, [part[j] for j in perm],
                      choose_plan(layout.Xc.shape, perm.index(mode)), rank)
        if k == mode:
            MT[:, sl] = sub
        else:
            MT += sub
    return eng.finish(MT, dtype, out)


def _tree_split(layout: Layout) -> tuple[int, bool] | None:
    """Split ``h`` of the modes ``{0..h-1} | {h..N-1}`` for the dimension tree.

    The first half must sit at the head or the tail of the memory order (true
    for C and F order). Among such ``h``, the one maximizing ``min(|first|,
    |second|)``; ties go to the smaller inner dimension of the head GEMM.
    Returns ``(h, first_is_head)`` or None when no split qualifies.
    """
    perm, dims = layout.perm, layout.Xc.shape
    N = len(perm)
    best, best_key = None, None
    for h in range(1, N):
        first = set(range(h))
        if set(perm[:h]) == first:
            is_head = True
        elif set(perm[N - h:]) == first:
            is_head = False
        else:
            continue
        Q = prod(dims[:h]) if is_head else prod(dims[N - h:])
        P = prod(dims) // Q
        key = (min(Q, P), -(Q if is_head else P))
        if best_key is None or key > best_key:
            best, best_key = (h, is_head), key
    return best


def sweep_tree(eng: Engine, layout: Layout, factors: list[Any],
               update: Callable[[int, Any], Any], rank: int, dtype: Any,
               check: Callable[[int, Any], Any]) -> bool:
    """All-modes MTTKRP with a two-level dimension tree; False if it does not apply.

    With the modes split into a first half ``{0..h-1}`` and a second half:
    ``Y = X x KR(second half)`` (one pass over ``X``) gives every first-half
    MTTKRP by a multi-TTV on the small partial ``Y``; then ``Z = X x
    KR(first half, updated)`` (a second pass) gives the second half. A half
    of one mode is its MTTKRP itself and runs by the single-mode plan.
    ``check(n, A)`` validates what ``update`` returned.
    """
    split = _tree_split(layout)
    if split is None:
        return False
    h, first_is_head = split
    Xc, perm, dims = layout.Xc, layout.perm, layout.Xc.shape
    N = len(perm)
    Q = prod(dims[:h]) if first_is_head else prod(dims[N - h:])
    if rank * max(Q, Xc.size // max(Q, 1)) > max(Xc.size, 1 << 16):
        return False  # the partials would outgrow the tensor: N separate passes instead
    first = list(range(h)) if first_is_head else list(range(N - h, N))
    second = [j for j in range(N) if j not in first]
    for half, other, other_head in ((first, second, not first_is_head),
                                    (second, first, first_is_head)):
        fmem = [factors[k] for k in perm]
        if len(half) == 1:
            n = half[0]
            MT = eng.run(Xc, fmem, choose_plan(dims, n), rank)
            factors[perm[n]] = check(perm[n], update(perm[n], eng.finish(MT, dtype)))
            continue
        KT = eng.kr([fmem[j] for j in other], rank, Xc.dtype)
        Y = eng.xp.matmul(KT, _gemm_view(Xc, other_head, KT.shape[1]))
        hdims = [dims[j] for j in half]
        for mode in sorted(perm[j] for j in half):
            fmem = [factors[perm[j]] for j in half]
            p = [perm[j] for j in half].index(mode)
            MT = eng.partial_mttkrp(Y, hdims, fmem, p, rank)
            factors[mode] = check(mode, update(mode, eng.finish(MT, dtype)))
        del Y
    return True
