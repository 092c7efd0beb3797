"""Dense linear algebra for the tensor-train sweeps (host: numpy only; device: cupy).

The TT sweeps spend their time in QR factorizations of tall-skinny core
unfoldings (``(r n) x r``), matrix products and SVDs of small matrices.

**QR.** :func:`qr` runs CholeskyQR2 (Gram matrix, Cholesky factor, product
with its inverse, twice: matrix products throughout, no transposed copies)
when the first Cholesky factor's condition number shows that CholeskyQR2 is
as accurate as Householder (Yamamoto et al. 2015), and Householder QR
(``numpy.linalg.qr``) otherwise -- rank-deficient or ill-conditioned
matrices. For 2048 x 64, CholeskyQR2 took about 1 ms and
``numpy.linalg.qr`` 3 ms on one thread, 9 ms on two (OpenBLAS threads its
unblocked panel factorization badly). Truncated SVDs of ill-conditioned tall
matrices, which rounding meets whenever singular values decay, avoid the
Householder ``Q`` altogether (see :func:`_tall_svd`).

**One thread pool.** pip's numpy and scipy wheels each carry an OpenBLAS with
its own thread pool, and OpenBLAS threads spin for a while after every call:
alternating numpy and scipy calls makes the two pools fight for the cores.
On the 2-core development machine a 64 x 64 scipy SVD right after a numpy
product took 7.1 ms instead of 1.0 ms, and scipy's faster ``geqrt`` made QR
rounding slower overall (92 ms against 62 ms) for that reason. Everything
here therefore runs on numpy, the pool user code and the rest of tensorpar
use.

On cupy arrays the same functions call cuBLAS/cuSOLVER through cupy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import get_array_module
from ._typing import Array

__all__ = ["matmul", "norm", "ct", "eigh", "qr", "lq", "orth", "orth_rows", "gram_cholesky",
           "svd", "truncated_svd", "left_svd", "truncation_rank"]

#: CholeskyQR2 is used when the 1-norm condition number of its first Cholesky
#: factor is at most this (cond_2(a) <~ 1e5 sqrt(n), far below the
#: 1/sqrt(machine eps) ~ 7e7 where CholeskyQR2 stops being stable).
_CHOLQR_COND = 1e5
#: Below this condition number ``a @ inv(r)`` multiplies by the explicit
#: inverse (measured residual <= 2 ulps up to 1e3) instead of an LU solve.
_INVERSE_COND = 1e3
#: Below this many entries Householder's fewer library calls win.
_CHOLQR_MIN_SIZE = 512
_DOUBLE = (np.dtype(np.float64), np.dtype(np.complex128))


def ct(a: Any) -> Any:
    """Conjugate transpose (a transposed view for real arrays)."""
    return a.conj().T if a.dtype.kind == "c" else a.T


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` after checking that both live on the same device."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        get_array_module(a, b)  # raises on mixed numpy/cupy
    return a @ b


def norm(a: Any) -> float:
    """Frobenius norm of any array as a Python float."""
    xp = get_array_module(a)
    return float(xp.linalg.norm(a.ravel()))


def eigh(g: Any) -> tuple[Any, Any]:
    """Eigenvalues (ascending) and eigenvectors of a Hermitian matrix."""
    w, v = get_array_module(g).linalg.eigh(g)
    return w, v


def _matmul_in_layout(a: Array, b: Array) -> Array:
    """``a @ b`` in ``a``'s memory order (Fortran-ordered ``a`` gives a Fortran-ordered result)."""
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        return (b.T @ a.T).T
    return a @ b


def _chol_upper(a: Array) -> Array | None:
    """Upper Cholesky factor of ``a^H a``, or None when it is not numerically definite."""
    try:
        return ct(np.linalg.cholesky(ct(a) @ a))
    except np.linalg.LinAlgError:
        return None


def _cond1(r: Array, inv: Array) -> float:
    return float(np.abs(r).sum(axis=0).max() * np.abs(inv).sum(axis=0).max())


def gram_cholesky(a: Any) -> tuple[Any, Any, float] | None:
    """One CholeskyQR pass without forming ``Q``: ``(r, inv(r), cond_1(r))``.

    ``r`` is the upper Cholesky factor of ``a^H a``, so ``q = a @ inv(r)`` has
    orthonormal columns up to ``O(eps cond(a)^2)``. None when the Gram matrix
    is not numerically definite.
    """
    xp = get_array_module(a)
    try:
        r = ct(xp.linalg.cholesky(ct(a) @ a))
    except np.linalg.LinAlgError:
        return None
    if xp is not np and not bool(xp.isfinite(r).all()):  # cuSOLVER flags failure with NaN
        return None
    inv = xp.linalg.inv(r)
    return r, inv, float(xp.abs(r).sum(axis=0).max() * xp.abs(inv).sum(axis=0).max())


