"""Keeping ranks together when one of them fails.

An exception on one MPI rank must not leave the others waiting forever in
the next collective. tensorpar uses two mechanisms:

* **error agreement** before collectives:
  :func:`~tensorpar.distributed.comm.check_all` reduces a
  one-integer flag so that bad input on any rank raises on every rank, with a
  message naming the failing ranks; :func:`collective_guard` wraps a block of
  rank-local work the same way. Every distributed constructor validates its
  input through these before it moves data.
* **abort on an uncaught exception** (:func:`abort_hook`, defined in
  :mod:`tensorpar.distributed.comm.abort` and re-exported here): the first
  distributed call of a process (the first
  :func:`~tensorpar.distributed.comm.resolve_comm`) installs it as
  :data:`sys.excepthook`. When an exception -- ``KeyboardInterrupt``
  included -- escapes a script running on more than one rank, the hook
  prints the traceback prefixed with the rank and calls
  ``MPI.COMM_WORLD.Abort(1)``, so ``mpiexec`` ends the whole job with a
  non-zero exit code instead of hanging (the same idea as
  ``python -m mpi4py script.py``). Importing :mod:`tensorpar.distributed`
  installs nothing. Set ``TENSORPAR_ABORT_HOOK=0`` to never install it, or
  call :func:`uninstall_abort_hook` after the first distributed call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .comm import check_all, resolve_comm
from .comm.abort import abort_hook, install_abort_hook, uninstall_abort_hook

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

    Under ``mpiexec -n 2 python script.py``, when the block raises
    ``ValueError("bad block")`` on rank 1 only, rank 1 re-raises it and rank 0
    raises ``RuntimeError: rank(s) [1] of 2 failed: ValueError: bad block``.
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
