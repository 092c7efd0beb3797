"""tensorpar: fast, distributed CP and tensor-train algebra.

Importing tensorpar imports neither numba, cupy nor mpi4py: kernels load on
first use (:mod:`tensorpar.kernels`) and MPI lives in
:mod:`tensorpar.distributed`.
"""

from __future__ import annotations

from ._backend import get_array_module, resolve_engine
from .cp.als import cp_als
from .cp.compare import cp_fix_signs, cp_model_fit, cp_relative_error, cp_sort_components, factor_match_score
from .cp.rand import cp_rand
from .cp.result import CPALSResult
from .cp.tensor import CPTensor, random_cp
from .dense import fold, khatri_rao, mode_dot, tensor_norm, unfold
from .io import load, save
from .mttkrp import mttkrp, mttkrp_reference, mttkrp_sweep
from .tt.construct import tt_from_function, tt_svd
from .tt.cross import CrossResult, tt_cross
from .tt.entry_sum import tt_entry_mean, tt_entry_sum
from .tt.interop import tt_from_teneva, tt_from_tensorly, tt_to_teneva, tt_to_tensorly
from .tt.matrix import TTMatrix, ttm_matmat, ttm_matvec
from .tt.ops import tt_add, tt_dot, tt_hadamard, tt_log_dot, tt_log_norm, tt_norm, tt_scale, tt_sub, tt_sum
from .tt.orth import tt_orthogonalize, tt_orthonormalize
from .tt.random import random_tt
from .tt.rounding import tt_round, tt_round_sum
from .tt.tensor import TTTensor

__version__ = "0.1.0"

__all__ = [
    "CrossResult",
    "tt_cross",
    "tt_entry_mean",
    "tt_entry_sum",
    "CPALSResult",
    "CPTensor",
    "TTTensor",
    "cp_als",
    "cp_rand",
    "fold",
    "get_array_module",
    "khatri_rao",
    "mode_dot",
    "mttkrp",
    "mttkrp_reference",
    "mttkrp_sweep",
    "random_cp",
    "resolve_engine",
    "tensor_norm",
    "unfold",
    # tensor trains
    "TTMatrix",
    "random_tt",
    "tt_add",
    "tt_dot",
    "tt_from_function",
    "tt_hadamard",
    "tt_log_dot",
    "tt_log_norm",
    "tt_norm",
    "tt_orthogonalize",
    "tt_orthonormalize",
    "tt_round",
    "tt_round_sum",
    "tt_scale",
    "tt_sub",
    "tt_sum",
    "tt_svd",
    "ttm_matmat",
    "ttm_matvec",
    # user-side helpers (issue 13)
    "cp_fix_signs",
    "cp_model_fit",
    "cp_relative_error",
    "cp_sort_components",
    "factor_match_score",
    "load",
    "save",
    "tt_from_teneva",
    "tt_from_tensorly",
    "tt_to_teneva",
    "tt_to_tensorly",
]
