"""Dense linear algebra for the tensor-train sweeps (host: scipy BLAS/LAPACK; device: cupy).

The TT sweeps spend their time in QR factorizations of tall-skinny core
unfoldings (``(r n) x r``), matrix products and SVDs of small matrices.

**One BLAS per sweep.** pip's numpy and scipy each ship their own OpenBLAS
with its own thread pool. OpenBLAS threads spin for a while after each call,
so alternating numpy matrix products with scipy factorizations makes two
pools fight for the cores: on the 2-core development machine a 64 x 64
scipy SVD followed by a numpy product took 7.1 ms, against 1.0 ms with the
product also done by scipy. On host arrays every function here therefore
calls scipy's BLAS/LAPACK only (products through ``?gemm`` on transposed
views, so C-ordered operands are never copied). Products too small for
OpenBLAS to thread use numpy's ``@`` (lower call overhead).

**QR.** ``numpy.linalg.qr`` (``geqrf`` + ``orgqr``) measured 4-6x slower than
needed on these shapes. :func:`qr` runs CholeskyQR2 (Gram matrix, Cholesky,
triangular solve, twice; BLAS-3 throughout and free of transposed copies)
when the first Cholesky factor's condition estimate shows that CholeskyQR2
is as accurate as Householder, and blocked Householder (``geqrt``, ``Q``
formed by ``gemqrt``) otherwise -- for rank-deficient or ill-conditioned
matrices, which rounding meets whenever singular values decay.

On cupy arrays the same functions call cuBLAS/cuSOLVER through cupy.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._backend import get_array_module

__all__ = ["matmul", "norm", "ct", "eigh", "qr", "lq", "svd", "truncated_svd",
           "truncation_rank"]

#: Column-block size of ``geqrt``; 16 was fastest for r = 16..64 on AVX-512.
_QR_BLOCK = 16
#: CholeskyQR2 is used when the 1-norm reciprocal condition estimate of its
#: first Cholesky factor is at least this (cond(a) <~ 1e5 n, far below the
#: 1/sqrt(machine eps) ~ 7e7 where CholeskyQR2 stops being stable).
_CHOLQR_RCOND = 1e-5
#: Above this estimate ``a @ inv(r)`` multiplies by the explicit inverse (2.4x
#: faster than OpenBLAS's trsm at 4096 x 64; residual still a few ulps).
_INVERSE_RCOND = 1e-3
#: Below this many entries Householder's fewer library calls win.
_CHOLQR_MIN_SIZE = 512
#: m n k below which a product goes to numpy (OpenBLAS runs it on one thread).
_SMALL_PRODUCT = 1 << 15
_DOUBLE = (np.dtype(np.float64), np.dtype(np.complex128))
_BLAS_TYPES = (np.float32, np.float64, np.complex64, np.complex128)


def ct(a: Any) -> Any:
    """Conjugate transpose (a transposed view for real arrays)."""
    return a.conj().T if a.dtype.kind == "c" else a.T


@functools.lru_cache(maxsize=None)
def _blas(names: tuple[str, ...], dtype: np.dtype) -> tuple[Any, ...]:
    """scipy BLAS/LAPACK routines for ``dtype``, looked up once (the lookup costs ~10 us)."""
    from scipy.linalg import get_blas_funcs, get_lapack_funcs

    probe = np.empty(1, dtype=dtype)
    out = []
    for name in names:
        getter = get_blas_funcs if name in ("gemm", "syrk", "trsm", "nrm2") else get_lapack_funcs
        out.append(getter((name,), (probe,))[0])
    return tuple(out)


def _blas_operand(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``(x, trans)`` with ``op(x) = a.T`` and ``x`` Fortran-ordered (no copy if avoidable)."""
    if a.flags.c_contiguous:
        return a.T, 0
    if a.flags.f_contiguous:
        return a, 1
    return np.ascontiguousarray(a).T, 0


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` as a C-ordered array; on the host through scipy's BLAS (see module notes)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        get_array_module(a, b)  # raises on mixed numpy/cupy
        return a @ b
    m, k = a.shape
    n = b.shape[1]
    if m * n * k < _SMALL_PRODUCT or min(m, n, k) == 0:
        return a @ b
    dtype = np.result_type(a, b)
    if dtype.type not in _BLAS_TYPES:
        return a @ b
    (gemm,) = _blas(("gemm",), dtype)
    # (a b)^T = b^T a^T, computed in Fortran order = a b in C order.
    xb, tb = _blas_operand(b.astype(dtype, copy=False))
    xa, ta = _blas_operand(a.astype(dtype, copy=False))
    return gemm(1.0, xb, xa, trans_a=tb, trans_b=ta).T


def norm(a: Any) -> float:
    """Frobenius norm of any array as a Python float."""
    if type(a) is not np.ndarray:
        return float(get_array_module(a).linalg.norm(a.ravel()))
    flat = np.ascontiguousarray(a).ravel()
    if flat.dtype.type not in _BLAS_TYPES:
        return float(np.linalg.norm(flat))
    (nrm2,) = _blas(("nrm2",), flat.dtype)
    return float(nrm2(flat))


def eigh(g: Any) -> tuple[Any, Any]:
    """Eigenvalues (ascending) and eigenvectors of a Hermitian matrix."""
    xp = get_array_module(g)
    if xp is not np:
        return xp.linalg.eigh(g)
    from scipy.linalg import eigh as sp_eigh

    return sp_eigh(g, check_finite=False)


def _matmul_in_layout(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in ``a``'s memory order (Fortran-ordered ``a`` gives a Fortran-ordered result)."""
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        return matmul(b.T, a.T).T
    return matmul(a, b)


def _gram_upper(a: np.ndarray) -> np.ndarray:
    """``a^H a``; for real ``a`` only the upper triangle is valid (``syrk``, half the flops)."""
    if a.dtype.kind != "f":
        return matmul(ct(a), a)
    (syrk,) = _blas(("syrk",), a.dtype)
    if a.flags.c_contiguous:
        return syrk(1.0, a.T, trans=0, lower=0)
    return syrk(1.0, np.asfortranarray(a), trans=1, lower=0)


def _chol_upper(g: np.ndarray) -> np.ndarray | None:
    """Upper Cholesky factor, or None when ``g`` is not numerically positive definite."""
    (potrf,) = _blas(("potrf",), g.dtype)
    c, info = potrf(g, lower=0, clean=1)
    return c if info == 0 else None


def _right_solve(a: np.ndarray, r: np.ndarray, trsm: Any) -> np.ndarray:
    """``a @ inv(r)`` for upper triangular ``r``, in ``a``'s memory order."""
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        return trsm(1.0, r, a, side=1, lower=0)
    # a C-ordered is a^T Fortran-ordered: solve r^T x = a^T from the left, no copy.
    return trsm(1.0, r, np.ascontiguousarray(a).T, side=0, lower=0, trans_a=1).T


def _cholesky_qr2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """CholeskyQR2 (Fukaya et al. 2014), or None when ``a`` is too ill-conditioned for it."""
    trsm, trcon, trtri = _blas(("trsm", "trcon", "trtri"), a.dtype)
    r1 = _chol_upper(_gram_upper(a))
    if r1 is None:
        return None
    rcond, info = trcon(r1, norm="1", uplo="U")
    if info != 0 or not rcond >= _CHOLQR_RCOND:
        return None
    inv1, info = trtri(r1, lower=0) if rcond >= _INVERSE_RCOND else (None, 1)
    q1 = _matmul_in_layout(a, inv1) if info == 0 else _right_solve(a, r1, trsm)
    r2 = _chol_upper(_gram_upper(q1))
    if r2 is None:
        return None
    inv2, info = trtri(r2, lower=0)  # r2 is within rounding of the identity
    if info != 0:
        return None
    return _matmul_in_layout(q1, inv2), matmul(r2, r1)


def _householder_qr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import LinAlgError

    m, n = a.shape
    k = min(m, n)
    geqrt, gemqrt = _blas(("geqrt", "gemqrt"), a.dtype)
    # geqrt overwrites its input: hand it a private Fortran-ordered copy.
    work = np.array(a, order="F", copy=True)
    v, t, info = geqrt(min(_QR_BLOCK, k), work, overwrite_a=1)
    if info != 0:
        raise LinAlgError(f"LAPACK geqrt failed with info={info}")
    r = np.triu(v[:k, :])
    q = np.zeros((m, k), dtype=a.dtype, order="F")
    q[np.arange(k), np.arange(k)] = 1
    q, info = gemqrt(v[:, :k], t, q, overwrite_c=1)
    if info != 0:
        raise LinAlgError(f"LAPACK gemqrt failed with info={info}")
    return q, r


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
        return xp.linalg.qr(a, mode="reduced")
    m, n = a.shape
    # single precision: 1/sqrt(eps) ~ 3e3 leaves CholeskyQR2 too little room
    if m >= n and m * n >= _CHOLQR_MIN_SIZE and a.dtype in _DOUBLE:
        res = _cholesky_qr2(a)
        if res is not None:
            return res
    return _householder_qr(a)


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
    if xp is not np:
        return xp.linalg.svd(a, full_matrices=False)
    from scipy.linalg import LinAlgError
    from scipy.linalg import svd as sp_svd

    try:
        return sp_svd(a, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    except LinAlgError:
        # gesdd's divide and conquer occasionally fails to converge; gesvd does not.
        return sp_svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")


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

    Tall matrices (``m >= 2n``) are reduced by :func:`qr` first and only the
    kept columns of ``q @ u`` are formed; wide ones likewise by :func:`lq`.

    Returns
    -------
    u : ndarray, shape (m, t)
    s : ndarray, shape (t,)
    vh : ndarray, shape (t, n)
    """
    m, n = a.shape
    if m >= 2 * n and n > 1:
        q, r = qr(a)
        ur, s, vh = _small_svd(r)
        t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
        return matmul(q, ur[:, :t]), s[:t], vh[:t]
    if n >= 2 * m and m > 1:
        l, q = lq(a)
        u, s, vl = _small_svd(l)
        t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
        return u[:, :t], s[:t], matmul(vl[:t], q)
    u, s, vh = _small_svd(a)
    t = len(s) if keep_all else truncation_rank(s, delta, max_rank)
    return u[:, :t], s[:t], vh[:t]


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
    >>> from tensorpar._tt_linalg import truncation_rank
    >>> truncation_rank(np.array([3.0, 2.0, 1e-9, 1e-10]), 1e-8)
    2
    """
    s = np.asarray(s.get() if hasattr(s, "get") else s, dtype=np.float64)
    tail = np.cumsum((s[::-1]) ** 2)[::-1]  # tail[t] = sum_{j >= t} s_j^2
    t = int(np.count_nonzero(tail > delta * delta))
    if max_rank is not None:
        t = min(t, max_rank)
    return max(t, 1)
