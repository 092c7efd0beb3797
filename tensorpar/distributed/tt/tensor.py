"""Distributed tensor trains: the container and the arithmetic that sends no data.

Layout (Al Daas, Ballard and Benner, SIAM J. Sci. Comput. 2022): core ``k`` of
a TT of shape ``(n_0, ..., n_{d-1})`` and ranks ``(r_0, ..., r_d)`` has global
shape ``(r_k, n_k, r_{k+1})``; rank ``p`` of a communicator of ``P`` ranks
holds the slice ``core[:, lo:hi, :]`` with the contiguous blocks of
:func:`tensorpar.distributed.grid.block_sizes` (sizes differ by at most one).
Every mode must have ``n_k >= P`` so that no rank holds an empty slice; a
smaller mode raises a ValueError on every rank.

Sums, differences, scaling and Hadamard products act on the local slices
with the serial per-core functions and send no data. Every entry point
first validates its arguments on every rank and agrees on them
(:func:`tensorpar.distributed.comm.agree`, one small ``Allreduce`` counted as
metadata), so an argument that is wrong or different on one rank raises the
same exception on every rank instead of leaving the others in a collective.

The other operations live in sibling modules: dot products and norms in
:mod:`~tensorpar.distributed.tt.dot`, orthogonalization and rounding in
:mod:`~tensorpar.distributed.tt.rounding`, the TT-matrix product in
:mod:`~tensorpar.distributed.tt.matvec`; the methods of
:class:`DistTTTensor` that call them import them lazily (a documented
container convenience, the only import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._backend import Engine, get_array_module
from ..._typing import Array, RoundMethod, Tree
from ..._validation import SUPPORTED_DTYPES, check_same_shape, check_scalar
from ...tt.ops import add_cores, core_position, hadamard_core
from ...tt.tensor import TTTensor
from ..comm import allgatherv, bcast_object, resolve_comm, scatterv
from ..grid import block_bounds, block_sizes
from .agreement import agree_checked, meta_or_none

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["DistTTTensor", "dist_tt_add", "dist_tt_sub", "dist_tt_scale", "dist_tt_hadamard",
           "check_modes", "check_dist_tt", "check_dist_pair", "agree_pair", "describe",
           "operand_comm"]


def check_modes(shape: Sequence[int], size: int) -> None:
    """Raise a ValueError when a mode is smaller than the number of ranks ``size``.

    Examples
    --------
    >>> from tensorpar.distributed.tt.tensor import check_modes
    >>> check_modes((4, 2), 3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: shape (4, 2): mode 1 has size 2 < 3 ranks; ...
    """
    small = [(k, n) for k, n in enumerate(shape) if n < size]
    if small:
        k, n = small[0]
        raise ValueError(
            f"shape {tuple(shape)}: mode {k} has size {n} < {size} ranks; DistTTTensor splits "
            "every mode over all ranks and needs n_k >= comm size")


def describe(x: Any) -> Any:
    """What ranks must agree on about an operand: shape, ranks and dtype (or its type name).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor, describe
    >>> describe(DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))), describe(None)
    (((4, 5), (1, 2, 1), '<f8'), 'NoneType')
    """
    if isinstance(x, DistTTTensor):
        return (x.shape, x.ranks, np.dtype(x.dtype).str)
    return type(x).__name__


def operand_comm(*operands: Any) -> Any:
    """The communicator of the first DistTTTensor operand (``COMM_WORLD`` if there is none).

    A rank that got a wrong operand still joins the agreement on the others' communicator.

    Examples
    --------
    >>> from tensorpar.distributed.tt.tensor import operand_comm
    >>> operand_comm("not a tensor").Get_size() >= 1
    True
    """
    for x in operands:
        if isinstance(x, DistTTTensor):
            return x.comm
    return resolve_comm(None)


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
            msg = _local_problem(cores, shp, comm)
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

    def __add__(self, other: DistTTTensor) -> DistTTTensor:
        return dist_tt_add(self, other)

    def __sub__(self, other: DistTTTensor) -> DistTTTensor:
        return dist_tt_sub(self, other)

    def __mul__(self, alpha: Any) -> DistTTTensor:
        return dist_tt_scale(self, alpha)

    __rmul__ = __mul__

    def hadamard(self, other: DistTTTensor, engine: Engine = "auto") -> DistTTTensor:
        """Entrywise product; see :func:`dist_tt_hadamard`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((4, 5, 6), 2, seed=0)
        >>> X = DistTTTensor.scatter(x)
        >>> bool(np.allclose(X.hadamard(X).gather().to_dense(), x.to_dense() ** 2))
        True

        Under ``mpiexec -n 2`` each rank multiplies its own slices; no data moves.
        """
        return dist_tt_hadamard(self, other, engine)

    # -- conveniences delegating to the sibling modules (lazy imports) ---------
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


def _local_problem(cores: Any, shape: tuple[int, ...], comm: Any) -> str | None:
    """Why this rank's cores do not fit ``shape`` (None when they do)."""
    if not isinstance(cores, (list, tuple)) or len(cores) != len(shape) or not shape:
        return f"local_cores must be a list of {len(shape)} cores, one per mode"
    left = 1
    for k, c in enumerate(cores):
        m = block_sizes(shape[k], comm.Get_size())[comm.Get_rank()]
        if getattr(c, "ndim", None) != 3:
            return f"local_cores[{k}] must be a 3-d array (r_k, m_k, r_k+1)"
        if c.shape[0] != left or c.shape[1] != m:
            return (f"local_cores[{k}] has shape {tuple(c.shape)}; expected ({left}, {m}, r) "
                    f"on rank {comm.Get_rank()}")
        if np.dtype(c.dtype) not in SUPPORTED_DTYPES:
            return f"local_cores[{k}] has dtype {c.dtype}; expected float32/64 or complex64/128"
        if not bool(get_array_module(c).isfinite(c).all()):
            return f"local_cores[{k}] has non-finite entries on rank {comm.Get_rank()}"
        left = c.shape[2]
    if left != 1:
        return f"the last local core has right rank {left}; expected 1"
    return None


