"""Orthogonalization and rounding of distributed tensor trains.

:func:`dist_tt_orthogonalize` runs the serial
:func:`tensorpar.tt.orth.orthonormal_sweep` with one TSQR per core
(:func:`tensorpar.distributed.tsqr.tsqr`) as its ``factor=`` hook. :func:`dist_tt_round` has the three
methods of :func:`tensorpar.tt_round`:

* "qr": TSQR left-orthogonalization, then a right-to-left sweep of TSQRs and
  SVDs of the replicated ``r x r`` factors: ``O(d n r^3 / P)`` local flops
  and, with the default flat TSQR, ``2 (d - 1)`` ``Allgatherv`` messages of
  ``P r^2`` words plus ``O(d P r^3)`` redundant small flops; with
  ``tree="binomial"`` ``O(d log2 P)`` messages of ``r^2`` words. All ranks
  compute the small factorizations on identical data, so the ranks of the
  result are the same on every rank;
* "gram": the serial :func:`tensorpar.tt.rounding_gram.round_gram` on the
  local slices with an allreduce as its ``reduce=`` hook;
* "randomized": the serial
  :func:`tensorpar.tt.rounding_rand.round_randomized` on the local slices
  with an allreduce (``reduce=``), a TSQR (``orth_hook=``) and the
  distributed final sweep of "qr" (``truncate=``) as hooks.

Every method first agrees on the arguments (:func:`tensorpar.distributed.comm.agree`)
and divides cores far from 1 by powers of two common to all ranks (one
``Allreduce`` of ``d`` magnitudes), as the serial code does, so results for
``c x`` are ``c`` times those for ``x``. The factor taken out is restored
spread evenly over the cores (a rule that does not look at the entries, so
every rank applies the same one): for such extreme data the cores of the
result are orthogonal only up to a power of two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ..._linalg import ct, matmul, norm, truncated_svd
from ..._typing import Array, Direction, RoundMethod, Tree
from ..._validation import check_max_rank
from ...tt.orth import FactorHook, MaxRank, absorb_right, apply_log_scale, bond_limit, orthonormal_sweep
from ...tt.rounding import check_round_options
from ...tt.rounding_gram import round_gram
from ...tt.rounding_rand import draw_sketch, round_randomized
from ...tt.scale import normalize_cores, restore_pow2
from ..comm import allreduce, bcast_object
from ..grid import block_bounds
from ..tsqr import orth_left_core, orth_right_rows, rows_to_right_core, tsqr
from .agreement import agree_checked, meta_or_none
from .checks import check_dist_tt, describe, operand_comm
from .tensor import DistTTTensor

__all__ = ["dist_tt_orthogonalize", "dist_tt_round", "check_tree"]


def check_tree(tree: Any) -> Tree:
    """Return ``tree`` when it is "flat" or "binomial", else raise a ValueError.

    Examples
    --------
    >>> from tensorpar.distributed.tt.rounding import check_tree
    >>> check_tree("binomial")
    'binomial'
    """
    if tree == "flat":
        return "flat"
    if tree == "binomial":
        return "binomial"
    raise ValueError(f"tree must be 'flat' or 'binomial', got {tree!r}")


def _zero(x: DistTTTensor) -> DistTTTensor:
    xp = get_array_module(*x.local_cores)
    cores = [xp.zeros((1, c.shape[1], 1), dtype=x.dtype) for c in x.local_cores]
    return DistTTTensor.wrap(cores, x.shape, x.comm)


def _factor(x: DistTTTensor, direction: Direction, tree: Tree) -> FactorHook:
    """The TSQR of a core split along its mode index, as :func:`orthonormal_sweep` takes it."""
    if direction == "left":
        return lambda k, a: orth_left_core(x.comm, a, x.counts[k], tree)

    def right(k: int, a: Array) -> tuple[Array, Array]:
        Q, R = orth_right_rows(x.comm, a, x.counts[k], tree)  # a = R^H Q^H
        return ct(R), rows_to_right_core(Q, a.shape[1], a.shape[2])

    return right


def dist_tt_orthogonalize(x: DistTTTensor, direction: Direction = "left",
                          *, tree: Tree = "flat") -> DistTTTensor:
    """Left- (or right-) orthogonalize by one TSQR per core; the same tensor.

    "left": cores ``0..d-2`` get orthonormal global left unfoldings and the
    last core carries the norm; "right" mirrors it (the first core carries
    the norm). ``d - 1`` TSQRs (``tree`` as in
    :func:`tensorpar.distributed.tsqr.tsqr`): ``d - 1`` ``Allgatherv`` calls
    of the ``P`` small R factors for "flat", ``O(d log2 P)`` point-to-point
    messages for "binomial".

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_orthogonalize
    >>> x = random_tt((4, 5, 6), 2, seed=0)
    >>> y = dist_tt_orthogonalize(DistTTTensor.scatter(x)).gather()
    >>> bool(np.allclose(y.to_dense(), x.to_dense()))
    True

    Under ``mpiexec -n 2 python script.py`` each core's QR is a TSQR over
    both ranks (:func:`~tensorpar.distributed.tsqr.tsqr`); the result keeps the
    split of ``x`` (rank 0 mode slices 2, 3, 3; rank 1 2, 2, 3).
    """
    def check() -> Tree:
        check_dist_tt(x)
        if direction not in ("left", "right"):
            raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
        return check_tree(tree)

    tr = agree_checked(operand_comm(x), check,
                       {"x": describe(x), "direction": direction, "tree": tree})
    if x.ndim == 1:
        return DistTTTensor.wrap([x.local_cores[0].copy()], x.shape, x.comm)
    cores, end, log_norm = orthonormal_sweep(x.local_cores, direction,
                                             _factor(x, direction, tr))
    if end is None:
        return _zero(x)
    pos = -1 if direction == "left" else 0
    return DistTTTensor.wrap(apply_log_scale(cores, log_norm, pos), x.shape, x.comm)


def truncate_right(x: DistTTTensor, cores: list[Array], cur: Array, delta: float,
                   max_rank: MaxRank, tree: Tree) -> tuple[list[Array], float] | None:
    """Right-to-left truncation of a train whose cores before ``cur`` are left-orthonormal.

    The distributed counterpart of :func:`tensorpar.tt.rounding_rand.truncate_right`
    (and its ``truncate=`` hook): a TSQR of each core's right unfolding and an
    SVD of the replicated ``r x r`` factor. Returns the cores and the log of
    the norm taken off the last core, or None for the zero tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor
    >>> from tensorpar.distributed.tt.rounding import truncate_right
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> left = [np.eye(4)[:, :2].reshape(1, 4, 2)]
    >>> cores, log_s = truncate_right(x, left, x.local_cores[1], 1e-12, None, "flat")
    >>> [c.shape for c in cores]
    [(1, 4, 2), (2, 5, 1)]
    """
    d = x.ndim
    out: list[Array] = [None] * d
    log_norm = 0.0
    for k in range(d - 1, 0, -1):
        r, m, q = cur.shape
        # cur as M (r x n q) has its columns split: M^H = Q R, so M = R^H Q^H
        Q, R = orth_right_rows(x.comm, cur, x.counts[k], tree)
        if k == d - 1:
            s = norm(R)
            if s == 0.0:
                return None
            R = R / s
            log_norm = math.log(s)
        u, sv, wh = truncated_svd(ct(R), delta, bond_limit(max_rank, k - 1))
        out[k] = rows_to_right_core(matmul(Q, ct(wh)), m, q)
        cur = absorb_right(cores[k - 1], u * sv[None, :])
    out[0] = cur
    return out, log_norm


def dist_tt_round(x: DistTTTensor, eps: float = 1e-12,
                  max_rank: int | Sequence[int] | None = None,
                  method: RoundMethod = "qr", *, oversample: int = 10,
                  seed: Any = None, tree: Tree = "flat") -> DistTTTensor:
    """Round to relative accuracy ``eps`` and ranks ``<= max_rank``.

    Same truncation rule as :func:`tensorpar.tt_round` (``eps / sqrt(d - 1)``
    per bond, relative to ``||x||``), so the result equals the serial one of
    the same ``method`` to rounding error and has the same ranks, on every
    rank. "gram" and "randomized" run the serial implementations with the
    reductions passed in (see the module notes).

    Parameters
    ----------
    x : DistTTTensor
    eps : float
        ``>= 0``.
    max_rank : int or sequence of int, optional
        One bound for every rank, or per bond (the forms of
        :func:`tensorpar.tt_round`); the ranks agree on the per-bond limits
        (``3`` and ``[3, 3]`` are the same bound for three cores).
    method : {"qr", "gram", "randomized"}
        "qr": ``2 (d - 1)`` TSQRs. "gram": ``2 (d - 1)`` ``Allreduce`` calls of
        ``r^2`` entries; cheaper, accurate only to about ``1e-8`` relative.
        "randomized" (needs ``max_rank``): every rank draws the same Gaussian
        sketch from ``seed``, so the result equals the serial one with the
        same seed; ``2 (d - 1)`` ``Allreduce`` calls, ``d - 1`` TSQRs of the
        sketched cores and the ``d - 1`` TSQRs of the final truncation.
    oversample : int
        "randomized" only: the sketch has ranks ``max_rank + oversample``.
    seed : int, optional
        "randomized" only; must be the same on every rank (None draws one
        on rank 0 and broadcasts it).
    tree : {"flat", "binomial"}
        Reduction tree of the TSQRs of "qr" and "randomized".

    Returns
    -------
    DistTTTensor

    Notes
    -----
    Collective. All arguments are agreed on first (an argument that differs
    between ranks raises a ValueError on every rank naming it), then one
    ``Allreduce`` of ``d`` core magnitudes fixes the common powers of two.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_round
    >>> X = DistTTTensor.scatter(random_tt((4, 5, 6), 2, seed=0))
    >>> dist_tt_round(X + X, eps=1e-12).ranks
    (1, 2, 2, 1)

    Under ``mpiexec -n 2 python script.py`` both ranks get ranks
    ``(1, 2, 2, 1)`` and each keeps its mode slices (rank 0 slices 2, 3, 3;
    rank 1 2, 2, 3).
    """
    def check() -> tuple[float, MaxRank, int, Tree]:
        check_dist_tt(x)
        opts = check_round_options(eps, max_rank, method, oversample, x.ndim)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        return opts + (check_tree(tree),)

    e, mr, ov, tr = agree_checked(
        operand_comm(x), check, {"x": describe(x), "eps": eps,
                                 "max_rank": meta_or_none(lambda: check_max_rank(max_rank,
                                                                                 ndim=x.ndim)),
                                 "method": method, "oversample": oversample, "seed": seed,
                                 "tree": tree})
    if x.ndim == 1:
        return DistTTTensor.wrap([x.local_cores[0].copy()], x.shape, x.comm)
    cores, e2 = normalize_cores(x.local_cores, lambda m: allreduce(x.comm, m, op="max"))
    delta = e / math.sqrt(x.ndim - 1)
    out: list[Array] | None
    if method == "gram":
        out = round_gram(cores, e, mr, reduce=lambda a: allreduce(x.comm, a))
    elif method == "randomized":
        assert mr is not None  # checked: randomized needs max_rank
        out = _randomized(x, cores, e, mr, ov, seed, tr)
    else:
        left, cur, log_norm = orthonormal_sweep(cores, "left", _factor(x, "left", tr))
        res = None if cur is None else truncate_right(x, left, cur, delta, mr, tr)
        out = None if res is None else apply_log_scale(res[0], log_norm + res[1], 0)
    if out is None:
        return _zero(x)
    # spread the powers of two evenly: where the serial code looks at the
    # entries of one core, which differ between ranks, this rule does not
    return DistTTTensor.wrap(restore_pow2(out, e2, 0, spread=True), x.shape, x.comm)


def _randomized(x: DistTTTensor, cores: list[Array], eps: float, max_rank: int | Sequence[int],
                oversample: int, seed: Any, tree: Tree) -> list[Array] | None:
    comm = x.comm
    if seed is None:  # one seed for all ranks, so that they draw the same sketch
        fresh = int(np.random.default_rng().integers(2**63)) if comm.Get_rank() == 0 else None
        seed = bcast_object(comm, fresh)
    xp = get_array_module(*cores)
    full = draw_sketch(x.shape, [x.ranks], max_rank, oversample, seed,
                       np.result_type(*[c.dtype for c in cores], float), xp)
    rank, size = comm.Get_rank(), comm.Get_size()
    sketch = []
    for k, c in enumerate(full.cores):
        lo, hi = block_bounds(x.shape[k], size, rank)
        sketch.append(c[:, lo:hi, :])

    def orth_hook(k: int, Y: Array) -> Array:
        left = Y.shape[0] // x.counts[k][rank]  # rows are (left rank, local mode index)
        return tsqr(comm, Y, [left * c for c in x.counts[k]], tree)[0]

    return round_randomized(
        [cores], None, eps, max_rank, sketch, reduce=lambda a: allreduce(comm, a),
        orth_hook=orth_hook,
        truncate=lambda out, last, delta, mr: truncate_right(x, out, last, delta, mr, tree))
