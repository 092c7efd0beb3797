"""Randomized CP-ALS (CPRAND) on a :class:`~tensorpar.distributed.dist_tensor.DistTensor`.

Every rank runs the serial CPRAND loop (:func:`tensorpar.cp.rand.run_cprand`)
on full, replicated factors, drawing the same samples from the same
Generator. Per mode update each rank reads the pieces of the sampled fibres
its block holds (samples whose other-mode indices all fall in the block,
the block's rows of mode ``n``) into an ``S x I_n`` buffer of zeros; one
``Allreduce`` of that buffer assembles the sampled fibres on every rank
(exactly: each entry comes from one rank). Everything else (the product with
the sampled Khatri-Rao rows, the ``R x R`` solve, the normalisation, the
fit from the sampled entries) is the serial computation on the same
operands, so the iterates are those of :func:`tensorpar.cp_rand` to the last
bit whatever the number of ranks (given the same BLAS).

Why the fibres and not the ``I_n x R`` products of each rank's pieces
(``S / R`` times fewer words): sampled least squares with few samples is
ill-conditioned, and it amplifies the rounding differences of a summed
product from one iteration to the next (measured: ``6e-10`` in the fit between 2 ranks
and one after 10 iterations with ``S = 20``, ``R = 3``, leverage sampling on
a 5-way tensor). A run on any number of ranks then reproduces the serial
run of the same seed; the price is ``S I_n`` words per mode update, which for
``S = 10 R ln R`` stays far below a pass over the tensor.

The fit's sampled entries are gathered once (each is held by one rank; an
allreduce adds the others' zeros, exact), and one allreduce of two flags per
iteration makes the stop decision collective.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal, cast

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .._validation import REAL_DTYPES
from ..cp.als import initial_state, model_of
from ..cp.init import check_init
from ..cp.rand import RandOptions, SampledHooks, check_rand_options, fit_sample_of, run_cprand
from ..cp.result import CPALSResult
from ..cp.sampling import Sampling, draw_entries, gather_fibres
from ..cp.state import check_seed
from ..cp.tensor import CPTensor
from . import comm as C
from .cp import dist_norm, stand_in
from .dist_tensor import DistTensor

__all__ = ["dist_cp_rand", "owned_samples", "dist_entries"]

#: What the ranks agree on (the same names on every rank, whatever failed locally).
AGREED = ("rank", "max_iter", "tol", "n_samples", "sampling", "n_fit_samples",
          "max_stagnation", "init", "seed", "callback", "shape", "dtype", "grid")


def owned_samples(X: DistTensor, indices: list[np.ndarray | None]) -> np.ndarray:
    """Positions of the samples whose indices (all modes but the None one) this block holds.

    Examples
    --------
    >>> import numpy as np
    >>> X = DistTensor.scatter(np.ones((3, 4)))  # one process: the whole tensor
    >>> owned_samples(X, [None, np.array([0, 3, 2])])
    array([0, 1, 2])
    """
    count = next(len(i) for i in indices if i is not None)
    mask = np.ones(count, dtype=bool)
    for i, (a, b) in zip(indices, X.bounds):
        if i is not None:
            mask &= (a <= i) & (i < b)
    return np.flatnonzero(mask)


def dist_entries(X: DistTensor, indices: tuple[np.ndarray, ...]) -> Array:
    """``X`` at ``indices`` (one array per mode) on every rank (collective, exact).

    Examples
    --------
    >>> import numpy as np
    >>> X = DistTensor.scatter(np.arange(12.0).reshape(3, 4))
    >>> dist_entries(X, (np.array([2, 0]), np.array([1, 3])))
    array([9., 3.])
    """
    xp = get_array_module(X.local)
    own = owned_samples(X, list(indices))
    vals = xp.zeros(len(indices[0]), dtype=X.dtype)
    if own.size:
        local = tuple(xp.asarray(i[own] - a) for i, (a, _) in zip(indices, X.bounds))
        vals[xp.asarray(own)] = X.local[local]
    return C.allreduce(X.grid.cart, vals)


def _sampled_mttkrp(X: DistTensor) -> Callable[[int, list[np.ndarray | None], Array], Array]:
    xp = get_array_module(X.local)
    offsets = [a for a, _ in X.bounds]

    def mttkrp(n: int, indices: list[np.ndarray | None], Y: Array) -> Array:
        own = owned_samples(X, indices)
        F = xp.zeros((Y.shape[0], X.shape[n]), dtype=X.dtype)
        if own.size:
            a, b = X.bounds[n]
            F[xp.asarray(own), a:b] = gather_fibres(
                X.local, n, [None if i is None else i[own] for i in indices], offsets)
        # Each entry of F is held by one rank: the sum adds zeros (exact), and the
        # product below is the serial driver's own expression on the same operands.
        return C.allreduce(X.grid.cart, F).T @ Y

    return mttkrp


def _check_locally(X: DistTensor, rank: Any, init: Any, seed: Any,
                   args: dict[str, Any]) -> tuple[RandOptions, np.random.Generator]:
    """Every local check of :func:`dist_cp_rand` (no message); raises ValueError/TypeError."""
    options = check_rand_options(rank, **args)
    rng = check_seed(seed)
    if X.ndim < 2:
        raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}")
    if X.dtype.type not in REAL_DTYPES:
        raise TypeError(f"X has dtype {X.dtype}; expected one of float32, float64")
    if isinstance(init, CPTensor):
        check_init(init, X.shape, options.als.rank, nonnegative=False)
    elif not (isinstance(init, str) and init == "random"):
        raise ValueError(f"init must be 'random' or a CPTensor, got {init!r}")
    return options, rng


def dist_cp_rand(X: DistTensor, rank: int, *, n_samples: int | None = None,
                 max_iter: int = 100, tol: float = 1e-8,
                 seed: int | np.random.Generator | np.random.SeedSequence | None = None,
                 init: Literal["random"] | CPTensor = "random", sampling: Sampling = "uniform",
                 n_fit_samples: int = 2**14, max_stagnation: int = 20,
                 callback: Callable[[int, CPTensor, float], Any] | None = None,
                 verbose: bool = False) -> tuple[CPTensor, CPALSResult]:
    """Distributed randomized CP-ALS (collective); equal to :func:`tensorpar.cp_rand` up to rounding.

    Parameters
    ----------
    X : DistTensor
        Real tensor of order ``N >= 2`` (a DistTensor on every rank).
    rank, n_samples, max_iter, tol, sampling, n_fit_samples, max_stagnation, verbose
        As in :func:`tensorpar.cp_rand` (``verbose`` prints on rank 0); equal on
        every rank.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        As in :func:`tensorpar.cp_rand`, the same on every rank (a Generator
        in the same state); every rank draws the same samples from it. With
        ``None`` rank 0 draws fresh entropy and broadcasts it.
    init : "random" or CPTensor
        ``"svd"`` is not offered (it needs whole unfoldings).
    callback : callable ``(iteration, cp, fit) -> bool | None``, optional
        Called on every rank with the (replicated) model; the run stops when
        it returns True on any rank.

    Returns
    -------
    cp : CPTensor
        The model, on every rank.
    result : CPALSResult
        As the serial one; ``iter_times`` are this rank's.

    Raises
    ------
    ValueError, TypeError
        On every rank, before any data moves, when an argument is invalid on
        some rank or valid values differ.

    Notes
    -----
    **Words moved per iteration and rank**: ``S sum_n I_n`` (one allreduce
    of the sampled fibres per mode; see the module docstring) plus two
    flags. Once: the agreement, ``||X||`` (one word,
    :func:`~tensorpar.distributed.cp.dist_norm`) and the fit's
    ``n_fit_samples`` entries. Factors are replicated: ``R sum_n I_n`` words
    of memory per rank, and the ``S x R`` sampled products are computed on
    every rank (small next to the tensor).

    Examples
    --------
    See ``tests/distributed/test_dist_cp_rand.py`` (run under ``mpiexec``); on one process:

    >>> from tensorpar import random_cp
    >>> X = DistTensor.scatter(random_cp((20, 30, 40), 3, seed=0).to_dense())
    >>> cp, res = dist_cp_rand(X, 3, n_samples=60, seed=1, tol=1e-10, max_iter=200)
    >>> round(res.fit, 6)
    1.0
    """
    t_start = time.perf_counter()
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    cart = X.grid.cart
    args = dict(n_samples=n_samples, max_iter=max_iter, tol=tol, sampling=sampling,
                n_fit_samples=n_fit_samples, max_stagnation=max_stagnation,
                callback=callback, verbose=verbose)
    error: Exception | None = None
    agreed: dict[str, Any] = dict.fromkeys(AGREED)
    try:
        options, rng = _check_locally(X, rank, init, seed, args)
        values = options.as_dict()
        values.update(
            init=init if isinstance(init, str) else ("CPTensor", list(init.factors), init.weights),
            seed=rng.bit_generator.state if seed is not None else None,
            callback=callback is not None, shape=tuple(X.shape), dtype=str(X.dtype),
            grid=tuple(X.grid.dims))
        agreed = {k: values[k] for k in AGREED}
    except Exception as exc:  # noqa: BLE001 - every local failure is agreed on, then raised
        error = exc
    C.agree(cart, agreed, error=error)  # raises the same exception on every rank

    norm_x = dist_norm(X)
    if not math.isfinite(norm_x):
        raise ValueError("X contains NaN or infinite values (or its norm overflows)")
    if seed is None:  # fresh entropy, the same on every rank: rank 0 draws it
        fresh = int(cast(int, np.random.SeedSequence().entropy)) if cart.Get_rank() == 0 else None
        rng = np.random.default_rng(C.bcast_object(cart, fresh))
    state = initial_state(stand_in(X), options.als.rank, init, rng=rng, nonnegative=False,
                          norm_x=norm_x)
    idx, factor = draw_entries(X.shape, options.n_fit_samples, rng)
    fit_sample = fit_sample_of(dist_entries(X, idx), idx, factor, norm_x, state.scale_exp)
    state.init_time = time.perf_counter() - t_start
    hooks = SampledHooks(mttkrp=_sampled_mttkrp(X), view=model_of,
                         allreduce=lambda a: C.allreduce(cart, a),
                         prints=cart.Get_rank() == 0)
    xp = get_array_module(X.local)
    result = run_cprand(state, hooks, options, rng, fit_sample, callback=callback,
                        engine=xp.__name__.split(".")[0], t_origin=t_start)
    return model_of(state), result
