"""Argument checks of the distributed TT entry points that take DistTTTensor operands.

The local checks (:func:`check_dist_tt`, :func:`check_dist_pair`) raise a
TypeError or ValueError naming the argument; :func:`describe` says what the
ranks must agree on about an operand and :func:`operand_comm` on which
communicator, so that :func:`agree_pair` (and the other entry points, through
:func:`tensorpar.distributed.tt.agreement.agree_checked`) make every rank raise
the same exception before the first message that moves data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._validation import check_same_shape
from ..comm import resolve_comm
from .agreement import agree_checked
from .tensor import DistTTTensor

__all__ = ["check_dist_tt", "check_dist_pair", "agree_pair", "describe", "operand_comm"]


def describe(x: Any) -> Any:
    """What ranks must agree on about an operand: shape, ranks and dtype (or its type name).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.checks import describe
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor
    >>> describe(DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))), describe(None)
    (((4, 5), (1, 2, 1), '<f8'), 'NoneType')
    """
    if isinstance(x, DistTTTensor):
        return (x.shape, x.ranks, np.dtype(x.dtype).str)
    return type(x).__name__


def operand_comm(*operands: Any) -> Any:
    """The communicator of the first DistTTTensor operand (``COMM_WORLD`` if there is none).

    A rank that got a wrong operand still joins the agreement on the others' communicator.

    Examples
    --------
    >>> from tensorpar.distributed.tt.checks import operand_comm
    >>> operand_comm("not a tensor").Get_size() >= 1
    True
    """
    for x in operands:
        if isinstance(x, DistTTTensor):
            return x.comm
    return resolve_comm(None)


def check_dist_tt(x: Any, name: str = "x") -> DistTTTensor:
    """Return ``x`` when it is a DistTTTensor, else raise a TypeError naming ``name``.

    Examples
    --------
    >>> from tensorpar.distributed.tt.checks import check_dist_tt
    >>> check_dist_tt(1.0, "y")
    Traceback (most recent call last):
    ...
    TypeError: y must be a DistTTTensor, got float
    """
    if not isinstance(x, DistTTTensor):
        raise TypeError(f"{name} must be a DistTTTensor, got {type(x).__name__}")
    return x


def check_dist_pair(x: Any, y: Any) -> None:
    """Local checks of two operands: DistTTTensors of the same shape on the same communicator.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.checks import check_dist_pair
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> check_dist_pair(x, x)   # passes silently
    """
    check_dist_tt(x, "x")
    check_dist_tt(y, "y")
    check_same_shape([x.shape, y.shape], ["x", "y"])
    if x.comm is not y.comm and x.comm != y.comm:
        raise ValueError("x and y live on different communicators")


def agree_pair(x: Any, y: Any) -> None:
    """Collective checks of two operands: :func:`check_dist_pair` on every rank, then agreement.

    Every rank raises the same exception when the check fails on any rank or
    the operands differ between ranks (one ``"meta"`` message, no data).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.checks import agree_pair
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> agree_pair(x, x)   # passes silently
    """
    agree_checked(operand_comm(x, y), lambda: check_dist_pair(x, y),
                  {"x": describe(x), "y": describe(y)})
