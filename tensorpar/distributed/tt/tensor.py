"""Distributed tensor trains: the container :class:`DistTTTensor`.

Core ``k`` is split along its mode index over the ranks of ``comm`` in
contiguous blocks (the layout and its local checks are in
:mod:`~tensorpar.distributed.tt.layout`). Construction validates the local
slices on every rank and agrees on them
(:func:`tensorpar.distributed.comm.agree`, one small ``Allreduce`` counted as
metadata), so an argument that is wrong or different on one rank raises the
same exception on every rank instead of leaving the others in a collective.

The operations live in sibling modules: sums, differences, scaling and
Hadamard products (no data messages) in :mod:`~tensorpar.distributed.tt.arith`,
dot products and norms in :mod:`~tensorpar.distributed.tt.dot`,
orthogonalization and rounding in :mod:`~tensorpar.distributed.tt.rounding`,
the TT-matrix product in :mod:`~tensorpar.distributed.tt.matvec`, the checks of
operands in :mod:`~tensorpar.distributed.tt.checks`. Those modules import this
one; the methods of :class:`DistTTTensor` that call them (``+``, ``-``, ``*``,
``hadamard``, ``dot``, ``norm``, ``log_norm``, ``round``, ``orthogonalize``)
import them lazily, inside the method (a documented container convenience,
the only import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import Engine
from ..._typing import Array, RoundMethod, Tree
from ...tt.tensor import TTTensor
from ..comm import allgatherv, bcast_object, resolve_comm, scatterv
from ..grid import block_bounds, block_sizes
from .agreement import agree_checked, meta_or_none
from .layout import check_modes, local_cores_problem

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["DistTTTensor"]


class DistTTTensor:
    """A tensor train whose cores are split along their mode index over ``comm``.

    Parameters
    ----------
    local_cores : sequence of ndarray, core ``k`` of shape (r_k, m_k, r_{k+1})
        This rank's slices, ``m_k = block_sizes(shape[k], P)[rank]``;
        ``r_0 = r_d = 1``; finite entries.
    shape : sequence of int
        Global mode sizes ``(n_0, ..., n_{d-1})``, the same on every rank, each
        ``>= P``.
    comm : mpi4py.MPI.Intracomm, optional
        Default ``MPI.COMM_WORLD``.

    Notes
    -----
    Construction is collective: the local checks, the shape and the TT
    ranks are agreed on with :func:`tensorpar.distributed.comm.agree`, so bad
    local cores, or ranks that differ between processes, raise the same
    ValueError on every rank. Use :meth:`scatter` to distribute a serial
    :class:`tensorpar.TTTensor`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed.tt import DistTTTensor
    >>> x = DistTTTensor([np.ones((1, 4, 2)), np.ones((2, 5, 1))], (4, 5))   # one process
    >>> x.ranks, float(x.gather().to_dense()[0, 0])
    ((1, 2, 1), 2.0)

    Under MPI every rank runs the same script (``mpiexec -n 2 python script.py``)::

        from tensorpar import random_tt
        from tensorpar.distributed.tt import DistTTTensor
        X = DistTTTensor.scatter(random_tt((4, 5, 6), 2, seed=0))
        print(X.comm.Get_rank(), [c.shape for c in X.local_cores], round(X.norm(), 6))

    At two ranks rank 0 holds the slices ``(1, 2, 2), (2, 3, 2), (2, 3, 1)``
    and rank 1 ``(1, 2, 2), (2, 2, 2), (2, 3, 1)`` (modes split in contiguous
    blocks); both print the same norm as the serial ``TTTensor``.
    """

    def __init__(self, local_cores: Sequence[Array], shape: Sequence[int],
                 comm: MPI.Comm | None = None) -> None:
        comm = resolve_comm(comm)
        self._build(local_cores, shape, comm, None)

    def _build(self, cores: Any, shape: Any, comm: Any, error: BaseException | None) -> None:
        def check() -> tuple[int, ...]:
            if error is not None:
                raise error
            shp = tuple(int(n) for n in shape)
            check_modes(shp, comm.Get_size())
            msg = local_cores_problem(cores, shp, comm)
            if msg is not None:
                raise ValueError(msg)
            return shp

        shp = agree_checked(comm, check, {"shape": meta_or_none(lambda: tuple(int(n) for n in shape)),
                                          "ranks": meta_or_none(lambda: [c.shape[0] for c in cores])})
        self._set(list(cores), shp, comm)

    def _set(self, cores: list[Array], shape: tuple[int, ...], comm: Any) -> None:
        self.comm = comm
        self.shape = shape
        self.local_cores = cores
        self.counts = [block_sizes(n, comm.Get_size()) for n in shape]

    @classmethod
    def wrap(cls, cores: list[Array], shape: tuple[int, ...], comm: Any) -> DistTTTensor:
        """A DistTTTensor of already consistent local cores (no checks, no messages).

        Examples
        --------
        At one process the local cores are the whole cores:

        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5), 2, seed=0)
        >>> DistTTTensor.wrap(list(x.cores), x.shape, resolve_comm(None)).ranks
        (1, 2, 1)

        Under ``mpiexec -n 2`` each rank passes its own slices
        ``core[:, lo:hi, :]`` (:func:`tensorpar.distributed.grid.block_bounds`);
        nothing checks that they fit together.
        """
        out = cls.__new__(cls)
        out._set(cores, shape, comm)
        return out

    @classmethod
    def scatter(cls, tt: TTTensor | None, comm: MPI.Comm | None = None,
                root: int = 0) -> DistTTTensor:
        """Split the serial ``tt`` (read on ``root`` only) over ``comm``.

        ``root`` is agreed on first; one small metadata broadcast (shape; an
        error found on ``root``), then one ``Scatterv`` per core along the
        mode axis.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> X = DistTTTensor.scatter(random_tt((4, 5, 6), 2, seed=0))   # one process
        >>> [c.shape for c in X.local_cores]
        [(1, 4, 2), (2, 5, 2), (2, 6, 1)]

        Under ``mpiexec -n 2 python script.py`` the other ranks may pass
        ``None``; rank 0 then holds ``[(1, 2, 2), (2, 3, 2), (2, 3, 1)]`` and
        rank 1 ``[(1, 2, 2), (2, 2, 2), (2, 3, 1)]``.
        """
        comm = resolve_comm(comm)

        def check() -> None:
            if isinstance(root, bool) or not isinstance(root, (int, np.integer)) \
                    or not 0 <= root < comm.Get_size():
                raise ValueError(f"root must be a rank of comm (0..{comm.Get_size() - 1}), "
                                 f"got {root!r}")

        agree_checked(comm, check, {"root": root})
        meta: tuple[Any, str | None] | None = None
        if comm.Get_rank() == root:
            meta = ((None, f"tt must be a TTTensor on the root rank, got {type(tt).__name__}")
                    if not isinstance(tt, TTTensor) else (tt.shape, None))
        shape, err = bcast_object(comm, meta, root=root)
        if err is not None:
            raise TypeError(err)
        check_modes(shape, comm.Get_size())  # shape is the same on every rank now
        counts = [block_sizes(n, comm.Get_size()) for n in shape]
        full = tt.cores if isinstance(tt, TTTensor) and comm.Get_rank() == root else None
        cores = [scatterv(comm, None if full is None else full[k], counts[k], root=root, axis=1)
                 for k in range(len(shape))]
        return cls.wrap(cores, tuple(shape), comm)

    @classmethod
    def from_core_function(cls, f: Callable[[int, np.ndarray], Array], shape: Sequence[int],
                           comm: MPI.Comm | None = None) -> DistTTTensor:
        """Build each rank's slices from a function of global mode indices; no array messages.

        Parameters
        ----------
        f : callable
            ``f(k, idx)`` returns core ``k`` restricted to the global mode
            indices ``idx`` (an int array of this rank's block), shape
            ``(r_k, len(idx), r_{k+1})``; it must give the same ranks on every
            rank (ranks that differ raise a ValueError on every rank naming them).
        shape : sequence of int
            Global mode sizes, each ``>= P``.

        Notes
        -----
        Collective: an exception raised by ``f`` on one rank is raised on
        every rank (as a RuntimeError unless it is a ValueError or TypeError).

        Examples
        --------
        The rank-1 train of ``(i + 1) * (j + 1)``:

        >>> def f(k, idx):
        ...     return (idx + 1.0).reshape(1, -1, 1)
        >>> X = DistTTTensor.from_core_function(f, (3, 4))
        >>> X.ranks, float(X.gather().to_dense()[2, 3])
        ((1, 1, 1), 12.0)

        Under ``mpiexec -n 2`` rank 0 is called with ``idx = [0, 1]`` and
        ``[0, 1]``, rank 1 with ``[2]`` and ``[2, 3]``; no array is sent.
        """
        comm = resolve_comm(comm)
        cores: list[Array] = []
        error: BaseException | None = None
        try:
            shp = tuple(int(n) for n in shape)
            check_modes(shp, comm.Get_size())
            for k, n in enumerate(shp):
                lo, hi = block_bounds(n, comm.Get_size(), comm.Get_rank())
                cores.append(f(k, np.arange(lo, hi)))
        except Exception as exc:  # noqa: BLE001 - any failure of f is reported on every rank
            error = exc
        out = cls.__new__(cls)
        out._build(cores, shape, comm, error)
        return out

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def ranks(self) -> tuple[int, ...]:
        """``(r_0, ..., r_d)``, the same on every rank."""
        return tuple(int(c.shape[0]) for c in self.local_cores) + (1,)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.result_type(*[c.dtype for c in self.local_cores])

    def __repr__(self) -> str:
        return (f"DistTTTensor(shape={self.shape}, ranks={self.ranks}, "
                f"ranks_of_comm={self.comm.Get_size()})")

    def gather(self) -> TTTensor:
        """The serial TT on every rank (one ``Allgatherv`` per core).

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> y = DistTTTensor.scatter(x).gather()
        >>> y.ranks, bool(np.allclose(y.to_dense(), x.to_dense()))
        ((1, 2, 2, 1), True)

        Under ``mpiexec -n 2`` every rank receives the same full ``TTTensor``.
        """
        return TTTensor([allgatherv(self.comm, c, counts=self.counts[k], axis=1)
                         for k, c in enumerate(self.local_cores)])

    # -- conveniences delegating to the sibling modules (lazy imports) ---------
    def __add__(self, other: DistTTTensor) -> DistTTTensor:
        from .arith import dist_tt_add

        return dist_tt_add(self, other)

    def __sub__(self, other: DistTTTensor) -> DistTTTensor:
        from .arith import dist_tt_sub

        return dist_tt_sub(self, other)

    def __mul__(self, alpha: Any) -> DistTTTensor:
        from .arith import dist_tt_scale

        return dist_tt_scale(self, alpha)

    __rmul__ = __mul__

    def hadamard(self, other: DistTTTensor, engine: Engine = "auto") -> DistTTTensor:
        """Entrywise product; see :func:`tensorpar.distributed.dist_tt_hadamard`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> X = DistTTTensor.scatter(x)
        >>> bool(np.allclose(X.hadamard(X).gather().to_dense(), x.to_dense() ** 2))
        True

        Under ``mpiexec -n 2`` each rank multiplies its own slices; no data moves.
        """
        from .arith import dist_tt_hadamard

        return dist_tt_hadamard(self, other, engine)

    def dot(self, other: DistTTTensor) -> float | complex:
        """Inner product; see :func:`tensorpar.distributed.dist_tt_dot`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x, y = random_tt((4, 5, 6), 2, seed=0), random_tt((4, 5, 6), 3, seed=1)
        >>> bool(np.isclose(DistTTTensor.scatter(x).dot(DistTTTensor.scatter(y)), x.dot(y)))
        True

        Under ``mpiexec -n 2`` every rank returns the same value (one
        ``Allreduce`` per core).
        """
        from .dot import dist_tt_dot

        return dist_tt_dot(self, other)

    def norm(self) -> float:
        """Frobenius norm; see :func:`tensorpar.distributed.dist_tt_norm`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> bool(np.isclose(DistTTTensor.scatter(x).norm(), x.norm()))
        True

        Under ``mpiexec -n 2`` every rank returns the same norm.
        """
        from .dot import dist_tt_norm

        return dist_tt_norm(self)

    def log_norm(self) -> float:
        """``log ||x||``; see :func:`tensorpar.distributed.dist_tt_log_norm`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> X = 1e300 * DistTTTensor.scatter(x)
        >>> bool(np.isclose(X.log_norm(), 300 * np.log(10) + np.log(x.norm())))
        True

        Under ``mpiexec -n 2`` every rank returns the same value.
        """
        from .dot import dist_tt_log_norm

        return dist_tt_log_norm(self)

    def round(self, eps: float = 1e-12, max_rank: int | None = None,
              method: RoundMethod = "qr", *, oversample: int = 10,
              seed: Any = None, tree: Tree = "flat") -> DistTTTensor:
        """Rounding; see :func:`tensorpar.distributed.dist_tt_round`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> X = DistTTTensor.scatter(random_tt((4, 5, 6), 2, seed=0))
        >>> (X + X).ranks, (X + X).round(1e-10).ranks
        ((1, 4, 4, 1), (1, 2, 2, 1))

        Under ``mpiexec -n 2`` the ranks agree on the truncation; the cores
        stay split as before.
        """
        from .rounding import dist_tt_round

        return dist_tt_round(self, eps, max_rank, method, oversample=oversample, seed=seed,
                             tree=tree)

    def orthogonalize(self, direction: Any = "left", *, tree: Tree = "flat") -> DistTTTensor:
        """QR sweep; see :func:`tensorpar.distributed.dist_tt_orthogonalize`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> y = DistTTTensor.scatter(x).orthogonalize("left").gather()
        >>> U = y.cores[0].reshape(4, -1)
        >>> bool(np.allclose(U.T @ U, np.eye(2))), bool(np.allclose(y.to_dense(), x.to_dense()))
        (True, True)

        Under ``mpiexec -n 2`` the QR of each core's slices is a TSQR over the
        ranks (:func:`~tensorpar.distributed.tsqr.tsqr`); ``tree`` picks its shape.
        """
        from .rounding import dist_tt_orthogonalize

        return dist_tt_orthogonalize(self, direction, tree=tree)
