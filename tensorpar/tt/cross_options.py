"""Settings, result record and stopping test of TT-cross (:func:`tensorpar.tt.cross.tt_cross`).

Kept apart from the algorithm so that the serial and distributed entry points
validate their arguments and report their results with the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from .._validation import check_eps, check_positive_int
from .tensor import TTTensor

__all__ = ["CrossOptions", "CrossResult", "CrossStop", "check_values", "relative_change"]

#: Why :func:`tt_cross` stopped.
CrossStop = Literal["converged", "max_evals", "max_sweeps"]

@dataclass
class CrossResult:
    """Result of :func:`tt_cross`.

    Attributes
    ----------
    tt : TTTensor
        The approximation (float64 numpy cores).
    n_evals : int
        Entries of ``f`` evaluated (distinct multi-indices when the cache is on).
    n_sweeps : int
        Half-sweeps completed (one pass over the cores in one direction).
    converged : bool
        Whether the stopping test passed.
    stop : {"converged", "max_evals", "max_sweeps"}
    n_requests : int
        Entries the algorithm asked for, cache hits included.
    change : float
        ``||Y - Y_prev|| / ||Y||`` of the last half-sweep (inf after one).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import tt_cross
    >>> res = tt_cross(lambda idx: np.sin(idx.sum(axis=1) / 7.0), (8,) * 6, eps=1e-10, seed=0)
    >>> res.tt.ranks, res.converged, res.n_evals <= res.n_requests
    ((1, 2, 2, 2, 2, 2, 1), True, True)
    """

    tt: TTTensor
    n_evals: int
    n_sweeps: int
    converged: bool
    stop: CrossStop
    n_requests: int
    change: float


@dataclass(frozen=True)
class CrossOptions:
    """Validated settings of :func:`tt_cross` (see there); equal on every rank in MPI runs.

    Examples
    --------
    >>> opts = CrossOptions.from_args((4, 4, 4), 1e-8, None, None, 40, None, 1, None, True)
    >>> opts.shape, opts.eps, opts.cache
    ((4, 4, 4), 1e-08, True)
    """

    shape: tuple[int, ...]
    eps: float | None
    rank: int | None
    max_evals: int | None
    max_sweeps: int
    init_rank: int
    kick: int
    tol: float
    cache: bool

    @classmethod
    def from_args(cls, shape: Sequence[int], eps: Any, rank: Any, max_evals: Any,
                  max_sweeps: Any, init_rank: Any, kick: Any, tol: Any,
                  cache: Any) -> CrossOptions:
        """Check every argument, raising a TypeError or ValueError that names it.

        Examples
        --------
        >>> from tensorpar.tt.cross_options import CrossOptions
        >>> CrossOptions.from_args((4, 4), None, None, None, 40, None, 1, None, True)
        Traceback (most recent call last):
        ...
        ValueError: give eps (rank-adaptive cross) or rank (fixed rank), or both
        """
        if not isinstance(shape, (list, tuple)) or len(shape) == 0:
            raise TypeError(f"shape must be a non-empty sequence of ints, got {shape!r}")
        shape = tuple(check_positive_int(n, f"shape[{k}]") for k, n in enumerate(shape))
        if eps is None and rank is None:
            raise ValueError("give eps (rank-adaptive cross) or rank (fixed rank), or both")
        eps = None if eps is None else check_eps(eps)
        rank = None if rank is None else check_positive_int(rank, "rank")
        max_evals = None if max_evals is None else check_positive_int(max_evals, "max_evals")
        max_sweeps = check_positive_int(max_sweeps, "max_sweeps")
        default_init = 2 if rank is None else min(rank, 2) if eps is not None else rank
        init_rank = default_init if init_rank is None else check_positive_int(init_rank,
                                                                              "init_rank")
        kick = check_positive_int(kick, "kick", minimum=0)
        tol = (eps if eps is not None else 1e-12) if tol is None else check_eps(tol, "tol")
        if not isinstance(cache, (bool, np.bool_)):
            raise TypeError(f"cache must be a bool, got {type(cache).__name__}")
        return cls(shape, eps, rank, max_evals, max_sweeps, init_rank, kick, tol, bool(cache))


def check_values(values: Any, m: int, name: str = "f") -> np.ndarray:
    """``values`` as a float64 array of shape ``(m,)``; TypeError/ValueError naming ``name``.

    Examples
    --------
    >>> from tensorpar.tt.cross_options import check_values
    >>> check_values([1, 2], 2)
    array([1., 2.])
    >>> check_values([1.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: f returned shape (1,) for a batch of 2 multi-indices; expected (2,)
    """
    y = np.asarray(values.get() if hasattr(values, "get") and not isinstance(values, dict)
                   else values)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must return real numbers, got dtype {y.dtype}")
    if y.shape != (m,):
        raise ValueError(f"{name} returned shape {y.shape} for a batch of {m} multi-indices; "
                         f"expected ({m},)")
    y = y.astype(np.float64, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{name} returned non-finite values (at batch rows "
                         f"{np.flatnonzero(~np.isfinite(y))[:5].tolist()})")
    return y


def _absorb(R: np.ndarray, core: np.ndarray) -> np.ndarray:
    """``R`` times ``core`` on its left rank index (``tensordot(R, core, 1)`` minus its overhead)."""
    r, n, c = core.shape
    return np.asarray(R @ core.reshape(r, n * c)).reshape(R.shape[0], n, c)


def relative_change(new: TTTensor, old: TTTensor) -> float:
    """``||new - old|| / ||new||`` (0 when both are zero): the stopping test of TT-cross.

    Computed by one QR sweep over both trains (same shape, float64).

    The sweep orthogonalizes the difference train, whose cores are
    ``[new_k, 0; 0, old_k]``, keeping only the triangular factors: the carried
    factor's first columns then represent ``new``'s left part and the others
    ``old``'s, so the last core gives both norms. Householder QR is backward
    stable, so ``||new - old||`` is accurate to rounding relative to the norms
    of the trains, at any cancellation; one ``qr(mode="r")`` per core is about a
    tenth of the time of two full orthogonalizations (of ``new`` and of
    ``new - old``), the former stopping test. The carried factor is rescaled
    after every core, so no scale overflows.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_scale
    >>> from tensorpar.tt.cross_options import relative_change
    >>> x = random_tt((4, 5, 6), 2, seed=0)
    >>> round(relative_change(x, tt_scale(x, 0.75)), 12), relative_change(x, x) < 1e-15
    (0.25, True)
    """
    a, b = new.cores, old.cores
    carry: np.ndarray | None = None
    for k in range(len(a) - 1):
        if carry is None:
            M = np.concatenate([a[k], b[k]], axis=2)
        else:
            ra = a[k].shape[0]
            M = np.concatenate([_absorb(carry[:, :ra], a[k]), _absorb(carry[:, ra:], b[k])],
                               axis=2)
        t, n, c = M.shape
        R = cast(np.ndarray, np.linalg.qr(M.reshape(t * n, c), mode="r"))
        scale = float(np.abs(R).max())
        if scale == 0.0:
            return 0.0  # both trains are zero
        carry = R / scale
    if carry is None:
        end_new, end_old = a[-1], b[-1]
    else:
        ra = a[-1].shape[0]
        end_new = _absorb(carry[:, :ra], a[-1])
        end_old = _absorb(carry[:, ra:], b[-1])
    norm_new = float(np.linalg.norm(end_new))
    norm_diff = float(np.linalg.norm(end_new - end_old))
    if norm_new == 0.0:
        return 0.0 if norm_diff == 0.0 else math.inf
    return norm_diff / norm_new
