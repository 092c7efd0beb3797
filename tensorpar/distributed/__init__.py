"""MPI layer of tensorpar (needs the ``mpi`` extra: mpi4py and an MPI library).

Every distributed API takes ``comm`` explicitly (default ``MPI.COMM_WORLD``,
resolved in :func:`tensorpar.distributed.comm.resolve_comm` at call time).
All messages go through :mod:`tensorpar.distributed.comm`.

The package imports lazily (PEP 562): ``import tensorpar.distributed`` loads
no algorithm, and ``import tensorpar.distributed.comm`` loads only the
communication layer, so a layer built on the collectives (such as
``tensorpar.nn.parallel``) does not pay for CP or TT code. A public name
below is imported on first access. Nothing is installed at import: the
excepthook that aborts the MPI job when an exception escapes one rank is
installed by the first distributed call (see
:mod:`tensorpar.distributed.comm.abort`; opt out with
``TENSORPAR_ABORT_HOOK=0``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - what the lazy names resolve to
    from . import comm
    from .comm import agree, check_all
    from .cp import cp_als, dist_cp_als
    from .cp_model import DistCPModel
    from .cp_rand import dist_cp_rand
    from .dist_tensor import DistTensor
    from .errors import collective_guard
    from .grid import ProcessGrid, choose_grid, grid_cost
    from .mttkrp import (
        allgather_factor,
        dist_mttkrp,
        dist_mttkrp_sweep,
        factor_blocks,
        owned_rows,
    )
    from .tsqr import tsqr
    from .tt import (
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
        dist_tt_svd,
        dist_ttm_matvec,
    )
    from .tt.cross import dist_tt_cross
    from .tt.entry_sum import dist_tt_entry_mean, dist_tt_entry_sum

_TT_NAMES = ("DistTTTensor", "dist_tt_add", "dist_tt_dot", "dist_tt_hadamard",
             "dist_tt_log_norm", "dist_tt_norm", "dist_tt_orthogonalize", "dist_tt_round",
             "dist_tt_scale", "dist_tt_sub", "dist_tt_svd", "dist_ttm_matvec")

#: public name -> (submodule, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "agree": ("comm", "agree"),
    "check_all": ("comm", "check_all"),
    "collective_guard": ("errors", "collective_guard"),
    "DistCPModel": ("cp_model", "DistCPModel"),
    "cp_als": ("cp", "cp_als"),
    "dist_cp_als": ("cp", "dist_cp_als"),
    "dist_cp_rand": ("cp_rand", "dist_cp_rand"),
    "DistTensor": ("dist_tensor", "DistTensor"),
    "ProcessGrid": ("grid", "ProcessGrid"),
    "choose_grid": ("grid", "choose_grid"),
    "grid_cost": ("grid", "grid_cost"),
    "allgather_factor": ("mttkrp", "allgather_factor"),
    "dist_mttkrp": ("mttkrp", "dist_mttkrp"),
    "dist_mttkrp_sweep": ("mttkrp", "dist_mttkrp_sweep"),
    "factor_blocks": ("mttkrp", "factor_blocks"),
    "owned_rows": ("mttkrp", "owned_rows"),
    "tsqr": ("tsqr", "tsqr"),
    **{name: ("tt", name) for name in _TT_NAMES},
    "dist_tt_cross": ("tt.cross", "dist_tt_cross"),
    "dist_tt_entry_sum": ("tt.entry_sum", "dist_tt_entry_sum"),
    "dist_tt_entry_mean": ("tt.entry_sum", "dist_tt_entry_mean"),
}

__all__ = [
    "agree", "allgather_factor", "check_all", "choose_grid", "collective_guard", "comm",
    "cp_als", "dist_cp_als", "dist_cp_rand", "dist_mttkrp", "dist_mttkrp_sweep", "dist_tt_add",
    "dist_tt_cross",
    "dist_tt_dot", "dist_tt_entry_mean", "dist_tt_entry_sum", "dist_tt_hadamard",
    "dist_tt_log_norm", "dist_tt_norm", "dist_tt_orthogonalize", "dist_tt_round",
    "dist_tt_scale", "dist_tt_sub", "dist_tt_svd", "dist_ttm_matvec", "DistCPModel",
    "DistTensor", "DistTTTensor", "factor_blocks", "grid_cost", "owned_rows", "ProcessGrid",
    "tsqr",
]


def __getattr__(name: str) -> Any:
    """Import a public name of the package on first access (PEP 562)."""
    if name == "comm":
        return importlib.import_module(f"{__name__}.comm")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
