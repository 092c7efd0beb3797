"""CP decomposition by alternating least squares (CP-ALS) on the MTTKRP sweep: the serial driver.

One iteration is one :func:`~tensorpar.mttkrp.mttkrp_sweep` (the only pass
over ``X``; the engine may share partial contractions between modes) plus,
per mode, ``R x R`` work: the Hadamard product of the Grams, a Cholesky
solve (or a HALS pass when ``nonnegative``), the new Gram and the column
normalisation (:mod:`tensorpar.cp.update`). The fit comes from the last
MTTKRP and the Grams (:mod:`tensorpar.cp.fit`); ``||X||`` is computed once.
The loop itself is :func:`tensorpar.cp.loop.run_als`, shared with the
distributed driver.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import numpy as np

from .._backend import get_array_module, resolve_engine
from .._typing import Array, Engine, InitMethod
from .._validation import REAL_DTYPES, as_float_array, check_finite
from ..dense import sample_indices, tensor_norm
from ..mttkrp import mttkrp, mttkrp_sweep
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import ALSHooks, Update, check_als_memory, run_als
from .missing import check_missing_memory, observed_data, observed_residual, row_grams
from .result import CPALSResult
from .start import initial_state
from .state import ALSOptions, CPALSState, check_als_options, check_resumed, check_seed, scale_exponent
from .tensor import CPTensor
from .variant import MissingMethod

__all__ = ["cp_als", "initial_state", "resumed_state", "checked_norm", "sample_entries",
           "model_of"]

Callback = Callable[[int, CPTensor, float], Any]


def cp_als(X: Any, rank: int, *, init: InitMethod | CPTensor = "random",
           seed: int | np.random.Generator | np.random.SeedSequence | None = None,
           max_iter: int = 100, tol: float = 1e-8,
           nonnegative: bool | Sequence[int] = False,
           callback: Callback | None = None,
           verbose: bool = False, checkpoint: str | os.PathLike[str] | None = None,
           checkpoint_every: int = 10, resume: str | os.PathLike[str] | None = None,
           engine: Engine = "auto", mask: Any = None, missing: Literal["nan"] | None = None,
           missing_method: MissingMethod = "em", l2_reg: float = 0.0,
           fixed_modes: Sequence[int] | None = None, n_inner: int = 1,
           linesearch: bool = False) -> tuple[CPTensor, CPALSResult]:
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
        vectors of each unfolding, from the smaller of ``X_(n) X_(n)^T`` and
        ``X_(n)^T X_(n)`` (random columns pad modes with fewer directions than
        ``R``); a CPTensor of shape ``X.shape`` and rank ``rank``. See
        :mod:`tensorpar.cp.init`.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Randomness of the initialisation (the only random step); anything
        else raises a TypeError.
    max_iter : int
        Most iterations (one iteration updates every mode once).
    tol : float
        Stop when the fit changes by less than ``tol`` from one iteration to
        the next; 0 runs ``max_iter`` iterations.
    nonnegative : bool or sequence of int
        ``True``: keep every factor ``>= 0``; a sequence of modes: keep those
        factors ``>= 0`` (``nonnegative=[0, 2]``), the others unconstrained.
        A nonnegative mode is updated by ``n_inner`` HALS passes
        (:func:`~tensorpar.cp.update.hals_factor_update`), which never
        increase the error; any nonnegative mode makes a random start uniform.
    callback : callable ``(iteration, cp, fit) -> bool | None``, optional
        Called after each iteration (1-based); returning True stops the run.
    verbose : bool
        Print one progress line per iteration.
    checkpoint : path, optional
        Write the state to this ``.npz`` file every ``checkpoint_every``
        iterations and at the end. The path is checked before the first
        iteration (its directory must exist; it must not be a directory).
    checkpoint_every : int
    resume : path, optional
        Continue from a checkpoint (``init`` and ``seed`` are then unused); the
        run ends with the same result as one never interrupted. The checkpoint
        holds a fingerprint of ``X`` (norm and 16 sampled entries): a
        checkpoint of another tensor is refused with a ValueError.
    engine : {"auto", "numpy", "numba", "cupy"}
        MTTKRP engine, passed to :func:`~tensorpar.mttkrp.mttkrp_sweep`.
    mask : array of bool, optional
        ``X``'s shape, True where ``X`` is observed (0/1 numbers accepted);
        the values of ``X`` at missing entries are not read.
    missing : {None, "nan"}
        ``"nan"``: NaN entries of ``X`` are missing (with ``mask`` too).
    missing_method : {"em", "wls"}
        With missing entries: EM imputation (TensorLy's masked ``parafac``)
        or exact row-wise weighted least squares (about ``R`` times the cost
        per sweep); see :mod:`tensorpar.cp.missing`. The fit is then the fit
        on the observed entries, ``1 - ||W * (X - X_hat)|| / ||W * X||``.
    l2_reg : float
        Ridge ``l2_reg * sum_n ||A_n||^2`` on the factors as TensorLy's
        ``parafac(l2_reg=...)`` holds them (:mod:`tensorpar.cp.scales`).
    fixed_modes : sequence of int, optional
        Modes whose factors keep their start (also the last mode, unlike
        TensorLy's; their MTTKRP is still computed by the sweep).
    n_inner : int
        HALS passes per update of a nonnegative mode, always all of them
        (TensorLy's ``non_negative_parafac_hals`` runs up to 5 and stops early
        when a pass changes the factor by less than ``1e-4`` of the first
        pass's change; with ``n_inner=5`` the two agree until that happens).
    linesearch : bool
        Bro's extrapolation between sweeps (:mod:`tensorpar.cp.accel`).

    Returns
    -------
    cp : CPTensor
        Factors with unit-norm columns; the weights carry the scale.
    result : CPALSResult
        Fit per iteration, iterations, convergence, timings.

    Raises
    ------
    ValueError
        Besides bad options: when the run would not fit in memory, estimated
        before anything is allocated (:func:`tensorpar.cp.loop.check_als_memory`).

    Notes
    -----
    **Scale.** The algorithm is scale-invariant: it works on ``X 2^-e``
    with ``e`` the binary exponent of ``||X||`` (the MTTKRP output is
    scaled, exactly; ``X`` is not copied), so for any representable ``c``
    the results for ``c X`` are ``c`` times those for ``X`` (weights scaled,
    factors and fits equal up to rounding) -- down to data around
    ``1e-300`` in float64 and ``1e-30`` in float32.

    **Fit accuracy.** ``||X||`` and the fit terms are accumulated in float64
    (also for float32 data), but the fit is computed from ``||X||^2 +
    ||X_hat||^2 - 2 <X, X_hat>``, nearly equal terms near an exact fit: it is
    reliable to about ``sqrt(eps)`` there (``3e-4`` to ``2e-3`` for float32,
    ``1e-8`` for float64; see :mod:`tensorpar.cp.fit`). ``tol`` below that
    limit compares rounding noise.

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
    masked = mask is not None or missing is not None
    options = check_als_options(rank, max_iter=max_iter, tol=tol, nonnegative=nonnegative,
                                callback=callback, verbose=verbose, checkpoint=checkpoint,
                                checkpoint_every=checkpoint_every, resume=resume, ndim=X.ndim,
                                l2_reg=l2_reg, fixed_modes=fixed_modes, n_inner=n_inner,
                                linesearch=linesearch, missing_method=missing_method,
                                masked=masked)
    rng = check_seed(seed)
    xp = get_array_module(X)
    eng = cast(Engine, resolve_engine(engine, xp, op="mttkrp"))
    check_als_memory(X.shape, options.rank, X.dtype.itemsize)
    if masked:
        check_missing_memory(X.shape, options.rank, X.dtype.itemsize, missing_method)
    Y, W = observed_data(X, mask, missing) if masked else (X, None)
    norm_x = checked_norm(Y)
    samples = sample_entries(Y) if options.checkpoint or options.resume else []

    if options.resume is not None:
        state = resumed_state(options, X.shape, X.dtype, xp, norm_x, samples)
        t_origin = t_start - state.elapsed
    else:
        state = initial_state(Y, options.rank, init, rng=rng, nonnegative=options.nonnegative,
                              norm_x=norm_x, variant=options.variant)
        state.samples = samples
        state.init_time = time.perf_counter() - t_start
        t_origin = t_start
    hooks = _serial_hooks(Y, W, state, options, eng)
    if W is not None and state.variant.missing == "em" and state.iteration > 0 and \
            hooks.residual is not None:
        hooks.residual(True)  # a resumed EM run: the missing entries as the run left them
    result = run_als(state, hooks, options, callback=callback, engine=eng, t_origin=t_origin)
    return model_of(state), result


def _serial_hooks(Y: Array, W: Array | None, state: CPALSState, options: ALSOptions,
                  eng: Engine) -> ALSHooks:
    def sweep(update: Update) -> None:
        mttkrp_sweep(Y, state.factors, update, engine=eng)

    def save(st: CPALSState) -> None:
        save_checkpoint(str(options.checkpoint), st)

    def set_storage(arrays: list[Array]) -> None:
        state.factors[:] = arrays

    hooks = ALSHooks(sweep=sweep, view=model_of, save=save,
                     mttkrp=lambda n: mttkrp(Y, state.factors, n, engine=eng),
                     storage=lambda: state.factors, set_storage=set_storage)
    if W is not None:
        hooks.residual = lambda fill: observed_residual(Y, W, state.factors, state.weights,
                                                        state.scale_exp, fill)
        hooks.row_grams = lambda n: row_grams(W, state.factors, n)
    return hooks


def model_of(state: CPALSState) -> CPTensor:
    """The CPTensor of a (full-factor) state: its factors and the unscaled weights.

    Examples
    --------
    >>> import numpy as np
    >>> s = CPALSState([np.ones((2, 1))], np.array([0.5]), [np.ones((1, 1))], scale_exp=2)
    >>> model_of(s).weights
    array([2.])
    """
    return CPTensor(list(state.factors), state.model_weights())


def resumed_state(options: ALSOptions, shape: tuple[int, ...], dtype: Any, xp: Any,
                  norm_x: float, samples: list[float]) -> CPALSState:
    """Load ``options.resume``, check it belongs to this ``X``, move it to ``||X||``'s frame.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> X = np.arange(1.0, 13.0).reshape(3, 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "c.npz")
    >>> _ = cp_als(X, 1, seed=0, max_iter=2, checkpoint=path)
    >>> s = resumed_state(check_als_options(1, resume=path), X.shape, X.dtype, np,
    ...                   checked_norm(X), sample_entries(X))
    >>> s.iteration, s.scale_exp
    (2, 5)
    """
    state = load_checkpoint(str(options.resume), xp)
    check_resumed(state, shape, dtype, options, norm_x, samples)
    state.rescale(scale_exponent(norm_x))
    state.samples = samples
    return state


def checked_norm(X: Array) -> float:
    """``||X||``, raising a ValueError when ``X`` is not finite (one pass when it is).

    Examples
    --------
    >>> import numpy as np
    >>> checked_norm(np.full((2, 2), 1e300))
    2e+300
    """
    norm_x = tensor_norm(X)
    if not math.isfinite(norm_x):
        check_finite(X, "X")
        raise ValueError("X is finite but its norm overflows the floating-point range; "
                         "rescale X")
    return norm_x


def sample_entries(X: Array) -> list[float]:
    """``X`` at :func:`tensorpar.dense.sample_indices` (the fingerprint stored in a checkpoint).

    Examples
    --------
    >>> import numpy as np
    >>> len(sample_entries(np.ones((3, 4))))
    16
    """
    return [float(X[idx]) for idx in sample_indices(X.shape)]
