"""CP decomposition by alternating least squares (CP-ALS) on the MTTKRP sweep.

One iteration is one :func:`~tensorpar.mttkrp.mttkrp_sweep` (the only pass
over ``X``; the engine may share partial contractions between modes) plus,
per mode, ``R x R`` work: the Hadamard product of the Grams, a Cholesky
solve (or a HALS pass when ``nonnegative``), the new Gram and the column
normalisation (:mod:`tensorpar.cp.update`). The fit comes from the last
MTTKRP and the Grams (:mod:`tensorpar.cp.fit`); ``||X||`` is computed once.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .._backend import Engine, get_array_module, resolve_engine
from .._validation import REAL_DTYPES, as_float_array, check_finite, check_positive_int
from ..dense import tensor_norm
from ..mttkrp import mttkrp_sweep
from .checkpoint import CPALSState, load_checkpoint, save_checkpoint
from .fit import cp_fit, has_converged
from .init import initialize_cp
from .result import CPALSResult, StopReason, progress_line
from .tensor import CPTensor
from .update import als_factor_update, gram, hadamard_grams, hals_factor_update, normalize_factor

__all__ = ["cp_als", "als_iteration", "initial_state"]

Callback = Callable[[int, CPTensor, float], Any]


def initial_state(X: Any, rank: int, init: Literal["random", "svd"] | CPTensor, *,
                  rng: np.random.Generator, nonnegative: bool, norm_x: float) -> CPALSState:
    """The state before the first iteration: normalised init and its Grams."""
    cp = initialize_cp(X, rank, init, rng=rng, nonnegative=nonnegative)
    return CPALSState(factors=list(cp.factors), weights=cp.weights,
                      grams=[gram(f) for f in cp.factors], norm_x=norm_x,
                      nonnegative=nonnegative)


def als_iteration(X: Any, state: CPALSState, engine: str = "auto") -> float:
    """One CP-ALS iteration: update every mode in order, then return the fit.

    ``state`` is updated in place (factors, Grams, weights); the fit is
    appended to ``state.fits`` by the caller.
    """
    N = X.ndim
    last: dict[str, Any] = {}

    def update(n: int, M: Any) -> Any:
        V = hadamard_grams(state.grams, skip=n)
        if state.nonnegative:
            A = hals_factor_update(state.factors[n] * state.weights[None, :], M, V)
        else:
            A = als_factor_update(M, V)
        A, state.grams[n], state.weights = normalize_factor(A, gram(A))
        state.factors[n] = A
        if n == N - 1:
            last["M"] = M
        return A

    mttkrp_sweep(X, list(state.factors), update, engine=engine)
    fit, _ = cp_fit(state.norm_x, last["M"], state.factors[-1], state.weights, state.grams)
    return fit


def cp_als(X: Any, rank: int, *, init: Literal["random", "svd"] | CPTensor = "random",
           seed: int | np.random.Generator | None = None, max_iter: int = 100,
           tol: float = 1e-8, nonnegative: bool = False, callback: Callback | None = None,
           verbose: bool = False, checkpoint: str | os.PathLike[str] | None = None,
           checkpoint_every: int = 10, resume: str | os.PathLike[str] | None = None,
           engine: Engine = "auto") -> tuple[CPTensor, CPALSResult]:
    """CP decomposition of a dense tensor by alternating least squares.

    Finds ``X ~ [[w; A_0, ..., A_{N-1}]] = sum_r w_r a_0^(r) o ... o a_{N-1}^(r)``.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Real (float32/float64) dense tensor of order ``N >= 2``, numpy or cupy.
    rank : int
        Number of components ``R >= 1``; may exceed some ``I_n``.
    init : {"random", "svd"} or CPTensor
        ``"random"``: standard normal factors (uniform ``[0, 1)`` when
        ``nonnegative``) drawn from ``seed``; ``"svd"``: leading left singular
        vectors of each unfolding, from ``X_(n) X_(n)^T`` (random columns pad
        modes with ``I_n < R``); a CPTensor of shape ``X.shape`` and rank
        ``rank``. See :mod:`tensorpar.cp.init`.
    seed : int or numpy.random.Generator, optional
        Randomness of the initialisation (the only random step).
    max_iter : int
        Most iterations (one iteration updates every mode once).
    tol : float
        Stop when the fit changes by less than ``tol`` from one iteration to
        the next; 0 runs ``max_iter`` iterations.
    nonnegative : bool
        Keep every factor ``>= 0`` with one HALS pass per mode update
        (:func:`~tensorpar.cp.update.hals_factor_update`); the error never
        increases.
    callback : callable ``(iteration, cp, fit) -> bool | None``, optional
        Called after each iteration (1-based); returning True stops the run.
    verbose : bool
        Print one progress line per iteration.
    checkpoint : path, optional
        Write the state to this ``.npz`` file every ``checkpoint_every``
        iterations and at the end.
    checkpoint_every : int
    resume : path, optional
        Continue from a checkpoint (``init`` and ``seed`` are then unused); the
        run ends with the same result as one never interrupted.
    engine : {"auto", "numpy", "numba", "cupy"}
        MTTKRP engine, passed to :func:`~tensorpar.mttkrp.mttkrp_sweep`.

    Returns
    -------
    cp : CPTensor
        Factors with unit-norm columns; the weights carry the scale.
    result : CPALSResult
        Fit per iteration, iterations, convergence, timings.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import cp_als, random_cp
    >>> X = random_cp((6, 5, 4), 2, seed=0).to_dense()
    >>> cp, res = cp_als(X, 2, seed=1, tol=1e-12, max_iter=500, engine="numpy")
    >>> round(res.fit, 6), res.converged
    (1.0, True)
    """
    t_start = time.perf_counter()
    X = as_float_array(X, "X", allowed=REAL_DTYPES, min_ndim=2)
    rank, max_iter, checkpoint_every = check_als_options(rank, max_iter, checkpoint_every,
                                                         tol, callback)
    xp = get_array_module(X)
    eng = resolve_engine(engine, xp, op="mttkrp")
    norm_x = _checked_norm(X)

    if resume is not None:
        state = load_checkpoint(resume, xp)
        _check_resumed(state, X, rank, nonnegative, norm_x, resume)
        t_origin = t_start - state.elapsed
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        state = initial_state(X, rank, init, rng=rng, nonnegative=nonnegative, norm_x=norm_x)
        state.init_time = time.perf_counter() - t_start
        t_origin = t_start
    resumed_from = state.iteration
    stop: StopReason = "tol" if has_converged(state.fits, tol) else "max_iter"

    while stop == "max_iter" and state.iteration < max_iter:
        t0 = time.perf_counter()
        fit = als_iteration(X, state, eng)
        state.iter_times.append(time.perf_counter() - t0)
        state.fits.append(fit)
        it = state.iteration
        if has_converged(state.fits, tol):
            stop = "tol"
        if checkpoint is not None and it % checkpoint_every == 0:
            state.elapsed = time.perf_counter() - t_origin
            save_checkpoint(checkpoint, state)
        if verbose:
            change = state.fits[-1] - state.fits[-2] if it >= 2 else None
            print(progress_line(it, fit, change, state.iter_times[-1]), flush=True)
        if callback is not None and callback(it, _model(state), fit) is True:
            stop = "callback" if stop != "tol" else stop
            break

    state.elapsed = time.perf_counter() - t_origin
    if checkpoint is not None and (state.iteration % checkpoint_every != 0
                                   or state.iteration == resumed_from):
        save_checkpoint(checkpoint, state)
    result = CPALSResult(
        fits=list(state.fits), n_iter=state.iteration, converged=stop == "tol",
        stop_reason=stop, wall_time=state.elapsed, init_time=state.init_time,
        iter_times=list(state.iter_times), norm_x=norm_x, engine=eng,
        nonnegative=nonnegative, resumed_from=resumed_from)
    return _model(state), result


def _model(state: CPALSState) -> CPTensor:
    return CPTensor(list(state.factors), state.weights)


def check_als_options(rank: Any, max_iter: Any, checkpoint_every: Any, tol: Any,
                      callback: Any) -> tuple[int, int, int]:
    """Validate the scalar options shared by serial and distributed CP-ALS.

    Returns ``(rank, max_iter, checkpoint_every)`` as ints; raises a
    ValueError/TypeError naming the offending option.
    """
    rank = check_positive_int(rank, "rank")
    max_iter = check_positive_int(max_iter, "max_iter", minimum=0)
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    return rank, max_iter, checkpoint_every


def _checked_norm(X: Any) -> float:
    """``||X||``, raising a ValueError when ``X`` is not finite (one pass when it is)."""
    norm_x = tensor_norm(X)
    if not math.isfinite(norm_x):
        check_finite(X, "X")
        raise ValueError("X is finite but its norm overflows; rescale X")
    return norm_x


def _check_resumed(state: CPALSState, X: Any, rank: int, nonnegative: bool, norm_x: float,
                   resume: Any) -> None:
    """Raise a ValueError unless a loaded checkpoint belongs to this problem."""
    where = f"resume={str(resume)!r}"
    if state.shape != tuple(X.shape):
        raise ValueError(f"{where} holds factors for shape {state.shape}, X has shape "
                         f"{tuple(X.shape)}")
    if state.rank != rank:
        raise ValueError(f"{where} holds a rank-{state.rank} model, rank={rank} was asked for")
    if state.nonnegative != bool(nonnegative):
        raise ValueError(f"{where} was written with nonnegative={state.nonnegative}")
    if state.factors[0].dtype != X.dtype:
        raise ValueError(f"{where} holds {state.factors[0].dtype} factors, X is {X.dtype}")
    if abs(state.norm_x - norm_x) > 1e-12 * max(norm_x, 1e-300):
        raise ValueError(f"{where} was written for a different tensor (||X|| = "
                         f"{state.norm_x!r}, this X has {norm_x!r})")
