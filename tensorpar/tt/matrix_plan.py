"""Cost model and contraction plan of a TT-matrix times a dense batch.

The product ``Y = A X`` of a TT-matrix ``A`` (cores ``(r_k, m_k, n_k, r_{k+1})``)
and a batch ``X`` of ``B`` columns is a sweep over the cores. A plan fixes

* the **groups**: consecutive cores merged into one "super-core" before the
  sweep (merging cores ``i..j-1`` gives a core
  ``(r_i, m_i...m_{j-1}, n_i...n_{j-1}, r_j)``); one group per core is the
  plain sweep, one group of all cores is the reconstructed dense matrix;
* the **direction**: ``"left"`` contracts group 0 first, ``"right"`` the last.

Step ``g`` of a left sweep is one stacked GEMM ``(P x K) @ (L, K, R)`` with
``K = r n``, ``P = m q`` (of the group's super-core), ``L = prod m`` of the
groups before and ``R = B prod n`` of the groups after (a right sweep swaps
the roles of ``m`` and ``n``)::

    forward flops   2 L R P K            (the issue's left-to-right model for singletons)
    backward flops  4 L R P K            (core gradient and input gradient)
    memory moved    L K R + L P R        elements read and written per GEMM

The model charges ``flops + balance * bytes`` (``balance`` flops per byte,
8 by default: small-``K`` GEMMs here are bandwidth bound, and the merged
groups win by writing fewer, larger intermediates), plus the cost of
merging the cores of each group and of its backward. A short dynamic
program over the split points finds the cheapest plan in ``O(d^2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias

from .._typing import Direction

__all__ = ["Implementation", "TTMatmatPlan", "plan_ttm_matmat", "stacked_gemms", "sweep_flops"]

#: Which plans a TT-matrix product may use: ``"factorized"`` (any grouping
#: except the full merge), ``"sweep"`` (one core per step, no merging),
#: ``"reconstructed"`` (the dense matrix), ``"auto"`` (the cheapest of all).
Implementation: TypeAlias = Literal["auto", "factorized", "sweep", "reconstructed"]


@dataclass(frozen=True)
class TTMatmatPlan:
    """How to contract a TT-matrix with a batch, and what it costs.

    Attributes
    ----------
    groups : tuple of (start, stop)
        Consecutive core ranges merged into one step, in core order.
    direction : {"left", "right"}
    forward_flops, backward_flops : int
        Floating-point operations of the sweep (merging included).
    peak_elements : int
        Largest intermediate of the forward sweep (elements).
    saved_elements : int
        Elements the forward keeps for the backward: every step's input and,
        for groups of two or more cores, the running merges
        ``G_i G_{i+1}, ..., G_i ... G_{j-1}``.
    cost : float
        Model cost ``flops + balance * bytes`` of forward plus backward.
    """

    groups: tuple[tuple[int, int], ...]
    direction: Direction
    forward_flops: int
    backward_flops: int
    peak_elements: int
    saved_elements: int
    cost: float

    @property
    def flops(self) -> int:
        """Forward plus backward flops."""
        return self.forward_flops + self.backward_flops


def sweep_flops(row_shape: Sequence[int], col_shape: Sequence[int], ranks: Sequence[int],
                batch: int, direction: Direction = "left") -> int:
    """Forward flops of the plain one-core-per-step sweep.

    ``sum_k 2 B r_k m_k n_k r_{k+1} prod_{j<k} m_j prod_{j>k} n_j`` for
    ``direction="left"`` (``m`` and ``n`` swap roles for ``"right"``).

    Examples
    --------
    >>> s = (8, 8, 8, 8)
    >>> dense = 2 * 256 * 4096 * 4096
    >>> round(dense / sweep_flops(s, s, (1, 4, 4, 4, 1), 256), 1)
    12.8
    """
    d = len(row_shape)
    rows, cols = (row_shape, col_shape) if direction == "left" else (col_shape, row_shape)
    total = 0
    for k in range(d):
        total += (2 * batch * ranks[k] * rows[k] * cols[k] * ranks[k + 1]
                  * math.prod(rows[:k]) * math.prod(cols[k + 1:]))
    return total


def _merge_cost(m: Sequence[int], n: Sequence[int], r: Sequence[int]) -> tuple[int, int]:
    """Flops and elements of merging cores with modes ``m, n`` and ranks ``r`` left to right."""
    flops, elements = 0, 0
    size = r[0] * m[0] * n[0]
    for k in range(1, len(m)):
        flops += 2 * size * r[k] * m[k] * n[k] * r[k + 1]
        size *= m[k] * n[k]
        elements += 2 * size * r[k + 1]  # the tensordot output and its transposed copy
    return flops, elements


def _step(L: int, K: int, P: int, R: int, merge: tuple[int, int], balance: float,
          itemsize: int) -> tuple[int, int, float]:
    fwd = 2 * L * R * P * K + merge[0]
    bwd = 4 * L * R * P * K + 2 * merge[0]
    moved = 3 * L * K * R + 2 * L * P * R + 3 * merge[1]   # forward 2 streams, backward 3
    return fwd, bwd, fwd + bwd + balance * itemsize * moved


@lru_cache(maxsize=256)
def _plan(rows: tuple[int, ...], cols: tuple[int, ...], ranks: tuple[int, ...], batch: int,
          implementation: str, direction: str, balance: float, itemsize: int) -> TTMatmatPlan:
    d = len(rows)
    best: TTMatmatPlan | None = None
    for dirn in (("left", "right") if direction == "auto" else (direction,)):
        # contract in "sweep order": a right sweep costs what a left sweep of the reversed
        # train costs (only the product L R enters), so one dynamic program serves both.
        if dirn == "left":
            out_m, in_n, rk = rows, cols, ranks
        else:
            out_m, in_n, rk = rows[::-1], cols[::-1], ranks[::-1]
        # cheapest[j] = (cost, fwd, bwd, peak, saved, groups) of contracting the first j cores
        cheapest: list[tuple[float, int, int, int, int, tuple[tuple[int, int], ...]] | None]
        cheapest = [(0.0, 0, 0, 0, 0, ())] + [None] * d
        for j in range(1, d + 1):
            for i in range(j):
                prev = cheapest[i]
                if prev is None or (implementation == "sweep" and j - i > 1):
                    continue
                if implementation == "factorized" and d > 1 and (i, j) == (0, d):
                    continue
                if implementation == "reconstructed" and (i, j) != (0, d):
                    continue
                m, n = math.prod(out_m[i:j]), math.prod(in_n[i:j])
                L, R = math.prod(out_m[:i]), batch * math.prod(in_n[j:])
                K, P = rk[i] * n, m * rk[j]
                # cores are always merged left to right, in the original core order
                oi, oj = (i, j) if dirn == "left" else (d - j, d - i)
                merge = _merge_cost(rows[oi:oj], cols[oi:oj], ranks[oi:oj + 1]) if j - i > 1 else (0, 0)
                fwd, bwd, cost = _step(L, K, P, R, merge, balance, itemsize)
                # the running merges G_i G_{i+1} ... are new arrays kept for the backward
                core = sum(ranks[oi] * math.prod(rows[oi:t + 1]) * math.prod(cols[oi:t + 1]) * ranks[t + 1]
                           for t in range(oi + 1, oj))
                cand = (prev[0] + cost, prev[1] + fwd, prev[2] + bwd,
                        max(prev[3], L * P * R, L * K * R), prev[4] + L * K * R + core,
                        prev[5] + ((i, j),))
                old = cheapest[j]
                if old is None or cand[0] < old[0]:
                    cheapest[j] = cand
        got = cheapest[d]
        if got is None:  # unreachable: every implementation admits a plan when d >= 1
            raise RuntimeError(f"no {implementation} plan for {d} cores")
        groups = got[5] if dirn == "left" else tuple((d - j, d - i) for i, j in reversed(got[5]))
        plan = TTMatmatPlan(groups, dirn, got[1], got[2], got[3], got[4], got[0])  # type: ignore[arg-type]
        if best is None or plan.cost < best.cost:
            best = plan
    if best is None:
        raise RuntimeError("no sweep direction was searched")
    return best


def plan_ttm_matmat(row_shape: Sequence[int], col_shape: Sequence[int], ranks: Sequence[int],
                    batch: int, implementation: Implementation = "auto",
                    direction: Direction | Literal["auto"] = "auto", balance: float = 8.0,
                    itemsize: int = 8) -> TTMatmatPlan:
    """Cheapest contraction plan of a TT-matrix times ``batch`` columns under the cost model.

    Parameters
    ----------
    row_shape, col_shape : sequence of int
        ``(m_k)`` and ``(n_k)`` of the TT-matrix.
    ranks : sequence of int
        ``(1, r_1, ..., r_{d-1}, 1)``.
    batch : int
        Number of columns ``B``.
    implementation : {"auto", "factorized", "sweep", "reconstructed"}
        The set of plans searched (see :data:`Implementation`).
    direction : {"auto", "left", "right"}
        Sweep direction; "auto" takes the cheaper under the model.
    balance : float
        Flops charged per byte moved (machine balance); 0 gives a pure FLOP model.
    itemsize : int
        Bytes per element (8 for float64, 4 for float32).

    Returns
    -------
    TTMatmatPlan

    Examples
    --------
    >>> s = (8, 8, 8, 8)
    >>> plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256, "sweep").groups
    ((0, 1), (1, 2), (2, 3), (3, 4))
    >>> plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256).groups
    ((0, 2), (2, 4))
    >>> plan_ttm_matmat(s, s, (1, 32, 32, 32, 1), 256, "reconstructed").groups
    ((0, 4),)
    """
    if implementation not in ("auto", "factorized", "sweep", "reconstructed"):
        raise ValueError("implementation must be 'auto', 'factorized', 'sweep' or 'reconstructed', "
                         f"got {implementation!r}")
    if direction not in ("auto", "left", "right"):
        raise ValueError(f"direction must be 'auto', 'left' or 'right', got {direction!r}")
    rows, cols, rk = (tuple(int(v) for v in s) for s in (row_shape, col_shape, ranks))
    if len(rows) != len(cols) or len(rk) != len(rows) + 1 or not rows:
        raise ValueError(f"row_shape {rows}, col_shape {cols} and ranks {rk} do not fit together")
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not balance >= 0:
        raise ValueError(f"balance must be >= 0, got {balance}")
    return _plan(rows, cols, rk, int(batch), implementation, direction, float(balance), int(itemsize))



def stacked_gemms(plan: TTMatmatPlan, row_shape: Sequence[int], col_shape: Sequence[int],
                  ranks: Sequence[int], batch: int, batch_first: bool) -> tuple[int, int]:
    """Small GEMMs the plan's stacked steps issue for one batch layout, and their flops.

    Step ``g`` multiplies its ``(P, K)`` matrix with an ``(L, K, R)`` stack:
    one GEMM when ``L == 1`` or ``R == 1``, else ``L`` GEMMs of ``K x R``
    (forward, and two more of the same size backward: ``6 L P K R`` flops).
    The batch joins ``L`` when ``batch_first`` (``X`` is ``(B, N)``), else ``R``.

    Returns
    -------
    gemms : int
        ``L`` summed over the stacked steps.
    flops : int
        Forward plus backward flops of those steps.

    Examples
    --------
    >>> s = (8, 8, 8, 8)
    >>> halves = plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256)
    >>> stacked_gemms(halves, s, s, (1, 4, 4, 4, 1), 256, True)
    (256, 1610612736)
    >>> sweep = plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256, "sweep")
    >>> [stacked_gemms(sweep, s, s, (1, 4, 4, 4, 1), 256, b)[0] for b in (True, False)]
    [18688, 584]
    """
    # a left step stacks the row modes done before it over the column modes still to come;
    # a right step the column modes before it over the row modes after it (cf. matrix_grad)
    left = plan.direction == "left"
    before, after = (row_shape, col_shape) if left else (col_shape, row_shape)
    lb, rb = (batch, 1) if batch_first else (1, batch)
    gemms = flops = 0
    for i, j in plan.groups:
        L, R = lb * math.prod(before[:i]), rb * math.prod(after[j:])
        if L > 1 and R > 1:
            m, n = math.prod(row_shape[i:j]), math.prod(col_shape[i:j])
            K, P = (ranks[i] * n, m * ranks[j]) if left else (n * ranks[j], ranks[i] * m)
            gemms += L
            flops += 6 * L * P * K * R
    return gemms, flops
