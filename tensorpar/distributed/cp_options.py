"""The local checks of :func:`tensorpar.distributed.dist_cp_als`, its agreement and its mask.

Everything here runs without a message (:func:`check_locally`) or builds
the values the ranks then agree on (:func:`agreement`), so that a bad
argument on one rank raises the same exception on every rank before any
data moves.

**The mask** of a distributed run (``mask=``) is distributed like ``X``:
a :class:`~tensorpar.distributed.dist_tensor.DistTensor` on the same grid
(``DistTensor.from_function`` with 0/1 values, or a DistTensor whose blocks
are boolean), a function of the global indices as
:meth:`DistTensor.from_function` takes it (each rank evaluates its block),
or an array of the full shape (each rank keeps its block; for small data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import get_array_module, resolve_engine
from .._typing import Array
from .._validation import REAL_DTYPES
from ..cp.checkpoint import load_checkpoint
from ..cp.init import check_init
from ..cp.loop import check_als_memory
from ..cp.missing import check_mask_values, check_missing_memory, observed_data
from ..cp.state import ALSOptions, CPALSState, check_als_options, check_resumed, check_seed
from ..cp.tensor import CPTensor
from .dist_tensor import DistTensor

__all__ = ["AGREED", "LocalSetup", "check_locally", "agreement", "local_mask"]

#: What the ranks agree on (:func:`tensorpar.distributed.comm.agree`). Not ``verbose``
#: (only rank 0 prints) nor the ``resume`` path (each rank may read its own copy; the
#: loaded state is compared instead); ``variant`` holds the variant options and whether
#: entries are missing (each rank's mask is its own block).
AGREED = ("rank", "max_iter", "tol", "nonnegative", "checkpoint", "checkpoint_every",
          "init", "seed", "engine", "callback", "shape", "dtype", "grid", "resumed_state",
          "variant")

#: ``(options, rng, engine, loaded state or None, Y block or None, W block or None)``.
LocalSetup = tuple[ALSOptions, np.random.Generator, str, CPALSState | None, Array | None,
                   Array | None]


def local_mask(X: DistTensor, mask: Any) -> Array:
    """This rank's block of ``mask`` (module docstring) as a boolean array (no message).

    Examples
    --------
    >>> import numpy as np
    >>> X = DistTensor.scatter(np.ones((2, 3)))
    >>> local_mask(X, lambda i, j: (i + j) % 2 == 0).astype(int)
    array([[1, 0, 1],
           [0, 1, 0]])
    """
    xp = get_array_module(X.local)
    block = tuple(slice(a, b) for a, b in X.bounds)
    if isinstance(mask, DistTensor):
        if mask.shape != X.shape or tuple(mask.grid.dims) != tuple(X.grid.dims):
            raise ValueError(f"mask is a DistTensor of shape {mask.shape} on grid "
                             f"{tuple(mask.grid.dims)}; X has shape {X.shape} on grid "
                             f"{tuple(X.grid.dims)}")
        values = mask.local
    elif callable(mask):
        idx = np.ix_(*[np.arange(a, b) for a, b in X.bounds])
        values = xp.broadcast_to(xp.asarray(mask(*idx)), X.local.shape)
    else:
        full = mask if hasattr(mask, "shape") else np.asarray(mask)
        if tuple(full.shape) != X.shape:
            raise ValueError(f"mask has shape {tuple(full.shape)}, X has shape {X.shape}")
        values = full[block]
    return check_mask_values(values, X.local.shape, xp)


def check_locally(X: DistTensor, init: Any, seed: Any, engine: Any, mask: Any, missing: Any,
                  args: dict[str, Any]) -> LocalSetup:
    """Every local check of :func:`dist_cp_als` (no message); raises ValueError/TypeError."""
    missing_method = str(args.get("missing_method", "em"))
    root = X.grid.cart.Get_rank() == 0
    if X.ndim < 2:
        raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}")
    masked = mask is not None or missing is not None
    options = check_als_options(**args, check_checkpoint=root, ndim=X.ndim, masked=masked)
    rng = check_seed(seed)
    if X.dtype.type not in REAL_DTYPES:
        raise TypeError(f"X has dtype {X.dtype}; expected one of float32, float64")
    if isinstance(init, CPTensor):
        check_init(init, X.shape, options.rank, nonnegative=options.nonnegative)
    elif isinstance(init, str) and init == "svd":
        raise ValueError("init='svd' is not available for a DistTensor; use 'random', "
                         "'random_uniform' or a CPTensor")
    elif not (isinstance(init, str) and init in ("random", "random_uniform")):
        raise ValueError(f"init must be 'random', 'random_uniform' or a CPTensor, got {init!r}")
    xp = get_array_module(X.local)
    eng = resolve_engine(engine, xp, op="mttkrp")
    check_als_memory(X.shape, options.rank, X.dtype.itemsize)
    Y = W = None
    if masked:
        check_missing_memory(X.local.shape, options.rank, X.dtype.itemsize, missing_method)
        W = local_mask(X, mask) if mask is not None else None
        Y, W = observed_data(X.local, W, missing)
    loaded = None
    if options.resume is not None:
        loaded = load_checkpoint(options.resume, xp)
        check_resumed(loaded, X.shape, X.dtype, options)
    return options, rng, eng, loaded, Y, W


def _draws(init: Any, options: ALSOptions, seed: Any) -> bool:
    """Whether the start is drawn from a seed the caller gave (so the ranks must agree on it)."""
    return isinstance(init, str) and options.resume is None and seed is not None


def agreement(X: DistTensor, options: ALSOptions, init: Any, rng: np.random.Generator,
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
