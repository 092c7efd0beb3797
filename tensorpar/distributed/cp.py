"""CP-ALS on a :class:`~tensorpar.distributed.dist_tensor.DistTensor` (PLANC's scheme).

Every rank runs the serial driver's pieces (:mod:`tensorpar.cp.update`,
:mod:`tensorpar.cp.fit`, :mod:`tensorpar.cp.init`,
:mod:`tensorpar.cp.checkpoint`) on the rows it owns, so the iterates equal
those of :func:`tensorpar.cp_als` up to rounding. Per mode ``n``:

1. local MTTKRP of the block and ``Reduce_scatter`` over the mode-``n``
   slice: the owned rows of ``M_n`` (:mod:`tensorpar.distributed.mttkrp`);
2. the ``R x R`` solve (or HALS pass) on the owned rows;
3. one ``Allreduce`` of their ``R x R`` Gram over all ranks, then the column
   normalisation (rows are independent given the Gram);
4. one ``Allgatherv`` over the slice refreshes the factor block.

The fit needs no extra message: ``<X, X_hat> = sum M_{N-1} * A_raw`` (the
last mode's MTTKRP times its unnormalised new rows) rides along in the last
mode's Gram allreduce, and ``||X_hat||^2`` comes from the replicated Grams.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._backend import Engine, get_array_module, resolve_engine
from .._validation import REAL_DTYPES
from ..cp.als import _check_resumed, check_als_options
from ..cp.checkpoint import CPALSState, load_checkpoint, save_checkpoint
from ..cp.fit import cp_inner_from_mttkrp, cp_norm_sq_from_grams, fit_from_terms, has_converged
from ..cp.init import initialize_cp
from ..cp.result import CPALSResult, StopReason, progress_line
from ..cp.tensor import CPTensor
from ..cp.update import (
    als_factor_update,
    gram,
    hadamard_grams,
    hals_factor_update,
    normalize_factor,
)
from . import comm as C
from .comm import check_all
from .dist_tensor import DistTensor
from .errors import collective_guard
from .mttkrp import allgather_factor, factor_blocks, owned_rows, sweep_unchecked

__all__ = ["cp_als", "als_iteration", "DistCPModel"]


@dataclass
class DistCPModel:
    """The distributed CP iterate as one rank holds it.

    Attributes
    ----------
    X : DistTensor
        The tensor being decomposed (its grid defines the layout).
    blocks : list of ndarray, each (``|J_n(p_n)|``, R)
        Factor rows ``J_n(p_n)`` of every mode (unit-norm columns globally).
    owned : list of ndarray
        The rows this rank owns (:func:`~tensorpar.distributed.mttkrp.owned_rows`).
    weights : ndarray, shape (R,)
    grams : list of ndarray, each (R, R)
        Grams of the full factors (replicated).
    """

    X: DistTensor
    blocks: list[Any]
    owned: list[Any]
    weights: Any
    grams: list[Any]
    fits: list[float] = field(default_factory=list)
    iter_times: list[float] = field(default_factory=list)
    norm_x: float = 0.0
    nonnegative: bool = False
    init_time: float = 0.0
    elapsed: float = 0.0

    def gather(self) -> CPTensor:
        """The full model on every rank (collective: one ``Allgatherv`` per mode)."""
        full = [allgather_factor(self.X, A, n) for n, A in enumerate(self.owned)]
        return CPTensor(full, self.weights.copy())

    def state(self) -> CPALSState:
        """The serial driver's state record (collective), e.g. for its checkpoint format."""
        return CPALSState(factors=self.gather().factors, weights=self.weights,
                          grams=list(self.grams), fits=list(self.fits),
                          iter_times=list(self.iter_times), norm_x=self.norm_x,
                          nonnegative=self.nonnegative, init_time=self.init_time,
                          elapsed=self.elapsed)


def _from_full(X: DistTensor, factors: list[Any], weights: Any, grams: list[Any],
               **kw: Any) -> DistCPModel:
    blocks = factor_blocks(X, factors)
    owned = []
    for n, (b0, _) in enumerate(X.bounds):
        a, b = owned_rows(X, n)
        owned.append(blocks[n][a - b0:b - b0])
    return DistCPModel(X, blocks, owned, weights, grams, **kw)


