"""Dense linear algebra and argument checks shared by the tensor-train modules.

The TT algorithms spend their time in QR factorizations of tall-skinny core
unfoldings (``(r n) x r``), matrix products and SVDs of small matrices. On the
host, ``numpy.linalg.qr`` is slow for such shapes: it calls LAPACK
``geqrf``/``orgqr`` whose multithreaded OpenBLAS path is 5-10x slower than
the compact-WY routines. :func:`qr` therefore calls ``geqrt`` (blocked
Householder in compact WY form) and forms ``Q`` with ``gemqrt``; both are
BLAS-3. On cupy arrays it uses ``cupy.linalg.qr`` (cuSOLVER).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._backend import get_array_module
from ._validation import check_positive_int

__all__ = ["qr", "lq", "svd", "truncated_svd", "truncation_rank", "check_eps", "check_max_rank"]

#: Column-block size of ``geqrt``; 16 was fastest for r = 16..64 on AVX-512.
_QR_BLOCK = 16


def _host_qr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import LinAlgError, get_lapack_funcs

    m, n = a.shape
    k = min(m, n)
    geqrt, gemqrt = get_lapack_funcs(("geqrt", "gemqrt"), (a,))
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
    """Reduced QR factorization ``a = q @ r`` of a 2-D array.

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
    if xp is np:
        return _host_qr(a)
    return xp.linalg.qr(a, mode="reduced")


def lq(a: Any) -> tuple[Any, Any]:
    """Reduced LQ factorization ``a = l @ q`` (``q`` with orthonormal rows).

    Computed as the QR factorization of ``a^H``; for a C-ordered real ``a``
    that transpose is already Fortran-ordered, so no copy is made before
    LAPACK.

    Returns
    -------
    l : ndarray, shape (m, k)
    q : ndarray, shape (k, n)
    """
    xp = get_array_module(a)
    if xp.iscomplexobj(a):
        qt, rt = qr(a.conj().T)
        return rt.conj().T, qt.conj().T
    qt, rt = qr(a.T)
    return rt.T, qt.T


def svd(a: Any) -> tuple[Any, Any, Any]:
    """Thin SVD ``a = u @ diag(s) @ vh`` with singular values in decreasing order.

    Tall matrices (``m >= 2n``) are first reduced by :func:`qr` so that the
    SVD itself runs on an ``n x n`` matrix.

    Returns
    -------
    u : ndarray, shape (m, k)
    s : ndarray, shape (k,), real
    vh : ndarray, shape (k, n)
    """
    xp = get_array_module(a)
    m, n = a.shape
    if m >= 2 * n and n > 1:
        q, r = qr(a)
        ur, s, vh = _small_svd(r, xp)
        return q @ ur, s, vh
    return _small_svd(a, xp)


def truncated_svd(a: Any, delta: float, max_rank: int | None = None) -> tuple[Any, Any, Any]:
    """Thin SVD of ``a`` truncated by :func:`truncation_rank`.

    Tall matrices (``m >= 2n``) are reduced by :func:`qr` first and only the
    kept columns of ``q @ u`` are formed; wide ones likewise by :func:`lq`.

    Returns
    -------
    u : ndarray, shape (m, t)
    s : ndarray, shape (t,)
    vh : ndarray, shape (t, n)
    """
    xp = get_array_module(a)
    m, n = a.shape
    if m >= 2 * n and n > 1:
        q, r = qr(a)
        ur, s, vh = _small_svd(r, xp)
        t = truncation_rank(s, delta, max_rank)
        return q @ ur[:, :t], s[:t], vh[:t]
    if n >= 2 * m and m > 1:
        l, q = lq(a)
        u, s, vl = _small_svd(l, xp)
        t = truncation_rank(s, delta, max_rank)
        return u[:, :t], s[:t], vl[:t] @ q
    u, s, vh = _small_svd(a, xp)
    t = truncation_rank(s, delta, max_rank)
    return u[:, :t], s[:t], vh[:t]


def _small_svd(a: Any, xp: Any) -> tuple[Any, Any, Any]:
    if xp is np:
        from scipy.linalg import LinAlgError
        from scipy.linalg import svd as sp_svd

        try:
            return sp_svd(a, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        except LinAlgError:
            # gesdd's divide and conquer occasionally fails to converge; gesvd does not.
            return sp_svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")
    return xp.linalg.svd(a, full_matrices=False)


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
