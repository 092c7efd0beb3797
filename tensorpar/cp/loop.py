"""The CP-ALS loop, shared by the serial and the distributed driver.

One implementation of the iteration (:func:`als_iteration`) and of the
state machine around it (:func:`run_als`: stop reasons, checkpoint timing,
progress line, callback). A driver says how its data is spread through
:class:`ALSHooks`:

* ``sweep`` runs the MTTKRP sweep over the driver's factor storage (serial:
  :func:`tensorpar.mttkrp.mttkrp_sweep` on the full factors; distributed:
  the reduce-scatter / all-gather sweep on the owned rows);
* ``allreduce`` sums an array over the ranks (None: one process, and the
  inner product of the fit is taken from the normalised factor as the
  serial driver always did);
* ``save`` writes the checkpoint (distributed: gather, write on rank 0);
* ``any_true`` is the collective stop decision of the callback;
* ``view`` is what the callback receives; ``prints`` whether this process
  prints the progress line;
* for the variants (:mod:`tensorpar.cp.variant`): ``residual(fill)`` the
  observed residual of the current model summed over the ranks, refilling
  the missing entries with ``fill`` (:mod:`tensorpar.cp.missing`);
  ``row_grams(n)`` the weighted least-squares matrices of the owned rows;
  ``mttkrp(n)`` one MTTKRP (owned rows) and ``storage()`` /
  ``set_storage(arrays)`` the factor arrays the sweep reads, for the
  extrapolation (:mod:`tensorpar.cp.accel`).

The loop runs in the scaled frame of :mod:`tensorpar.cp.state`: each MTTKRP
output is multiplied by ``2^-e`` (exact), the weights live in that frame and
the fit uses ``||X|| 2^-e``, so no Gram under- or overflows whatever the
scale of ``X``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._backend import get_array_module
from .._typing import Array
from ..dense import check_memory
from .accel import extrapolate, is_line_iteration, snapshot
from .fit import cp_inner_from_mttkrp, cp_norm_sq_from_grams, fit_from_terms, has_converged
from .missing import fit_from_residual, wls_factor_update
from .result import CPALSResult, StopReason, progress_line
from .scales import frame_l2, others_product, tracked_system
from .state import ALSOptions, CPALSState, ldexp_array
from .update import als_factor_update, gram, hadamard_grams, hals_factor_update, normalize_factor

__all__ = ["ALSHooks", "als_iteration", "run_als", "check_als_memory", "Update"]

#: ``update(mode, M) -> new factor rows``, called by a sweep once per mode.
Update = Callable[[int, Array], Array]


def _identity_bool(flag: bool) -> bool:
    return bool(flag)


@dataclass
class ALSHooks:
    """What a CP-ALS driver passes to the shared loop (see the module docstring).

    Examples
    --------
    The serial driver's hooks, by hand:

    >>> import numpy as np
    >>> from tensorpar.cp.als import checked_norm, initial_state, model_of
    >>> from tensorpar.cp.state import check_als_options
    >>> from tensorpar.mttkrp import mttkrp_sweep
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> state = initial_state(X, 2, "random", rng=np.random.default_rng(1),
    ...                       nonnegative=False, norm_x=checked_norm(X))
    >>> hooks = ALSHooks(sweep=lambda update: mttkrp_sweep(X, state.factors, update),
    ...                  view=model_of)
    >>> res = run_als(state, hooks, check_als_options(2, max_iter=3, tol=0), callback=None,
    ...               engine="numpy", t_origin=0.0)
    >>> res.n_iter, 0 < res.fit < 1
    (3, True)
    """

    sweep: Callable[[Update], None]
    view: Callable[[CPALSState], Any]
    allreduce: Callable[[Array], Array] | None = None
    save: Callable[[CPALSState], None] | None = None
    any_true: Callable[[bool], bool] = _identity_bool
    prints: bool = True
    residual: Callable[[bool], float] | None = None
    row_grams: Callable[[int], Array] | None = None
    mttkrp: Callable[[int], Array] | None = None
    storage: Callable[[], list[Array]] | None = None
    set_storage: Callable[[list[Array]], None] | None = None


def als_iteration(state: CPALSState, hooks: ALSHooks) -> float:
    """One CP-ALS iteration: update every mode in order, then return the fit.

    ``state`` is updated in place (factors, Grams, weights); the caller
    appends the fit to ``state.fits``. With ``hooks.allreduce`` every new Gram
    is summed over the ranks, and the last mode's message also carries this
    rank's share of ``<X, X_hat>`` (in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.cp.als import checked_norm, initial_state, model_of
    >>> from tensorpar.mttkrp import mttkrp_sweep
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> state = initial_state(X, 2, "random", rng=np.random.default_rng(1),
    ...                       nonnegative=False, norm_x=checked_norm(X))
    >>> hooks = ALSHooks(sweep=lambda update: mttkrp_sweep(X, state.factors, update),
    ...                  view=model_of)
    >>> 0 < als_iteration(state, hooks) < 1
    True
    """
    e = state.scale_exp
    variant = state.variant
    it0 = state.iteration
    before = snapshot(state, hooks) if variant.linesearch and it0 % 2 == 0 else None
    inner: list[float] = []
    hooks.sweep(lambda n, M: _mode_update(state, hooks, n, M, inner))
    line = before is not None and is_line_iteration(it0)
    norm = math.ldexp(state.norm_x, -e)
    if variant.missing is not None:
        if hooks.residual is None:
            raise ValueError("a run with missing data needs hooks.residual")
        fit = fit_from_residual(norm, hooks.residual(variant.missing == "em" and not line))
    else:
        norm_sq = cp_norm_sq_from_grams(hadamard_grams(state.grams), state.weights)
        fit, _ = fit_from_terms(norm, inner[0], norm_sq)
    if line and before is not None:
        fit = extrapolate(state, hooks, before, fit)
    return fit


def _mode_update(state: CPALSState, hooks: ALSHooks, n: int, M: Array,
                 inner: list[float]) -> Array:
    """The mode-``n`` step of :func:`als_iteration` (the sweep's ``update``)."""
    variant, reduce = state.variant, hooks.allreduce
    last = len(state.grams) - 1
    e = state.scale_exp
    M = ldexp_array(M, -e) if e else M
    if n in variant.fixed_modes:
        if n == last:
            _inner_of_fixed(state, hooks, M, inner)
        return state.factors[n]
    V = hadamard_grams(state.grams, skip=n)
    D = others_product(state.col_scales, n) if variant.tracks_scales else None
    if D is not None:
        lam = frame_l2(variant.l2_reg, e, len(state.grams))
        M_, V_ = tracked_system(M, V, D, lam)
        start = state.factors[n] * state.col_scales[n][None, :]
    else:
        lam, M_, V_ = 0.0, M, V
        start = state.factors[n] * state.weights[None, :]
    if n in variant.nonnegative_modes:
        A = hals_factor_update(start, M_, V_, variant.n_inner)
    elif variant.missing == "wls":
        if hooks.row_grams is None:
            raise ValueError("missing_method='wls' needs hooks.row_grams")
        A = wls_factor_update(M_, hooks.row_grams(n), D, lam)
    else:
        A = als_factor_update(M_, V_)
    G = gram(A)
    if reduce is not None:
        G = _reduce_gram(reduce, G, M, A if D is None else A * D[None, :],
                         inner if n == last else None)
    A, state.grams[n], s = normalize_factor(A, G)
    if D is None:
        state.weights = s
    else:
        state.col_scales[n], state.weights = s, s * D
    state.factors[n] = A
    if n == last and reduce is None:
        inner.append(cp_inner_from_mttkrp(M, A, state.weights))
    return A


def _inner_of_fixed(state: CPALSState, hooks: ALSHooks, M: Array, inner: list[float]) -> None:
    """The fit's ``<X, X_hat>`` when the last mode is fixed (no Gram message to ride in)."""
    share = cp_inner_from_mttkrp(M, state.factors[-1], state.weights)
    if hooks.allreduce is not None:
        xp = get_array_module(M)
        share = float(hooks.allreduce(xp.asarray([share], dtype="float64"))[0])
    inner.append(share)


def _reduce_gram(reduce: Callable[[Array], Array], G: Array, M: Array, A_raw: Array,
                 inner: list[float] | None) -> Array:
    """Sum a Gram over the ranks; with ``inner`` the fit's share rides in the same message."""
    if inner is None:
        return reduce(G)
    xp = get_array_module(G)
    share = cp_inner_from_mttkrp(M, A_raw, xp.ones(A_raw.shape[1], dtype=A_raw.dtype))
    # float64 message: a float32 Gram sums more accurately and the share keeps its digits.
    tot = reduce(xp.concatenate([G.ravel().astype("float64", copy=False),
                                 xp.asarray([share], dtype="float64")]))
    inner.append(float(tot[-1]))
    return tot[:-1].reshape(G.shape).astype(G.dtype, copy=False)


def run_als(state: CPALSState, hooks: ALSHooks, options: ALSOptions, *,
            callback: Callable[..., Any] | None, engine: str, t_origin: float) -> CPALSResult:
    """Iterate until ``tol``, ``max_iter`` or the callback stops the run; return its record.

    Parameters
    ----------
    state : CPALSState
        The start (fresh or resumed); updated in place.
    hooks : ALSHooks
    options : ALSOptions
        Validated options (:func:`~tensorpar.cp.state.check_als_options`).
    callback : callable ``(iteration, hooks.view(state), fit) -> bool | None``, optional
        Returning True (on any rank) stops the run.
    engine : str
        The resolved MTTKRP engine (recorded in the result).
    t_origin : float
        ``time.perf_counter()`` value the elapsed time counts from (earlier
        than now by the time of the runs a resumed checkpoint did).

    Returns
    -------
    CPALSResult

    Examples
    --------
    See :class:`ALSHooks`.
    """
    resumed_from = state.iteration
    stop: StopReason = "tol" if has_converged(state.fits, options.tol) else "max_iter"
    every = options.checkpoint_every
    save = hooks.save if options.checkpoint is not None else None
    while stop == "max_iter" and state.iteration < options.max_iter:
        t0 = time.perf_counter()
        fit = als_iteration(state, hooks)
        state.iter_times.append(time.perf_counter() - t0)
        state.fits.append(fit)
        it = state.iteration
        if has_converged(state.fits, options.tol):
            stop = "tol"
        if save is not None and it % every == 0:
            state.elapsed = time.perf_counter() - t_origin
            save(state)
        if options.verbose and hooks.prints:
            change = state.fits[-1] - state.fits[-2] if it >= 2 else None
            print(progress_line(it, fit, change, state.iter_times[-1]), flush=True)
        if callback is not None and hooks.any_true(callback(it, hooks.view(state), fit) is True):
            stop = "callback" if stop != "tol" else stop
            break

    state.elapsed = time.perf_counter() - t_origin
    if save is not None and (state.iteration % every != 0 or state.iteration == resumed_from):
        save(state)
    return CPALSResult(
        fits=list(state.fits), n_iter=state.iteration, converged=stop == "tol",
        stop_reason=stop, wall_time=state.elapsed, init_time=state.init_time,
        iter_times=list(state.iter_times), norm_x=state.norm_x, engine=engine,
        nonnegative=state.nonnegative, resumed_from=resumed_from)


def check_als_memory(shape: Sequence[int], rank: int, itemsize: int) -> None:
    """Raise a ValueError naming ``rank`` when CP-ALS would not fit in memory.

    The estimate (bytes): ``itemsize * ((N + 6) R^2 + 3 R sum_n I_n)`` -- the
    ``N`` Grams, the Hadamard product ``V`` and the four ``R x R`` arrays of
    its inverse (:func:`~tensorpar.cp.update.inverse_psd`), the factors,
    the MTTKRP output and the new factor. It is compared with
    :func:`tensorpar.dense.available_memory` before anything is allocated
    (:func:`tensorpar.dense.check_memory`).

    Examples
    --------
    >>> check_als_memory((5, 6, 7), 10**6, 8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: rank: CP-ALS with rank=1000000 on shape (5, 6, 7) (Grams of 1000000 x 1000000) need ...
    """
    N, R = len(shape), int(rank)
    need = itemsize * ((N + 6) * R * R + 3 * R * sum(int(s) for s in shape))
    check_memory(need, "rank", f"CP-ALS with rank={R} on shape {tuple(shape)} (Grams of "
                 f"{R} x {R})")
