"""Keeping ranks together when one of them fails.

An exception on one MPI rank must not leave the others waiting forever in
the next collective. tensorpar uses two mechanisms:

* **error agreement** before collectives:
  :func:`~tensorpar.distributed.comm.check_all` reduces a
  one-integer flag so that bad input on any rank raises on every rank, with a
  message naming the failing ranks; :func:`collective_guard` wraps a block of
  rank-local work the same way. Every distributed constructor validates its
  input through these before it moves data.
* **abort on an uncaught exception**: importing :mod:`tensorpar.distributed`
  installs :func:`abort_hook` as :data:`sys.excepthook`. When an exception
  escapes a script running on more than one rank, the hook prints the
  traceback prefixed with the rank and calls ``MPI.COMM_WORLD.Abort(1)``, so
  ``mpiexec`` ends the whole job with a non-zero exit code instead of
  hanging (the same idea as ``python -m mpi4py script.py``). Set
  ``TENSORPAR_ABORT_HOOK=0`` before the import to keep the previous hook, or
  call :func:`uninstall_abort_hook`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .comm import check_all, resolve_comm

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["collective_guard", "abort_hook", "install_abort_hook",
           "uninstall_abort_hook"]


@contextlib.contextmanager
def collective_guard(comm: MPI.Comm | None,
                     exc_type: type[Exception] = RuntimeError) -> Iterator[None]:
    """Run a block of local work so that an exception on one rank is raised on all.

    On leaving the block every rank reduces an error flag; a rank whose block
    raised re-raises its own exception, the others raise ``exc_type`` naming
    the failing ranks. Put only rank-local work (reading, validating,
    allocating) inside; collectives come after the block.

    Examples
    --------
    >>> with collective_guard(None):
    ...     x = 1 + 1
    """
    comm = resolve_comm(comm)
    try:
        yield
    except Exception as exc:
        if comm.Get_size() > 1:
            with contextlib.suppress(exc_type):
                check_all(comm, False, f"{type(exc).__name__}: {exc}", exc_type)
        raise
    check_all(comm, True, "", exc_type)


_PREVIOUS_HOOK: list[Any] = []


def abort_hook(exc_type: type[BaseException], exc: BaseException,
               tb: TracebackType | None) -> None:
    """:data:`sys.excepthook` that aborts the MPI job after printing the traceback.

    On one rank (or before MPI is initialised, or after it is finalised) it
    only prints, like the default hook.
    """
    from mpi4py import MPI

    running = MPI.Is_initialized() and not MPI.Is_finalized()
    size = MPI.COMM_WORLD.Get_size() if running else 1
    if size == 1 or issubclass(exc_type, KeyboardInterrupt):
        (_PREVIOUS_HOOK[-1] if _PREVIOUS_HOOK else sys.__excepthook__)(exc_type, exc, tb)
        return
    rank = MPI.COMM_WORLD.Get_rank()
    lines = traceback.format_exception(exc_type, exc, tb)
    text = "".join(f"[rank {rank}] {line}" for chunk in lines for line in chunk.splitlines(True))
    sys.stderr.write(text)
    sys.stderr.write(
        f"[rank {rank}] tensorpar: uncaught {exc_type.__name__} on rank {rank} of {size}; "
        "aborting the MPI job (MPI_Abort) so the other ranks do not hang\n")
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(1)


def install_abort_hook() -> None:
    """Make :func:`abort_hook` the :data:`sys.excepthook` (idempotent)."""
    if sys.excepthook is not abort_hook:
        _PREVIOUS_HOOK.append(sys.excepthook)
        sys.excepthook = abort_hook


def uninstall_abort_hook() -> None:
    """Restore the excepthook that :func:`install_abort_hook` replaced."""
    if sys.excepthook is abort_hook and _PREVIOUS_HOOK:
        sys.excepthook = _PREVIOUS_HOOK.pop()


def _install_by_default() -> None:
    if os.environ.get("TENSORPAR_ABORT_HOOK", "1") != "0":
        install_abort_hook()