def _cholesky_qr2(a: Array) -> tuple[Array, Array] | None:
    """CholeskyQR2 (Fukaya et al. 2014), or None when ``a`` is too ill-conditioned for it.

    ``a @ inv(r1)`` multiplies by the explicit inverse when ``r1`` is well
    conditioned (residual a few ulps) and is an LU solve otherwise (backward
    stable); the second factor is within rounding of the identity.
    """
    r1 = _chol_upper(a)
    if r1 is None:
        return None
    inv1 = np.linalg.inv(r1)
    cond = _cond1(r1, inv1)
    if not cond <= _CHOLQR_COND:
        return None
    if cond <= _INVERSE_COND:
        q1 = _matmul_in_layout(a, inv1)
    else:
        q1 = np.linalg.solve(r1.T, a.T).T
    r2 = _chol_upper(q1)
    if r2 is None:
        return None
    return _matmul_in_layout(q1, np.linalg.inv(r2)), r2 @ r1


def _householder_qr(a: Array) -> tuple[Array, Array]:
    q, r = np.linalg.qr(a)
    return q, r


def left_svd(a: Any, delta: float, max_rank: int | None = None) -> tuple[Any, Any, Any]:
    """Truncated left singular vectors of a wide matrix and the projected rest.

    Returns ``(u, s, rest)`` with ``u`` (m x t) orthonormal, ``s`` the kept
    singular values and ``rest = u^H a`` (t x n), so that ``u @ rest`` is the
    orthogonal projection of ``a`` on the kept left singular subspace. Only the
    triangular factor of ``a^H = Q R`` is computed (Householder, ``Q`` never
    formed); ``rest`` is one matrix product, with no division by small
    singular values. This is TT-SVD's step, where ``a`` is a wide unfolding.
    """
    xp = get_array_module(a)
    m, n = a.shape
    if xp is np and n >= 2 * m and m > 1:
        r = np.linalg.qr(ct(a), mode="r")  # Householder, Q never formed
        u, s, _ = _small_svd(ct(r))
    else:
        u, s, _ = truncated_svd(a, 0.0, None, keep_all=True)
    t = truncation_rank(s, delta, max_rank)
    u = u[:, :t]
    return u, s[:t], ct(u) @ a


def qr(a: Any) -> tuple[Any, Any]:
    """Reduced QR factorization ``a = q @ r`` (see the module notes for the method).

    Parameters
    ----------
    a : ndarray, shape (m, n)
        numpy or cupy; real or complex.

    Returns
    -------
    q : ndarray, shape (m, k)
        Orthonormal columns, ``k = min(m, n)``.
    r : ndarray, shape (k, n)
        Upper triangular (trapezoidal when ``m < n``).
    """
    xp = get_array_module(a)
    if xp is not np:
        q, r = xp.linalg.qr(a, mode="reduced")
        return q, r
    m, n = a.shape
    # single precision: 1/sqrt(eps) ~ 3e3 leaves CholeskyQR2 too little room
    if m >= n and m * n >= _CHOLQR_MIN_SIZE and a.dtype in _DOUBLE:
        res = _cholesky_qr2(a)
        if res is not None:
            return res
    return _householder_qr(a)


def orth(a: Any) -> tuple[Any, Any]:
    """Orthonormal basis of the column space: ``a = q @ c`` with ``q^H q = I``.

    Like :func:`qr` but ``c`` need not be triangular, and columns of ``q``
    for numerically zero singular values (below ``10 k eps s_1``, ``k`` the
    column count) may be dropped, so ``q`` can have fewer than ``min(m, n)``
    columns. That is all a TT orthogonalization needs, and it allows a fast
    path for ill-conditioned and rank-deficient matrices: the triangular
    factor alone from Householder (``Q`` never formed), its SVD
    ``r = u s v^H``, and ``a v s^-1`` re-orthonormalized by CholeskyQR2
    (columns off by at most ``eps s_1 / s_t``, far below 1 after the
    dropping). Residual ``||a - q c||`` stays at rounding level.

    Returns
    -------
    q : ndarray, shape (m, t)
    c : ndarray, shape (t, n)
    """
    xp = get_array_module(a)
    m, n = a.shape
    if xp is not np or m < n or m * n < _CHOLQR_MIN_SIZE or a.dtype not in _DOUBLE:
        return qr(a)
    res = _cholesky_qr2(a)
    if res is not None:
        return res
    r = np.linalg.qr(a, mode="r")
    _, s, vh = _small_svd(r)
    t = max(1, int(np.count_nonzero(s > 10 * n * np.finfo(a.dtype).eps * s[0])))
    fix = _cholesky_qr2((a @ ct(vh[:t])) / s[:t]) if s[0] > 0 else None
    if fix is None:
        return _householder_qr(a)
    q, corr = fix  # a v_t = q corr diag(s_t)
    return q, (corr * s[:t]) @ vh[:t]


def orth_rows(a: Any) -> tuple[Any, Any]:
    """Orthonormal basis of the row space: ``a = l @ q`` with ``q q^H = I`` (see :func:`orth`)."""
    qt, lt = orth(ct(a))
    return ct(lt), ct(qt)


