"""The block layout of a :class:`~tensorpar.distributed.DistTensor` on its process grid.

Checking a global shape against a grid, choosing and agreeing on the grid
(:func:`make_grid`, the one collective here: a small ``comm.agree`` before
any data moves or any communicator is created), the index range of each
rank's block (:func:`rank_bounds`, from
:func:`~tensorpar.distributed.grid.block_bounds`) and packing the blocks of a
whole tensor in rank order for ``Scatterv``/``Gatherv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

from .._backend import get_array_module
from .._validation import check_positive_int
from . import comm as C
from .grid import ProcessGrid, block_bounds, choose_grid

__all__ = ["check_shape", "check_blocks", "grid_dims", "make_grid", "rank_bounds",
           "block_slices", "pack_blocks", "unpack_blocks"]


def check_blocks(shape: tuple[int, ...], dims: tuple[int, ...]) -> None:
    """Raise a ValueError (no communication) when a block would be empty.

    Examples
    --------
    >>> check_blocks((1, 5), (2, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: grid dimension P_0 = 2 exceeds the tensor size I_0 = 1: some ranks would ...
    """
    if len(dims) != len(shape):
        raise ValueError(
            f"the grid has {len(dims)} dimensions but the tensor has order {len(shape)}")
    for n, (I, P) in enumerate(zip(shape, dims)):
        if P > I:
            raise ValueError(
                f"grid dimension P_{n} = {P} exceeds the tensor size I_{n} = {I}: some ranks "
                f"would hold an empty block; use a grid with P_{n} <= {I} (choose_grid picks one)")


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """A global tensor shape as a tuple of positive ints with at least one entry.

    Examples
    --------
    >>> check_shape([4, 5])
    (4, 5)
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints, got {type(shape).__name__}")
    out = tuple(check_positive_int(s, f"{name} entries") for s in shape)
    if not out:
        raise ValueError(f"{name} is () (a 0-d scalar); a DistTensor needs at least one dimension")
    return out


def grid_dims(shape: tuple[int, ...], grid: Any, comm: Any, size: int) -> tuple[int, ...]:
    """The grid extents for ``shape``: ``grid``'s, the given tuple, or :func:`choose_grid`'s.

    Rank-local (no communication); ``size`` is the number of ranks of ``comm``.

    Examples
    --------
    >>> grid_dims((6, 5), None, None, 1), grid_dims((6, 5), (1, 1), None, 1)
    ((1, 1), (1, 1))
    """
    if isinstance(grid, ProcessGrid):
        if comm is not None and comm != grid.comm:
            raise ValueError("pass either grid= or comm=, not a grid with a different comm")
        dims = grid.dims
    elif grid is None:
        dims = choose_grid(shape, size)
    else:
        dims = tuple(check_positive_int(d, "grid entries") for d in grid)
        if math.prod(dims) != size:
            raise ValueError(f"grid {dims} holds {math.prod(dims)} ranks but the communicator "
                             f"has {size}")
    check_blocks(shape, dims)
    return dims


def make_grid(shape: Any, grid: Any, comm: Any, error: BaseException | None = None,
               values: dict[str, Any] | None = None) -> tuple[ProcessGrid, bool, tuple[int, ...]]:
    """Validate, agree on every rank, then build the grid: ``(grid, owned, shape)``.

    ``error`` is this rank's earlier validation failure, ``values`` more
    arguments that must be equal on every rank. One ``comm.agree`` (a small
    allreduce, before any data moves or any communicator is created) makes
    every rank raise the same exception when a rank's input is bad or the
    ranks disagree on the shape or the grid -- a library-chosen grid
    included, which ranks with different shapes would otherwise build
    differently and deadlock in ``Create_cart``. ``owned`` says whether the
    grid was created here (and is to be freed with the tensor).

    Examples
    --------
    >>> g, owned, shape = make_grid([6, 5], None, None)   # one process: a (1, 1) grid
    >>> g.dims, owned, shape
    ((1, 1), True, (6, 5))
    >>> g.free()
    """
    parent = grid.cart if isinstance(grid, ProcessGrid) else C.resolve_comm(comm)
    dims: tuple[int, ...] | None = None
    if error is None:
        try:
            shape = check_shape(shape)
            dims = grid_dims(shape, grid, comm, parent.Get_size())
        except (TypeError, ValueError) as exc:
            error = exc
    C.agree(parent, {"shape": shape, "grid": dims, **(values or {})}, error=error)
    # agree raised on every rank unless the validation above passed everywhere
    dims = cast(tuple[int, ...], dims)
    if isinstance(grid, ProcessGrid):
        return grid, False, shape
    return ProcessGrid(dims, parent), True, shape


def rank_bounds(shape: Sequence[int], grid: ProcessGrid, rank: int) -> tuple[tuple[int, int], ...]:
    """``(start, stop)`` per mode of the block that ``rank`` of ``grid`` holds.

    Examples
    --------
    >>> from tensorpar.distributed import ProcessGrid
    >>> with ProcessGrid((1, 1)) as g:     # rank 1 of a (2, 1) grid: ((3, 5), (0, 4))
    ...     print(rank_bounds((5, 4), g, 0))
    ((0, 5), (0, 4))
    """
    coords = grid.coords_of(rank)
    return tuple(block_bounds(I, P, p) for I, P, p in zip(shape, grid.dims, coords))


def block_slices(bounds: Sequence[tuple[int, int]]) -> tuple[slice, ...]:
    """The index of the block with ``bounds`` (as :func:`rank_bounds` gives them).

    Examples
    --------
    >>> block_slices(((0, 3), (2, 4)))
    (slice(0, 3, None), slice(2, 4, None))
    """
    return tuple(slice(a, b) for a, b in bounds)


def pack_blocks(X: Any, shape: tuple[int, ...], grid: ProcessGrid) -> Any:
    """The blocks of the whole tensor ``X``, raveled and concatenated in rank order.

    What :meth:`~tensorpar.distributed.DistTensor.scatter` sends with one
    ``Scatterv``; :func:`unpack_blocks` is its inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed import ProcessGrid
    >>> X = np.arange(6.0).reshape(2, 3)
    >>> with ProcessGrid((1, 1)) as g:     # one rank: the raveled tensor
    ...     print(pack_blocks(X, X.shape, g))
    [0. 1. 2. 3. 4. 5.]
    """
    xp = get_array_module(X)
    return xp.concatenate([X[block_slices(rank_bounds(shape, grid, r))].ravel()
                           for r in range(grid.size)])


def unpack_blocks(flat: Any, shape: tuple[int, ...], grid: ProcessGrid) -> Any:
    """The whole tensor from its blocks raveled in rank order (inverse of :func:`pack_blocks`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed import ProcessGrid
    >>> with ProcessGrid((1, 1)) as g:
    ...     print(unpack_blocks(np.arange(6.0), (2, 3), g))
    [[0. 1. 2.]
     [3. 4. 5.]]
    """
    xp = get_array_module(flat)
    out = xp.empty(shape, dtype=flat.dtype)
    pos = 0
    for r in range(grid.size):
        bounds = rank_bounds(shape, grid, r)
        n = math.prod(b - a for a, b in bounds)
        out[block_slices(bounds)] = flat[pos:pos + n].reshape(tuple(b - a for a, b in bounds))
        pos += n
    return out
