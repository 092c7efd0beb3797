"""TT-cross: a tensor train from a black-box function of multi-indices.

Alternating one-site cross approximation with maxvol pivots (Oseledets and
Tyrtyshnikov, "TT-cross approximation for multidimensional arrays", Linear
Algebra Appl. 432, 2010) and rank adaptation by truncated SVDs of the fibre
matrices, in the spirit of the DMRG/ALS-cross of Savostyanov and Oseledets
(2011).

**Algorithm.** Bond ``k`` (between modes ``k-1`` and ``k``) carries a set
``I_k`` of left multi-indices (over modes ``0..k-1``) and a set ``J_k`` of right
ones (over modes ``k..d-1``); ``J_k`` starts as ``init_rank`` random
multi-indices. A left-to-right half-sweep visits the cores in order: it
evaluates the fibres ``Z_k[a, i, b] = f(I_k[a], i, J_{k+1}[b])`` in one batch,
takes the SVD of the ``(|I_k| n_k) x |J_{k+1}|`` matrix of ``Z_k``, keeps the
``rho`` singular vectors ``U`` that the per-bond accuracy
``0.1 eps / sqrt(d - 1)`` needs (:data:`TRUNCATION_FACTOR`), and chooses
``rho`` rows of ``U`` with :func:`~tensorpar.tt.maxvol.maxvol` plus ``s - rho``
spare rows at random. Those rows extend ``I_k`` to ``I_{k+1}``, and the core
is ``U pinv(U[rows])``, the (least-squares) interpolation
``Z_k pinv(Z_k[rows])`` of the skeleton decomposition. The last core is the
fibre tensor itself. A right-to-left half-sweep does the same on the
transposed matrices and renews the ``J_k``. Bond ``k`` never gets more
indices than the smaller side of its unfolding, ``min(n_0...n_{k-1},
n_k...n_{d-1})``.

**Rank adaptation.** ``s = rho + kick`` when ``rho`` is smaller than the number
of columns: the bond keeps ``kick`` spare indices, drawn at random so that the
next half-sweep can see rank that the current pivots cannot (spare rows
chosen by rectangular maxvol only refine the ``rho``-dimensional basis, and
then e.g. ``sqrt(sum x^2)`` passes the stopping test at rank 2). When the
fibre matrix has full column rank the bond grows geometrically,
``s = rho + max(kick, ceil(rho / 2))``. With ``eps=None`` every bond keeps
``rank`` indices (fixed-rank cross).

**Stopping.** After each half-sweep the new train is compared with the
previous one: the run has converged when ``||Y - Y_prev|| <= tol ||Y||`` and no
bond had to grow. The result is then rounded to ``eps`` by
:func:`tensorpar.tt_round`, which removes the ``kick`` indices again.

**Cost.** A half-sweep evaluates ``sum_k r_k n_k r_{k+1}`` entries (fewer with
the cache: a converged half-sweep asks only for known entries) and spends
``O(sum_k n_k r_k r_{k+1}^2)`` flops in SVDs and maxvol, plus
``O(d n r^3)`` for the convergence test. The evaluations happen in ``d``
batches per half-sweep, so a vectorised ``f`` is called ``d`` times.

Scale invariance: the fibre matrices are scaled by a power of two before the
SVD, and the cores other than the last one depend only on singular vectors,
so ``c * f`` gives ``c`` times the train for any representable ``c``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cross_options import CrossOptions, CrossResult, CrossStop, check_values, relative_change
from .eval_cache import EvalCache
from .maxvol import maxvol
from .rounding import tt_round
from .tensor import TTTensor

__all__ = ["CrossOptions", "CrossResult", "CrossStop", "check_values", "cross_sweeps",
           "tt_cross"]

#: Batch evaluator: distinct multi-indices (m, d) -> their m values.
Evaluate = Callable[[np.ndarray], np.ndarray]


def _fiber_indices(left: np.ndarray, n: int, right: np.ndarray) -> np.ndarray:
    """Multi-indices ``(left[a], i, right[b])`` in C order over ``(a, i, b)``, shape (r n c, d)."""
    r, k = left.shape
    c, rest = right.shape
    out = np.empty((r, n, c, k + 1 + rest), dtype=np.int64)
    out[..., :k] = left[:, None, None, :]
    out[..., k] = np.arange(n)[None, :, None]
    out[..., k + 1:] = right[None, None, :, :]
    return out.reshape(-1, k + 1 + rest)


class _Sampler:
    """Counts evaluations, enforces ``max_evals`` and consults the cache."""

    def __init__(self, evaluate: Evaluate, opts: CrossOptions) -> None:
        self.evaluate = evaluate
        self.max_evals = opts.max_evals
        self.cache = EvalCache(opts.shape) if opts.cache else None
        self.n_evals = 0
        self.n_requests = 0

    def _fresh(self, rows: np.ndarray) -> np.ndarray | None:
        if self.max_evals is not None and self.n_evals + len(rows) > self.max_evals:
            return None
        values = self.evaluate(rows)
        self.n_evals += len(rows)
        return values

    def __call__(self, idx: np.ndarray) -> np.ndarray | None:
        """Values at the distinct rows of ``idx`` (fibres: products of distinct index sets)."""
        self.n_requests += len(idx)
        if self.cache is None:
            return self._fresh(idx)
        return self.cache.get(idx, self._fresh, distinct=True)


def _truncation_rank(S: np.ndarray, eps: float) -> int:
    tail2 = np.cumsum((S ** 2)[::-1])[::-1]  # tail2[j] = sum_{i >= j} S_i^2
    return max(int(np.count_nonzero(tail2 > eps * eps * tail2[0])), 1)


#: Per-bond truncation relative to ``eps / sqrt(d - 1)``: tighter than the stopping
#: tolerance, so that truncation alone does not keep half-sweeps changing by ``~eps``
#: (measured: 0.1 needs the fewest evaluations for a given final error on 1/(1 + sum x)).
TRUNCATION_FACTOR = 0.1


def _select_rows(M: np.ndarray, opts: CrossOptions, limit: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """Rows of ``M`` for the next index set, the interpolation core, and whether the bond grows.

    ``limit`` is the largest rank the bond can have (the smaller unfolding size).
    """
    n_rows, n_cols = M.shape
    amax = float(np.abs(M).max())
    # a power of two keeps the SVD exact in scale and away from under/overflow
    scaled = np.ldexp(M, -math.frexp(amax)[1]) if amax > 0 else M
    U, S, _ = np.linalg.svd(scaled, full_matrices=False)
    d = len(opts.shape)
    eps_bond = (TRUNCATION_FACTOR * opts.eps / math.sqrt(max(d - 1, 1)) if opts.eps is not None
                else 4 * np.finfo(np.float64).eps)
    rho = _truncation_rank(S, max(eps_bond, np.finfo(np.float64).eps)) if amax > 0 else 1
    cap = min(opts.rank if opts.rank is not None else n_rows, n_rows, limit)
    rho = min(rho, cap)
    if opts.eps is None:
        s = cap
    elif rho == n_cols:
        s = min(rho + max(opts.kick, -(-rho // 2)), cap)
    else:
        s = min(rho + opts.kick, cap)
    grows = opts.eps is not None and rho == n_cols and s > n_cols
    rows, C = maxvol(U[:, :rho])
    if s > rho:
        # spare rows at random: they probe directions the current pivots cannot see
        # (rows chosen by maxvol_rect only refine the rho-dimensional basis, and then
        # a function such as sqrt(sum x^2) passes the stopping test at rank 2)
        free = np.ones(n_rows, dtype=bool)
        free[rows] = False
        rest = np.flatnonzero(free)  # = setdiff1d(arange(n_rows), rows), without sorting
        spare = rng.choice(rest, s - rho, replace=False)
        rows = np.concatenate([rows, spare])
        # U pinv(U[rows]) = C pinv(C[rows]) with C[rows] = [I; E] (C = U inv(U[maxvol rows])),
        # and pinv([I; E]) = inv(I + E^T E) [I, E^T]: one small solve instead of an SVD
        E = C[spare]
        C = C @ np.linalg.solve(np.eye(rho) + E.T @ E, np.concatenate([np.eye(rho), E.T], axis=1))
    return rows, C, grows


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    """``np.unique(rows, axis=0)`` (sorted distinct rows) by a lexsort, 10x faster."""
    rows = rows[np.lexsort(rows.T[::-1])]
    keep = np.ones(rows.shape[0], dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    return rows[keep]


def _initial_right(rng: np.random.Generator, shape: tuple[int, ...], size: int) -> np.ndarray:
    """``min(size, prod(shape))`` distinct random multi-indices over ``shape``."""
    total = math.prod(shape)
    if total <= max(4 * size, 1 << 16):
        lin = rng.choice(total, size=min(size, total), replace=False)
        return np.stack(np.unravel_index(lin, shape), axis=1).astype(np.int64)
    rows = np.empty((0, len(shape)), dtype=np.int64)
    while rows.shape[0] < size:  # duplicates are rare in a large space: redraw them
        draw = rng.integers(0, shape, size=(size, len(shape)), dtype=np.int64)
        rows = _unique_rows(np.concatenate([rows, draw]))
    return rows[rng.permutation(rows.shape[0])[:size]]


class _State:
    """Index sets of a cross run: ``left[k]`` (r_k, k), ``right[k]`` (r_k', d - k)."""

    def __init__(self, opts: CrossOptions, seed: Any) -> None:
        shape = opts.shape
        d = len(shape)
        rng = np.random.default_rng(seed)
        self.rng = rng
        sizes = [math.prod(shape[:b]) for b in range(d + 1)]  # Python ints: no overflow
        #: largest rank of bond b: the smaller side of the unfolding
        self.limits = [min(sizes[b], sizes[d] // sizes[b]) for b in range(d + 1)]
        self.left: list[np.ndarray] = [np.zeros((1, 0), dtype=np.int64)] * (d + 1)
        self.right: list[np.ndarray] = [np.zeros((1, 0), dtype=np.int64)] * (d + 1)
        for k in range(1, d):
            self.right[k] = _initial_right(rng, shape[k:], opts.init_rank)
        self.reuse: tuple[int, np.ndarray] | None = None


def _half_sweep(sampler: _Sampler, state: _State, opts: CrossOptions,
                forward: bool) -> tuple[list[Any], bool] | None:
    """One pass over the cores; the cores and whether a bond grew, or None when out of budget."""
    shape = opts.shape
    d = len(shape)
    cores: list[Any] = [None] * d
    grew = False
    for k in (range(d) if forward else range(d - 1, -1, -1)):
        left, right, n = state.left[k], state.right[k + 1], shape[k]
        if state.reuse is not None and state.reuse[0] == k:
            Z = state.reuse[1]  # the end core of the previous half-sweep: same index sets
        else:
            values = sampler(_fiber_indices(left, n, right))
            if values is None:
                return None
            Z = values.reshape(left.shape[0], n, right.shape[0])
        if k == (d - 1 if forward else 0):
            cores[k] = Z
            state.reuse = (k, Z)
            break
        r, _, c = Z.shape
        if forward:
            rows, C, grows = _select_rows(Z.reshape(r * n, c), opts, state.limits[k + 1],
                                          state.rng)
            cores[k] = C.reshape(r, n, -1)
            state.left[k + 1] = np.hstack([left[rows // n], (rows % n)[:, None]])
        else:
            rows, C, grows = _select_rows(Z.reshape(r, n * c).T, opts, state.limits[k],
                                          state.rng)
            cores[k] = C.T.reshape(-1, n, c)
            state.right[k] = np.hstack([(rows // c)[:, None], right[rows % c]])
        grew |= grows
    return cores, grew


def _normalized(cores: list[Any], k: int) -> tuple[TTTensor, int]:
    """The train with core ``k`` divided by ``2**e`` (``max|core| < 1``), and ``e``."""
    amax = float(np.abs(cores[k]).max())
    if amax == 0:
        return TTTensor(cores), 0
    e = math.frexp(amax)[1]
    cores = list(cores)
    cores[k] = np.ldexp(cores[k], -e)
    return TTTensor(cores), e


def _times_pow2(tt: TTTensor, e: int) -> TTTensor:
    return TTTensor([np.ldexp(tt.cores[0], e)] + tt.cores[1:]) if e else tt


def _spread_pow2(tt: TTTensor, e: int) -> TTTensor:
    """``tt * 2**e`` with the exponent spread evenly over the cores (no core overflows)."""
    q, extra = divmod(e, tt.ndim)
    return TTTensor([np.ldexp(c, q + (1 if k < extra else 0)) for k, c in enumerate(tt.cores)])


def cross_sweeps(evaluate: Evaluate, opts: CrossOptions, seed: Any = None,
                 decide: Callable[[bool], bool] | None = None) -> CrossResult:
    """Run the cross iteration on a batch evaluator (the engine of :func:`tt_cross`).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(rows)`` returns the float64 values (shape ``(m,)``) at the
        distinct multi-indices ``rows`` (shape ``(m, d)``). The distributed
        version passes one that evaluates a share of the rows per process and
        gathers the values.
    opts : CrossOptions
    seed : int or numpy.random.Generator, optional
        Draws the initial right index sets.
    decide : callable, optional
        ``decide(flag)`` turns a local stop decision into a collective one
        (the distributed version passes an MPI "any").

    Returns
    -------
    CrossResult

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.cross import CrossOptions, cross_sweeps
    >>> opts = CrossOptions.from_args((5, 6, 7), eps=1e-12, rank=None, max_evals=None,
    ...                               max_sweeps=10, init_rank=None, kick=1, tol=None,
    ...                               cache=True)
    >>> res = cross_sweeps(lambda idx: (idx + 1.0).prod(axis=1), opts, seed=0)
    >>> res.tt.ranks, res.stop
    ((1, 1, 1, 1), 'converged')
    """
    sampler = _Sampler(evaluate, opts)
    state = _State(opts, seed)
    tt: TTTensor | None = None  # the last train with its end core scaled to [0.5, 1) ...
    exp = 0                     # ... times 2**exp
    change, n_sweeps = math.inf, 0
    stop: CrossStop = "max_sweeps"
    while n_sweeps < opts.max_sweeps:
        forward = n_sweeps % 2 == 0
        out = _half_sweep(sampler, state, opts, forward)
        if out is None:
            stop = "max_evals"
            break
        # the scale of f sits in the end core: factor it out exactly, so that the
        # comparison and the rounding below never see extreme values
        cur, cur_exp = _normalized(out[0], len(opts.shape) - 1 if forward else 0)
        n_sweeps += 1
        if tt is not None:
            change = relative_change(cur, _times_pow2(tt, exp - cur_exp))
        tt, exp = cur, cur_exp
        done = change <= opts.tol and not out[1]
        if decide is not None:
            done = decide(done)
        if done:
            stop = "converged"
            break
    if tt is None:
        raise ValueError(f"max_evals = {opts.max_evals} is too small for one half-sweep "
                         f"(it needs about {opts.init_rank ** 2 * sum(opts.shape)} evaluations)")
    if stop == "converged" and opts.eps is not None and len(opts.shape) > 1:
        tt = tt_round(tt, eps=opts.eps, max_rank=opts.rank)
    return CrossResult(_spread_pow2(tt, exp), sampler.n_evals, n_sweeps, stop == "converged",
                       stop, sampler.n_requests, change)


def tt_cross(f: Callable[[np.ndarray], Any], shape: Sequence[int], *, eps: float | None = None,
             rank: int | None = None, max_evals: int | None = None, max_sweeps: int = 40,
             init_rank: int | None = None, kick: int = 1, tol: float | None = None,
             cache: bool = True, seed: Any = None) -> CrossResult:
    """Tensor train of a black-box function of multi-indices by alternating maxvol cross.

    Parameters
    ----------
    f : callable
        ``f(idx)`` with ``idx`` an int64 array of shape ``(m, d)`` of
        multi-indices (``0 <= idx[:, k] < shape[k]``) returns ``m`` real values
        (a numpy array of shape ``(m,)``). It is called ``d`` times per
        half-sweep, on batches of ``O(n r^2)`` indices.
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    eps : float, optional
        Relative accuracy: rank-adaptive cross, stopped when a half-sweep
        changes the train by less than ``tol`` (default ``eps``) relative to
        its norm, then rounded to ``eps``.
    rank : int, optional
        Largest TT rank; with ``eps=None`` every rank is exactly ``rank``
        (capped by the unfolding sizes). Give ``eps``, ``rank`` or both.
    max_evals : int, optional
        Budget of evaluations of ``f``: a batch that would exceed it is not
        evaluated, and the train of the last completed half-sweep is returned
        (``stop="max_evals"``); ``n_evals <= max_evals`` always.
    max_sweeps : int
        Most half-sweeps (default 40).
    init_rank : int, optional
        Size of the random initial right index sets (default 2, or ``rank``
        in fixed-rank mode).
    kick : int
        Spare indices kept on every bond to detect missing rank (default 1).
    tol : float, optional
        Stopping threshold on the relative change (default ``eps``, or 1e-12
        in fixed-rank mode).
    cache : bool
        Remember every value so that no multi-index is evaluated twice
        (default True; see :class:`~tensorpar.tt.eval_cache.EvalCache`:
        ``O(m log N)`` per batch of ``m`` among ``N`` stored values, ~0.2 us
        per index at d = 20, and 24 + d bytes per value plus a 4 MiB filter;
        turn it off for functions cheaper than that: e.g. ``sin(sum x)``
        with d = 20, n = 32 costs ~0.05 us per index, and a half-sweep
        repeats only a few percent of its entries until it converges).
    seed : int or numpy.random.Generator, optional
        Initial index sets; equal seeds give equal results.

    Returns
    -------
    CrossResult
        ``tt`` and the counts ``n_evals``, ``n_sweeps``, ``converged``,
        ``stop``, ``n_requests`` and ``change``.

    Notes
    -----
    The algorithm and its cost are described in :mod:`tensorpar.tt.cross`.
    With ``eps``, a function of TT ranks ``r`` is recovered in a few
    half-sweeps of ``sum_k (r + 1)^2 n_k`` evaluations each; the approximation
    is exact (to rounding) when the ranks suffice, since the cross
    interpolates ``f`` on its fibres.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.cross import tt_cross
    >>> x = np.linspace(0.0, 1.0, 20)
    >>> res = tt_cross(lambda idx: np.sin(x[idx].sum(axis=1)), (20,) * 6, eps=1e-10, seed=0)
    >>> res.tt.ranks, res.converged
    ((1, 2, 2, 2, 2, 2, 1), True)
    >>> idx = np.array([[1, 2, 3, 4, 5, 6]])
    >>> bool(abs(res.tt.entries(idx)[0] - np.sin(x[idx].sum())) < 1e-12)
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    opts = CrossOptions.from_args(shape, eps, rank, max_evals, max_sweeps, init_rank, kick,
                                  tol, cache)
    return cross_sweeps(lambda rows: check_values(f(rows), len(rows)), opts, seed)
