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
local QR by a TSQR over the processes that share a core. The sweep
primitives of rounding (:func:`~tensorpar.tt.sweeps.truncate_sweep`,
:func:`~tensorpar.tt.sweeps.implicit_left_sweep`) live in
:mod:`tensorpar.tt.sweeps`, so that every rounding variant imports them from
there and none imports another variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from .._backend import get_array_module
from .._linalg import matmul, norm, orth, orth_rows
from .._typing import Array, Direction
from .checks import check_tt
from .scale import normalize_cores
from .tensor import TTTensor

__all__ = ["tt_orthogonalize", "tt_orthonormalize", "qr_left", "lq_right",
           "absorb_left", "absorb_right", "apply_log_scale", "zero_train", "orthonormal_sweep",
           "MaxRank", "bond_limit"]

#: A TT rank bound as the truncations take it: one int for every bond, one per bond
#: (``max_rank[k]`` between cores ``k`` and ``k + 1``), or None (checked and put in this
#: form by :func:`tensorpar._validation.check_max_rank`).
MaxRank: TypeAlias = "int | Sequence[int] | None"

#: ``factor(k, core)``: QR (LQ) of core ``k`` in an orthonormal sweep (see :func:`orthonormal_sweep`).
FactorHook = Callable[[int, Array], tuple[Array, Array]]


def qr_left(core: Array) -> tuple[Array, Array]:
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

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((2, 3, 4))
    >>> Q, R = qr_left(core)
    >>> U = Q.reshape(6, -1)
    >>> Q.shape, bool(np.allclose(U.T @ U, np.eye(4))), bool(np.allclose(U @ R, core.reshape(6, 4)))
    ((2, 3, 4), True, True)
    """
    r, n, q = core.shape
    Q, R = orth(core.reshape(r * n, q))
    return Q.reshape(r, n, Q.shape[1]), R


def lq_right(core: Array) -> tuple[Array, Array]:
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

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((4, 3, 2))
    >>> L, Q = lq_right(core)
    >>> V = Q.reshape(Q.shape[0], 6)
    >>> Q.shape, bool(np.allclose(V @ V.T, np.eye(4))), bool(np.allclose(L @ V, core.reshape(4, 6)))
    ((4, 3, 2), True, True)
    """
    r, n, q = core.shape
    L, Q = orth_rows(core.reshape(r, n * q))
    return L, Q.reshape(Q.shape[0], n, q)


def absorb_left(R: Array, core: Array) -> Array:
    """``R`` times the core along its left rank: shape (p, n, q) for ``R`` of shape (p, r).

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((2, 3, 4))
    >>> R = np.array([[1.0, 2.0]])
    >>> out = absorb_left(R, core)
    >>> out.shape, bool(np.allclose(out[0], core[0] + 2 * core[1]))
    ((1, 3, 4), True)
    """
    r, n, q = core.shape
    return matmul(R, core.reshape(r, n * q)).reshape(R.shape[0], n, q)


def absorb_right(core: Array, L: Array) -> Array:
    """The core times ``L`` along its right rank: shape (r, n, p) for ``L`` of shape (q, p).

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((2, 3, 4))
    >>> out = absorb_right(core, np.ones((4, 1)))
    >>> out.shape, bool(np.allclose(out[..., 0], core.sum(axis=2)))
    ((2, 3, 1), True)
    """
    r, n, q = core.shape
    return matmul(core.reshape(r * n, q), L).reshape(r, n, L.shape[1])


