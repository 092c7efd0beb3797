"""Cartesian process grids, block partitions and the grid chooser.

A :class:`ProcessGrid` arranges ``P = P_0 * ... * P_{N-1}`` ranks as an
N-way Cartesian grid (``Create_cart``). Rank ``p = (p_0, ..., p_{N-1})``
holds the tensor block with mode-``n`` indices ``J_n(p_n)``, where
:func:`block_bounds` splits ``I_n`` into ``P_n`` contiguous blocks whose sizes
differ by at most one (the first ``I_n mod P_n`` blocks are one larger).

The **slice communicator** of mode ``n`` (:meth:`ProcessGrid.slice_comm`)
holds the ``P / P_n`` ranks that share coordinate ``p_n``: they hold the
same rows ``J_n(p_n)`` of factor ``n`` and together own them, each a
sub-block of :func:`owned_bounds`. The **fibre communicator** of mode ``n``
(:meth:`ProcessGrid.fibre_comm`) is its complement: the ``P_n`` ranks that
share every coordinate but ``p_n`` (a mode-``n`` fibre of the grid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._validation import check_positive_int
from .comm import resolve_comm

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["ProcessGrid", "block_sizes", "block_bounds", "owned_bounds", "choose_grid",
           "grid_cost"]


def block_sizes(n: int, parts: int) -> list[int]:
    """Sizes of ``parts`` contiguous blocks of ``range(n)``, differing by at most one.

    Examples
    --------
    >>> block_sizes(10, 4)
    [3, 3, 2, 2]
    """
    q, r = divmod(int(n), int(parts))
    return [q + (1 if i < r else 0) for i in range(int(parts))]


def block_bounds(n: int, parts: int, i: int) -> tuple[int, int]:
    """``(start, stop)`` of block ``i`` of :func:`block_sizes`\\ ``(n, parts)``.

    Examples
    --------
    >>> block_bounds(10, 4, 2)
    (6, 8)
    """
    q, r = divmod(int(n), int(parts))
    start = i * q + min(i, r)
    return start, start + q + (1 if i < r else 0)


def owned_bounds(n: int, parts: int, i: int, owners: int, j: int) -> tuple[int, int]:
    """Global rows owned by member ``j`` of ``owners`` sharing block ``i`` of ``n`` in ``parts``.

    The block :func:`block_bounds`\\ ``(n, parts, i)`` is split again into
    ``owners`` near-equal pieces (some may be empty when the block is short).

    Examples
    --------
    Block 1 of 10 rows in 2 parts is rows 5..9; its 2 owners split it 3 + 2:

    >>> owned_bounds(10, 2, 1, 2, 0), owned_bounds(10, 2, 1, 2, 1)
    ((5, 8), (8, 10))
    """
    b0, b1 = block_bounds(n, parts, i)
    s0, s1 = block_bounds(b1 - b0, owners, j)
    return b0 + s0, b0 + s1


def grid_cost(shape: Sequence[int], dims: Sequence[int], rank: int = 1) -> dict[str, float]:
    """Communication per CP-ALS iteration on the busiest rank, for bandwidth-optimal collectives.

    Per mode ``n`` with slice size ``q_n = P / P_n`` and block height
    ``b_n = ceil(I_n / P_n)``: a reduce-scatter and an all-gather of
    ``b_n R`` words over ``q_n`` ranks, each moving ``(q_n - 1)/q_n b_n R``
    words in ``ceil(log2 q_n)`` messages, plus an allreduce of the ``R x R``
    Gram over all ``P`` ranks (``2 (P-1)/P R^2`` words, ``2 ceil(log2 P)``
    messages); one more allreduce (of two scalars) gives the fit.

    Returns
    -------
    dict with ``words`` and ``messages`` per iteration.

    Examples
    --------
    >>> grid_cost((1024, 1024, 1024), (4, 4, 4), rank=32)
    {'words': 52131.9375, 'messages': 72.0}
    >>> grid_cost((100, 100), (1, 1))
    {'words': 0.0, 'messages': 0.0}
    """
    P = math.prod(dims)
    words, msgs = 0.0, 0.0
    lg = math.ceil(math.log2(P)) if P > 1 else 0
    for I, Pn in zip(shape, dims):
        q = P // Pn
        b = -(-int(I) // int(Pn))
        words += 2.0 * (q - 1) / q * b * rank
        msgs += 2 * (math.ceil(math.log2(q)) if q > 1 else 0)
        words += 2.0 * (P - 1) / P * rank * rank
        msgs += 2 * lg
    words += 2.0 * (P - 1) / P * 2
    msgs += 2 * lg
    return {"words": words, "messages": msgs}


def _factorizations(P: int, n: int) -> list[tuple[int, ...]]:
    if n == 1:
        return [(P,)]
    out: list[tuple[int, ...]] = []
    for d in range(1, P + 1):
        if P % d == 0:
            out.extend((d,) + rest for rest in _factorizations(P // d, n - 1))
    return out


def choose_grid(shape: Sequence[int], nprocs: int, rank: int = 1) -> tuple[int, ...]:
    """The grid ``(P_0, ..., P_{N-1})`` minimising :func:`grid_cost` for ``shape`` on ``nprocs``.

    Candidates are all ordered factorisations of ``nprocs`` with
    ``P_n <= I_n`` (no empty blocks). Ties are broken by fewer messages, then
    by the smallest largest local block (compute balance), then by the
    lexicographically smallest grid: later modes are split first, which keeps
    the leading mode of the local blocks long (it is the inner dimension of
    the first GEMM of the local MTTKRP sweep, which runs faster when long).

    Examples
    --------
    >>> choose_grid((1024, 1024, 1024), 64)
    (4, 4, 4)
    >>> choose_grid((100, 10, 10), 8)
    (8, 1, 1)
    """
    shape = [check_positive_int(s, "shape entries") for s in shape]
    nprocs = check_positive_int(nprocs, "nprocs")
    if not shape:
        raise ValueError("shape must have at least one mode: a 0-d tensor (a scalar) is not "
                         "split over ranks")
    best, best_key = None, None
    for dims in _factorizations(nprocs, len(shape)):
        if any(p > s for p, s in zip(dims, shape)):
            continue
        cost = grid_cost(shape, dims, rank)
        block = math.prod(-(-s // p) for s, p in zip(shape, dims))
        key = (round(cost["words"], 9), cost["messages"], block, tuple(dims))
        if best_key is None or key < best_key:
            best, best_key = dims, key
    if best is None:
        raise ValueError(
            f"a tensor of shape {tuple(shape)} cannot be split over {nprocs} ranks without "
            "empty blocks; use fewer ranks")
    return tuple(best)


class ProcessGrid:
    """An N-way Cartesian grid of MPI ranks with one slice communicator per mode.

    Parameters
    ----------
    dims : sequence of int
        Grid extents ``(P_0, ..., P_{N-1})``; their product must equal the
        size of ``comm``.
    comm : mpi4py.MPI.Intracomm, optional
        Parent communicator (default ``MPI.COMM_WORLD``); not freed by the grid.

    Attributes
    ----------
    dims : tuple of int
    coords : tuple of int
        This rank's grid coordinates ``(p_0, ..., p_{N-1})``.
    cart : mpi4py.MPI.Cartcomm
        The grid communicator (``reorder=False``: its ranks equal ``comm``'s).

    Notes
    -----
    Construction is collective over ``comm``. The grid owns ``cart``, the
    slice communicators and the fibre communicators (made on first use) and
    frees them in :meth:`free` (or on leaving a ``with`` block).
    Construction is collective over ``comm``. The grid owns ``cart`` and the
    slice communicators and frees them in :meth:`free` (or on leaving a
    ``with`` block).

    Examples
    --------
    Under ``mpiexec -n 2`` use ``dims=(2, 1)`` (or :meth:`for_shape`); with one
    process every extent is 1:

    >>> from tensorpar.distributed import ProcessGrid
    >>> with ProcessGrid((1, 1)) as grid:
    ...     print(grid.dims, grid.coords, grid.slice_comm(0).Get_size())
    (1, 1) (0, 0) 1
    """

    def __init__(self, dims: Sequence[int], comm: MPI.Comm | None = None) -> None:
        comm = resolve_comm(comm)
        if not isinstance(dims, (list, tuple)) or len(dims) == 0:
            raise TypeError(f"dims must be a non-empty sequence of ints, got {dims!r}")
        dims = tuple(check_positive_int(d, "dims entries") for d in dims)
        if math.prod(dims) != comm.Get_size():
            raise ValueError(
                f"dims {dims} hold {math.prod(dims)} ranks but the communicator has "
                f"{comm.Get_size()}")
        self.dims: tuple[int, ...] = dims
        self.comm = comm
        self.cart: Any = comm.Create_cart(list(dims), periods=[False] * len(dims), reorder=False)
        self.cart.Set_name("tensorpar.grid")
        self.coords: tuple[int, ...] = self.coords_of(self.cart.Get_rank())
        self._slices = []
        for n in range(len(dims)):
            sub = self.cart.Sub([k != n for k in range(len(dims))])
            sub.Set_name(f"tensorpar.slice{n}")
            self._slices.append(sub)
        self._fibres: dict[int, Any] = {}

    @classmethod
    def for_shape(cls, shape: Sequence[int], comm: MPI.Comm | None = None,
                  rank: int = 1) -> ProcessGrid:
        """The grid :func:`choose_grid` picks for ``shape`` on ``comm``.

        Examples
        --------
        >>> from tensorpar.distributed import ProcessGrid
        >>> with ProcessGrid.for_shape((100, 10, 10)) as grid:   # (2, 1, 1) on 2 ranks
        ...     print(grid.ndim, grid.size)
        3 1
        """
        comm = resolve_comm(comm)
        return cls(choose_grid(shape, comm.Get_size(), rank), comm)

    # -- properties ---------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def rank(self) -> int:
        """This rank's rank in :attr:`cart` (equal to its rank in the parent comm)."""
        return int(self.cart.Get_rank())

    def slice_comm(self, mode: int) -> MPI.Cartcomm:
        """Ranks sharing this rank's coordinate in ``mode`` (size ``P / P_mode``).

        Examples
        --------
        >>> from tensorpar.distributed import ProcessGrid
        >>> with ProcessGrid((1, 1)) as grid:       # on a (2, 2) grid: size 2
        ...     print(grid.slice_comm(1).Get_size())
        1
        """
        self._check_alive()
        return self._slices[mode]

    def fibre_comm(self, mode: int) -> MPI.Cartcomm:
        """Ranks sharing every coordinate of this rank except ``mode`` (size ``P_mode``).

        Created on the first call (collective over the grid: every rank must
        ask for the same ``mode``), then cached; freed by :meth:`free`. Its
        rank order is the grid coordinate along ``mode``.

        Examples
        --------
        >>> from tensorpar.distributed import ProcessGrid
        >>> with ProcessGrid((1, 1)) as grid:   # one process
        ...     grid.fibre_comm(1).Get_size()
        1
        """
        self._check_alive()
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode < self.ndim:
            raise ValueError(f"mode must be an int in [0, {self.ndim}), got {mode!r}")
        if mode not in self._fibres:
            sub = self.cart.Sub([k == mode for k in range(self.ndim)])
            sub.Set_name(f"tensorpar.fibre{mode}")
            self._fibres[mode] = sub
        fibre: MPI.Cartcomm = self._fibres[mode]
        return fibre

    def coords_of(self, rank: int) -> tuple[int, ...]:
        """Grid coordinates of ``rank``.

        Examples
        --------
        >>> from tensorpar.distributed import ProcessGrid
        >>> with ProcessGrid((1, 1, 1)) as grid:    # rank 1 of a (2, 1, 1) grid: (1, 0, 0)
        ...     print(grid.coords_of(0))
        (0, 0, 0)
        """
        self._check_alive()
        return tuple(int(c) for c in self.cart.Get_coords(rank))

    def __repr__(self) -> str:
        return f"ProcessGrid(dims={self.dims}, coords={self.coords})"

    # -- lifetime -----------------------------------------------------------
    def _check_alive(self) -> None:
        if self.cart is None:
            raise ValueError("this ProcessGrid has been freed")

    def free(self) -> None:
        """Free the communicators this grid created (collective; idempotent).

        Examples
        --------
        >>> from tensorpar.distributed import ProcessGrid
        >>> grid = ProcessGrid((1,))
        >>> grid.free(); grid.free()
        >>> grid.cart is None
        True
        """
        if self.cart is None:
            return
        for sub in self._slices + [self._fibres[k] for k in sorted(self._fibres)]:
            sub.Free()
        self._slices = []
        self._fibres = {}
        self.cart.Free()
        self.cart = None

    def __enter__(self) -> ProcessGrid:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()
