"""CP-ALS on a :class:`~tensorpar.distributed.dist_tensor.DistTensor` (PLANC's scheme).

Every rank runs the serial driver's loop (:func:`tensorpar.cp.loop.run_als`)
on the rows it owns, with this module's hooks: the MTTKRP sweep with its
reduce-scatter and all-gather, the Gram allreduce, the rank-0 checkpoint
write and the collective stop decision. The iterates therefore equal those
of :func:`tensorpar.cp_als` up to rounding. Per mode ``n``:

1. local MTTKRP of the block and ``Reduce_scatter`` over the mode-``n``
   slice: the owned rows of ``M_n`` (:mod:`tensorpar.distributed.mttkrp`);
2. the ``R x R`` solve (or HALS pass) on the owned rows;
3. one ``Allreduce`` of their ``R x R`` Gram over all ranks, then the column
   normalisation (rows are independent given the Gram);
4. one ``Allgatherv`` over the slice refreshes the factor block.

The fit's ``<X, X_hat>`` rides along in the last Gram allreduce. Before
any data moves every rank validates every argument and the ranks agree on
them (:func:`tensorpar.distributed.comm.agree`): a bad argument on one rank,
or valid values that differ, raise the same exception on every rank.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from .._backend import get_array_module, resolve_engine
from .._typing import Array, Engine
from .._validation import REAL_DTYPES
from ..cp.als import initial_state
from ..cp.checkpoint import load_checkpoint, save_checkpoint
from ..cp.init import check_init
from ..cp.loop import ALSHooks, Update, check_als_memory, run_als
from ..cp.loop import als_iteration as shared_iteration
from ..cp.result import CPALSResult
from ..cp.state import ALSOptions, CPALSState, check_als_options, check_resumed, check_seed, scale_exponent
from ..cp.tensor import CPTensor
from ..dense import abs_max, sample_indices, sum_squares
from . import comm as C
from .comm import check_all
from .dist_tensor import DistTensor
from .mttkrp import allgather_factor, factor_blocks, owned_rows, sweep_unchecked

__all__ = ["dist_cp_als", "cp_als", "als_iteration", "DistCPModel", "dist_norm",
           "dist_sample_entries", "stand_in"]

#: What the ranks agree on (:func:`tensorpar.distributed.comm.agree`). Not ``verbose``
#: (only rank 0 prints) nor the ``resume`` path (each rank may read its own copy; the
#: loaded state is compared instead).
AGREED = ("rank", "max_iter", "tol", "nonnegative", "checkpoint", "checkpoint_every",
          "init", "seed", "engine", "callback", "shape", "dtype", "grid", "resumed_state")


@dataclass
class DistCPModel:
    """The distributed CP iterate as one rank holds it.

    Attributes
    ----------
    X : DistTensor
        The tensor being decomposed (its grid defines the layout).
    blocks : list of ndarray, each (``|J_n(p_n)|``, R)
        Factor rows ``J_n(p_n)`` of every mode (unit-norm columns globally).
    state : CPALSState
        The shared state record; ``state.factors[n]`` holds the rows this rank
        owns (:func:`~tensorpar.distributed.mttkrp.owned_rows`), views of
        ``blocks``; Grams and weights are replicated.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> X = DistTensor.scatter(random_cp((6, 5, 4), 2, seed=0).to_dense())
    >>> seen = []
    >>> _ = dist_cp_als(X, 2, seed=1, max_iter=2, engine="numpy",
    ...                 callback=lambda it, model, fit: seen.append(model.gather().shape))
    >>> seen
    [(6, 5, 4), (6, 5, 4)]
    """

    X: DistTensor
    blocks: list[Array]
    state: CPALSState

    @classmethod
    def from_full(cls, X: DistTensor, state: CPALSState) -> DistCPModel:
        """Distribute a state holding full factors (every rank holds the same)."""
        model = cls(X, factor_blocks(X, state.factors), state)
        model.refresh_owned()
        return model

    def refresh_owned(self) -> None:
        """Point ``state.factors`` at the owned rows of ``blocks`` (views)."""
        for n, (b0, _) in enumerate(self.X.bounds):
            a, b = owned_rows(self.X, n)
            self.state.factors[n] = self.blocks[n][a - b0:b - b0]

    def gather(self) -> CPTensor:
        """The full model on every rank (collective: one ``Allgatherv`` per mode)."""
        full = [allgather_factor(self.X, A, n) for n, A in enumerate(self.state.factors)]
        return CPTensor(full, self.state.model_weights().copy())

    def full_state(self) -> CPALSState:
        """The state record with the full factors (collective), e.g. for the checkpoint."""
        full = [allgather_factor(self.X, A, n) for n, A in enumerate(self.state.factors)]
        return dataclasses.replace(self.state, factors=full)


def _hooks(model: DistCPModel, engine: str, checkpoint: str | None = None) -> ALSHooks:
    X, cart = model.X, model.X.grid.cart

    def sweep(update: Update) -> None:
        sweep_unchecked(X, model.blocks, update, cast(Engine, engine))
        model.refresh_owned()

    def save(_: CPALSState) -> None:
        full = model.full_state()
        msg = ""
        if cart.Get_rank() == 0:
            try:
                save_checkpoint(str(checkpoint), full)
            except OSError as exc:
                msg = f"could not write checkpoint {checkpoint!r}: {exc}"
        check_all(cart, not msg, msg, OSError)

    return ALSHooks(sweep=sweep, view=lambda _: model, allreduce=lambda a: C.allreduce(cart, a),
                    save=save, any_true=lambda flag: C.any_true(cart, flag),
                    prints=cart.Get_rank() == 0)


def als_iteration(model: DistCPModel, engine: str = "auto") -> float:
    """One distributed CP-ALS iteration (collective); updates ``model`` and returns the fit.

    Runs :func:`tensorpar.cp.loop.als_iteration` with this module's hooks.

    Notes
    -----
    **Words moved per rank** (``q_n = P / P_n``, ``|J_n|`` this rank's block
    height): ``2 R |J_n|`` for every mode with ``q_n > 1`` (reduce-scatter and
    all-gather of :func:`~tensorpar.distributed.mttkrp.dist_mttkrp_sweep`),
    plus, when ``P > 1``, ``R^2`` per mode for the Gram allreduces and one
    more word (the inner product of the fit) in the last one. That last
    message is float64 whatever the data's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> from tensorpar.cp.als import initial_state
    >>> X = DistTensor.scatter(random_cp((6, 5, 4), 2, seed=0).to_dense())
    >>> state = initial_state(stand_in(X), 2, "random", rng=np.random.default_rng(1),
    ...                       nonnegative=False, norm_x=dist_norm(X))
    >>> 0 < als_iteration(DistCPModel.from_full(X, state), "numpy") <= 1
    True
    """
    return shared_iteration(model.state, _hooks(model, engine))


Callback = Callable[[int, DistCPModel, float], Any]


def dist_cp_als(X: DistTensor, rank: int, *, init: Literal["random"] | CPTensor = "random",
                seed: int | np.random.Generator | np.random.SeedSequence | None = None,
                max_iter: int = 100, tol: float = 1e-8, nonnegative: bool = False,
                callback: Callback | None = None, verbose: bool = False,
                checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 10,
                resume: str | os.PathLike[str] | None = None,
                engine: Engine = "auto") -> tuple[CPTensor, CPALSResult]:
    """Distributed CP decomposition by alternating least squares (collective).

    The options mean what they mean in :func:`tensorpar.cp_als` (including
    the scale invariance and the fit's accuracy limit); from the same
    ``init``/``seed`` the fit per iteration equals the serial one up to
    rounding (the tests require 1e-10 on models that do not fit exactly).

    Parameters
    ----------
    X : DistTensor
        Real tensor of order ``N >= 2`` (a DistTensor on every rank).
    rank : int
    init : "random" or CPTensor
        ``"random"`` draws the full factors on every rank from ``seed`` exactly
        as the serial driver does (so every rank and the serial run start
        alike); a CPTensor must be the same on every rank. ``"svd"`` is not
        offered: the unfolding Grams would need the tensor's fibres on one rank.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        As in :func:`tensorpar.cp_als`; it must be the same on every rank
        (a Generator in the same state). With ``None`` rank 0 draws fresh
        entropy and broadcasts it, so the ranks still start alike.
    max_iter, tol, nonnegative, verbose, checkpoint_every, engine
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
        Rank 0 checks the path before the first iteration.
    resume : path, optional
        Checkpoint to continue from, read by every rank (a shared file system).

    Returns
    -------
    cp : CPTensor
        Full factors (unit-norm columns) and weights, on every rank.
    result : CPALSResult
        As the serial one; ``iter_times`` are this rank's.

    Raises
    ------
    ValueError, TypeError
        On every rank, before any data moves, when an argument is invalid on
        some rank or valid values differ (naming the argument and the ranks).

    Notes
    -----
    Words moved per iteration and rank: see :func:`als_iteration`. Besides:
    the agreement, one allreduce of ``1 + 2 * 14`` integers (``"meta"``);
    ``||X||``, one word (:func:`dist_norm`); the callback, one flag per
    iteration (``"meta"``); a checkpoint, ``I_n R`` words per mode, and with
    ``checkpoint`` or ``resume`` the fingerprint of ``X``, 16 words.

    Examples
    --------
    See ``examples/cp_mpi.py`` (run under ``mpiexec``); on one process:

    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> from tensorpar.distributed import DistTensor
    >>> X = DistTensor.scatter(random_cp((6, 5, 4), 2, seed=0).to_dense())
    >>> cp, res = dist_cp_als(X, 2, seed=1, tol=1e-12, max_iter=500, engine="numpy")
    >>> round(res.fit, 6)
    1.0
    """
    t_start = time.perf_counter()
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    cart = X.grid.cart
    args = dict(rank=rank, max_iter=max_iter, tol=tol, nonnegative=nonnegative,
                callback=callback, verbose=verbose, checkpoint=checkpoint,
                checkpoint_every=checkpoint_every, resume=resume)
    error: Exception | None = None
    agreed: dict[str, Any] = dict.fromkeys(AGREED)
    try:
        options, rng, eng, loaded = _check_locally(X, init, seed, engine, args)
        agreed = _agreement(X, options, init, rng, eng, loaded, callback, seed)
    except Exception as exc:  # noqa: BLE001 - every local failure is agreed on, then raised
        error = exc
    C.agree(cart, agreed, error=error)  # raises the same exception on every rank

    norm_x = dist_norm(X)
    if not math.isfinite(norm_x):
        raise ValueError("X contains NaN or infinite values (or its norm overflows)")
    samples = dist_sample_entries(X) if options.checkpoint or options.resume else []
    if loaded is not None:
        check_resumed(loaded, X.shape, X.dtype, options, norm_x, samples)
        loaded.rescale(scale_exponent(norm_x))
        loaded.norm_x, loaded.samples = norm_x, samples
        model = DistCPModel.from_full(X, loaded)
        t_origin = t_start - loaded.elapsed
    else:
        if seed is None and isinstance(init, str):
            # Fresh entropy, the same on every rank: rank 0 draws it.
            fresh = int(cast(int, np.random.SeedSequence().entropy)) if cart.Get_rank() == 0 else None
            rng = np.random.default_rng(C.bcast_object(cart, fresh))
        state = initial_state(stand_in(X), options.rank, init, rng=rng,
                              nonnegative=options.nonnegative, norm_x=norm_x)
        state.samples = samples
        model = DistCPModel.from_full(X, state)
        model.state.init_time = time.perf_counter() - t_start
        t_origin = t_start
    result = run_als(model.state, _hooks(model, eng, options.checkpoint), options,
                     callback=callback, engine=eng, t_origin=t_origin)
    return model.gather(), result


#: The old name of :func:`dist_cp_als` (kept as an alias).
cp_als = dist_cp_als


def stand_in(X: DistTensor) -> Array:
    """A zero-stride tensor of X's shape, dtype and array module (all a random start reads).

    Examples
    --------
    >>> import numpy as np
    >>> stand_in(DistTensor.scatter(np.ones((3, 4)))).strides
    (0, 0)
    """
    xp = get_array_module(X.local)
    return xp.broadcast_to(xp.zeros((), dtype=X.dtype), X.shape)


def _check_locally(X: DistTensor, init: Any, seed: Any, engine: Any,
                   args: dict[str, Any]) -> tuple[ALSOptions, np.random.Generator, str,
                                                  CPALSState | None]:
    """Every local check of :func:`dist_cp_als` (no message); raises ValueError/TypeError."""
    root = X.grid.cart.Get_rank() == 0
    options = check_als_options(**args, check_checkpoint=root)
    rng = check_seed(seed)
    if X.ndim < 2:
        raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}")
    if X.dtype.type not in REAL_DTYPES:
        raise TypeError(f"X has dtype {X.dtype}; expected one of float32, float64")
    if isinstance(init, CPTensor):
        check_init(init, X.shape, options.rank, nonnegative=options.nonnegative)
    elif isinstance(init, str) and init == "svd":
        raise ValueError("init='svd' is not available for a DistTensor; use 'random' or a "
                         "CPTensor")
    elif not (isinstance(init, str) and init == "random"):
        raise ValueError(f"init must be 'random' or a CPTensor, got {init!r}")
    xp = get_array_module(X.local)
    eng = resolve_engine(engine, xp, op="mttkrp")
    check_als_memory(X.shape, options.rank, X.dtype.itemsize)
    loaded = None
    if options.resume is not None:
        loaded = load_checkpoint(options.resume, xp)
        check_resumed(loaded, X.shape, X.dtype, options)
    return options, rng, eng, loaded


def _draws(init: Any, options: ALSOptions, seed: Any) -> bool:
    """Whether the start is drawn from a seed the caller gave (so the ranks must agree on it)."""
    return isinstance(init, str) and options.resume is None and seed is not None


def _agreement(X: DistTensor, options: ALSOptions, init: Any, rng: np.random.Generator,
               eng: str, loaded: CPALSState | None, callback: Any,
               seed: Any) -> dict[str, Any]:
    """The values every rank must hold alike (keys :data:`AGREED`)."""
    values = options.as_dict()
    values.update(
        init=init if isinstance(init, str) else ("CPTensor", list(init.factors), init.weights),
        seed=rng.bit_generator.state if _draws(init, options, seed) else None, engine=eng,
        callback=callback is not None,
        shape=tuple(X.shape), dtype=str(X.dtype), grid=tuple(X.grid.dims),
        resumed_state=None if loaded is None else (loaded.fits, loaded.weights))
    return {k: values[k] for k in AGREED}


def dist_norm(X: DistTensor) -> float:
    """``||X||`` accurate at any scale, accumulated in float64 (collective).

    One allreduce of one float64 word; only when the global sum of squares
    leaves the safe float64 range (entries beyond about ``1e±150``) two more
    (the largest magnitude, then the sum of squares scaled by its power of
    two, exact), decided alike on every rank from the first sum.

    Examples
    --------
    >>> import numpy as np
    >>> dist_norm(DistTensor.scatter(np.full((2, 2), 3e-200)))
    6e-200
    """
    cart = X.grid.cart
    s = float(C.allreduce(cart, np.array([sum_squares(X.local)]))[0])
    if 2.0**-960 <= s <= 2.0**960 or s == 0.0 and math.prod(X.shape) == 0 or math.isnan(s):
        return math.sqrt(s)  # a NaN sum is NaN on every rank; a max over NaN is not
    top = float(C.allreduce(cart, np.array([abs_max(X.local)]), op="max")[0])
    if top == 0.0 or not math.isfinite(top):
        return top if top == 0.0 or math.isnan(top) else math.inf
    e = math.frexp(top)[1]
    s = float(C.allreduce(cart, np.array([sum_squares(X.local, e)]))[0])
    try:
        return math.ldexp(math.sqrt(s), e)
    except OverflowError:
        return math.inf


def dist_sample_entries(X: DistTensor) -> list[float]:
    """X at :func:`tensorpar.dense.sample_indices`, equal to the serial fingerprint (collective).

    Each entry is held by one rank; one allreduce of 16 words sums the
    others' zeros in (exact).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.cp.als import sample_entries
    >>> X = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> dist_sample_entries(DistTensor.scatter(X)) == sample_entries(X)
    True
    """
    idx = sample_indices(X.shape)
    vals = np.zeros(len(idx))
    for k, index in enumerate(idx):
        if all(a <= i < b for i, (a, b) in zip(index, X.bounds)):
            vals[k] = float(X.local[tuple(i - a for i, (a, _) in zip(index, X.bounds))])
    if not idx:
        return []
    return [float(v) for v in C.allreduce(X.grid.cart, vals)]
