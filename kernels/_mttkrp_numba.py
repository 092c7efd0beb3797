"""numba kernels of the blocked MTTKRP (Hayashi, Ballard, Jiang, Tobia, PPoPP 2018).

The dense work of an MTTKRP is one GEMM per block of the tensor, done by
the BLAS through numpy (:mod:`tensorpar._mttkrp_plan` drives it). What BLAS
does not cover lives here:

* ``khatri_rao_t`` -- a partial Khatri-Rao product, written **transposed**
  (shape ``(R, prod I_k)``) because that is the operand layout of the GEMM
  ``KR^T @ X_block`` that OpenBLAS runs fastest for a skinny rank ``R``;
* ``multi_ttv`` -- the second step of the 2-step algorithm: the GEMM output
  ``T[r, (a, i, b)]`` is contracted with two Khatri-Rao rows at once,
  ``M^T[r, i] += sum_{a, b} T[r, (a, i, b)] KA[r, a] KB[r, b]``.

Both kernels are **serial** on purpose. The parallelism of the engine is
OpenBLAS's threads inside the GEMMs, and these kernels run between GEMM
calls on cache-sized blocks (a few percent of the work). A numba parallel
region there leaves its OpenMP workers spinning when it ends, and they steal
the cores from OpenBLAS's threads in the next GEMM: with ``prange`` the
300^3 MTTKRP took 100-110 ms instead of 14 ms on a 2-core machine with
numba's default ``omp`` threading layer. The inner dot products over ``b``
need reassociation to vectorize, the only fast-math flag used (NaN and
infinity keep their IEEE meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit

_FASTMATH = {"reassoc", "contract"}
_IBLOCK = 64  # output rows per accumulator block of multi_ttv


@njit(cache=True, nogil=True)
def _khatri_rao_t(FT: np.ndarray, dims: np.ndarray, offsets: np.ndarray,
                  out: np.ndarray) -> None:  # pragma: no cover - compiled
    R, P = out.shape
    K = dims.shape[0]
    last = dims[K - 1]
    off_last = offsets[K - 1]
    npre = P // last
    for t in range(R * npre):
        r = t // npre
        p = t - r * npre
        v = 1.0
        rem = p
        for k in range(K - 2, -1, -1):  # decompose the prefix row index, last fastest
            q = rem // dims[k]
            v *= FT[r, offsets[k] + rem - q * dims[k]]
            rem = q
        base = p * last
        for j in range(last):
            out[r, base + j] = v * FT[r, off_last + j]


def khatri_rao_t(mats: Sequence[Any], rank: int, dtype: Any) -> np.ndarray:
    """Transposed Khatri-Rao product ``(A_0 (.) ... (.) A_{K-1})^T``, last matrix fastest.

    Parameters
    ----------
    mats : list of ndarray, each (I_k, R)
        Any layout; an empty list gives a row of ones (the empty product).
    rank : int
    dtype : numpy dtype of the result.

    Returns
    -------
    ndarray, shape (R, prod I_k), C-contiguous
        ``out[r, (i_0 I_1 + i_1) I_2 + ...] = prod_k A_k[i_k, r]``.
    """
    if len(mats) == 0:
        return np.ones((rank, 1), dtype=dtype)
    if len(mats) == 1:
        return np.ascontiguousarray(mats[0].T, dtype=dtype)
    dims = np.array([m.shape[0] for m in mats], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(dims)[:-1])).astype(np.int64)
    FT = np.empty((rank, int(dims.sum())), dtype=dtype)
    for m, o, d in zip(mats, offsets, dims):
        FT[:, o:o + d] = m.T
    out = np.empty((rank, int(np.prod(dims))), dtype=dtype)
    if out.size:
        _khatri_rao_t(FT, dims, offsets, out)
    return out


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _multi_ttv(T: np.ndarray, KA: np.ndarray, KB: np.ndarray, a0: int, i0: int, ni: int,
               MT: np.ndarray) -> None:  # pragma: no cover - compiled
    R = T.shape[0]
    B = KB.shape[1]
    na = T.shape[1] // (ni * B)
    nib = (ni + _IBLOCK - 1) // _IBLOCK
    for t in range(R * nib):
        r = t // nib
        lo = (t - r * nib) * _IBLOCK
        hi = min(ni, lo + _IBLOCK)
        acc = np.zeros(hi - lo)
        for a in range(na):
            w = KA[r, a0 + a]
            base = a * ni * B
            if B == 1:
                for i in range(lo, hi):
                    acc[i - lo] += w * T[r, base + i]
            else:
                for i in range(lo, hi):
                    s = 0.0
                    off = base + i * B
                    for b in range(B):
                        s += T[r, off + b] * KB[r, b]
                    acc[i - lo] += w * s
        scale = KB[r, 0] if B == 1 else 1.0
        for i in range(lo, hi):
            MT[r, i0 + i] += acc[i - lo] * scale


def multi_ttv(T: np.ndarray, KA: np.ndarray, KB: np.ndarray, a0: int, i0: int, ni: int,
              MT: np.ndarray) -> None:
    """Accumulate ``MT[r, i0 + i] += sum_{a, b} T[r, (a, i, b)] KA[r, a0 + a] KB[r, b]``.

    Parameters
    ----------
    T : ndarray, shape (R, na * ni * B), C-contiguous
        A block of GEMM output whose columns run over ``(a, i, b)`` in C order.
    KA : ndarray, shape (R, A), C-contiguous
        Transposed Khatri-Rao product of the modes of ``a``; this block holds
        ``a = a0, ..., a0 + na - 1``.
    KB : ndarray, shape (R, B), C-contiguous
    a0, i0, ni : int
        Offset of the block in ``a``, offset and length of its range of ``i``.
    MT : ndarray, shape (R, I), float64, C-contiguous
        Transposed MTTKRP, accumulated in place.
    """
    if T.size:
        _multi_ttv(T, KA, KB, np.int64(a0), np.int64(i0), np.int64(ni), MT)