def check_dist_tt(x: Any, name: str = "x") -> DistTTTensor:
    """Return ``x`` when it is a DistTTTensor, else raise a TypeError naming ``name``.

    Examples
    --------
    >>> from tensorpar.distributed.tt.tensor import check_dist_tt
    >>> check_dist_tt(1.0, "y")
    Traceback (most recent call last):
    ...
    TypeError: y must be a DistTTTensor, got float
    """
    if not isinstance(x, DistTTTensor):
        raise TypeError(f"{name} must be a DistTTTensor, got {type(x).__name__}")
    return x


def check_dist_pair(x: Any, y: Any) -> None:
    """Local checks of two operands: DistTTTensors of the same shape on the same communicator.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor, check_dist_pair
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> check_dist_pair(x, x)   # passes silently
    """
    check_dist_tt(x, "x")
    check_dist_tt(y, "y")
    check_same_shape([x.shape, y.shape], ["x", "y"])
    if x.comm is not y.comm and x.comm != y.comm:
        raise ValueError("x and y live on different communicators")


def agree_pair(x: Any, y: Any) -> None:
    """Collective checks of two operands: :func:`check_dist_pair` on every rank, then agreement.

    Every rank raises the same exception when the check fails on any rank or
    the operands differ between ranks (one ``"meta"`` message, no data).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt.tensor import DistTTTensor, agree_pair
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> agree_pair(x, x)   # passes silently
    """
    agree_checked(operand_comm(x, y), lambda: check_dist_pair(x, y),
                  {"x": describe(x), "y": describe(y)})


# -- no communication of data --------------------------------------------------
def _sum(x: DistTTTensor, y: DistTTTensor, weights: list[float]) -> DistTTTensor:
    d = x.ndim
    cores = [add_cores([a, b], core_position(k, d), weights)
             for k, (a, b) in enumerate(zip(x.local_cores, y.local_cores))]
    return DistTTTensor.wrap(cores, x.shape, x.comm)


def dist_tt_add(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x + y``: ranks add; local block-diagonal cores, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_add
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_add(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2 python script.py`` each rank adds its own slices
    (rank 0 holds mode slices 2 and 3 of ``x``, rank 1 2 and 2) and sends no
    array, only the small agreement on the operands.
    """
    agree_pair(x, y)
    return _sum(x, y, [1.0, 1.0])


def dist_tt_sub(x: DistTTTensor, y: DistTTTensor) -> DistTTTensor:
    """``x - y``: ranks add; local block-diagonal cores, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_sub
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_sub(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2`` each rank subtracts its own slices; no array
    is sent, and the result stays split as the operands were.
    """
    agree_pair(x, y)
    return _sum(x, y, [1.0, -1.0])


def dist_tt_scale(x: DistTTTensor, alpha: Any) -> DistTTTensor:
    """``alpha * x``: every rank scales its slice of the first core; no data messages.

    ``alpha`` must be the same on every rank (checked).

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_scale
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_scale(x, 2.0).ranks
    (1, 2, 1)

    Under ``mpiexec -n 2`` every rank scales its slice of the first core
    (``alpha`` must be equal on every rank, else every rank raises a ValueError).
    """
    def check() -> complex | float:
        check_dist_tt(x)
        return check_scalar(alpha)

    a = agree_checked(operand_comm(x), check, {"x": describe(x), "alpha": alpha})
    return DistTTTensor.wrap([x.local_cores[0] * a] + list(x.local_cores[1:]), x.shape, x.comm)


def dist_tt_hadamard(x: DistTTTensor, y: DistTTTensor,
                     engine: Engine = "auto") -> DistTTTensor:
    """Entrywise product: ranks multiply; local :func:`tensorpar.tt.ops.hadamard_core`, no data messages.

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> from tensorpar.distributed.tt import DistTTTensor, dist_tt_hadamard
    >>> x = DistTTTensor.scatter(random_tt((4, 5), 2, seed=0))
    >>> dist_tt_hadamard(x, x).ranks
    (1, 4, 1)

    Under ``mpiexec -n 2`` each rank multiplies its own slices (ranks
    multiply: ``(1, 4, 1)`` on both); no array is sent.
    """
    agree_pair(x, y)
    cores = [hadamard_core(a, b, engine) for a, b in zip(x.local_cores, y.local_cores)]
    return DistTTTensor.wrap(cores, x.shape, x.comm)
