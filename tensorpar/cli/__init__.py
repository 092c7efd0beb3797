"""The ``tensorpar`` command line (``tensorpar ...`` or ``python -m tensorpar ...``).

* :mod:`~tensorpar.cli.app` -- the argument parser, logging, MPI detection and
  the one-line error reports;
* :mod:`~tensorpar.cli.commands` -- the ``cp``, ``tt``, ``info`` and ``bench``
  sub-commands;
* :mod:`~tensorpar.cli.data` -- reading ``.npy`` and HDF5 inputs, serially or one
  block per MPI rank.

See :doc:`/quickstart` for a walk-through.
"""

from __future__ import annotations

from .app import build_parser, main

__all__ = ["build_parser", "main"]
