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
or valid values that differ, raise the same exception on every rank. The
iterate as one rank holds it is :class:`~tensorpar.distributed.cp_model.DistCPModel`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import numpy as np

from .._backend import get_array_module
from .._typing import Array, Engine
from ..cp.checkpoint import save_checkpoint
from ..cp.loop import ALSHooks, Update, run_als
from ..cp.loop import als_iteration as shared_iteration
from ..cp.missing import observed_residual, row_grams
from ..cp.result import CPALSResult
from ..cp.start import initial_state
from ..cp.state import CPALSState, check_resumed, scale_exponent
from ..cp.tensor import CPTensor
from ..cp.variant import MissingMethod
from ..dense import abs_max, sample_indices, sum_squares
from . import comm as C
from .comm import check_all
from .cp_model import DistCPModel
from .cp_options import AGREED, agreement, check_locally
from .dist_tensor import DistTensor
from .mttkrp import dist_mttkrp, owned_counts, sweep_unchecked

__all__ = ["dist_cp_als", "cp_als", "als_iteration", "dist_norm", "dist_sample_entries",
           "stand_in"]


def _hooks(model: DistCPModel, engine: str, checkpoint: str | None = None,
           W: Array | None = None) -> ALSHooks:
    """The distributed hooks; with ``W`` (this rank's mask block) ``model.X`` holds ``Y``."""
    X, cart = model.X, model.X.grid.cart
    eng = cast(Engine, engine)

    def sweep(update: Update) -> None:
        sweep_unchecked(X, model.blocks, update, eng)
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

    def set_storage(arrays: list[Array]) -> None:
        model.blocks[:] = arrays
        model.refresh_owned()

    hooks = ALSHooks(sweep=sweep, view=lambda _: model,
                     allreduce=lambda a: C.allreduce(cart, a), save=save,
                     any_true=lambda flag: C.any_true(cart, flag), prints=cart.Get_rank() == 0,
                     mttkrp=lambda n: dist_mttkrp(X, model.blocks, n, eng),
                     storage=lambda: model.blocks, set_storage=set_storage)
    if W is not None:
        hooks.residual = lambda fill: _residual(model, W, fill)
        hooks.row_grams = lambda n: _row_grams(model, W, n)
    return hooks


def _residual(model: DistCPModel, W: Array, fill: bool) -> float:
    """The observed residual summed over the ranks (one word); ``fill`` refills this block."""
    st = model.state
    share = observed_residual(model.X.local, W, model.blocks, st.weights, st.scale_exp, fill)
    return float(C.allreduce(model.X.grid.cart, np.array([share]))[0])


def _row_grams(model: DistCPModel, W: Array, n: int) -> Array:
    """The owned rows' weighted least-squares matrices: local sums, one reduce-scatter."""
    X = model.X
    G = row_grams(W, model.blocks, n)
    R = G.shape[1]
    owned = C.reduce_scatter(X.grid.slice_comm(n), G.reshape(G.shape[0], R * R),
                             owned_counts(X, n))
    return owned.reshape(owned.shape[0], R, R)


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

    Under ``mpiexec -n 2 python script.py`` both ranks return the same
    fit (``0.583085`` here, as on one process up to rounding); each updates
    only the factor rows it owns.
    """
    return shared_iteration(model.state, _hooks(model, engine))


Callback = Callable[[int, DistCPModel, float], Any]


def dist_cp_als(X: DistTensor, rank: int, *,
                init: Literal["random", "random_uniform"] | CPTensor = "random",
                seed: int | np.random.Generator | np.random.SeedSequence | None = None,
                max_iter: int = 100, tol: float = 1e-8,
                nonnegative: bool | Sequence[int] = False,
                callback: Callback | None = None, verbose: bool = False,
                checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 10,
                resume: str | os.PathLike[str] | None = None,
                engine: Engine = "auto", mask: Any = None, missing: Literal["nan"] | None = None,
                missing_method: MissingMethod = "em", l2_reg: float = 0.0,
                fixed_modes: Sequence[int] | None = None, n_inner: int = 1,
                linesearch: bool = False) -> tuple[CPTensor, CPALSResult]:
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
    mask : DistTensor, callable or array, optional
        Observed entries, distributed like ``X``
        (:mod:`tensorpar.distributed.cp_options`).
    missing, missing_method, l2_reg, fixed_modes, n_inner, linesearch
        As in :func:`tensorpar.cp_als`; ``missing_method="wls"`` adds one
        ``Reduce_scatter`` of ``|J_n(p_n)| R^2`` words per mode, missing data
        one word per sweep (the residual), ``linesearch`` on an extrapolating
        iteration ``N R^2`` words (the Grams), one MTTKRP's reduce-scatter and
        one word.

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
    the agreement, one allreduce of ``1 + 2 * 15`` integers (``"meta"``);
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

    Saved as ``script.py`` (with a ``print(X.grid.dims, round(res.fit, 6))``)
    and run as ``mpiexec -n 2 python script.py``, every rank prints
    ``(2, 1, 1) 1.0``: each holds half of ``X`` (``DistTensor.scatter`` reads
    the dense tensor on rank 0 and sends the blocks) and ``cp`` is the same
    full model on every rank, equal to the serial :func:`tensorpar.cp_als`
    result up to rounding.
    """
    t_start = time.perf_counter()
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    cart = X.grid.cart
    args = dict(rank=rank, max_iter=max_iter, tol=tol, nonnegative=nonnegative,
                callback=callback, verbose=verbose, checkpoint=checkpoint,
                checkpoint_every=checkpoint_every, resume=resume, l2_reg=l2_reg,
                fixed_modes=fixed_modes, n_inner=n_inner, linesearch=linesearch,
                missing_method=missing_method)
    error: Exception | None = None
    agreed: dict[str, Any] = dict.fromkeys(AGREED)
    try:
        options, rng, eng, loaded, Y, W = check_locally(X, init, seed, engine, mask, missing,
                                                        args)
        agreed = agreement(X, options, init, rng, eng, loaded, callback, seed)
    except Exception as exc:  # noqa: BLE001 - every local failure is agreed on, then raised
        error = exc
    C.agree(cart, agreed, error=error)  # raises the same exception on every rank
    if Y is not None:  # missing entries: the sweep reads Y (zeros there, then the model)
        X = DistTensor(Y, X.shape, X.grid)

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
                              nonnegative=options.nonnegative, norm_x=norm_x,
                              variant=options.variant)
        state.samples = samples
        model = DistCPModel.from_full(X, state)
        model.state.init_time = time.perf_counter() - t_start
        t_origin = t_start
    hooks = _hooks(model, eng, options.checkpoint, W)
    if hooks.residual is not None and model.state.variant.missing == "em" and \
            model.state.iteration > 0:
        hooks.residual(True)  # a resumed EM run: the missing entries as the run left them
    result = run_als(model.state, hooks, options, callback=callback, engine=eng,
                     t_origin=t_origin)
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
