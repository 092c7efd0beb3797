"""Dominant (maximum-volume) submatrices: the pivot rule of TT-cross.

For a tall matrix ``A`` of shape ``(n, r)`` with full column rank,
:func:`maxvol` picks ``r`` rows ``I`` whose square submatrix ``A[I]`` has (locally)
maximal volume ``|det A[I]|``: no entry of ``C = A @ inv(A[I])`` exceeds ``tol``
in modulus (Goreinov, Oseledets, Savostyanov, Tyrtyshnikov and Zamarashkin,
"How to find a good submatrix", 2010). :func:`maxvol_rect` adds rows greedily
to ``k > r`` (Mikhalev and Oseledets, "Rectangular maximum-volume submatrices
and their applications", Linear Algebra Appl. 2018), returning the
interpolation coefficients ``C = A @ pinv(A[I])``.

Both work by rank-one updates of ``C`` with numpy; costs for ``A`` of shape
``(n, r)``: the start (Gaussian elimination with partial pivoting) is
``O(n r^2)``, every swap or added row ``O(n r)`` (``O(n k)`` for ``k`` rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_positive_int

__all__ = ["maxvol", "maxvol_rect"]


def _check_tall(A: Any) -> Any:
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[1] < 1 or A.shape[0] < A.shape[1]:
        raise ValueError(f"A must be a tall 2-d matrix (n >= r >= 1), got shape {A.shape}")
    if A.dtype.kind not in "fc":
        raise TypeError(f"A must be a float or complex matrix, got dtype {A.dtype}")
    return A


def _start_rows(A: np.ndarray) -> np.ndarray:
    """Pivot rows of Gaussian elimination with partial pivoting, O(n r^2)."""
    R = A.copy()
    rows = np.empty(A.shape[1], dtype=np.int64)
    for j in range(A.shape[1]):
        i = int(np.abs(R[:, j]).argmax())
        rows[j] = i
        if R[i, j] == 0:  # rank-deficient: any unused row keeps the pivots distinct
            free = np.setdiff1d(np.arange(A.shape[0]), rows[:j])
            rows[j] = i = int(free[0])
            continue
        # zero column j and row i; rows already chosen are zero and stay zero
        R -= np.outer(R[:, j] / R[i, j], R[i, :])
    return rows


def maxvol(A: Any, tol: float = 1.05, max_iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a dominant square submatrix of a tall matrix.

    Parameters
    ----------
    A : ndarray, shape (n, r), n >= r
        Full column rank (e.g. an orthonormal basis).
    tol : float
        Stop when every ``|C[i, j]| <= tol`` (``>= 1``); 1.05 is the usual choice.
    max_iters : int
        Most row swaps.

    Returns
    -------
    rows : ndarray of int, shape (r,)
        Distinct row indices.
    C : ndarray, shape (n, r)
        ``A @ inv(A[rows])``: ``C[rows]`` is the identity.

    Notes
    -----
    Start from the pivots of Gaussian elimination with partial pivoting, then
    swap the row ``i`` of the largest ``|C[i, j]|`` into position ``j`` while it
    exceeds ``tol``; each swap multiplies the volume by ``|C[i, j]|`` and
    updates ``C`` by one rank-one correction, O(n r).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.maxvol import maxvol
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 1.0], [1.0, 4.0]])
    >>> rows, C = maxvol(A)
    >>> sorted(rows.tolist())
    [2, 3]
    >>> bool(np.abs(C).max() <= 1.05)
    True
    """
    A = _check_tall(A)
    if not tol >= 1.0:
        raise ValueError(f"tol must be >= 1, got {tol}")
    max_iters = check_positive_int(max_iters, "max_iters", minimum=0)
    n, r = A.shape
    rows = _start_rows(A)
    C = np.linalg.solve(A[rows].T, A.T).T
    for _ in range(max_iters):
        i, j = np.unravel_index(int(np.abs(C).argmax()), (n, r))
        if abs(C[i, j]) <= tol:
            break
        rows[j] = i
        # C <- A inv(A[rows]) after replacing row j of the submatrix by row i
        change = C[i].copy()
        change[j] -= 1.0
        C -= np.outer(C[:, j] / C[i, j], change)
    return rows, C


def maxvol_rect(A: Any, k: int, tol: float = 1.05,
                max_iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``k >= r`` rows of a tall matrix: :func:`maxvol`, then greedy row additions.

    Parameters
    ----------
    A : ndarray, shape (n, r), n >= r
    k : int
        Number of rows, ``r <= k <= n``.
    tol, max_iters
        As in :func:`maxvol` (for the first ``r`` rows).

    Returns
    -------
    rows : ndarray of int, shape (k,)
        Distinct row indices; the first ``r`` are those of :func:`maxvol`.
    C : ndarray, shape (n, k)
        ``A @ pinv(A[rows])``, the least-squares interpolation coefficients.

    Notes
    -----
    Each added row is the one of largest ``||C[i]||``, which maximises the
    growth of the volume ``det(A[rows]^H A[rows])``; adding row ``c = C[i]``
    updates ``C <- [C - (C c^H) c / (1 + |c|^2), C c^H / (1 + |c|^2)]``, O(n k).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.maxvol import maxvol_rect
    >>> A = np.random.default_rng(0).standard_normal((20, 3))
    >>> rows, C = maxvol_rect(A, 5)
    >>> len(set(rows.tolist())), bool(np.allclose(C, A @ np.linalg.pinv(A[rows])))
    (5, True)
    """
    A = _check_tall(A)
    n, r = A.shape
    k = check_positive_int(k, "k", minimum=r)
    if k > n:
        raise ValueError(f"k must be <= n = {n}, got {k}")
    rows, C = maxvol(A, tol, max_iters)
    if k == r:
        return rows, C
    out = np.empty((n, k), dtype=C.dtype)
    out[:, :r] = C
    norms = (np.abs(C) ** 2).sum(axis=1)
    chosen = list(rows.tolist())
    norms[chosen] = -1.0
    for m in range(r, k):
        i = int(norms.argmax())
        cur = out[:, :m]
        c = cur[i].copy()
        denom = 1.0 + float(np.vdot(c, c).real)
        Cc = cur @ c.conj()
        cur -= np.outer(Cc / denom, c)
        out[:, m] = Cc / denom
        norms -= np.abs(Cc) ** 2 / denom
        chosen.append(i)
        norms[chosen] = -1.0
    return np.asarray(chosen, dtype=np.int64), out
