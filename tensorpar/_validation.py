"""Input checks shared by every public function.

Each check raises a ValueError or TypeError that names the offending
argument and what was expected; nothing is broadcast or cast silently
(integer input is the one exception: it is promoted to float64 because
every algorithm here is floating point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from ._backend import get_array_module

#: dtypes the kernels are built for.
SUPPORTED_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
REAL_DTYPES = (np.float32, np.float64)


def check_dtype(x: Any, name: str, allowed: Sequence[type] = SUPPORTED_DTYPES) -> None:
    """Raise a TypeError unless ``x.dtype`` is one of ``allowed``."""
    if x.dtype.type not in tuple(allowed):
        names = ", ".join(np.dtype(d).name for d in allowed)
        raise TypeError(f"{name} has dtype {x.dtype}; expected one of {names}")


def as_float_array(x: Any, name: str, *, allowed: Sequence[type] = SUPPORTED_DTYPES,
                   min_ndim: int = 0, max_ndim: int | None = None) -> Any:
    """Return ``x`` as a numpy/cupy array of a supported floating dtype, in native byte order.

    Lists and integer arrays are converted to float64. Non-native
    (big-endian on x86) data -- from FITS, HDF5 or ``.npy`` files -- is
    converted to native byte order, which the compiled kernels need. Other
    dtypes (bool, object, float16, ...) raise a TypeError.

    Examples
    --------
    >>> import numpy as np
    >>> as_float_array(np.arange(3, dtype=">f8"), "x").dtype.isnative
    True
    """
    xp = get_array_module(x)
    if not hasattr(x, "dtype") or not hasattr(x, "ndim"):
        try:
            x = xp.asarray(x)
        except Exception as exc:  # noqa: BLE001 - rewrap as a user-facing error
            raise TypeError(f"{name} must be an array, got {type(x).__name__}") from exc
    if x.dtype.kind in "iu":
        x = x.astype(np.float64)
    elif not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    check_dtype(x, name, allowed)
    if x.ndim < min_ndim or (max_ndim is not None and x.ndim > max_ndim):
        want = f"{min_ndim}" if max_ndim == min_ndim else (
            f">= {min_ndim}" if max_ndim is None else f"{min_ndim} to {max_ndim}")
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    return x


def check_finite(x: Any, name: str) -> None:
    """Raise a ValueError when ``x`` holds NaN or infinity."""
    xp = get_array_module(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_mode(mode: Any, ndim: int, name: str = "mode") -> int:
    """Return ``mode`` as a non-negative int in ``[0, ndim)``; negatives count from the end."""
    if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(mode).__name__}")
    m = int(mode)
    if not -ndim <= m < ndim:
        raise ValueError(f"{name}={m} is out of range for a tensor of order {ndim}")
    return m % ndim


def check_factors(factors: Sequence[Any], shape: Sequence[int] | None = None,
                  name: str = "factors", skip: int | None = None) -> int:
    """Check a list of CP factor matrices and return their common rank.

    Parameters
    ----------
    factors : sequence of arrays
        Matrices of shape ``(I_n, R)``.
    shape : sequence of int, optional
        Expected tensor shape: ``factors[n].shape[0]`` must equal ``shape[n]``.
    skip : int, optional
        Index of a factor whose row count is not checked (the mode being
        solved for in an MTTKRP; it may be ``None`` in the list).
    """
    if not isinstance(factors, (list, tuple)):
        raise TypeError(f"{name} must be a list of 2-D arrays, got {type(factors).__name__}")
    if shape is not None and len(factors) != len(shape):
        raise ValueError(
            f"{name} has {len(factors)} matrices but the tensor has order {len(shape)}")
    rank = None
    get_array_module(*[f for f in factors if f is not None])
    for n, f in enumerate(factors):
        if f is None and n == skip:
            continue
        if not hasattr(f, "ndim") or f.ndim != 2:
            raise ValueError(f"{name}[{n}] must be a 2-D array of shape (I_{n}, R)")
        if rank is None:
            rank = f.shape[1]
        elif f.shape[1] != rank:
            raise ValueError(
                f"{name}[{n}] has {f.shape[1]} columns but {name}[0] has {rank}; "
                "all factors need the same rank")
        if shape is not None and n != skip and f.shape[0] != shape[n]:
            raise ValueError(
                f"{name}[{n}] has {f.shape[0]} rows but the tensor has size {shape[n]} "
                f"in mode {n}")
    if rank is None:
        raise ValueError(f"{name} must contain at least one matrix")
    return int(rank)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_core_chain(cores: Sequence[Any], rank_axis: int) -> None:
    """Check that TT (or TT-matrix) cores have boundary ranks 1 and chaining ranks.

    Parameters
    ----------
    cores : sequence of arrays
        Core ``k`` has its left rank on axis 0 and its right rank on ``rank_axis``.
    rank_axis : int
        Axis of the right rank: 2 for TT cores, 3 for TT-matrix cores.
    """
    if cores[0].shape[0] != 1:
        raise ValueError(f"cores[0] must have left rank 1, got shape {tuple(cores[0].shape)}")
    if cores[-1].shape[rank_axis] != 1:
        raise ValueError(
            f"cores[{len(cores) - 1}] must have right rank 1, got shape {tuple(cores[-1].shape)}")
    for k in range(len(cores) - 1):
        if cores[k].shape[rank_axis] != cores[k + 1].shape[0]:
            raise ValueError(
                f"ranks do not chain: cores[{k}] has right rank {cores[k].shape[rank_axis]} but "
                f"cores[{k + 1}] has left rank {cores[k + 1].shape[0]}")
    for k, c in enumerate(cores):
        if min(c.shape) < 1:
            raise ValueError(f"cores[{k}] has an empty dimension: shape {tuple(c.shape)}")


# --- tensor-train arguments -------------------------------------------------
def check_eps(eps: Any, name: str = "eps") -> float:
    """Return ``eps`` as a float, raising unless it is a finite number >= 0."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(eps).__name__}")
    value = float(eps)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


