"""Left and right orthogonalization of tensor trains by QR sweeps.

A left sweep factors each core's left unfolding ``(r_k n_k) x r_{k+1}`` as
``Q R``, keeps ``Q`` as the new core and multiplies ``R`` into the next core;
a right sweep does the mirror image with LQ factorizations of the right
unfoldings. Each step costs one Householder QR of an ``(r n) x r`` matrix and
one ``r x r`` by ``r x (n r)`` product, O(n r^3).

Long trains: the ``R`` factor is divided by its norm after every step and
the scale is kept as a logarithm, so a sweep over thousands of cores neither
overflows nor underflows. :func:`tt_orthonormalize` returns the unit-norm
train and ``log ||x||``; :func:`tt_orthogonalize` multiplies the norm back
into the last (first) core.

The per-core steps (:func:`qr_left`, :func:`lq_right`, :func:`absorb_left`,
:func:`absorb_right`) are public for the distributed code, which replaces the
local QR by a TSQR over the processes that share a core.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from .._backend import get_array_module
from .._linalg import matmul, norm, orth, orth_rows
from .tensor import TTTensor

__all__ = ["tt_orthogonalize", "tt_orthonormalize", "qr_left", "lq_right",
           "absorb_left", "absorb_right", "apply_log_scale"]

Direction = Literal["left", "right"]


def qr_left(core: Any) -> tuple[Any, Any]:
    """Orthogonalize a core's left unfolding (a QR factorization up to the shape of ``R``).

    Parameters
    ----------
    core : ndarray, shape (r, n, q)

    Returns
    -------
    q_core : ndarray, shape (r, n, t)
        Left-orthogonal: its unfolding ``(r n) x t`` has orthonormal columns;
        ``t <= min(r n, q)`` (smaller when the unfolding is numerically rank
        deficient, see :func:`tensorpar._linalg.orth`).
    R : ndarray, shape (t, q)
        ``core.reshape(r n, q) = q_core.reshape(r n, t) @ R`` to rounding
        error; not necessarily triangular.
    """
    r, n, q = core.shape
    Q, R = orth(core.reshape(r * n, q))
    return Q.reshape(r, n, Q.shape[1]), R


def lq_right(core: Any) -> tuple[Any, Any]:
    """Orthogonalize a core's right unfolding (an LQ factorization up to the shape of ``L``).

    Parameters
    ----------
    core : ndarray, shape (r, n, q)

    Returns
    -------
    L : ndarray, shape (r, t)
    q_core : ndarray, shape (t, n, q)
        Right-orthogonal: its unfolding ``t x (n q)`` has orthonormal rows;
        ``t <= min(r, n q)`` and ``core.reshape(r, n q) = L @ q_core.reshape(t, n q)``
        to rounding error.
    """
    r, n, q = core.shape
    L, Q = orth_rows(core.reshape(r, n * q))
    return L, Q.reshape(Q.shape[0], n, q)


def absorb_left(R: Any, core: Any) -> Any:
    """``R`` times the core along its left rank: shape (p, n, q) for ``R`` of shape (p, r)."""
    r, n, q = core.shape
    return matmul(R, core.reshape(r, n * q)).reshape(R.shape[0], n, q)


def absorb_right(core: Any, L: Any) -> Any:
    """The core times ``L`` along its right rank: shape (r, n, p) for ``L`` of shape (q, p)."""
    r, n, q = core.shape
    return matmul(core.reshape(r * n, q), L).reshape(r, n, L.shape[1])


def _zero_train(x: TTTensor, direction: Direction) -> list[Any]:
    """Rank-1 orthogonal cores of the zero tensor (unit vectors, zero norm core)."""
    xp = get_array_module(*x.cores)
    cores = []
    for n in x.shape:
        c = xp.zeros((1, n, 1), dtype=x.dtype)
        c[0, 0, 0] = 1
        cores.append(c)
    cores[-1 if direction == "left" else 0][...] = 0
    return cores


def tt_orthonormalize(x: TTTensor, direction: Direction = "left") -> tuple[TTTensor, float]:
    """Orthogonalize by a QR sweep and split off the norm as a logarithm.

    Parameters
    ----------
    x : TTTensor
    direction : {"left", "right"}
        "left": cores ``0..d-2`` become left-orthogonal, core ``d-1`` holds the
        rest; "right": cores ``1..d-1`` become right-orthogonal.

    Returns
    -------
    y : TTTensor
        ``x / ||x||`` (unit Frobenius norm; the non-orthogonal core has unit
        norm). Ranks never grow and drop where an unfolding is rank deficient
        by shape (``r n < q``).
    log_norm : float
        ``log ||x||_F`` (``-inf`` for the zero tensor, whose ``y`` has rank 1).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_orthonormalize
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> y, log_norm = tt_orthonormalize(x)
    >>> G = y.cores[0].reshape(3, -1)
    >>> bool(np.allclose(G.T @ G, np.eye(G.shape[1])))
    True
    >>> bool(np.isclose(np.exp(log_norm), np.linalg.norm(x.to_dense())))
    True
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"x must be a TTTensor, got {type(x).__name__}")
    if direction not in ("left", "right"):
        raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
    cores = list(x.cores) if direction == "left" else list(x.cores[::-1])
    d = len(cores)
    out: list[Any] = []
    log_norm = 0.0
    carry = None
    for k in range(d - 1):
        c = cores[k]
        if direction == "left":
            c = c if carry is None else absorb_left(carry, c)
            q_core, carry = qr_left(c)
        else:
            c = c if carry is None else absorb_right(c, carry)
            carry, q_core = lq_right(c)
        s = norm(carry)
        if s == 0.0:
            return TTTensor(_zero_train(x, direction)), -math.inf
        carry = carry / s
        log_norm += math.log(s)
        out.append(q_core)
    last = cores[-1]
    if carry is not None:
        last = absorb_left(carry, last) if direction == "left" else absorb_right(last, carry)
    s = norm(last)
    if s == 0.0:
        return TTTensor(_zero_train(x, direction)), -math.inf
    out.append(last / s)
    log_norm += math.log(s)
    return TTTensor(out if direction == "left" else out[::-1]), log_norm


