"""Randomized CP-ALS (CPRAND): sampled Khatri-Rao least squares and a sampled fit.

Battaglino, Ballard and Kolda, "A practical randomized CP tensor
decomposition", SIMAX 39(2), 2018. Each mode update of ALS solves
``min_A ||X_(n) - A Z_n^T||`` with ``Z_n`` the Khatri-Rao product of the
other factors (``prod_{k != n} I_k`` rows). CPRAND solves it on ``S`` sampled
rows instead (:mod:`tensorpar.cp.sampling`): with ``Z`` the sampled rows, ``F``
the matching fibres of ``X`` (``S x I_n``, read without unfolding ``X``) and
``W`` the row weights (identity for uniform sampling), the update is the
normal-equation solve ``A = (F^T W Z) (Z^T W Z)^{-1}``
(:func:`~tensorpar.cp.update.als_factor_update`, Cholesky with a
pseudo-inverse fallback), then the columns are normalised as in
:func:`tensorpar.cp_als`. One iteration reads ``N S I_n`` entries of ``X``
instead of all of them ``N`` times.

The fit is estimated from ``n_fit_samples`` entries drawn once (so the
estimate is a fixed function of the model and its change between
iterations is meaningful); ``||X||`` is computed exactly, once.

Serial and distributed code share :func:`run_cprand`; a driver passes in
:class:`SampledHooks`, whose ``mttkrp`` returns ``F^T Y`` for given samples
(serially from the whole tensor; distributed, each rank from the fibre
pieces it holds, then one allreduce). Why not :func:`tensorpar.cp.loop.run_als`:
its iteration takes ``V`` from the exact Grams and the fit from the exact
inner product of the last MTTKRP, both of which the sampled solver replaces
(``V = Z^T W Z`` changes with every sample, and the fit comes from sampled
entries), so no hook of that loop can express it; the pieces it is made of
(state, frame, update, normalisation, result record, progress line, option
checks) are reused here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array, InitMethod, StopReason
from .._validation import REAL_DTYPES, as_float_array, check_positive_int
from .als import checked_norm, initial_state, model_of
from .fit import has_converged
from .result import CPALSResult, progress_line
from .sampling import SAMPLINGS, Sampling, draw_entries, draw_rows, gather_fibres, model_entries, sampled_kr
from .state import ALSOptions, CPALSState, check_als_options, check_seed, ldexp_array
from .tensor import CPTensor
from .update import als_factor_update, gram, normalize_factor

__all__ = ["cp_rand", "run_cprand", "RandOptions", "check_rand_options", "FitSample",
           "SampledHooks", "default_n_samples"]

#: ``mttkrp(mode, indices, Y) -> F^T Y`` with ``F`` the sampled fibres (raw scale of X).
SampledMTTKRP = Callable[[int, list[np.ndarray | None], Array], Array]


def default_n_samples(rank: int) -> int:
    """``ceil(10 R ln R)`` rows (at least ``2 R``), the paper's choice.

    Examples
    --------
    >>> default_n_samples(16)
    444
    """
    return max(2 * rank, math.ceil(10 * rank * math.log(rank)))


@dataclass(frozen=True)
class RandOptions:
    """Validated options of a CPRAND run (compared across ranks when distributed).

    Examples
    --------
    >>> check_rand_options(2, n_samples=None).n_samples
    14
    """

    als: ALSOptions
    n_samples: int
    sampling: Sampling
    n_fit_samples: int
    max_stagnation: int

    def as_dict(self) -> dict[str, Any]:
        """``{option name: value}`` for :func:`tensorpar.distributed.comm.agree`."""
        out = self.als.as_dict()
        out.update(n_samples=self.n_samples, sampling=self.sampling,
                   n_fit_samples=self.n_fit_samples, max_stagnation=self.max_stagnation)
        return out


def check_rand_options(rank: Any, *, n_samples: Any, max_iter: Any = 100, tol: Any = 1e-8,
                       sampling: Any = "uniform", n_fit_samples: Any = 2**14,
                       max_stagnation: Any = 20, callback: Any = None,
                       verbose: Any = False) -> RandOptions:
    """Validate the options of :func:`cp_rand`; errors name the argument.

    Examples
    --------
    >>> check_rand_options(8, n_samples=5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n_samples=5 is smaller than rank=8: every sampled least-squares problem ...
    """
    als = check_als_options(rank, max_iter=max_iter, tol=tol, callback=callback, verbose=verbose)
    if n_samples is None:
        n_samples = default_n_samples(als.rank)
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples < als.rank:
        raise ValueError(f"n_samples={n_samples} is smaller than rank={als.rank}: every "
                         "sampled least-squares problem would be underdetermined")
    if not isinstance(sampling, str) or sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    return RandOptions(als=als, n_samples=n_samples, sampling=sampling,  # type: ignore[arg-type]
                       n_fit_samples=check_positive_int(n_fit_samples, "n_fit_samples"),
                       max_stagnation=check_positive_int(max_stagnation, "max_stagnation",
                                                         minimum=0))


@dataclass
class FitSample:
    """The entries the fit is estimated from, in the scaled frame.

    Attributes
    ----------
    indices : tuple of numpy.ndarray
        One index array per mode (:func:`~tensorpar.cp.sampling.draw_entries`).
    values : ndarray, float64
        ``X`` at ``indices`` times ``2^-e``.
    factor : float
        ``prod(I) / count`` (1 when every entry is used: the fit is then exact).
    norm : float
        ``||X|| 2^-e`` (exact).
    """

    indices: tuple[np.ndarray, ...]
    values: Array
    factor: float
    norm: float

    def fit(self, factors: list[Array], weights: Array) -> float:
        """``1 - sqrt(factor * sum (x - x_hat)^2) / ||X||`` at the sampled entries.

        For an all-zero tensor, ``-sqrt(...)`` (as :func:`~tensorpar.cp.fit.fit_from_terms`).
        """
        xp = get_array_module(self.values)
        wide = [f.astype("float64", copy=False) for f in factors]
        r = self.values - model_entries(wide, weights.astype("float64", copy=False),
                                        self.indices)
        res = math.sqrt(self.factor * float(xp.sum(r * r)))
        return 1.0 - res / self.norm if self.norm > 0 else -res


@dataclass
class SampledHooks:
    """What a CPRAND driver passes to :func:`run_cprand`.

    ``mttkrp(mode, indices, Y)`` returns the full ``I_mode x R`` product
    ``F^T Y`` of the sampled fibres ``F`` (raw scale) with ``Y`` (the sampled
    Khatri-Rao rows times their weights); ``allreduce`` (None on one process)
    sums the two stop flags of an iteration so that every rank stops alike;
    ``view`` is what the callback receives; ``prints`` whether this process
    prints the progress line.
    """

    mttkrp: SampledMTTKRP
    view: Callable[[CPALSState], Any]
    allreduce: Callable[[Array], Array] | None = None
    prints: bool = True


def sampled_iteration(state: CPALSState, hooks: SampledHooks, options: RandOptions,
                      rng: np.random.Generator) -> None:
    """Update every mode once from ``options.n_samples`` sampled rows (in place).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> X = random_cp((5, 6, 7), 2, seed=0).to_dense()
    >>> state = initial_state(X, 2, "random", rng=np.random.default_rng(1),
    ...                       nonnegative=False, norm_x=checked_norm(X))
    >>> hooks = SampledHooks(mttkrp=lambda n, i, Y: gather_fibres(X, n, i).T @ Y,
    ...                      view=model_of)
    >>> sampled_iteration(state, hooks, check_rand_options(2, n_samples=20),
    ...                   np.random.default_rng(2))
    >>> [round(float(np.linalg.norm(a[:, 0])), 12) for a in state.factors]
    [1.0, 1.0, 1.0]
    """
    e = state.scale_exp
    for n in range(len(state.factors)):
        idx, sq_w = draw_rows(state.factors, n, options.n_samples, rng, options.sampling)
        Z = sampled_kr(state.factors, idx)
        xp = get_array_module(Z)
        Y = Z if sq_w is None else Z * xp.asarray(sq_w, dtype=Z.dtype)[:, None]
        M = hooks.mttkrp(n, idx, Y)
        M = ldexp_array(M, -e) if e else M
        A = als_factor_update(M, Z.T @ Y)
        A, state.grams[n], state.weights = normalize_factor(A, gram(A))
        state.factors[n] = A


def run_cprand(state: CPALSState, hooks: SampledHooks, options: RandOptions,
               rng: np.random.Generator, fit_sample: FitSample, *,
               callback: Callable[..., Any] | None, engine: str,
               t_origin: float) -> CPALSResult:
    """Iterate CPRAND until ``tol``, stagnation, ``max_iter`` or the callback; return its record.

    The run stops with ``stop_reason="tol"`` (``converged``) when the
    estimated fit changes by less than ``tol``, or when it has not reached a
    new best for ``max_stagnation`` iterations in a row (0: never), since a
    sampled solver fluctuates around its limit instead of settling.

    Examples
    --------
    See :func:`cp_rand`.
    """
    stop: StopReason = "max_iter"
    best, stagnant = -math.inf, 0
    while stop == "max_iter" and state.iteration < options.als.max_iter:
        t0 = time.perf_counter()
        sampled_iteration(state, hooks, options, rng)
        fit = fit_sample.fit(state.factors, state.weights)
        state.iter_times.append(time.perf_counter() - t0)
        state.fits.append(fit)
        it = state.iteration
        best, stagnant = (fit, 0) if fit > best else (best, stagnant + 1)
        done = has_converged(state.fits, options.als.tol) or (
            options.max_stagnation > 0 and stagnant >= options.max_stagnation)
        if options.als.verbose and hooks.prints:
            change = state.fits[-1] - state.fits[-2] if it >= 2 else None
            print(progress_line(it, fit, change, state.iter_times[-1]), flush=True)
        asked = callback is not None and callback(it, hooks.view(state), fit) is True
        flags = np.array([float(done), float(asked)])
        if hooks.allreduce is not None:  # every rank takes the same decision
            flags = hooks.allreduce(flags)
        stop = "tol" if flags[0] > 0 else "callback" if flags[1] > 0 else stop
    state.elapsed = time.perf_counter() - t_origin
    return CPALSResult(
        fits=list(state.fits), n_iter=state.iteration, converged=stop == "tol",
        stop_reason=stop, wall_time=state.elapsed, init_time=state.init_time,
        iter_times=list(state.iter_times), norm_x=state.norm_x, engine=engine)


def fit_sample_of(values: Array, indices: tuple[np.ndarray, ...], factor: float,
                  norm_x: float, scale_exp: int) -> FitSample:
    """A :class:`FitSample` from raw sampled values of ``X`` (moved into the scaled frame).

    Examples
    --------
    >>> import numpy as np
    >>> fs = fit_sample_of(np.array([4.0]), (np.array([0]),), 1.0, 4.0, 3)
    >>> float(fs.values[0]), fs.norm
    (0.5, 0.5)
    """
    wide = values.astype("float64", copy=False)
    return FitSample(indices=indices, values=ldexp_array(wide, -scale_exp) if scale_exp else wide,
                     factor=factor, norm=math.ldexp(norm_x, -scale_exp))


def cp_rand(X: Any, rank: int, *, n_samples: int | None = None, max_iter: int = 100,
            tol: float = 1e-8, seed: int | np.random.Generator | np.random.SeedSequence | None = None,
            init: InitMethod | CPTensor = "random", sampling: Sampling = "uniform",
            n_fit_samples: int = 2**14, max_stagnation: int = 20,
            callback: Callable[[int, CPTensor, float], Any] | None = None,
            verbose: bool = False) -> tuple[CPTensor, CPALSResult]:
    """Randomized CP-ALS (CPRAND): sampled Khatri-Rao least squares, sampled fit.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Real (float32/float64) dense tensor of order ``N >= 2``, numpy or cupy.
    rank : int
        Number of components ``R >= 1``.
    n_samples : int, optional
        Rows of the Khatri-Rao product (fibres of ``X``) sampled per mode
        update, ``>= rank``; default ``ceil(10 R ln R)`` (at least ``2R``).
        Sampled with replacement, so it may exceed ``prod_{k != n} I_k``.
    max_iter : int
        Most iterations (one iteration updates every mode once).
    tol : float
        Stop when the estimated fit changes by less than ``tol``.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Randomness of the start, the fit's entries and every sample (drawn in
        that order from one Generator): the same seed gives the same run.
    init : {"random", "svd"} or CPTensor
        As in :func:`tensorpar.cp_als` (``"svd"`` reads all of ``X``).
    sampling : {"uniform", "leverage"}
        How the Khatri-Rao rows are drawn (:mod:`tensorpar.cp.sampling`):
        uniformly, or by the product of the factors' leverage scores
        (TensorLy's default; more robust for factors with a few heavy rows).
    n_fit_samples : int
        Entries of ``X`` drawn once to estimate the fit; with
        ``n_fit_samples >= X.size`` every entry is used and the fit is exact.
    max_stagnation : int
        Also stop (as converged) after this many iterations in a row without a
        new best estimated fit; 0 disables it.
    callback : callable ``(iteration, cp, fit) -> bool | None``, optional
        Called after each iteration with the model and its estimated fit;
        returning True stops the run.
    verbose : bool
        Print one progress line per iteration (the estimated fit).

    Returns
    -------
    cp : CPTensor
        Factors with unit-norm columns; the weights carry the scale.
    result : CPALSResult
        ``fits`` are the estimated fits; ``engine`` names the array module
        (the sampled products are plain array operations).

    Notes
    -----
    **The estimated fit.** With ``F = n_fit_samples`` entries ``x_j`` drawn
    uniformly with replacement, ``(prod I / F) sum_j (x_j - x_hat_j)^2`` is an
    unbiased estimate of ``||X - X_hat||^2`` whose relative standard deviation
    is ``sqrt((kappa - 1) / F)`` with ``kappa`` the kurtosis of the residual
    entries (``kappa = 3`` for Gaussian-like residuals): ``2^14`` entries give
    about 1.1% on the squared residual, hence about 0.55% of ``1 - fit`` on
    the fit (a fit of 0.99 is known to about ``+-5e-5``). Residuals
    concentrated on few entries (large ``kappa``) need more entries. The
    entries are drawn once, so the estimate is a smooth function of the
    model; its bias is what the tests measure against the true fit.

    **Scale.** As :func:`tensorpar.cp_als`: the run works on ``X 2^-e`` (the
    sampled fibres and entries are scaled, exactly), so ``c X`` gives ``c``
    times the weights and the same factors and fits up to rounding.

    **Cost.** Per iteration ``N S (I_n + N) R`` flops and ``S sum_n I_n``
    entries of ``X`` read (plus ``F N R`` for the fit), against a full pass
    over ``X`` per mode for :func:`tensorpar.cp_als`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> X = random_cp((30, 40, 50), 3, seed=0).to_dense()
    >>> cp, res = cp_rand(X, 3, n_samples=60, seed=1, tol=1e-10, max_iter=200)
    >>> round(res.fit, 6), res.converged
    (1.0, True)
    """
    t_start = time.perf_counter()
    X = as_float_array(X, "X", allowed=REAL_DTYPES, min_ndim=2)
    options = check_rand_options(rank, n_samples=n_samples, max_iter=max_iter, tol=tol,
                                 sampling=sampling, n_fit_samples=n_fit_samples,
                                 max_stagnation=max_stagnation, callback=callback,
                                 verbose=verbose)
    rng = check_seed(seed)
    xp = get_array_module(X)
    norm_x = checked_norm(X)
    state = initial_state(X, options.als.rank, init, rng=rng, nonnegative=False, norm_x=norm_x)
    idx, factor = draw_entries(X.shape, options.n_fit_samples, rng)
    values = X[tuple(xp.asarray(i) for i in idx)]
    fit_sample = fit_sample_of(values, idx, factor, norm_x, state.scale_exp)
    state.init_time = time.perf_counter() - t_start

    def mttkrp(n: int, indices: list[np.ndarray | None], Y: Array) -> Array:
        return gather_fibres(X, n, indices).T @ Y

    hooks = SampledHooks(mttkrp=mttkrp, view=model_of)
    result = run_cprand(state, hooks, options, rng, fit_sample, callback=callback,
                        engine=xp.__name__.split(".")[0], t_origin=t_start)
    return model_of(state), result