def lq(a: Any) -> tuple[Any, Any]:
    """Reduced LQ factorization ``a = l @ q`` (``q`` with orthonormal rows).

    Computed as the QR factorization of ``a^H``; for a C-ordered real ``a``
    that transpose is a Fortran-ordered view, so nothing is transposed in
    memory.

    Returns
    -------
    l : ndarray, shape (m, k)
    q : ndarray, shape (k, n)
    """
    qt, rt = qr(ct(a))
    return ct(rt), ct(qt)


def _small_svd(a: Any) -> tuple[Any, Any, Any]:
    xp = get_array_module(a)
    try:
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
    except np.linalg.LinAlgError:
        # gesdd's divide and conquer occasionally fails to converge; gesvd does not.
        from scipy.linalg import svd as sp_svd

        u, s, vh = sp_svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")
    return u, s, vh


def svd(a: Any) -> tuple[Any, Any, Any]:
    """Thin SVD ``a = u @ diag(s) @ vh``, singular values decreasing.

    Returns
    -------
    u : ndarray, shape (m, k)
    s : ndarray, shape (k,), real
    vh : ndarray, shape (k, n)
    """
    return truncated_svd(a, 0.0, None, keep_all=True)


def truncated_svd(a: Any, delta: float, max_rank: int | None = None,
                  keep_all: bool = False) -> tuple[Any, Any, Any]:
    """Thin SVD of ``a`` truncated by :func:`truncation_rank`.

    Tall matrices (``m >= 2n``) are reduced by a QR factorization first (see
    :func:`_tall_svd`); wide ones are handled as the conjugate transpose.

    Returns
    -------
    u : ndarray, shape (m, t)
    s : ndarray, shape (t,)
        The kept singular values.
    vh : ndarray, shape (t, n)
        ``u @ diag(s) @ vh`` is the rank-``t`` truncated SVD of ``a`` to
        rounding error. The factor on the long side (``u`` of a tall, ``vh`` of a
        wide matrix) has orthonormal columns (rows) to machine precision; the
        other one may deviate from orthonormality by ``O(eps s_1 / s_t)``.
    """
    m, n = a.shape
    if m >= 2 * n and n > 1:
        return _tall_svd(a, delta, max_rank, keep_all)
    if n >= 2 * m and m > 1:
        v, s, uh = _tall_svd(ct(a), delta, max_rank, keep_all)
        return ct(uh), s, ct(v)
    u, s, vh = _small_svd(a)
    t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
    return u[:, :t], s[:t], vh[:t]


def _tall_svd(a: Any, delta: float, max_rank: int | None,
              keep_all: bool) -> tuple[Any, Any, Any]:
    """Truncated SVD of a tall matrix: QR, then the SVD of the triangular factor.

    Host, three paths in order: CholeskyQR2 when ``a`` is well conditioned;
    otherwise the triangular factor alone from Householder (``Q`` is never
    formed, the costly half of ``numpy.linalg.qr``), with the kept left
    singular vectors recovered as ``a v_t / s_t`` and re-orthonormalized by
    CholeskyQR2 -- their deviation from orthonormality, ``O(eps s_1 / s_t)``,
    is far below 1 unless ``s_t`` is at rounding level; and full Householder
    QR when even that re-orthonormalization is refused.
    """
    if get_array_module(a) is np and a.dtype in _DOUBLE and a.size >= _CHOLQR_MIN_SIZE:
        res = _cholesky_qr2(a)
        if res is None:
            r = np.linalg.qr(a, mode="r")
            ur, s, vh = _small_svd(r)
            t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
            if s[t - 1] > 0:
                fix = _cholesky_qr2((a @ ct(vh[:t])) / s[:t])
                if fix is not None:
                    u, corr = fix  # a v_t = u corr diag(s_t)
                    return u, s[:t], (corr * s[:t]) @ vh[:t] / s[:t, None]
            res = _householder_qr(a)
    else:
        res = qr(a)
    q, r = res
    ur, s, vh = _small_svd(r)
    t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
    return matmul(q, ur[:, :t]), s[:t], vh[:t]


def truncation_rank(s: Any, delta: float, max_rank: int | None = None) -> int:
    """Smallest rank ``t`` whose discarded singular values have 2-norm <= ``delta``.

    Parameters
    ----------
    s : ndarray, shape (k,)
        Singular values in decreasing order (numpy or cupy).
    delta : float
        Absolute truncation threshold, ``>= 0``.
    max_rank : int, optional
        Upper bound on the returned rank (the error bound then no longer holds).

    Returns
    -------
    int
        ``t`` in ``[1, min(k, max_rank)]``: at least one singular value is
        always kept so that the TT stays well formed.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar._linalg import truncation_rank
    >>> truncation_rank(np.array([3.0, 2.0, 1e-9, 1e-10]), 1e-8)
    2
    """
    s = np.asarray(s.get() if hasattr(s, "get") else s, dtype=np.float64)
    tail = np.cumsum((s[::-1]) ** 2)[::-1]  # tail[t] = sum_{j >= t} s_j^2
    t = int(np.count_nonzero(tail > delta * delta))
    if max_rank is not None:
        t = min(t, max_rank)
    return max(t, 1)
