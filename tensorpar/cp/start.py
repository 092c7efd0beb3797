"""The CP-ALS state before the first iteration (both drivers start here)."""

from __future__ import annotations

import numpy as np

from .._backend import get_array_module
from .._typing import Array, InitMethod
from .init import raw_initial_cp
from .scales import column_norms
from .state import CPALSState, scale_exponent
from .tensor import CPTensor
from .update import gram
from .variant import ALSVariant

__all__ = ["initial_state"]


def initial_state(X: Array, rank: int, init: InitMethod | CPTensor, *,
                  rng: np.random.Generator, nonnegative: bool, norm_x: float,
                  variant: ALSVariant | None = None) -> CPALSState:
    """The state before the first iteration: normalised init and its Grams, in the scaled frame.

    Only ``X``'s shape, dtype and array module are read unless ``init="svd"``.
    A given CPTensor's weights are moved into the frame of ``||X||``; the
    weights of a random or SVD start (the column norms of the drawn factors)
    are taken as they are in that frame, so the start, like the run, does not
    depend on the scale of ``X``. ``variant`` (default: plain ALS,
    nonnegative in every mode with ``nonnegative``) is recorded in the state;
    a random start is uniform when any mode is nonnegative, and with
    ``variant.tracks_scales`` the factors' column norms are kept (a given
    CPTensor's weights go to the last factor, as in TensorLy).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.cp.als import checked_norm
    >>> X = np.ones((2, 3)) * 1e-170
    >>> s = initial_state(X, 1, "random", rng=np.random.default_rng(0), nonnegative=False,
    ...                   norm_x=checked_norm(X))
    >>> s.scale_exp, s.shape
    (-563, (2, 3))
    """
    e = scale_exponent(norm_x)
    if variant is None:
        variant = ALSVariant(nonnegative_modes=tuple(range(X.ndim)) if nonnegative else ())
    given = isinstance(init, CPTensor)
    all_nn = len(variant.nonnegative_modes) == X.ndim
    raw = raw_initial_cp(X, rank, init, rng=rng, scale_exp=e,
                         nonnegative=all_nn if given else bool(variant.nonnegative_modes))
    if given:
        for n in variant.nonnegative_modes:
            if bool((raw.factors[n] < 0).any()):
                raise ValueError(f"init.factors[{n}] has negative entries; mode {n} is "
                                 "nonnegative")
    cp = raw.normalize()
    state = CPALSState(factors=list(cp.factors), weights=cp.weights,
                       grams=[gram(f) for f in cp.factors], norm_x=norm_x,
                       nonnegative=all_nn, scale_exp=0 if given else e, variant=variant)
    if variant.tracks_scales:
        scales = [column_norms(f) for f in raw.factors]
        xp = get_array_module(scales[-1])
        scales[-1] = scales[-1] * xp.asarray(raw.weights, dtype=scales[-1].dtype)
        state.col_scales = scales
    state.rescale(e)
    return state
