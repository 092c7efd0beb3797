"""Argument checks shared by the TT function modules."""

from __future__ import annotations

from typing import Any

from .._backend import get_array_module
from .._validation import check_same_shape
from .tensor import TTTensor

__all__ = ["check_tt", "check_tt_pair"]


def check_tt(x: Any, name: str = "x") -> TTTensor:
    """Return ``x`` when it is a :class:`TTTensor`, else raise a TypeError naming ``name``.

    Examples
    --------
    >>> from tensorpar.tt.checks import check_tt
    >>> check_tt([1.0], "y")
    Traceback (most recent call last):
    ...
    TypeError: y must be a TTTensor, got list
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"{name} must be a TTTensor, got {type(x).__name__}")
    return x


def check_tt_pair(x: Any, y: Any) -> None:
    """Check two TT operands: both TTTensor, same shape, same device.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.checks import check_tt_pair
    >>> check_tt_pair(random_tt((2, 3), 1, seed=0), random_tt((3, 2), 1, seed=0))
    Traceback (most recent call last):
    ...
    ValueError: y has shape (3, 2) but x has shape (2, 3); TT operands must have the same mode sizes
    """
    check_tt(x, "x")
    check_tt(y, "y")
    check_same_shape([x.shape, y.shape], ["x", "y"])
    get_array_module(x.cores[0], y.cores[0])