def apply_log_scale(cores: list[Any], log_scale: float, position: int) -> list[Any]:
    """Multiply a train by ``exp(log_scale)`` without overflow in the factor.

    The factor goes on ``cores[position]`` when it is safely representable
    (``|log_scale| <= 600``); otherwise ``exp(log_scale / d)`` goes on every
    core, so each core stays in range as long as the result can be.
    """
    cores = list(cores)
    if log_scale == 0.0:
        return cores
    if log_scale == -math.inf:
        cores[position] = cores[position] * 0
        return cores
    if abs(log_scale) <= 600.0:
        cores[position] = cores[position] * math.exp(log_scale)
        return cores
    f = math.exp(log_scale / len(cores))
    return [c * f for c in cores]


def tt_orthogonalize(x: TTTensor, direction: Direction = "left") -> TTTensor:
    """Orthogonalize a TT by a QR sweep; the tensor is unchanged.

    Parameters
    ----------
    x : TTTensor
    direction : {"left", "right"}
        "left": cores ``0..d-2`` left-orthogonal and the norm in core ``d-1``;
        "right": cores ``1..d-1`` right-orthogonal and the norm in core 0.

    Returns
    -------
    TTTensor
        See :func:`tt_orthonormalize` for the sweep. If ``||x||`` lies outside
        the floating-point range the norm is spread evenly over all cores.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_orthogonalize
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> y = tt_orthogonalize(x, "right")
    >>> G = y.cores[2].reshape(y.ranks[2], -1)
    >>> bool(np.allclose(G @ G.T, np.eye(G.shape[0])))
    True
    >>> bool(np.allclose(y.to_dense(), x.to_dense()))
    True
    """
    y, log_norm = tt_orthonormalize(x, direction)
    return TTTensor(apply_log_scale(y.cores, log_norm, -1 if direction == "left" else 0))
