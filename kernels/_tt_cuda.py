"""CuPy launchers for the tensor-train kernels in ``tt.cu``.

The dense algebra of the TT code runs on cuBLAS/cuSOLVER through
``cupy.linalg``; only the face-splitting product of two cores (the Hadamard
product's core) has a custom kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import cuda_module

_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.complex64): "complex<float>",
    np.dtype(np.complex128): "complex<double>",
}
_NAMES = [f"tt_hadamard_core<{t}>" for t in _TYPES.values()]
_THREADS = 256


def _module() -> Any:
    # complex<T> comes from CuPy's own header, which RawModule puts on the include path.
    return cuda_module("tt.cu", _NAMES, header="#include <cupy/complex.cuh>\n")


def hadamard_core(a: Any, b: Any) -> Any:
    """Face-splitting product of two TT cores on the GPU, shape ``(r s, n, q t)``."""
    import cupy

    dtype = np.result_type(a.dtype, b.dtype)
    a = cupy.ascontiguousarray(a, dtype=dtype)
    b = cupy.ascontiguousarray(b, dtype=dtype)
    r, n, q = a.shape
    s, _, t = b.shape
    out = cupy.empty((r * s, n, q * t), dtype=dtype)
    total = out.size
    kernel = _module().get_function(f"tt_hadamard_core<{_TYPES[np.dtype(dtype)]}>")
    blocks = int(min((total + _THREADS - 1) // _THREADS, 65535 * 8))
    args = (a, b, out) + tuple(np.int64(v) for v in (r, n, q, s, t))
    kernel((blocks,), (_THREADS,), args)
    return out
