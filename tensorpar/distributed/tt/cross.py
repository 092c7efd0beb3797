"""Distributed TT-cross: every process evaluates its share of each batch of indices.

The serial algorithm (:func:`tensorpar.tt.cross.cross_sweeps`) runs replicated
on every process: index sets, SVDs and maxvol pivots are computed redundantly
on identical data, so every process ends with the same train, equal to the
serial :func:`tensorpar.tt_cross` with the same ``seed``. Only the evaluation
of ``f`` is split: each batch of ``m`` new multi-indices is cut into the
contiguous blocks of :func:`tensorpar.distributed.grid.block_sizes`, every
process calls ``f`` on its block, and one ``Allgatherv`` of ``m`` float64 values
puts all of them everywhere (each process also keeps the full cache).

Messages per batch (``d`` batches per half-sweep): one ``Allreduce`` of three
64-bit integers (:func:`tensorpar.distributed.comm.agree` on the batch, which
turns an exception raised by ``f`` on any process into the same exception on
all of them, and catches diverging index sets instead of hanging) and one
``Allgatherv`` of ``m`` values; per half-sweep one more one-integer
``Allreduce`` agrees on stopping. This pays when ``f`` costs more than the
latency of those messages per batch, i.e. for expensive functions; the
algebra (``O(d n r^3)`` per half-sweep) is not split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ...tt.cross import cross_sweeps
from ...tt.cross_options import CrossOptions, CrossResult, check_values
from ..comm import agree, allgatherv, any_true, bcast_object, resolve_comm
from ..grid import block_bounds, block_sizes

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["dist_tt_cross"]


def _split_evaluator(f: Callable[[np.ndarray], Any], comm: Any) -> Callable[[np.ndarray], Any]:
    size, rank = comm.Get_size(), comm.Get_rank()

    def evaluate(rows: np.ndarray) -> Any:
        m = int(rows.shape[0])
        lo, hi = block_bounds(m, size, rank)
        local = np.empty(0, dtype=np.float64)
        error: BaseException | None = None
        try:
            if hi > lo:
                local = check_values(f(rows[lo:hi]), hi - lo)
        except Exception as exc:  # noqa: BLE001 - a failure of f must reach every rank
            error = exc
        agree(comm, {"batch": rows}, error=error)
        return allgatherv(comm, local, counts=block_sizes(m, size))

    return evaluate


def dist_tt_cross(f: Callable[[np.ndarray], Any], shape: Any, *, eps: float | None = None,
                  rank: int | None = None, max_evals: int | None = None, max_sweeps: int = 40,
                  init_rank: int | None = None, kick: int = 1, tol: float | None = None,
                  cache: bool = True, seed: int | None = None,
                  comm: MPI.Comm | None = None) -> CrossResult:
    """:func:`tensorpar.tt_cross` with the evaluations of ``f`` split over ``comm``.

    Parameters
    ----------
    f : callable
        As in :func:`tensorpar.tt_cross`; each process calls it on its block of
        every batch (never with an empty block).
    shape, eps, rank, max_evals, max_sweeps, init_rank, kick, tol, cache
        As in :func:`tensorpar.tt_cross`; must be equal on every process.
    seed : int, optional
        Equal on every process (a Generator cannot be compared across
        processes); None draws one on process 0 and broadcasts it.
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``.

    Returns
    -------
    CrossResult
        The same on every process, and the same as the serial
        :func:`tensorpar.tt_cross` with the same ``seed``; ``n_evals`` counts
        the evaluations of all processes together. Use
        :meth:`tensorpar.distributed.DistTTTensor.scatter` to split the train.

    Notes
    -----
    Collective. The arguments are validated on every process and compared
    with :func:`tensorpar.distributed.comm.agree` before the first message
    that moves data, so bad or unequal arguments raise the same exception
    everywhere. Messages: see :mod:`tensorpar.distributed.tt.cross`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed.tt.cross import dist_tt_cross
    >>> x = np.linspace(0.0, 1.0, 20)
    >>> res = dist_tt_cross(lambda i: np.sin(x[i].sum(axis=1)), (20,) * 5, eps=1e-10, seed=0)
    >>> res.tt.ranks
    (1, 2, 2, 2, 2, 1)
    """
    comm = resolve_comm(comm)
    error: BaseException | None = None
    opts: CrossOptions | None = None
    try:
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        opts = CrossOptions.from_args(shape, eps, rank, max_evals, max_sweeps, init_rank, kick,
                                      tol, cache)
    except (TypeError, ValueError) as exc:
        error = exc
    agree(comm, {"shape": shape, "eps": eps, "rank": rank, "max_evals": max_evals,
                 "max_sweeps": max_sweeps, "init_rank": init_rank, "kick": kick, "tol": tol,
                 "cache": cache, "seed": seed}, error=error)
    if seed is None:
        drawn = int(np.random.default_rng().integers(2**62)) if comm.Get_rank() == 0 else None
        seed = int(bcast_object(comm, drawn))
    # agree raised on every rank unless opts was built everywhere
    return cross_sweeps(_split_evaluator(f, comm), cast(CrossOptions, opts), seed,
                        decide=lambda done: any_true(comm, done))
