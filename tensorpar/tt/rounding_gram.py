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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._linalg import ct, eigh, matmul, norm, svd, truncation_rank
from .orth import _zero_train, absorb_left, apply_log_scale
from .tensor import TTTensor

__all__ = ["round_gram", "gram_step_right", "gram_left"]


def gram_step_right(G: Any, core: Any) -> Any:
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
    """
    r, n, q = core.shape
    t = matmul(core.reshape(r * n, q), G).reshape(r, n * q)
    return matmul(t, ct(core.reshape(r, n * q)))


def gram_left(core: Any) -> Any:
    """Gram matrix ``C^H C`` of a core's left unfolding ``C`` (``(r n) x q``), shape (q, q)."""
    r, n, q = core.shape
    c = core.reshape(r * n, q)
    return matmul(ct(c), c)


def _eig_kept(G: Any, tol: float) -> tuple[Any, Any]:
    """Eigenpairs of the Hermitian ``G`` with eigenvalues above ``tol * max``."""
    lam, V = eigh((G + ct(G)) / 2)
    keep = lam > tol * float(lam.max())
    return lam[keep], V[:, keep]


def _bond_transforms(GL: Any, GR: Any, rel_delta: float, max_rank: int | None,
                     tol: float) -> tuple[Any, Any] | None:
    """``(T_L, S_R)`` of one bond, or None when the tensor is zero."""
    xp = get_array_module(GL)
    if float(xp.abs(GL).max()) == 0.0 or float(xp.abs(GR).max()) == 0.0:
        return None
    a, VL = _eig_kept(GL, tol)
    b, VR = _eig_kept(GR, tol)
    sa, sb = xp.sqrt(a), xp.sqrt(b)
    M = (sa[:, None] * matmul(ct(VL), VR)) * sb[None, :]
    U, S, Wh = svd(M)
    nrm = norm(S)
    if nrm == 0.0:
        return None
    t = truncation_rank(S, rel_delta * nrm, max_rank)
    TL = matmul(VL, U[:, :t] / sa[:, None])
    SR = matmul((S[:t, None] * Wh[:t]) / sb[None, :], ct(VR))
    return TL, SR


def round_gram(x: TTTensor, eps: float, max_rank: int | None) -> TTTensor:
    """Gram-SVD rounding; called by :func:`tensorpar.tt_round` with ``method="gram"``."""
    cores = list(x.cores)
    d = len(cores)
    if d == 1:
        return TTTensor([c.copy() for c in cores])
    xp = get_array_module(*cores)
    tol = max(x.ranks) * float(np.finfo(x.dtype).eps)
    grams: list[Any] = [None] * (d + 1)
    grams[d] = xp.ones((1, 1), dtype=x.dtype)
    for k in range(d - 1, 0, -1):
        g = gram_step_right(grams[k + 1], cores[k])
        s = float(xp.abs(g).max())
        if s == 0.0:
            return TTTensor(_zero_train(x, "left"))
        grams[k] = g / s  # only the directions and ratios matter at each bond
    rel_delta = eps / math.sqrt(d - 1)
    log_scale = 0.0
    for k in range(d - 1):
        r, n, q = cores[k].shape
        tr = _bond_transforms(gram_left(cores[k]), grams[k + 1], rel_delta, max_rank, tol)
        if tr is None:
            return TTTensor(_zero_train(x, "left"))
        TL, SR = tr
        cores[k] = matmul(cores[k].reshape(r * n, q), TL).reshape(r, n, TL.shape[1])
        nxt = absorb_left(SR, cores[k + 1])
        s = norm(nxt)
        if s == 0.0:
            return TTTensor(_zero_train(x, "left"))
        cores[k + 1] = nxt / s
        log_scale += math.log(s)
    return TTTensor(apply_log_scale(cores, log_scale, -1))
