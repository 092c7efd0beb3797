"""tensorpar: fast, distributed CP and tensor-train algebra.

Importing tensorpar imports neither numba, cupy nor mpi4py: kernels load on
first use (:mod:`tensorpar.kernels`) and MPI lives in
:mod:`tensorpar.distributed`.
"""

from __future__ import annotations

from ._backend import get_array_module, resolve_engine
from .cp_als import cp_als
from .cp_result import CPALSResult
from .cp_tensor import CPTensor, random_cp
from .dense import fold, khatri_rao, mode_dot, tensor_norm, unfold
from .mttkrp import mttkrp
from .tt_tensor import TTTensor

__version__ = "0.1.0"

__all__ = [
    "CPALSResult",
    "CPTensor",
    "TTTensor",
    "cp_als",
    "fold",
    "get_array_module",
    "khatri_rao",
    "mode_dot",
    "mttkrp",
    "random_cp",
    "resolve_engine",
    "tensor_norm",
    "unfold",
]
