"""Argument checks shared by the tensor-train modules (errors name the argument)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._validation import check_positive_int

__all__ = ["check_eps", "check_max_rank", "check_scalar", "check_same_shape"]


def check_eps(eps: Any, name: str = "eps") -> float:
    """Return ``eps`` as a float, raising unless it is a finite number >= 0."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(eps).__name__}")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {eps}")
    return eps


def check_max_rank(max_rank: Any, name: str = "max_rank") -> int | None:
    """Return ``max_rank`` as an int >= 1, or None (no bound)."""
    if max_rank is None:
        return None
    return check_positive_int(max_rank, name)


def check_scalar(alpha: Any, name: str = "alpha") -> complex | float:
    """Return a finite Python scalar (real or complex), raising otherwise."""
    if isinstance(alpha, bool) or not isinstance(
            alpha, (int, float, complex, np.integer, np.floating, np.complexfloating)):
        if getattr(alpha, "ndim", None) == 0 and getattr(alpha, "dtype", None) is not None \
                and alpha.dtype.kind in "iufc":
            alpha = alpha.item()
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
