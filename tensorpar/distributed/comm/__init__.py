"""The one communication layer of :mod:`tensorpar.distributed` (the only code that calls MPI).

Every message tensorpar sends goes through the functions here, so this is
the single place that

* resolves communicators (:func:`resolve_comm`: ``None`` means
  ``MPI.COMM_WORLD``, looked up at call time, never captured at import);
* moves arrays with mpi4py's **uppercase buffer methods** (``Allreduce``,
  ``Reduce_scatter``, ``Allgatherv``, ...): array data is never pickled, only
  small metadata (shapes, error messages) uses the lowercase methods;
* stages cupy arrays through host memory unless the MPI library is CUDA-aware
  (:func:`cuda_aware`);
* counts calls and bytes per collective (:class:`CommCounter`,
  :func:`count_traffic`, :func:`traffic`), which the tests compare with the
  cost formulas in the docstrings and the benchmarks feed to the alpha-beta
  model;
* lets ranks agree on errors and arguments before a collective
  (:func:`check_all`, :func:`agree`), so bad input on one rank raises on all
  of them; the ``with`` block variant lives in
  :mod:`tensorpar.distributed.errors`;
* aborts the job when an exception escapes one rank
  (:mod:`~tensorpar.distributed.comm.abort`, installed by the first
  :func:`resolve_comm`).

It is a package of small modules, all re-exported here:
:mod:`~tensorpar.distributed.comm.core` (communicators, staging),
:mod:`~tensorpar.distributed.comm.traffic` (counters),
:mod:`~tensorpar.distributed.comm.collectives`,
:mod:`~tensorpar.distributed.comm.agreement`,
:mod:`~tensorpar.distributed.comm.p2p` (point to point and trees, used by
TSQR), :mod:`~tensorpar.distributed.comm.ring` (fixed-shape exchanges for
rings) and :mod:`~tensorpar.distributed.comm.abort`. Importing it imports no
distributed algorithm and installs nothing.

Collectives take arrays whose parts are **rows along** ``axis`` (default 0);
``counts[r]`` is the number of rows of rank ``r``'s part. The trailing shape
must be the same on every rank. On a communicator of size 1 no MPI call is
made and nothing is counted: a one-rank collective moves no data.

Counted bytes (per rank, per call) are the payload this rank sees:

=====================  ====================================================
``Allreduce``          the array reduced (``x.nbytes``)
``Reduce_scatter``     the whole input, all ranks' parts (``x.nbytes``)
``Allgatherv``         the whole output, all ranks' parts
``Bcast``              the array broadcast
``Gatherv``            root: the whole output; others: their part
``Scatterv``           root: the whole input; others: their part
``Send`` / ``Recv``    the array sent / received
``Sendrecv``           the block sent (:func:`sendrecv`, :func:`ring_shift`)
``Reduce``             the array reduced, on every rank (:func:`reduce`)
=====================  ====================================================

Small metadata messages (shapes, counts, error flags) are counted as calls
under ``"meta"`` with no bytes, so byte totals are exactly the array payload.
"""

from __future__ import annotations

from ..._typing import ReduceOp
from .abort import abort_hook, install_abort_hook, uninstall_abort_hook
from .agreement import agree, check_all, fingerprint
from .collectives import (
    allgather_object,
    allgatherv,
    allreduce,
    any_true,
    bcast,
    bcast_object,
    gatherv,
    reduce_scatter,
    reduce_scatter_block,
    scatterv,
)
from .core import cuda_aware, resolve_comm
from .p2p import recv, send, tree_reduce, tree_schedule
from .ring import reduce, ring_shift, sendrecv
from .traffic import CommCounter, count_traffic, traffic

__all__ = [
    "CommCounter", "resolve_comm", "cuda_aware", "traffic", "count_traffic",
    "allreduce", "reduce_scatter", "reduce_scatter_block", "allgatherv", "bcast",
    "gatherv", "scatterv", "send", "recv", "tree_schedule", "tree_reduce", "any_true",
    "bcast_object", "allgather_object", "check_all", "agree", "fingerprint",
    "abort_hook", "install_abort_hook", "uninstall_abort_hook", "ReduceOp",
    "sendrecv", "ring_shift", "reduce",
]