@overload
def check_max_rank(max_rank: Any, name: str = ..., ndim: None = None) -> int | None: ...


@overload
def check_max_rank(max_rank: Any, name: str = ..., *, ndim: int) -> tuple[int, ...] | None: ...


def check_max_rank(max_rank: Any, name: str = "max_rank",
                   ndim: int | None = None) -> int | tuple[int, ...] | None:
    """Check a TT rank bound; without ``ndim`` an int >= 1 or None.

    With ``ndim = d`` (a train of ``d`` cores, ``d - 1`` bonds) the accepted
    forms are

    * an int ``m >= 1``: every bond at most ``m``;
    * a list, tuple or 1-D integer array of ``d - 1`` ints >= 1: one limit per
      bond, ``max_rank[k]`` bounding the rank between cores ``k`` and ``k + 1``;
    * TensorLy's ``rank`` list: ``d + 1`` TT ranks ``[1, r_1, ..., r_{d-1}, 1]``
      (the ends must be 1; they are dropped);

    and the result is the tuple of the ``d - 1`` limits (None: no bound).

    Examples
    --------
    >>> check_max_rank(3)
    3
    >>> check_max_rank(3, ndim=4), check_max_rank([2, 5, 3], ndim=4)
    ((3, 3, 3), (2, 5, 3))
    >>> check_max_rank([1, 2, 5, 3, 1], ndim=4)
    (2, 5, 3)
    >>> check_max_rank([2, 5], ndim=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: max_rank must be an int or a list of d - 1 = 3 bond limits (or d + 1 = 5 ...
    """
    if max_rank is None:
        return None
    if ndim is None or not isinstance(max_rank, (list, tuple, np.ndarray)):
        value = check_positive_int(max_rank, name)
        return value if ndim is None else (value,) * max(ndim - 1, 0)
    if isinstance(max_rank, np.ndarray) and max_rank.ndim != 1:
        raise ValueError(f"{name} must be an int or a 1-D list of limits, got an array of "
                         f"shape {max_rank.shape}")
    values = list(max_rank)
    bonds = max(ndim - 1, 0)
    if len(values) == ndim + 1:  # TensorLy's rank list, boundary ranks included
        ends = [check_positive_int(values[k], f"{name}[{k}]") for k in (0, -1)]
        if ends != [1, 1]:
            raise ValueError(f"{name} with d + 1 = {ndim + 1} values is a list of TT ranks and "
                             f"must start and end with 1, got {values[0]} and {values[-1]}")
        return tuple(check_positive_int(v, f"{name}[{k}]")
                     for k, v in enumerate(values) if 0 < k < ndim)
    if len(values) != bonds:
        raise ValueError(f"{name} must be an int or a list of d - 1 = {bonds} bond limits (or "
                         f"d + 1 = {ndim + 1} TT ranks with ones at the ends) for {ndim} cores, "
                         f"got {len(values)} values")
    return tuple(check_positive_int(v, f"{name}[{k}]") for k, v in enumerate(values))


def check_scalar(alpha: Any, name: str = "alpha") -> complex | float:
    """Return a finite Python scalar (real or complex), raising otherwise."""
    if isinstance(alpha, bool) or not isinstance(
            alpha, (int, float, complex, np.integer, np.floating, np.complexfloating)):
        dtype = getattr(alpha, "dtype", None)
        if getattr(alpha, "ndim", None) == 0 and dtype is not None and dtype.kind in "iufc":
            alpha = getattr(alpha, "item")()  # noqa: B009 - keeps mypy from narrowing to bool
        else:
            raise TypeError(f"{name} must be a scalar number, got {type(alpha).__name__}")
    if not np.isfinite(alpha):
        raise ValueError(f"{name} must be finite, got {alpha}")
    return complex(alpha) if np.iscomplexobj(alpha) else float(alpha)


def check_same_shape(shapes: Sequence[tuple[int, ...]], names: Sequence[str]) -> None:
    """Raise a ValueError unless every shape equals the first."""
    for shape, name in zip(shapes[1:], names[1:]):
        if shape != shapes[0]:
            raise ValueError(
                f"{name} has shape {shape} but {names[0]} has shape {shapes[0]}; "
                "TT operands must have the same mode sizes")
