"""Dense tensors distributed in Cartesian blocks over a process grid.

Rank ``p = (p_0, ..., p_{N-1})`` of a :class:`~tensorpar.distributed.grid.ProcessGrid`
holds ``X[J_0(p_0), ..., J_{N-1}(p_{N-1})]``, a C-contiguous block whose
mode-``n`` index range ``J_n(p_n)`` comes from
:func:`~tensorpar.distributed.grid.block_bounds` (sizes differ by at most
one). No rank ever holds more than its block, except :meth:`DistTensor.scatter`
and :meth:`DistTensor.gather`, which go through rank 0 and are meant for small
tensors; :meth:`DistTensor.from_npy`, :meth:`DistTensor.from_hdf5` and
:meth:`DistTensor.from_function` build tensors that never exist in one place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._backend import get_array_module, require
from .._validation import SUPPORTED_DTYPES, as_float_array, check_positive_int
from . import comm as C
from .errors import collective_guard
from .grid import ProcessGrid, block_bounds, choose_grid

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

    from ..cp.tensor import CPTensor

__all__ = ["DistTensor"]

def _check_blocks(shape: tuple[int, ...], dims: tuple[int, ...]) -> None:
    """Raise the same ValueError on every rank (no communication) when a block would be empty."""
    if len(dims) != len(shape):
        raise ValueError(
            f"the grid has {len(dims)} dimensions but the tensor has order {len(shape)}")
    for n, (I, P) in enumerate(zip(shape, dims)):
        if P > I:
            raise ValueError(
                f"grid dimension P_{n} = {P} exceeds the tensor size I_{n} = {I}: some ranks "
                f"would hold an empty block; use a grid with P_{n} <= {I} (choose_grid picks one)")


def _make_grid(shape: tuple[int, ...], grid: Any, comm: Any) -> tuple[ProcessGrid, bool]:
    """Return ``(grid, owned)``; validates the block sizes before any collective."""
    if isinstance(grid, ProcessGrid):
        if comm is not None and comm != grid.comm:
            raise ValueError("pass either grid= or comm=, not a grid with a different comm")
        _check_blocks(shape, grid.dims)
        return grid, False
    comm = C.resolve_comm(comm)
    dims = tuple(grid) if grid is not None else choose_grid(shape, comm.Get_size())
    _check_blocks(shape, dims)
    return ProcessGrid(dims, comm), True


class DistTensor:
    """A dense tensor split in Cartesian blocks over a :class:`ProcessGrid`.

    Use the constructors :meth:`scatter`, :meth:`from_function`,
    :meth:`from_cp`, :meth:`from_npy`, :meth:`from_hdf5` or
    :meth:`from_local` rather than ``__init__``.

    Parameters
    ----------
    local : ndarray
        This rank's block, shape ``tuple(stop - start for start, stop in bounds)``
        (numpy or cupy).
    shape : tuple of int
        Global shape ``(I_0, ..., I_{N-1})``.
    grid : ProcessGrid
    owns_grid : bool
        Free ``grid`` together with this tensor.

    Attributes
    ----------
    local : ndarray
        The C-contiguous block ``X[J_0(p_0), ..., J_{N-1}(p_{N-1})]``.
    bounds : tuple of (int, int)
        ``(start, stop)`` of ``J_n(p_n)`` per mode.

    Examples
    --------
    Every rank runs the same lines (``mpiexec -n 2 python script.py``); with
    one process, as here, the block is the whole tensor. Under
    ``mpiexec -n 2`` the grid is ``(2, 1, 1)`` and each rank's ``local`` has
    shape ``(3, 5, 4)``.

    >>> from tensorpar.distributed import DistTensor
    >>> X = DistTensor.from_function(lambda i, j, k: i + 10.0 * j + 100.0 * k, (6, 5, 4))
    >>> X.shape, X.grid.dims, X.local.shape, X.bounds[0]
    ((6, 5, 4), (1, 1, 1), (6, 5, 4), (0, 6))
    >>> X.free()
    """

    def __init__(self, local: Any, shape: Sequence[int], grid: ProcessGrid,
                 owns_grid: bool = False) -> None:
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.grid = grid
        self._owns_grid = owns_grid
        self.bounds: tuple[tuple[int, int], ...] = tuple(
            block_bounds(I, P, p) for I, P, p in zip(self.shape, grid.dims, grid.coords))
        want = tuple(b - a for a, b in self.bounds)
        if tuple(local.shape) != want:
            raise ValueError(f"local block has shape {tuple(local.shape)}; this rank's block of a "
                             f"{self.shape} tensor on grid {grid.dims} has shape {want}")
        self.local = get_array_module(local).ascontiguousarray(local)

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_local(cls, local: Any, shape: Sequence[int], grid: Any = None,
                   comm: MPI.Comm | None = None) -> DistTensor:
        """Wrap blocks that the ranks already hold (checked collectively).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.distributed import DistTensor, ProcessGrid
        >>> grid = ProcessGrid((1, 1))          # (2, 1) under mpiexec -n 2
        >>> X = DistTensor.from_local(np.ones((4, 3)), (4, 3), grid=grid)
        >>> X.norm()
        3.4641016151377544
        >>> grid.free()
        """
        shape = tuple(check_positive_int(s, "shape entries") for s in shape)
        g, owned = _make_grid(shape, grid, comm)
        with collective_guard(g.cart, ValueError):
            local = as_float_array(local, "local")
            out = cls(local, shape, g, owned)
        return out

    @classmethod
    def scatter(cls, X: Any, grid: Any = None, comm: MPI.Comm | None = None,
                root: int = 0) -> DistTensor:
        """Distribute the tensor ``X`` held by ``root`` (other ranks pass None).

        The root packs the blocks in rank order and sends them with one
        ``Scatterv``; it needs memory for ``X`` and one packed copy.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.distributed import DistTensor
        >>> from tensorpar.distributed.comm import resolve_comm
        >>> full = np.arange(24.0).reshape(4, 3, 2)
        >>> X = DistTensor.scatter(full if resolve_comm().Get_rank() == 0 else None)
        >>> bool(np.array_equal(X.local, full[slice(*X.bounds[0])]))
        True
        >>> X.free()
        """
        comm = grid.comm if isinstance(grid, ProcessGrid) else C.resolve_comm(comm)
        is_root = comm.Get_rank() == root
        meta: Any = None
        if is_root:
            try:
                X = as_float_array(X, "X", min_ndim=1)
                meta = (tuple(int(s) for s in X.shape), None)
            except (TypeError, ValueError) as exc:
                meta = (None, exc)
        # Only the root knows the shape, so it travels (with any input error) first.
        shape, err = C.bcast_object(comm, meta, root=root)
        if err is not None:
            raise err
        g, owned = _make_grid(shape, grid, comm)
        counts = [math.prod(b - a for a, b in _bounds(shape, g, r)) for r in range(g.size)]
        packed = None
        if is_root:
            xp = get_array_module(X)
            packed = xp.concatenate([X[_slices(_bounds(shape, g, r))].ravel()
                                     for r in range(g.size)])
        flat = C.scatterv(g.cart, packed, counts, root=root)
        mine = tuple(b - a for a, b in _bounds(shape, g, g.rank))
        return cls(flat.reshape(mine), shape, g, owned)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], shape: Sequence[int], grid: Any = None,
                      comm: MPI.Comm | None = None, dtype: Any = np.float64) -> DistTensor:
        """Each rank evaluates ``fn(i_0, ..., i_{N-1})`` on its block's **global** indices.

        ``fn`` receives open-mesh integer arrays (as :func:`numpy.ix_` makes
        them) and must return an array broadcastable to the block shape.

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: 1.0 / (1 + i + j), (5, 4))
        >>> round(float(X.local[0, 0]), 3), X.local.shape   # (3, 4) or (2, 4) at 2 ranks
        (1.0, (5, 4))
        >>> X.free()
        """
        shape = tuple(check_positive_int(s, "shape entries") for s in shape)
        g, owned = _make_grid(shape, grid, comm)
        with collective_guard(g.cart, ValueError):
            bounds = _bounds(shape, g, g.rank)
            idx = np.ix_(*[np.arange(a, b) for a, b in bounds])
            block = as_float_array(fn(*idx), "fn(...)")
            xp = get_array_module(block)
            local = xp.broadcast_to(block.astype(dtype, copy=False),
                                    tuple(b - a for a, b in bounds)).copy()
        return cls(local, shape, g, owned)

    @classmethod
    def from_cp(cls, cp: CPTensor, grid: Any = None,
                comm: MPI.Comm | None = None) -> DistTensor:
        """Each rank forms its block of the CP tensor ``cp`` (replicated on every rank).

        Examples
        --------
        >>> import numpy as np
        >>> import tensorpar as tp
        >>> from tensorpar.distributed import DistTensor
        >>> cp = tp.random_cp((6, 5, 4), 2, seed=0)
        >>> X = DistTensor.from_cp(cp)
        >>> bool(np.isclose(X.norm(), cp.norm()))
        True
        >>> X.free()
        """
        from ..cp.tensor import CPTensor

        if not isinstance(cp, CPTensor):
            raise TypeError(f"cp must be a CPTensor, got {type(cp).__name__}")
        g, owned = _make_grid(cp.shape, grid, comm)
        bounds = _bounds(cp.shape, g, g.rank)
        block = CPTensor([f[a:b] for f, (a, b) in zip(cp.factors, bounds)], cp.weights)
        return cls(block.to_dense(), cp.shape, g, owned)

    @classmethod
    def from_npy(cls, path: str | os.PathLike[str], grid: Any = None,
                 comm: MPI.Comm | None = None) -> DistTensor:
        """Each rank memory-maps the ``.npy`` file and reads only its own block.

        The file must be visible to every rank at ``path`` (a shared file
        system). Integer data is converted to float64.

        Examples
        --------
        Under ``mpiexec -n 2`` each rank reads half of the rows of this file.

        >>> import os, tempfile
        >>> import numpy as np
        >>> from tensorpar.distributed import DistTensor
        >>> with tempfile.TemporaryDirectory() as d:
        ...     np.save(os.path.join(d, "x.npy"), np.ones((6, 5, 4)))
        ...     X = DistTensor.from_npy(os.path.join(d, "x.npy"))
        >>> X.shape, round(X.norm() ** 2, 9)
        ((6, 5, 4), 120.0)
        >>> X.free()
        """
        comm = grid.comm if isinstance(grid, ProcessGrid) else C.resolve_comm(comm)
        with collective_guard(comm, ValueError):
            if not os.path.isfile(path):
                raise ValueError(f"path {os.fspath(path)!r} is not a file")
            data = np.load(path, mmap_mode="r")
            _check_dtype(data.dtype, f"the array in {os.fspath(path)!r}")
            shape = tuple(int(s) for s in data.shape)
        g, owned = _make_grid(shape, grid, comm)
        local = as_float_array(np.array(data[_slices(_bounds(shape, g, g.rank))]), "data")
        del data
        return cls(local, shape, g, owned)

    @classmethod
    def from_hdf5(cls, path: str | os.PathLike[str], dataset: str, grid: Any = None,
                  comm: MPI.Comm | None = None) -> DistTensor:
        """Each rank reads only its own block (a hyperslab) of an HDF5 dataset.

        Needs h5py (``pip install 'tensorpar[hdf5]'``); the file is opened
        read-only by every rank, no parallel HDF5 build is required.

        Examples
        --------
        >>> import os, tempfile
        >>> import h5py
        >>> import numpy as np
        >>> from tensorpar.distributed import DistTensor
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with h5py.File(os.path.join(d, "x.h5"), "w") as f:
        ...         _ = f.create_dataset("/cube", data=np.ones((6, 5, 4), dtype=np.float32))
        ...     X = DistTensor.from_hdf5(os.path.join(d, "x.h5"), "/cube")
        >>> X.shape, X.dtype
        ((6, 5, 4), dtype('float32'))
        >>> X.free()
        """
        comm = grid.comm if isinstance(grid, ProcessGrid) else C.resolve_comm(comm)
        with collective_guard(comm, ValueError):
            h5py = require("h5py", "DistTensor.from_hdf5")
            if not os.path.isfile(path):
                raise ValueError(f"path {os.fspath(path)!r} is not a file")
            with h5py.File(path, "r") as f:
                if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                    raise ValueError(f"dataset {dataset!r} not found in {os.fspath(path)!r}")
                _check_dtype(f[dataset].dtype, f"dataset {dataset!r}")
                shape = tuple(int(s) for s in f[dataset].shape)
        g, owned = _make_grid(shape, grid, comm)
        with h5py.File(path, "r") as f:
            local = as_float_array(np.asarray(f[dataset][_slices(_bounds(shape, g, g.rank))]),
                                   "dataset")
        return cls(local, shape, g, owned)

    # -- global operations --------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.local.dtype

    def __repr__(self) -> str:
        return f"DistTensor(shape={self.shape}, grid={self.grid.dims}, dtype={self.dtype})"

    def gather(self, root: int = 0) -> Any:
        """The whole tensor on ``root`` (None elsewhere); for small tensors.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: i * 10.0 + j, (3, 4))
        >>> full = X.gather()          # None on the ranks other than 0
        >>> full[2, 3]
        np.float64(23.0)
        >>> X.free()
        """
        flat = C.gatherv(self.grid.cart, self.local.ravel(), root=root)
        if self.grid.rank != root:
            return None
        xp = get_array_module(flat)
        out = xp.empty(self.shape, dtype=flat.dtype)
        pos = 0
        for r in range(self.grid.size):
            bounds = _bounds(self.shape, self.grid, r)
            n = math.prod(b - a for a, b in bounds)
            out[_slices(bounds)] = flat[pos:pos + n].reshape(tuple(b - a for a, b in bounds))
            pos += n
        return out

    def norm(self) -> float:
        """Frobenius norm (one allreduce of a scalar).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: 2.0 + 0 * i * j, (3, 4))
        >>> X.norm()
        6.928203230275509
        >>> X.free()
        """
        xp = get_array_module(self.local)
        sq = xp.vdot(self.local.ravel(), self.local.ravel()).real
        return float(np.sqrt(float(C.allreduce(self.grid.cart, xp.reshape(xp.asarray(sq), (1,)))[0])))

    def inner(self, other: DistTensor) -> float | complex:
        """``sum conj(self) * other`` over all entries (one allreduce of a scalar).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: 1.0 + 0 * i * j, (3, 4))
        >>> Y = DistTensor.from_function(lambda i, j: 2.0 + 0 * i * j, (3, 4), grid=X.grid)
        >>> X.inner(Y)
        24.0
        >>> X.free()
        """
        if not isinstance(other, DistTensor):
            raise TypeError(f"other must be a DistTensor, got {type(other).__name__}")
        if other.shape != self.shape or other.grid.dims != self.grid.dims:
            raise ValueError(f"other has shape {other.shape} on grid {other.grid.dims}; expected "
                             f"shape {self.shape} on grid {self.grid.dims}")
        xp = get_array_module(self.local, other.local)
        s = xp.vdot(self.local.ravel(), other.local.ravel())
        return C.allreduce(self.grid.cart, xp.reshape(xp.asarray(s), (1,)))[0].item()

    # -- lifetime -----------------------------------------------------------
    def free(self) -> None:
        """Free the grid when this tensor created it (collective).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> with DistTensor.from_function(lambda i, j: i + j + 0.0, (3, 4)) as X:
        ...     total = X.norm()           # the grid is freed on leaving the block
        """
        if self._owns_grid:
            self.grid.free()
            self._owns_grid = False

    def __enter__(self) -> DistTensor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()


def _bounds(shape: Sequence[int], grid: ProcessGrid, rank: int) -> tuple[tuple[int, int], ...]:
    coords = grid.coords_of(rank)
    return tuple(block_bounds(I, P, p) for I, P, p in zip(shape, grid.dims, coords))


def _slices(bounds: Sequence[tuple[int, int]]) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in bounds)


def _check_dtype(dtype: Any, name: str) -> None:
    if np.dtype(dtype).type not in SUPPORTED_DTYPES and np.dtype(dtype).kind not in "iu":
        raise TypeError(f"{name} has dtype {dtype}; expected a float or complex dtype")