def als_iteration(model: DistCPModel, engine: str = "auto") -> float:
    """One distributed CP-ALS iteration (collective); updates ``model`` and returns the fit.

    Notes
    -----
    **Words moved per rank** (``q_n = P / P_n``, ``|J_n|`` this rank's block
    height): ``2 R |J_n|`` for every mode with ``q_n > 1`` (reduce-scatter and
    all-gather of :func:`~tensorpar.distributed.mttkrp.dist_mttkrp_sweep`),
    plus, when ``P > 1``, ``R^2`` per mode for the Gram allreduces and one
    more word (the inner product of the fit) in the last one.
    """
    X = model.X
    N = X.ndim
    cart = X.grid.cart
    xp = get_array_module(model.weights)
    inner: list[float] = []

    def update(n: int, M: Any) -> Any:
        V = hadamard_grams(model.grams, skip=n)
        if model.nonnegative:
            A = hals_factor_update(model.owned[n] * model.weights[None, :], M, V)
        else:
            A = als_factor_update(M, V)
        G = gram(A)
        if n == N - 1:
            # <X, X_hat> = sum_i,r M A_raw; it shares the Gram's message.
            share = cp_inner_from_mttkrp(M, A, xp.ones(A.shape[1], dtype=A.dtype))
            tot = C.allreduce(cart, xp.concatenate([G.ravel(), xp.asarray([share], G.dtype)]))
            G, inner_sum = tot[:-1].reshape(G.shape), float(tot[-1])
            inner.append(inner_sum)
        else:
            G = C.allreduce(cart, G)
        A, model.grams[n], model.weights = normalize_factor(A, G)
        model.owned[n] = A
        return A

    sweep_unchecked(X, model.blocks, update, engine)
    for n, (b0, _) in enumerate(X.bounds):  # owned rows as views of the new blocks
        a, b = owned_rows(X, n)
        model.owned[n] = model.blocks[n][a - b0:b - b0]
    norm_sq = cp_norm_sq_from_grams(hadamard_grams(model.grams), model.weights)
    fit, _ = fit_from_terms(model.norm_x, inner[0], norm_sq)
    return fit


Callback = Callable[[int, DistCPModel, float], Any]


