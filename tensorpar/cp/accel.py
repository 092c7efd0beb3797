"""Accelerated CP-ALS: Bro's extrapolation of the factors between sweeps (``linesearch``).

The schedule is TensorLy's ``parafac(linesearch=True)`` (Bro 1998): at
every even iteration ``k`` (counted from 0) the factors before the sweep
are kept; when ``k > 5`` the factors after it are pushed further along the
step, ``A_n <- A_n^old + k^(1/p) (A_n - A_n^old)`` for every mode, with the
factors as TensorLy holds them (column scales of :mod:`tensorpar.cp.scales`).
``p`` starts at 2 and grows by 1 after 4 rejected jumps in a row. The
jumped factors of nonnegative modes are clipped at 0 (a projected jump);
fixed modes do not move.

**Acceptance.** The jump is kept when its fit is *higher than the fit of
the ALS iterate it would replace*; otherwise the ALS iterate stays. So an
iteration's fit is never below the fit of its own ALS sweep. TensorLy
compares with the previous iteration's error instead (it may keep a jump
worse than the sweep's result) and records no error on those iterations;
the iterates therefore differ from TensorLy's after the first jump.

**Cost** of an extrapolating iteration (every other one): the fit of the
jumped model, one MTTKRP of the last mode (``1/N`` of a sweep without the
dimension tree) -- or, with missing data, one dense model -- plus ``N``
Grams, summed over the ranks in one message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._backend import get_array_module
from .._typing import Array
from .fit import cp_inner_from_mttkrp, cp_norm_sq_from_grams, fit_from_terms
from .missing import fit_from_residual
from .state import CPALSState, ldexp_array
from .update import gram, hadamard_grams, normalize_factor

if TYPE_CHECKING:  # pragma: no cover
    from .loop import ALSHooks

__all__ = ["Snapshot", "snapshot", "restore", "is_line_iteration", "extrapolate", "model_fit",
           "MAX_FAIL"]

#: Rejected jumps in a row after which the jump's root ``p`` grows by one (TensorLy's).
MAX_FAIL = 4


@dataclass
class Snapshot:
    """The iterate at some point: factor storage (copies), scales, weights, Grams."""

    storage: list[Array]
    col_scales: list[Array]
    weights: Array
    grams: list[Array]


def snapshot(state: CPALSState, hooks: ALSHooks) -> Snapshot:
    """Copies of what an extrapolation or a rejection changes."""
    storage = hooks.storage() if hooks.storage is not None else state.factors
    return Snapshot([a.copy() for a in storage], [s.copy() for s in state.col_scales],
                    state.weights.copy(), [g.copy() for g in state.grams])


def restore(state: CPALSState, hooks: ALSHooks, snap: Snapshot) -> None:
    """Put ``snap`` back as the iterate."""
    _set_storage(state, hooks, [a.copy() for a in snap.storage])
    state.col_scales = [s.copy() for s in snap.col_scales]
    state.weights, state.grams = snap.weights.copy(), [g.copy() for g in snap.grams]


def _set_storage(state: CPALSState, hooks: ALSHooks, arrays: list[Array]) -> None:
    if hooks.set_storage is not None:
        hooks.set_storage(arrays)
    else:
        state.factors[:] = arrays


def is_line_iteration(iteration: int) -> bool:
    """Whether iteration ``iteration`` (from 0) tries a jump (TensorLy's schedule).

    Examples
    --------
    >>> [k for k in range(12) if is_line_iteration(k)]
    [6, 8, 10]
    """
    return iteration % 2 == 0 and iteration > 5


def model_fit(state: CPALSState, hooks: ALSHooks) -> float:
    """The fit of the state's current model (collective with the driver's reductions).

    Examples
    --------
    An exact model of ``X``, with ``hooks.mttkrp`` giving the MTTKRP of ``X``:

    >>> import numpy as np
    >>> from tensorpar import mttkrp, random_cp
    >>> from tensorpar.cp.loop import ALSHooks
    >>> cp = random_cp((4, 5, 6), 2, seed=0)
    >>> X = cp.to_dense()
    >>> state = CPALSState(list(cp.factors), cp.weights, [A.T @ A for A in cp.factors],
    ...                    norm_x=float(np.linalg.norm(X)))
    >>> hooks = ALSHooks(sweep=lambda update: None, view=lambda s: None,
    ...                  mttkrp=lambda n: mttkrp(X, state.factors, n))
    >>> round(model_fit(state, hooks), 6)
    1.0
    """
    e = state.scale_exp
    norm = math.ldexp(state.norm_x, -e)
    if state.variant.missing is not None:
        if hooks.residual is None:
            raise ValueError("a run with missing data needs hooks.residual")
        return fit_from_residual(norm, hooks.residual(False))
    if hooks.mttkrp is None:
        raise ValueError("linesearch needs hooks.mttkrp")
    last = len(state.factors) - 1
    M = hooks.mttkrp(last)
    M = ldexp_array(M, -e) if e else M
    inner = cp_inner_from_mttkrp(M, state.factors[last], state.weights)
    if hooks.allreduce is not None:
        xp = get_array_module(M)
        inner = float(hooks.allreduce(xp.asarray([inner], dtype="float64"))[0])
    norm_sq = cp_norm_sq_from_grams(hadamard_grams(state.grams), state.weights)
    return fit_from_terms(norm, inner, norm_sq)[0]


def extrapolate(state: CPALSState, hooks: ALSHooks, before: Snapshot, fit: float) -> float:
    """Try the jump from ``before`` through the current iterate; return the iteration's fit.

    The current iterate (fit ``fit``) is replaced by the jump when the
    jump's fit is higher (module docstring); ``state.ls_pow`` and
    ``state.ls_fail`` follow TensorLy's rule.

    Examples
    --------
    Through the driver (the jumps start at iteration 7):

    >>> import numpy as np
    >>> from tensorpar import cp_als, random_cp
    >>> X = random_cp((8, 7, 6), 3, seed=0).to_dense()
    >>> X += 0.01 * np.random.default_rng(0).standard_normal(X.shape)
    >>> _, plain = cp_als(X, 3, seed=1, max_iter=12, tol=0)
    >>> _, fast = cp_als(X, 3, seed=1, max_iter=12, tol=0, linesearch=True)
    >>> bool(np.allclose(fast.fits[:6], plain.fits[:6], rtol=0, atol=1e-12))
    True
    >>> fast.fit >= plain.fit - 1e-12
    True
    """
    after = snapshot(state, hooks)
    jump = state.iteration ** (1.0 / state.ls_pow)
    moved = [old * s0[None, :] + jump * (new * s1[None, :] - old * s0[None, :])
             for old, new, s0, s1 in zip(before.storage, after.storage, before.col_scales,
                                         after.col_scales)]
    for n in state.variant.nonnegative_modes:  # a projected jump: stay feasible
        moved[n] = get_array_module(moved[n]).maximum(moved[n], 0)
    _set_storage(state, hooks, moved)
    grams = [gram(A) for A in state.factors]
    if hooks.allreduce is not None:
        xp = get_array_module(grams[0])
        R = grams[0].shape[0]
        flat = hooks.allreduce(xp.concatenate([g.ravel() for g in grams]))
        grams = [flat[k * R * R:(k + 1) * R * R].reshape(R, R) for k in range(len(grams))]
    scales = []
    for n, G in enumerate(grams):
        _, state.grams[n], s = normalize_factor(state.factors[n][:0], G)
        scales.append(s)
    xp = get_array_module(scales[0])
    _set_storage(state, hooks, [a / xp.where(s > 0, s, 1)[None, :]
                                for a, s in zip(moved, scales)])
    state.col_scales = scales
    weights = scales[0].copy()
    for s in scales[1:]:
        weights = weights * s
    state.weights = weights
    jumped = model_fit(state, hooks)
    if jumped > fit:
        state.ls_fail = 0
        fit = jumped
    else:
        restore(state, hooks, after)
        state.ls_fail += 1
        if state.ls_fail == MAX_FAIL:
            state.ls_pow += 1.0
            state.ls_fail = 0
    if state.variant.missing == "em" and hooks.residual is not None:
        hooks.residual(True)  # refill the missing entries with the kept model
    return fit
