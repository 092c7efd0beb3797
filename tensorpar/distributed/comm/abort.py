"""Abort the whole MPI job when an exception escapes one rank.

Without this, a rank that dies of an uncaught exception leaves the others
waiting in their next collective, and the dying rank itself can hang in
``MPI_Finalize``. :func:`abort_hook` replaces :data:`sys.excepthook`: it
prints the traceback prefixed with the rank and calls
``MPI.COMM_WORLD.Abort(1)``, so ``mpiexec`` ends every rank with a non-zero
exit code (the idea of ``python -m mpi4py script.py``). ``KeyboardInterrupt``
(Ctrl-C, or raised by a callback) is handled like any other exception: on
one rank it would leave the others just as stuck.

**When it is installed.** Not at import: importing
:mod:`tensorpar.distributed` or its communication module changes nothing.
The hook is installed the first time a distributed operation resolves its
communicator (:func:`~tensorpar.distributed.comm.resolve_comm`, which every
collective and every distributed entry point calls), once per process.
Set ``TENSORPAR_ABORT_HOOK=0`` to never install it, or call
:func:`uninstall_abort_hook` after the first distributed call (it is not
reinstalled).
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType
from typing import Any

__all__ = ["abort_hook", "install_abort_hook", "uninstall_abort_hook", "install_default_hook"]

_PREVIOUS_HOOK: list[Any] = []
_DEFAULT_DONE: list[bool] = []


def abort_hook(exc_type: type[BaseException], exc: BaseException,
               tb: TracebackType | None) -> None:
    """:data:`sys.excepthook` that aborts the MPI job after printing the traceback.

    On one rank (or before MPI is initialised, or after it is finalised) it
    only hands over to the previous hook, like a plain Python process.

    Examples
    --------
    >>> import sys
    >>> saved = sys.excepthook
    >>> install_abort_hook()
    >>> sys.excepthook is abort_hook
    True
    >>> uninstall_abort_hook(); sys.excepthook = saved
    """
    from mpi4py import MPI

    running = MPI.Is_initialized() and not MPI.Is_finalized()
    size = MPI.COMM_WORLD.Get_size() if running else 1
    if size == 1:
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
    """Make :func:`abort_hook` the :data:`sys.excepthook` (idempotent).

    Examples
    --------
    >>> saved = sys.excepthook
    >>> sys.excepthook = sys.__excepthook__   # start from Python's own hook
    >>> install_abort_hook()
    >>> sys.excepthook is abort_hook
    True
    >>> uninstall_abort_hook(); sys.excepthook = saved

    On one process the hook behaves like the previous one. Under
    ``mpiexec -n 2 python script.py`` an uncaught exception on rank 1 prints
    its traceback prefixed ``[rank 1]`` and calls ``MPI_Abort``, so rank 0
    does not wait forever in its next collective.
    """
    if sys.excepthook is not abort_hook:
        _PREVIOUS_HOOK.append(sys.excepthook)
        sys.excepthook = abort_hook


def uninstall_abort_hook() -> None:
    """Restore the excepthook that :func:`install_abort_hook` replaced.

    Examples
    --------
    >>> saved = sys.excepthook
    >>> sys.excepthook = sys.__excepthook__
    >>> install_abort_hook(); uninstall_abort_hook()
    >>> sys.excepthook is sys.__excepthook__
    True
    >>> sys.excepthook = saved

    Under ``mpiexec -n 2`` an uncaught exception then ends only its own rank;
    the others may hang in their next collective until the job times out.
    """
    if sys.excepthook is abort_hook and _PREVIOUS_HOOK:
        sys.excepthook = _PREVIOUS_HOOK.pop()


def install_default_hook() -> None:
    """Install the hook on the first distributed call of the process, unless opted out.

    Called by :func:`~tensorpar.distributed.comm.resolve_comm`. Runs once:
    a hook removed by :func:`uninstall_abort_hook` stays removed.
    ``TENSORPAR_ABORT_HOOK=0`` in the environment disables it.

    Examples
    --------
    >>> install_default_hook()   # no-op after the first distributed call
    """
    if _DEFAULT_DONE:
        return
    _DEFAULT_DONE.append(True)
    if os.environ.get("TENSORPAR_ABORT_HOOK", "1") != "0":
        install_abort_hook()
