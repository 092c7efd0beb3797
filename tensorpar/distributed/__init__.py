"""MPI layer of tensorpar (needs the ``mpi`` extra: mpi4py and an MPI library).

Every distributed API takes ``comm`` explicitly (default ``MPI.COMM_WORLD``,
resolved in :func:`tensorpar.distributed.comm.resolve_comm` at call time).
All messages go through :mod:`tensorpar.distributed.comm`. Importing this
package installs an excepthook that aborts the MPI job when an exception is
not caught on some rank (see :mod:`tensorpar.distributed.errors`).
"""

from __future__ import annotations

from . import comm
from .comm import check_all
from .cp import DistCPModel, cp_als
from .dist_tensor import DistTensor
from .errors import _install_by_default, collective_guard
from .grid import ProcessGrid, choose_grid, grid_cost
from .mttkrp import allgather_factor, dist_mttkrp, dist_mttkrp_sweep, factor_blocks, owned_rows
from .tsqr import tsqr
from .tt.svd import dist_tt_svd
from .tt.tensor import (
                      DistTTTensor,
                      dist_tt_add,
                      dist_tt_dot,
                      dist_tt_hadamard,
                      dist_tt_log_norm,
                      dist_tt_norm,
                      dist_tt_orthogonalize,
                      dist_tt_round,
                      dist_tt_scale,
                      dist_tt_sub,
                      dist_ttm_matvec,
)

__all__ = [
    "DistCPModel",
    "DistTensor",
    "DistTTTensor",
    "ProcessGrid",
    "allgather_factor",
    "check_all",
    "choose_grid",
    "collective_guard",
    "comm",
    "cp_als",
    "dist_mttkrp",
    "dist_mttkrp_sweep",
    "dist_tt_add",
    "dist_tt_dot",
    "dist_tt_hadamard",
    "dist_tt_log_norm",
    "dist_tt_norm",
    "dist_tt_orthogonalize",
    "dist_tt_round",
    "dist_tt_scale",
    "dist_tt_sub",
    "dist_tt_svd",
    "dist_ttm_matvec",
    "factor_blocks",
    "grid_cost",
    "owned_rows",
    "tsqr",
]

_install_by_default()