def zero_train(shape: Sequence[int], dtype: Any, xp: Any, direction: Direction = "left") -> list[Array]:
    """Rank-1 orthogonal cores of the zero tensor (unit vectors, zero non-orthogonal core).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.orth import zero_train
    >>> [c.ravel().tolist() for c in zero_train((2, 3), np.float64, np)]
    [[1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    cores = []
    for n in shape:
        c = xp.zeros((1, int(n), 1), dtype=dtype)
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
    check_tt(x)
    if direction not in ("left", "right"):
        raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
    cores, e2 = normalize_cores(x.cores)
    out, end, log_norm = orthonormal_sweep(cores, direction)
    s = 0.0 if end is None else norm(end)
    if end is None or s == 0.0:
        return TTTensor(zero_train(x.shape, x.dtype, get_array_module(*x.cores), direction)), -math.inf
    out[-1 if direction == "left" else 0] = end / s
    return TTTensor(out), log_norm + math.log(s) + e2 * math.log(2.0)


def orthonormal_sweep(cores: Sequence[Array], direction: Direction = "left",
                      factor: FactorHook | None = None) -> tuple[list[Array], Array | None, float]:
    """One QR (LQ) sweep; the factor carried between cores is normalized after every step.

    Parameters
    ----------
    cores : sequence of ndarray
        The train's cores (or, in the distributed code, this rank's slices).
    direction : {"left", "right"}
        "left" makes cores ``0..d-2`` left-orthonormal, "right" cores ``1..d-1``
        right-orthonormal.
    factor : callable, optional
        ``factor(k, a)``: ``(q_core, R)`` of core ``k`` for "left" (default
        :func:`qr_left`), ``(L, q_core)`` for "right" (default :func:`lq_right`);
        the distributed code passes a TSQR.

    Returns
    -------
    (cores, end, log_scale)
        The cores with the orthonormal ones in place, the end core (last for
        "left", first for "right") with the carried factor absorbed and not
        normalized (None when the tensor is zero), and the log of the factors
        divided out: the train equals the returned one times ``exp(log_scale)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.orth import orthonormal_sweep
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> cores, end, log_scale = orthonormal_sweep(x.cores)
    >>> bool(np.isclose(np.linalg.norm(end) * np.exp(log_scale), np.linalg.norm(x.to_dense())))
    True
    """
    left = direction == "left"
    step = factor if factor is not None else (
        (lambda k, a: qr_left(a)) if left else (lambda k, a: lq_right(a)))
    cores = list(cores)
    d = len(cores)
    carry = None
    log_scale = 0.0
    for k in (range(d - 1) if left else range(d - 1, 0, -1)):
        if left:
            a = cores[k] if carry is None else absorb_left(carry, cores[k])
            cores[k], carry = step(k, a)
        else:
            a = cores[k] if carry is None else absorb_right(cores[k], carry)
            carry, cores[k] = step(k, a)
        s = norm(carry)
        if s == 0.0:
            return cores, None, -math.inf
        carry = carry / s  # keeps the carried factor in range for any d
        log_scale += math.log(s)
    pos = -1 if left else 0
    if carry is not None:
        cores[pos] = absorb_left(carry, cores[pos]) if left else absorb_right(cores[pos], carry)
    return cores, cores[pos], log_scale


def apply_log_scale(cores: Sequence[Array], log_scale: float, position: int) -> list[Array]:
    """Multiply a train by ``exp(log_scale)`` without overflow in the factor.

    The factor goes on ``cores[position]`` when it is safely representable
    (``|log_scale| <= 600``); otherwise ``exp(log_scale / d)`` goes on every
    core, so each core stays in range as long as the result can be.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> y = TTTensor(apply_log_scale(x.cores, 1000.0, 0))   # e**1000 overflows alone
    >>> bool(np.isclose(y.log_norm(), 1000.0 + np.log(x.norm())))
    True
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


def bond_limit(max_rank: MaxRank, bond: int) -> int | None:
    """The limit of bond ``bond`` (between cores ``bond`` and ``bond + 1``) under ``max_rank``.

    Examples
    --------
    >>> bond_limit(None, 0), bond_limit(4, 2), bond_limit((2, 5, 3), 1)
    (None, 4, 5)
    """
    if max_rank is None:
        return None
    if isinstance(max_rank, Sequence):
        return int(max_rank[bond])
    return int(max_rank)  # an int (numpy integers included)