def cp_als(X: DistTensor, rank: int, *, init: Literal["random"] | CPTensor = "random",
           seed: int | np.random.Generator | None = None, max_iter: int = 100,
           tol: float = 1e-8, nonnegative: bool = False, callback: Callback | None = None,
           verbose: bool = False, checkpoint: str | os.PathLike[str] | None = None,
           checkpoint_every: int = 10, resume: str | os.PathLike[str] | None = None,
           engine: Engine = "auto") -> tuple[CPTensor, CPALSResult]:
    """Distributed CP decomposition by alternating least squares (collective).

    The options mean what they mean in :func:`tensorpar.cp_als`; from the same
    ``init``/``seed`` the fit per iteration equals the serial one up to
    rounding (the tests require 1e-10 on models that do not fit exactly).

    Parameters
    ----------
    X : DistTensor
        Real tensor of order ``N >= 2``.
    rank : int
    init : "random" or CPTensor
        ``"random"`` draws the full factors on every rank from ``seed`` exactly
        as the serial driver does (so every rank and the serial run start
        alike); a CPTensor must be the same on every rank. ``"svd"`` is not
        offered: the unfolding Grams would need the tensor's fibres on one rank.
    seed, max_iter, tol, nonnegative, verbose, checkpoint_every, engine
        As in :func:`tensorpar.cp_als` (``verbose`` prints on rank 0).
    callback : callable ``(iteration, model, fit) -> bool | None``, optional
        Called on every rank after each iteration with the
        :class:`DistCPModel` (``model.gather()`` is collective); the run stops
        when it returns True on any rank.
    checkpoint : path, optional
        Every ``checkpoint_every`` iterations and at the end the factors are
        gathered and rank 0 writes the **serial** checkpoint format
        (:func:`tensorpar.cp.checkpoint.save_checkpoint`), so a run can be
        resumed by :func:`tensorpar.cp_als` or on another number of ranks.
    resume : path, optional
        Checkpoint to continue from, read by every rank (a shared file system).

    Returns
    -------
    cp : CPTensor
        Full factors (unit-norm columns) and weights, on every rank.
    result : CPALSResult
        As the serial one; ``iter_times`` are this rank's.

    Notes
    -----
    Words moved per iteration and rank: see :func:`als_iteration`. The
    callback adds one one-flag allreduce (``"meta"``) per iteration; a
    checkpoint adds ``I_n R`` words per mode.
    """
    t_start = time.perf_counter()
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    cart = X.grid.cart
    rank, max_iter, checkpoint_every = check_als_options(rank, max_iter, checkpoint_every,
                                                         tol, callback)
    if X.ndim < 2:
        raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}")
    if isinstance(init, str) and init == "svd":
        raise ValueError("init='svd' is not available for a DistTensor; use 'random' or a CPTensor")
    check_all(cart, X.dtype.type in REAL_DTYPES,
              f"X has dtype {X.dtype}; expected one of float32, float64", TypeError)
    xp = get_array_module(X.local)
    eng = resolve_engine(engine, xp, op="mttkrp")
    norm_x = X.norm()
    if not np.isfinite(norm_x):
        raise ValueError("X contains NaN or infinite values (or its norm overflows)")

    if resume is not None:
        with collective_guard(cart, ValueError):
            state = load_checkpoint(resume, xp)
            _check_resumed(state, X, rank, nonnegative, norm_x, resume)
        model = _from_full(X, state.factors, state.weights, state.grams, fits=state.fits,
                           iter_times=state.iter_times, norm_x=norm_x, nonnegative=nonnegative,
                           init_time=state.init_time, elapsed=state.elapsed)
        t_origin = t_start - state.elapsed
    else:
        model = _initial_model(X, rank, init, seed, nonnegative, norm_x)
        model.init_time = time.perf_counter() - t_start
        t_origin = t_start
    resumed_from = len(model.fits)
    stop: StopReason = "tol" if has_converged(model.fits, tol) else "max_iter"
    root = cart.Get_rank() == 0

    while stop == "max_iter" and len(model.fits) < max_iter:
        t0 = time.perf_counter()
        fit = als_iteration(model, eng)
        model.iter_times.append(time.perf_counter() - t0)
        model.fits.append(fit)
        it = len(model.fits)
        if has_converged(model.fits, tol):
            stop = "tol"
        if checkpoint is not None and it % checkpoint_every == 0:
            model.elapsed = time.perf_counter() - t_origin
            _save(cart, checkpoint, model)
        if verbose and root:
            change = model.fits[-1] - model.fits[-2] if it >= 2 else None
            print(progress_line(it, fit, change, model.iter_times[-1]), flush=True)
        if callback is not None:
            if C.any_true(cart, callback(it, model, fit) is True):
                stop = "callback" if stop != "tol" else stop
                break

    model.elapsed = time.perf_counter() - t_origin
    if checkpoint is not None and (len(model.fits) % checkpoint_every != 0
                                   or len(model.fits) == resumed_from):
        _save(cart, checkpoint, model)
    result = CPALSResult(
        fits=list(model.fits), n_iter=len(model.fits), converged=stop == "tol",
        stop_reason=stop, wall_time=model.elapsed, init_time=model.init_time,
        iter_times=list(model.iter_times), norm_x=norm_x, engine=eng,
        nonnegative=nonnegative, resumed_from=resumed_from)
    return model.gather(), result


def _initial_model(X: DistTensor, rank: int, init: Any, seed: Any, nonnegative: bool,
                   norm_x: float) -> DistCPModel:
    """The serial initialisation, replicated: every rank draws the full factors."""
    xp = get_array_module(X.local)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # For "random" and a CPTensor, initialize_cp reads only X's shape, dtype and
    # array module, so a zero-stride stand-in avoids holding the tensor.
    stand_in = xp.broadcast_to(xp.zeros((), dtype=X.dtype), X.shape)
    with collective_guard(X.grid.cart, ValueError):
        cp = initialize_cp(stand_in, rank, init, rng=rng, nonnegative=nonnegative)
    return _from_full(X, list(cp.factors), cp.weights, [gram(f) for f in cp.factors],
                      norm_x=norm_x, nonnegative=nonnegative)


def _save(cart: Any, path: Any, model: DistCPModel) -> None:
    """Gather the factors and write the serial checkpoint on rank 0 (errors raised on all ranks)."""
    state = model.state()
    msg = ""
    if cart.Get_rank() == 0:
        try:
            save_checkpoint(path, state)
        except OSError as exc:
            msg = f"could not write checkpoint {os.fspath(path)!r}: {exc}"
    check_all(cart, not msg, msg, OSError)
