"""CuPy launchers for the blocked-MTTKRP kernels in ``mttkrp.cu``.

Same contracts as :mod:`tensorpar.kernels._mttkrp_numba`; the GEMMs of the
algorithm run on cuBLAS through ``cupy.matmul`` in
:mod:`tensorpar._mttkrp_plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import cuda_module

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_NAMES = [f"{k}<{t}>" for k in ("mttkrp_khatri_rao_t", "mttkrp_multi_ttv")
          for t in _TYPES.values()]
_THREADS = 256


def _function(name: str, dtype: Any) -> Any:
    return cuda_module("mttkrp.cu", _NAMES).get_function(f"{name}<{_TYPES[np.dtype(dtype)]}>")


def khatri_rao_t(mats: Sequence[Any], rank: int, dtype: Any) -> Any:
    """Transposed Khatri-Rao product on the GPU, shape ``(R, prod I_k)``, last matrix fastest."""
    import cupy

    if len(mats) == 0:
        return cupy.ones((rank, 1), dtype=dtype)
    if len(mats) == 1:
        return cupy.ascontiguousarray(mats[0].T, dtype=dtype)
    dims = [int(m.shape[0]) for m in mats]
    offsets = np.concatenate(([0], np.cumsum(dims)[:-1])).astype(np.int64)
    FT = cupy.empty((rank, sum(dims)), dtype=dtype)
    for m, o, d in zip(mats, offsets, dims):
        FT[:, int(o):int(o) + d] = m.T
    P = int(np.prod(dims))
    out = cupy.empty((rank, P), dtype=dtype)
    total = rank * P
    if total:
        blocks = int(min((total + _THREADS - 1) // _THREADS, 65535 * 8))
        args = (FT, np.int64(FT.shape[1]), cupy.asarray(dims, dtype=cupy.int64),
                cupy.asarray(offsets), np.int32(len(mats)), np.int64(P), np.int64(rank), out)
        _function("mttkrp_khatri_rao_t", dtype)((blocks,), (_THREADS,), args)
    return out


def multi_ttv(T: Any, KA: Any, KB: Any, a0: int, i0: int, ni: int, MT: Any) -> None:
    """``MT[r, i0 + i] += sum_{a, b} T[r, (a, i, b)] KA[r, a0 + a] KB[r, b]`` on the GPU.

    Shapes as in :func:`tensorpar.kernels._mttkrp_numba.multi_ttv`; ``MT`` is
    float64 and C-contiguous.
    """
    import cupy

    if T.size == 0:
        return
    T = cupy.ascontiguousarray(T)
    KA = cupy.ascontiguousarray(KA, dtype=T.dtype)
    KB = cupy.ascontiguousarray(KB, dtype=T.dtype)
    R, ncols = T.shape
    A, B = KA.shape[1], KB.shape[1]
    na = ncols // (ni * B)
    warps = R * ni
    blocks = int((warps * 32 + _THREADS - 1) // _THREADS)
    args = (T, np.int64(ncols), KA, np.int64(A), KB, np.int64(B), np.int64(a0), np.int64(na),
            np.int64(i0), np.int64(ni), np.int64(MT.shape[1]), np.int64(R), MT)
    _function("mttkrp_multi_ttv", T.dtype)((blocks,), (_THREADS,), args)
