"""Distributed tensor trains: every core split along its mode index over all ranks.

Layout (Al Daas, Ballard and Benner, SIAM J. Sci. Comput. 2022): core ``k`` of
a TT of shape ``(n_0, ..., n_{d-1})`` and ranks ``(r_0, ..., r_d)`` has global
shape ``(r_k, n_k, r_{k+1})``; rank ``p`` of a communicator of ``P`` ranks
holds the slice ``core[:, lo:hi, :]`` with the contiguous blocks of
:func:`tensorpar.distributed.grid.block_sizes` (sizes differ by at most one).
Every mode must have ``n_k >= P`` so that no rank holds an empty slice; a
smaller mode raises a ValueError on every rank.

Costs and messages (``r`` the TT rank, ``n`` the mode size):

* sums, differences, scaling and Hadamard products act on the local slices
  with the serial per-core functions and send **nothing**;
* :func:`dist_tt_dot` and :func:`dist_tt_norm` contract the local slices
  (:func:`tensorpar.tt.ops.dot_step`) and complete each core with one
  ``Allreduce`` of the ``r_{k+1}(x) x r_{k+1}(y)`` partial contraction:
  ``d`` messages, ``sum_k r_{k+1}(x) r_{k+1}(y)`` words;
* :func:`dist_tt_round` left-orthogonalizes with a TSQR per core
  (:func:`tensorpar.distributed.tsqr.tsqr`), then truncates right to left
  with a second TSQR per core and an SVD of the replicated ``r x r`` factor:
  ``O(d n r^3 / P)`` local flops and, with the default flat TSQR,
  ``2 (d - 1)`` ``Allgatherv`` messages of ``P r^2`` words plus ``O(d P r^3)``
  redundant small flops; with ``tree="binomial"`` ``O(d log2 P)`` messages
  of ``r^2`` words. All ranks compute the small factorizations on identical
  data, so the ranks of the result are the same on every rank. The
  Gram-based and randomized variants of :func:`tensorpar.tt_round` are
  available too (``method=``);
* :func:`dist_ttm_matvec` multiplies by a replicated TT-matrix after one
  ``Allgatherv`` per core of the vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..._backend import Engine, get_array_module
from ..._linalg import ct, matmul, norm, truncated_svd
from ..._validation import (
    SUPPORTED_DTYPES,
    check_eps,
    check_max_rank,
    check_positive_int,
    check_same_shape,
    check_scalar,
)
from ...tt.matrix import TTMatrix, ttm_matvec_core
from ...tt.ops import _position, add_cores, hadamard_core, scaled_chain
from ...tt.orth import absorb_left, absorb_right, apply_log_scale
from ...tt.rounding_gram import _bond_transforms, gram_left, gram_step_right
from ...tt.rounding_rand import sketch_step_right
from ...tt.tensor import TTTensor, random_tt
from ..comm import allgatherv, allreduce, bcast_object, resolve_comm, scatterv
from ..grid import block_bounds, block_sizes
from ..tsqr import orth_left_core, orth_right_rows, rows_to_right_core, tsqr

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["DistTTTensor", "dist_tt_add", "dist_tt_sub", "dist_tt_scale", "dist_tt_hadamard",
           "dist_tt_dot", "dist_tt_norm", "dist_tt_log_norm", "dist_tt_round",
           "dist_tt_orthogonalize", "dist_ttm_matvec"]


def _check_modes(shape: Sequence[int], size: int) -> None:
    small = [(k, n) for k, n in enumerate(shape) if n < size]
    if small:
        k, n = small[0]
        raise ValueError(
            f"shape {tuple(shape)}: mode {k} has size {n} < {size} ranks; DistTTTensor splits "
            "every mode over all ranks and needs n_k >= comm size")


class DistTTTensor:
    """A tensor train whose cores are split along their mode index over ``comm``.

    Parameters
    ----------
    local_cores : sequence of ndarray, core ``k`` of shape (r_k, m_k, r_{k+1})
        This rank's slices, ``m_k = block_sizes(shape[k], P)[rank]``;
        ``r_0 = r_d = 1``.
    shape : sequence of int
        Global mode sizes ``(n_0, ..., n_{d-1})``, the same on every rank, each
        ``>= P``.
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``.

    Notes
    -----
    Construction is collective: the local checks are agreed on with
    :func:`tensorpar.distributed.comm.check_all`, so bad local cores raise on
    every rank. A mode smaller than ``P`` raises before any message.
    Use :meth:`scatter` to distribute a serial :class:`tensorpar.TTTensor`.
    """

    def __init__(self, local_cores: Sequence[Any], shape: Sequence[int],
                 comm: MPI.Comm | None = None) -> None:
        from ..comm import check_all

        comm = resolve_comm(comm)
        shape = tuple(int(n) for n in shape)
        _check_modes(shape, comm.Get_size())
        msg = _local_problem(local_cores, shape, comm)
        check_all(comm, msg is None, msg or "")
        self._set(list(local_cores), shape, comm)

    def _set(self, cores: list[Any], shape: tuple[int, ...], comm: Any) -> None:
        self.comm = comm
        self.shape = shape
        self.local_cores = cores
        self.counts = [block_sizes(n, comm.Get_size()) for n in shape]

    @classmethod
    def _wrap(cls, cores: list[Any], shape: tuple[int, ...], comm: Any) -> DistTTTensor:
        out = cls.__new__(cls)
        out._set(cores, shape, comm)
        return out

    @classmethod
    def scatter(cls, tt: TTTensor | None, comm: MPI.Comm | None = None,
                root: int = 0) -> DistTTTensor:
        """Split the serial ``tt`` (read on ``root`` only) over ``comm``.

        One small metadata broadcast (shape; an error found on ``root``),
        then one ``Scatterv`` per core along the mode axis.
        """
        comm = resolve_comm(comm)
        meta = None
        if comm.Get_rank() == root:
            if not isinstance(tt, TTTensor):
                meta = (None, f"tt must be a TTTensor on the root rank, got {type(tt).__name__}")
            else:
                meta = (tt.shape, None)
        shape, err = bcast_object(comm, meta, root=root)
        if err is not None:
            raise TypeError(err)
        _check_modes(shape, comm.Get_size())
        counts = [block_sizes(n, comm.Get_size()) for n in shape]
        cores = [scatterv(comm, tt.cores[k] if comm.Get_rank() == root else None, counts[k],
                          root=root, axis=1) for k in range(len(shape))]
        return cls._wrap(cores, tuple(shape), comm)

    @classmethod
    def from_core_function(cls, f: Callable[[int, np.ndarray], Any], shape: Sequence[int],
                           comm: MPI.Comm | None = None) -> DistTTTensor:
        """Build each rank's slices from a function of global mode indices; no array messages.

        Parameters
        ----------
        f : callable
            ``f(k, idx)`` returns core ``k`` restricted to the global mode
            indices ``idx`` (an int array of this rank's block), shape
            ``(r_k, len(idx), r_{k+1})``; it must give the same ranks on every rank.
        shape : sequence of int
            Global mode sizes, each ``>= P``.

        Notes
        -----
        Collective (the cores are checked as in the constructor).
        """
        comm = resolve_comm(comm)
        shape = tuple(int(n) for n in shape)
        _check_modes(shape, comm.Get_size())
        cores = []
        for k, n in enumerate(shape):
            lo, hi = block_bounds(n, comm.Get_size(), comm.Get_rank())
            cores.append(f(k, np.arange(lo, hi)))
        return cls(cores, shape, comm)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def ranks(self) -> tuple[int, ...]:
        """``(r_0, ..., r_d)``, the same on every rank."""
        return tuple(c.shape[0] for c in self.local_cores) + (1,)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[c.dtype for c in self.local_cores])

    def __repr__(self) -> str:
        return (f"DistTTTensor(shape={self.shape}, ranks={self.ranks}, "
                f"ranks_of_comm={self.comm.Get_size()})")

    def gather(self) -> TTTensor:
        """The serial TT on every rank (one ``Allgatherv`` per core)."""
        return TTTensor([allgatherv(self.comm, c, counts=self.counts[k], axis=1)
                         for k, c in enumerate(self.local_cores)])

    def __add__(self, other: DistTTTensor) -> DistTTTensor:
        return dist_tt_add(self, other)

    def __sub__(self, other: DistTTTensor) -> DistTTTensor:
        return dist_tt_sub(self, other)

    def __mul__(self, alpha: Any) -> DistTTTensor:
        return dist_tt_scale(self, alpha)

    __rmul__ = __mul__

    def hadamard(self, other: DistTTTensor, engine: Engine = "auto") -> DistTTTensor:
        return dist_tt_hadamard(self, other, engine)

    def dot(self, other: DistTTTensor) -> float | complex:
        return dist_tt_dot(self, other)

    def norm(self) -> float:
        return dist_tt_norm(self)

    def log_norm(self) -> float:
        return dist_tt_log_norm(self)

    def round(self, eps: float = 1e-12, max_rank: int | None = None,
              method: Literal["qr", "gram", "randomized"] = "qr", *, oversample: int = 10,
              seed: Any = None, tree: Literal["flat", "binomial"] = "flat") -> DistTTTensor:
        return dist_tt_round(self, eps, max_rank, method, oversample=oversample, seed=seed,
                             tree=tree)

    def orthogonalize(self, direction: Literal["left", "right"] = "left", *,
                      tree: Literal["flat", "binomial"] = "flat") -> DistTTTensor:
        return dist_tt_orthogonalize(self, direction, tree=tree)


def _local_problem(cores: Any, shape: tuple[int, ...], comm: Any) -> str | None:
    """Why this rank's cores do not fit ``shape`` (None when they do)."""
    if not isinstance(cores, (list, tuple)) or len(cores) != len(shape) or not shape:
        return f"local_cores must be a list of {len(shape)} cores, one per mode"
    left = 1
    for k, c in enumerate(cores):
        m = block_sizes(shape[k], comm.Get_size())[comm.Get_rank()]
        if getattr(c, "ndim", None) != 3:
            return f"local_cores[{k}] must be a 3-d array (r_k, m_k, r_k+1)"
        if c.shape[0] != left or c.shape[1] != m:
            return (f"local_cores[{k}] has shape {tuple(c.shape)}; expected ({left}, {m}, r) "
                    f"on rank {comm.Get_rank()}")
        if np.dtype(c.dtype) not in SUPPORTED_DTYPES:
            return f"local_cores[{k}] has dtype {c.dtype}; expected float32/64 or complex64/128"
        if not bool(get_array_module(c).isfinite(c).all()):
            return f"local_cores[{k}] has non-finite entries on rank {comm.Get_rank()}"
        left = c.shape[2]
    if left != 1:
        return f"the last local core has right rank {left}; expected 1"
    return None


def _check_pair(x: Any, y: Any) -> None:
    for v, name in ((x, "x"), (y, "y")):
        if not isinstance(v, DistTTTensor):
            raise TypeError(f"{name} must be a DistTTTensor, got {type(v).__name__}")
    check_same_shape([x.shape, y.shape], ["x", "y"])
    if x.comm is not y.comm and x.comm != y.comm:
        raise ValueError("x and y live on different communicators")


def _check_one(x: Any) -> None:
    if not isinstance(x, DistTTTensor):
        raise TypeError(f"x must be a DistTTTensor, got {type(x).__name__}")


# -- no communication ------------------------------------------------------
def _sum(x: DistTTTensor, y: DistTTTensor, weights: list[float]) -> DistTTTensor:
    d = x.ndim
    cores = [add_cores([a, b], _position(k, d), weights)
             for k, (a, b) in enumerate(zip(x.local_cores, y.local_cores))]
    return DistTTTensor._wrap(cores, x.shape, x.comm)


def dist_tt_add(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x + y``: ranks add; local block-diagonal cores, no messages."""
    _check_pair(x, y)
    return _sum(x, y, [1.0, 1.0])


def dist_tt_sub(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x - y``: ranks add; local block-diagonal cores, no messages."""
    _check_pair(x, y)
    return _sum(x, y, [1.0, -1.0])


def dist_tt_scale(x: DistTTTensor, alpha: Any) -> DistTTTensor:
    """``alpha * x``: every rank scales its slice of the first core; no messages."""
    _check_one(x)
    alpha = check_scalar(alpha)
    return DistTTTensor._wrap([x.local_cores[0] * alpha] + list(x.local_cores[1:]),
                              x.shape, x.comm)


def dist_tt_hadamard(x: DistTTTensor, y: DistTTTensor,
                     engine: Engine = "auto") -> DistTTTensor:
    """Entrywise product: ranks multiply; local :func:`tensorpar.tt.ops.hadamard_core`, no messages."""
    _check_pair(x, y)
    cores = [hadamard_core(a, b, engine) for a, b in zip(x.local_cores, y.local_cores)]
    return DistTTTensor._wrap(cores, x.shape, x.comm)


# -- one allreduce per core ------------------------------------------------
def _scaled_chain(x: DistTTTensor, y: DistTTTensor) -> tuple[Any, float]:
    # partial sums over the local slice of the mode index add up: one allreduce per core
    return scaled_chain(x.local_cores, y.local_cores, reduce=lambda W: allreduce(x.comm, W))


def dist_tt_dot(x: DistTTTensor, y: DistTTTensor) -> float | complex:
    """``<x, y> = sum conj(x) y`` on every rank.

    ``d`` ``Allreduce`` calls of ``r_{k+1}(x) r_{k+1}(y)`` entries each; the
    running contraction is rescaled after each core (as in
    :func:`tensorpar.tt_dot`), so only a result outside the floating-point
    range overflows.
    """
    _check_pair(x, y)
    value, log_scale = _scaled_chain(x, y)
    if value == 0 or not np.isfinite(value):
        return value
    return value * math.exp(log_scale) if log_scale <= 709.0 else value * math.inf


def dist_tt_log_norm(x: DistTTTensor) -> float:
    """``log ||x||_F`` on every rank; finite for any ``d`` (``-inf`` for zero).

    Same messages as :func:`dist_tt_dot` of ``x`` with itself.
    """
    _check_one(x)
    value, log_scale = _scaled_chain(x, x)
    value = abs(value.real if isinstance(value, complex) else value)
    return -math.inf if value == 0 else 0.5 * (log_scale + math.log(value))


def dist_tt_norm(x: DistTTTensor) -> float:
    """``||x||_F`` on every rank (see :func:`dist_tt_log_norm`)."""
    t = dist_tt_log_norm(x)
    return math.inf if t > 709.78 else math.exp(t)


# -- orthogonalization and rounding -----------------------------------------
Tree = Literal["flat", "binomial"]


def _check_tree(tree: Any) -> Tree:
    if tree not in ("flat", "binomial"):
        raise ValueError(f"tree must be 'flat' or 'binomial', got {tree!r}")
    return tree


def _zero(x: DistTTTensor) -> DistTTTensor:
    xp = get_array_module(*x.local_cores)
    cores = [xp.zeros((1, c.shape[1], 1), dtype=x.dtype) for c in x.local_cores]
    return DistTTTensor._wrap(cores, x.shape, x.comm)


def _left_sweep(x: DistTTTensor, tree: Tree = "flat") -> tuple[list[Any], Any, float]:
    """Left-orthonormalize cores 0..d-2 by TSQR; returns them, the last core and a log scale."""
    cores = list(x.local_cores)
    carry, log_norm = None, 0.0
    for k in range(x.ndim - 1):
        a = cores[k] if carry is None else absorb_left(carry, cores[k])
        cores[k], R = orth_left_core(x.comm, a, x.counts[k], tree)
        s = norm(R)
        if s == 0.0:
            return cores, None, -math.inf
        carry = R / s  # keeps the carried factor in range for any d
        log_norm += math.log(s)
    return cores, absorb_left(carry, cores[-1]), log_norm


def _right_sweep(x: DistTTTensor, tree: Tree = "flat") -> tuple[list[Any], Any, float]:
    """Mirror of :func:`_left_sweep`: right-orthonormalize cores d-1..1."""
    cores = list(x.local_cores)
    carry, log_norm = None, 0.0
    for k in range(x.ndim - 1, 0, -1):
        a = cores[k] if carry is None else absorb_right(cores[k], carry)
        r, m, q = a.shape
        Q, R = orth_right_rows(x.comm, a, x.counts[k], tree)
        cores[k] = rows_to_right_core(Q, m, q)
        s = norm(R)
        if s == 0.0:
            return cores, None, -math.inf
        carry = ct(R) / s
        log_norm += math.log(s)
    return cores, absorb_right(cores[0], carry), log_norm


def dist_tt_orthogonalize(x: DistTTTensor, direction: Literal["left", "right"] = "left",
                          *, tree: Tree = "flat") -> DistTTTensor:
    """Left- (or right-) orthogonalize by one TSQR per core; the same tensor.

    "left": cores ``0..d-2`` get orthonormal global left unfoldings and the
    last core carries the norm; "right" mirrors it (the first core carries
    the norm). ``d - 1`` TSQRs (``tree`` as in
    :func:`tensorpar.distributed.tsqr.tsqr`): ``d - 1`` ``Allgatherv`` calls
    of the ``P`` small R factors for "flat", ``O(d log2 P)`` point-to-point
    messages for "binomial".
    """
    _check_one(x)
    if direction not in ("left", "right"):
        raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
    if x.ndim == 1:
        return DistTTTensor._wrap([x.local_cores[0].copy()], x.shape, x.comm)
    sweep = _left_sweep if direction == "left" else _right_sweep
    cores, end, log_norm = sweep(x, _check_tree(tree))
    if end is None:
        return _zero(x)
    pos = -1 if direction == "left" else 0
    cores[pos] = end
    return DistTTTensor._wrap(apply_log_scale(cores, log_norm, pos), x.shape, x.comm)


def dist_tt_round(x: DistTTTensor, eps: float = 1e-12, max_rank: int | None = None,
                  method: Literal["qr", "gram", "randomized"] = "qr", *, oversample: int = 10,
                  seed: Any = None, tree: Tree = "flat") -> DistTTTensor:
    """Round to relative accuracy ``eps`` and ranks ``<= max_rank``.

    Same truncation rule as :func:`tensorpar.tt_round` (``eps / sqrt(d - 1)``
    per bond, relative to ``||x||``), so the result equals the serial one of
    the same ``method`` to rounding error and has the same ranks, on every
    rank.

    Parameters
    ----------
    x : DistTTTensor
    eps : float
        ``>= 0``.
    max_rank : int, optional
    method : {"qr", "gram"}
        "qr": TSQR left-orthogonalization, then a right-to-left sweep of
        TSQRs and SVDs of the replicated ``r x r`` factors; ``2 (d - 1)``
        ``Allgatherv`` calls of the ``P`` small R factors. "gram": the
        Gram-SVD rounding of :mod:`tensorpar.tt.rounding_gram` with the
        partial Gram matrices of the local slices summed by ``2 (d - 1)``
        ``Allreduce`` calls of ``r^2`` entries; cheaper, but accurate only to
        about ``1e-8`` relative (see that module). "randomized": the
        randomize-then-orthogonalize rounding of
        :mod:`tensorpar.tt.rounding_rand` (needs ``max_rank``); every rank
        draws the same Gaussian sketch from ``seed``, so the result equals
        the serial one with the same seed. ``d - 1`` ``Allreduce`` calls of
        the ``r x l`` sketches and ``d - 1`` of the ``l x r`` carried
        factors, ``d - 1`` TSQRs of the sketched cores and the ``d - 1`` TSQRs
        of the final truncation sweep.
    oversample : int
        "randomized" only: the sketch has ranks ``max_rank + oversample``.
    seed : int, optional
        "randomized" only; must be the same on every rank (None draws one
        on rank 0 and broadcasts it).
    tree : {"flat", "binomial"}
        Reduction tree of the TSQRs of "qr" and "randomized" (see
        :func:`tensorpar.distributed.tsqr.tsqr`); the result is the same to
        rounding error.

    Returns
    -------
    DistTTTensor
    """
    _check_one(x)
    eps = check_eps(eps)
    max_rank = check_max_rank(max_rank)
    if method not in ("qr", "gram", "randomized"):
        raise ValueError(f"method must be 'qr', 'gram' or 'randomized', got {method!r}")
    if method == "randomized" and max_rank is None:
        raise ValueError("method='randomized' needs max_rank (the rank the sketch targets)")
    oversample = check_positive_int(oversample, "oversample", minimum=0)
    tree = _check_tree(tree)
    if x.ndim == 1:
        return DistTTTensor._wrap([x.local_cores[0].copy()], x.shape, x.comm)
    if method == "gram":
        return _round_gram(x, eps, max_rank)
    if method == "randomized":
        if seed is None:
            seed = bcast_object(x.comm, int(np.random.SeedSequence().entropy % 2**63)
                                if x.comm.Get_rank() == 0 else None)
        return _round_randomized(x, eps, max_rank, oversample, seed, tree)
    return _round_qr(x, eps, max_rank, tree)


def _round_qr(x: DistTTTensor, eps: float, max_rank: int | None, tree: Tree) -> DistTTTensor:
    cores, cur, log_norm = _left_sweep(x, tree)
    if cur is None:
        return _zero(x)
    return _truncate_right(x, cores, cur, log_norm, eps, max_rank, tree)


def _truncate_right(x: DistTTTensor, cores: list[Any], cur: Any, log_norm: float, eps: float,
                    max_rank: int | None, tree: Tree) -> DistTTTensor:
    """Right-to-left truncation of a train whose cores before ``cur`` are left-orthonormal."""
    d = x.ndim
    delta = eps / math.sqrt(d - 1)
    out: list[Any] = [None] * d
    for k in range(d - 1, 0, -1):
        r, m, q = cur.shape
        # cur as M (r x n q) has its columns split: M^H = Q R, so M = R^H Q^H
        Q, R = orth_right_rows(x.comm, cur, x.counts[k], tree)
        if k == d - 1:
            s = norm(R)
            if s == 0.0:
                return _zero(x)
            R = R / s
            log_norm += math.log(s)
        u, sv, wh = truncated_svd(ct(R), delta, max_rank)
        out[k] = rows_to_right_core(matmul(Q, ct(wh)), m, q)
        cur = absorb_right(cores[k - 1], u * sv[None, :])
    out[0] = cur
    return DistTTTensor._wrap(apply_log_scale(out, log_norm, 0), x.shape, x.comm)


def _round_randomized(x: DistTTTensor, eps: float, max_rank: int, oversample: int,
                      seed: Any, tree: Tree) -> DistTTTensor:
    # tensorpar.tt.rounding_rand.round_randomized for one summand: every rank
    # draws the same Gaussian sketch (same seed) and keeps its slices of it.
    xp = get_array_module(*x.local_cores)
    d, comm = x.ndim, x.comm
    ell = [min(max_rank + oversample, r) for r in x.ranks[1:-1]]
    sketch = random_tt(x.shape, ell, seed=seed, dtype=x.dtype)
    rank = comm.Get_rank()
    S = []
    for k, c in enumerate(sketch.cores):
        lo, hi = block_bounds(x.shape[k], comm.Get_size(), rank)
        S.append(xp.asarray(c[:, lo:hi, :]))
    W: list[Any] = [None] * (d + 1)
    W[d] = xp.ones((1, 1), dtype=x.dtype)
    for k in range(d - 1, 0, -1):
        W[k] = allreduce(comm, sketch_step_right(W[k + 1], x.local_cores[k], S[k]))
        s = float(xp.abs(W[k]).max())
        if s > 0.0:
            W[k] = W[k] / s
    out: list[Any] = []
    M, log_norm = xp.ones((1, 1), dtype=x.dtype), 0.0
    for k in range(d - 1):
        Z = absorb_left(M, x.local_cores[k])
        l, m, q = Z.shape
        rows = xp.ascontiguousarray(Z.transpose(1, 0, 2)).reshape(m * l, q)
        Q, _ = tsqr(comm, matmul(rows, W[k + 1]), [c * l for c in x.counts[k]], tree)
        out.append(xp.ascontiguousarray(Q.reshape(m, l, Q.shape[1]).transpose(1, 0, 2)))
        M = allreduce(comm, matmul(ct(Q), rows))  # partial sums over the local rows
        s = norm(M)
        if s == 0.0:
            return _zero(x)
        M = M / s
        log_norm += math.log(s)
    return _truncate_right(x, out, absorb_left(M, x.local_cores[-1]), log_norm, eps, max_rank,
                           tree)


def _round_gram(x: DistTTTensor, eps: float, max_rank: int | None) -> DistTTTensor:
    # round_gram of tensorpar.tt.rounding_gram with the partial Grams of the
    # local slices allreduced; the core norms come from the Gram traces, so
    # no extra message is needed for the rescaling.
    xp = get_array_module(*x.local_cores)
    cores, d = list(x.local_cores), x.ndim
    tol = max(x.ranks) * float(np.finfo(x.dtype).eps)
    grams: list[Any] = [None] * (d + 1)
    grams[d] = xp.ones((1, 1), dtype=x.dtype)
    for k in range(d - 1, 0, -1):
        g = allreduce(x.comm, gram_step_right(grams[k + 1], cores[k]))
        s = float(xp.abs(g).max())
        if s == 0.0:
            return _zero(x)
        grams[k] = g / s
    rel_delta = eps / math.sqrt(d - 1)
    log_scale = 0.0
    for k in range(d - 1):
        r, m, q = cores[k].shape
        GL = allreduce(x.comm, gram_left(cores[k]))
        if k > 0:  # cores[k] was rescaled from its Gram's trace (replicated)
            s = math.sqrt(abs(float(xp.trace(GL).real)))
            if s == 0.0:
                return _zero(x)
            cores[k], GL = cores[k] / s, GL / (s * s)
            log_scale += math.log(s)
        tr = _bond_transforms(GL, grams[k + 1], rel_delta, max_rank, tol)
        if tr is None:
            return _zero(x)
        TL, SR = tr
        cores[k] = matmul(cores[k].reshape(r * m, q), TL).reshape(r, m, TL.shape[1])
        cores[k + 1] = absorb_left(SR, cores[k + 1])
    return DistTTTensor._wrap(apply_log_scale(cores, log_scale, -1), x.shape, x.comm)


# -- TT-matrix times distributed TT vector ------------------------------------
def dist_ttm_matvec(A: TTMatrix, x: DistTTTensor) -> DistTTTensor:
    """``A x`` for a TT-matrix ``A`` replicated on every rank; ranks multiply.

    Each rank gathers the whole core ``k`` of ``x`` (one ``Allgatherv`` of
    ``r_k n_k r_{k+1}`` entries) and forms its slice of the output rows with
    :func:`tensorpar.tt.matrix.ttm_matvec_core`: ``d`` messages of
    ``sum_k r_k(x) n_k r_{k+1}(x)`` words, cheaper than reducing the
    ``r(A)^2``-times larger partial output cores. Every row mode ``m_k`` of
    ``A`` must be ``>= P``.

    Parameters
    ----------
    A : TTMatrix, row_shape (m_k), col_shape (n_k)
        The same on every rank.
    x : DistTTTensor, shape (n_0, ..., n_{d-1})

    Returns
    -------
    DistTTTensor, shape (m_0, ..., m_{d-1}), ranks ``r_k(A) r_k(x)``
    """
    if not isinstance(A, TTMatrix):
        raise TypeError(f"A must be a TTMatrix, got {type(A).__name__}")
    _check_one(x)
    check_same_shape([A.col_shape, x.shape], ["A's col_shape", "x"])
    size, rank = x.comm.Get_size(), x.comm.Get_rank()
    _check_modes(A.row_shape, size)  # output rows are split like any DistTTTensor
    cores = []
    for k, (a, c) in enumerate(zip(A.cores, x.local_cores)):
        full = allgatherv(x.comm, c, counts=x.counts[k], axis=1)
        lo, hi = block_bounds(A.row_shape[k], size, rank)
        cores.append(ttm_matvec_core(a[:, lo:hi], full))
    return DistTTTensor._wrap(cores, tuple(A.row_shape), x.comm)
