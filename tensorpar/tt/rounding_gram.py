"""TT rounding from Gram matrices (Al Daas, Ballard and Manning, IPDPS 2022).

For the bond between cores ``k`` and ``k+1`` write ``X = L R`` with ``L`` the
left part (``n_0...n_k x r``) and ``R`` the right part. With the ``r x r``
Gram matrices ``L^H L = V_L diag(a) V_L^H`` and ``R R^H = V_R diag(b) V_R^H``,
the singular values of the unfolding are those of
``M = diag(sqrt a) V_L^H V_R diag(sqrt b)``; with ``M = U S W^H`` the
truncation is applied as two ``r x t`` transformations,
``core_k <- core_k V_L diag(a^-1/2) U_t`` and
``core_{k+1} <- S_t W_t^H diag(b^-1/2) V_R^H core_{k+1}``.

All right Gram matrices come from one right-to-left sweep; the left Gram at
each bond is that of the current core alone, because the truncated left part
is orthonormal. Every flop outside the ``r x r`` eigen- and singular value
decompositions is a matrix product. The price: forming ``L^H L`` squares
the condition number, so singular values below about ``sqrt(machine eps)``
times the largest are not resolved (accuracy floor about 1e-8 relative in
float64).

:func:`round_gram` takes a ``reduce=`` hook: the partial Gram matrices of
slices of the mode index add up, so the distributed code passes an
allreduce and runs this same function on its local slices. The scale of
each core is read off the trace of its (reduced) left Gram matrix, so
rescaling needs no extra message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._linalg import ct, eigh, matmul, svd, truncation_rank
from .._typing import Array
from .orth import MaxRank, absorb_left, apply_log_scale, bond_limit

__all__ = ["round_gram", "gram_step_right", "gram_left", "bond_transforms"]


def gram_step_right(G: Array, core: Array) -> Array:
    """Right Gram of the part starting at ``core``: ``sum_m core_m G core_m^H``.

    Parameters
    ----------
    G : ndarray, shape (q, q)
        Gram matrix of the part to the right of ``core``.
    core : ndarray, shape (r, n, q)

    Returns
    -------
    ndarray, shape (r, r)
        Two matrix products, ``2 n (r q^2 + r^2 q)`` flops. Partial sums over
        slices of the mode index add up to the result.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_gram import gram_step_right
    >>> c = np.arange(12.0).reshape(2, 3, 2)
    >>> bool(np.allclose(gram_step_right(np.eye(2), c), c.reshape(2, 6) @ c.reshape(2, 6).T))
    True
    """
    r, n, q = core.shape
    t = matmul(core.reshape(r * n, q), G).reshape(r, n * q)
    return matmul(t, ct(core.reshape(r, n * q)))


def gram_left(core: Array) -> Array:
    """Gram matrix ``C^H C`` of a core's left unfolding ``C`` (``(r n) x q``), shape (q, q).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_gram import gram_left
    >>> gram_left(np.ones((1, 3, 2)))
    array([[3., 3.],
           [3., 3.]])
    """
    r, n, q = core.shape
    c = core.reshape(r * n, q)
    return matmul(ct(c), c)


def _eig_kept(G: Array, tol: float) -> tuple[Array, Array]:
    """Eigenpairs of the Hermitian ``G`` with eigenvalues above ``tol * max``."""
    lam, V = eigh((G + ct(G)) / 2)
    keep = lam > tol * float(lam.max())
    return lam[keep], V[:, keep]


def bond_transforms(GL: Array, GR: Array, rel_delta: float, max_rank: int | None,
                    tol: float) -> tuple[Array, Array] | None:
    """Truncating transformations ``(T_L, S_R)`` of one bond from its two Gram matrices.

    Parameters
    ----------
    GL, GR : ndarray, shape (r, r)
        Left and right Gram matrices of the bond (any positive scale each).
    rel_delta : float
        Truncation threshold relative to the norm of the bond's singular values.
    max_rank : int, optional
    tol : float
        Eigenvalues below ``tol`` times the largest are treated as zero.

    Returns
    -------
    (T_L, S_R) or None
        ``core_k <- core_k T_L`` and ``core_{k+1} <- S_R core_{k+1}``; None
        when the tensor is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.rounding_gram import bond_transforms
    >>> TL, SR = bond_transforms(np.diag([4.0, 1e-30]), np.eye(2), 1e-8, None, 1e-15)
    >>> TL.shape, SR.shape
    ((2, 1), (1, 2))
    """
    xp = get_array_module(GL)
    if float(xp.abs(GL).max()) == 0.0 or float(xp.abs(GR).max()) == 0.0:
        return None
    a, VL = _eig_kept(GL, tol)
    b, VR = _eig_kept(GR, tol)
    sa, sb = xp.sqrt(a), xp.sqrt(b)
    M = (sa[:, None] * matmul(ct(VL), VR)) * sb[None, :]
    U, S, Wh = svd(M)
    nrm = float(xp.linalg.norm(S))
    if nrm == 0.0:
        return None
    t = truncation_rank(S, rel_delta * nrm, max_rank)
    TL = matmul(VL, U[:, :t] / sa[:, None])
    SR = matmul((S[:t, None] * Wh[:t]) / sb[None, :], ct(VR))
    return TL, SR


def round_gram(cores: Sequence[Array], eps: float, max_rank: MaxRank, *,
               reduce: Callable[[Array], Array] | None = None) -> list[Array] | None:
    """Gram-SVD rounding of a train given by its cores (:func:`tensorpar.tt_round`, ``method="gram"``).

    Parameters
    ----------
    cores : sequence of ndarray
        ``d >= 2`` cores (or, in the distributed code, this rank's slices of
        them along the mode index), entries in the safe range of
        :func:`tensorpar.tt.scale.normalize_cores`.
    eps : float
        Relative accuracy.
    max_rank : int or sequence of int, optional
        One bound for every bond or ``d - 1`` (one per bond).
    reduce : callable, optional
        Applied to every partial Gram matrix (an allreduce in the distributed
        code); ``d - 1`` right and ``d - 1`` left Grams.

    Returns
    -------
    list of ndarray or None
        The rounded cores, or None when the tensor is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.rounding_gram import round_gram
    >>> x = random_tt((4, 5, 6), 3, seed=0)
    >>> [c.shape[2] for c in round_gram((x + x).cores, 1e-8, None)]
    [3, 3, 1]
    """
    red = reduce if reduce is not None else (lambda a: a)
    cores = list(cores)
    d = len(cores)
    xp = get_array_module(*cores)
    dtype = np.result_type(*[c.dtype for c in cores])
    tol = max(c.shape[0] for c in cores) * float(np.finfo(dtype).eps)
    grams: list[Any] = [None] * (d + 1)
    grams[d] = xp.ones((1, 1), dtype=dtype)
    for k in range(d - 1, 0, -1):
        g = red(gram_step_right(grams[k + 1], cores[k]))
        s = float(xp.abs(g).max())
        if s == 0.0:
            return None
        grams[k] = g / s  # only the directions and ratios matter at each bond
    rel_delta = eps / math.sqrt(d - 1)
    log_scale = 0.0
    for k in range(d - 1):
        r, n, q = cores[k].shape
        GL = red(gram_left(cores[k]))
        if k > 0:  # normalize the core by its norm, the square root of its Gram's trace
            s = math.sqrt(abs(float(xp.trace(GL).real)))
            if s == 0.0:
                return None
            cores[k], GL = cores[k] / s, GL / (s * s)
            log_scale += math.log(s)
        tr = bond_transforms(GL, grams[k + 1], rel_delta, bond_limit(max_rank, k), tol)
        if tr is None:
            return None
        TL, SR = tr
        cores[k] = matmul(cores[k].reshape(r * n, q), TL).reshape(r, n, TL.shape[1])
        cores[k + 1] = absorb_left(SR, cores[k + 1])
    return apply_log_scale(cores, log_scale, -1)
