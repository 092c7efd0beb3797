"""Input checks shared by the layers of :mod:`tensorpar.nn`.

Each check raises a TypeError (not an array, wrong dtype, numpy mixed with
cupy) or a ValueError (wrong feature size, wrong shape, NaN or infinity)
that names the argument. Nothing is cast silently: a float32 input to a
float64 layer is an error, not a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import get_array_module, is_cupy_array
from .._typing import Array

__all__ = ["cached", "check_float", "check_grad", "check_indices", "check_input", "check_positive_int"]

_FLOATS = (np.float32, np.float64)


def check_float(x: Any, name: str) -> Array:
    """Return ``x`` unchanged if it is a float32/float64 numpy or cupy array.

    Examples
    --------
    >>> import numpy as np
    >>> check_float(np.ones(2), "x").dtype
    dtype('float64')
    >>> check_float(np.ones(2, dtype=int), "x")
    Traceback (most recent call last):
    ...
    TypeError: x must be a float32 or float64 array, got int64
    """
    if not (isinstance(x, np.ndarray) or is_cupy_array(x)):
        raise TypeError(f"{name} must be a numpy or cupy array, got {type(x).__name__}")
    if x.dtype.type not in _FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 array, got {x.dtype}")
    return x


def check_input(x: Any, name: str, *, like: Array | None = None, features: int | None = None,
                min_ndim: int = 1, finite: bool = True) -> Array:
    """Check a layer input and return it.

    Parameters
    ----------
    x : ndarray
        The input (numpy or cupy, float32 or float64).
    name : str
        Argument name used in the error messages.
    like : ndarray, optional
        A parameter of the layer: ``x`` must live in the same array module
        (TypeError) and have the same dtype (TypeError).
    features : int, optional
        Required size of the last axis (ValueError).
    min_ndim : int
        Fewest dimensions accepted (ValueError).
    finite : bool
        Reject NaN and infinity (ValueError); one reduction over ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> check_input(np.ones((2, 3)), "x", features=4)
    Traceback (most recent call last):
    ...
    ValueError: x must have 4 features in its last axis, got shape (2, 3)
    """
    check_float(x, name)
    if like is not None:
        get_array_module(x, like)  # TypeError when numpy and cupy are mixed
        if x.dtype != like.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the layer's parameters are "
                            f"{like.dtype}; convert one of them")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    if features is not None and x.shape[-1] != features:
        raise ValueError(f"{name} must have {features} features in its last axis, "
                         f"got shape {tuple(x.shape)}")
    if finite and not bool(get_array_module(x).isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_grad(grad: Any, shape: tuple[int, ...], name: str = "grad_out",
               like: Array | None = None) -> Array:
    """Check an output gradient: a float array of the forward output's ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> check_grad(np.ones((2, 3)), (2, 4))
    Traceback (most recent call last):
    ...
    ValueError: grad_out has shape (2, 3), the forward output had shape (2, 4)
    """
    check_float(grad, name)
    if like is not None:
        get_array_module(grad, like)
        if grad.dtype != like.dtype:
            raise TypeError(f"{name} has dtype {grad.dtype}, the forward pass ran in {like.dtype}")
    if tuple(grad.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(grad.shape)}, the forward output had shape "
                         f"{tuple(shape)}")
    return grad


def check_indices(idx: Any, name: str, upper: int, *, like: Array | None = None,
                  ignore: int | None = None) -> Array:
    """Check an integer index array with entries in ``[0, upper)`` (``ignore`` also allowed).

    Examples
    --------
    >>> import numpy as np
    >>> check_indices(np.array([0, 5]), "target", 5)
    Traceback (most recent call last):
    ...
    ValueError: target has entries outside [0, 5): min 0, max 5
    """
    if not (isinstance(idx, np.ndarray) or is_cupy_array(idx)):
        raise TypeError(f"{name} must be a numpy or cupy integer array, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got {idx.dtype}")
    if like is not None:
        get_array_module(idx, like)
    if idx.size:
        xp = get_array_module(idx)
        valid = idx if ignore is None else idx[idx != ignore]
        if valid.size:
            lo, hi = int(xp.min(valid)), int(xp.max(valid))
            if lo < 0 or hi >= upper:
                raise ValueError(f"{name} has entries outside [0, {upper}): min {lo}, max {hi}")
    return idx


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int if it is a positive integer (bool rejected).

    Examples
    --------
    >>> check_positive_int(0, "num_heads")
    Traceback (most recent call last):
    ...
    ValueError: num_heads must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def cached(cache: dict[str, Any], owner: str) -> dict[str, Any]:
    """Return ``cache`` or raise a RuntimeError when ``forward`` has not filled it.

    Examples
    --------
    >>> cached({}, "Linear")
    Traceback (most recent call last):
    ...
    RuntimeError: Linear.backward called before forward
    """
    if not cache:
        raise RuntimeError(f"{owner}.backward called before forward")
    return cache
