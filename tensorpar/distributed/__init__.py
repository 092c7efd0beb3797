"""MPI layer of tensorpar (needs the ``mpi`` extra: mpi4py and an MPI library).

Every distributed API takes ``comm`` explicitly (default ``MPI.COMM_WORLD``,
resolved in :func:`tensorpar.distributed.comm.resolve_comm`). Importing this
package installs an excepthook that aborts the MPI job when an exception is
not caught on some rank (see :mod:`tensorpar.distributed.errors`).
"""

from __future__ import annotations

from . import comm
from .errors import _install_by_default, check_all, collective_guard

__all__ = ["comm", "check_all", "collective_guard"]

_install_by_default()
