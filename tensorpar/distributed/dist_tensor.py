"""Dense tensors distributed in Cartesian blocks over a process grid.

Rank ``p = (p_0, ..., p_{N-1})`` of a :class:`~tensorpar.distributed.grid.ProcessGrid`
holds ``X[J_0(p_0), ..., J_{N-1}(p_{N-1})]``, a C-contiguous block whose
mode-``n`` index range ``J_n(p_n)`` comes from
:func:`~tensorpar.distributed.grid.block_bounds` (sizes differ by at most
one). No rank ever holds more than its block, except :meth:`DistTensor.scatter`
and :meth:`DistTensor.gather`, which go through rank 0 and are meant for small
tensors; :meth:`DistTensor.from_npy`, :meth:`DistTensor.from_hdf5` and
:meth:`DistTensor.from_function` build tensors that never exist in one place.
The block layout and grid agreement are in :mod:`~tensorpar.distributed.blocks`,
the file readers in :mod:`~tensorpar.distributed.files`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .._backend import get_array_module
from .._validation import as_float_array
from . import comm as C
from .blocks import make_grid, pack_blocks, rank_bounds, unpack_blocks
from .errors import collective_guard
from .files import read_hdf5_block, read_npy_block
from .grid import ProcessGrid, block_bounds

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

    from ..cp.tensor import CPTensor

__all__ = ["DistTensor"]


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

        Every rank passes its own block and the **global** ``shape``. Before
        anything else the ranks agree (one small allreduce) that ``shape``,
        the grid and the dtype are the same everywhere, then that each block
        has the shape the grid gives that rank; otherwise every rank raises
        the same ValueError.

        Examples
        --------
        >>> import numpy as np
        >>> T = DistTensor.from_local(np.ones((2, 3)), (2, 3))   # one process: one block
        >>> T.grid.dims, T.shape, T.local.dtype
        ((1, 1), (2, 3), dtype('float64'))
        >>> T.free()

        Under ``mpiexec -n 2 python script.py`` a ``(2, 3)`` tensor lies on a
        ``(1, 2)`` grid: rank 0 passes its ``(2, 2)`` block, rank 1 its ``(2, 1)``
        block; a block of the wrong shape raises the same ValueError on both.
        """
        err: BaseException | None = None
        dtype = None
        try:
            local = as_float_array(local, "local")
            dtype = local.dtype.str
        except (TypeError, ValueError) as exc:
            err = exc
        g, owned, shape = make_grid(shape, grid, comm, err, {"dtype": dtype})
        err = None
        want = tuple(b - a for a, b in rank_bounds(shape, g, g.rank))
        if tuple(local.shape) != want:
            err = ValueError(f"local block has shape {tuple(local.shape)}; this rank's block of a "
                             f"{shape} tensor on grid {g.dims} has shape {want}")
        try:
            C.agree(g.cart, error=err)
        except ValueError:
            if owned:
                g.free()
            raise
        return cls(local, shape, g, owned)

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

        Under ``mpiexec -n 2 python script.py`` the grid is ``(2, 1, 1)``:
        rank 0 sends each rank its ``(2, 3, 2)`` block (rows 0..1 and 2..3 of
        mode 0), and the other rank passes ``None``.
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
        g, owned, shape = make_grid(shape, grid, comm)
        counts = [math.prod(b - a for a, b in rank_bounds(shape, g, r)) for r in range(g.size)]
        packed = pack_blocks(X, shape, g) if is_root else None
        flat = C.scatterv(g.cart, packed, counts, root=root)
        mine = tuple(b - a for a, b in rank_bounds(shape, g, g.rank))
        return cls(flat.reshape(mine), shape, g, owned)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], shape: Sequence[int], grid: Any = None,
                      comm: MPI.Comm | None = None, dtype: Any = np.float64) -> DistTensor:
        """Each rank evaluates ``fn(i_0, ..., i_{N-1})`` on its block's **global** indices.

        ``fn`` receives open-mesh integer arrays (as :func:`numpy.ix_` makes
        them) and must return an array broadcastable to the block shape.
        ``dtype`` is taken in native byte order (``">f8"`` gives float64).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: 1.0 / (1 + i + j), (5, 4))
        >>> round(float(X.local[0, 0]), 3), X.local.shape   # (3, 4) or (2, 4) at 2 ranks
        (1.0, (5, 4))
        >>> X.free()

        Under ``mpiexec -n 2 python script.py`` the grid is ``(2, 1)``; rank 0
        evaluates rows 0..2 and rank 1 rows 3..4, and no data is sent.
        """
        err: BaseException | None = None
        want: Any = None
        try:
            want = np.dtype(dtype).newbyteorder("=")
        except TypeError as exc:
            err = TypeError(f"dtype {dtype!r} is not a numpy dtype: {exc}")
        g, owned, shape = make_grid(shape, grid, comm, err,
                                     {"dtype": None if want is None else want.str})
        with collective_guard(g.cart, ValueError):
            bounds = rank_bounds(shape, g, g.rank)
            idx = np.ix_(*[np.arange(a, b) for a, b in bounds])
            block = as_float_array(fn(*idx), "fn(...)")
            xp = get_array_module(block)
            local = xp.broadcast_to(block.astype(want, copy=False),
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

        Under ``mpiexec -n 2 python script.py`` each rank forms its
        ``(3, 5, 4)`` block of the ``(2, 1, 1)`` grid from the replicated factors;
        the norm is the same on both ranks.
        """
        from ..cp.tensor import CPTensor

        if not isinstance(cp, CPTensor):
            raise TypeError(f"cp must be a CPTensor, got {type(cp).__name__}")
        g, owned, _ = make_grid(cp.shape, grid, comm)
        bounds = rank_bounds(cp.shape, g, g.rank)
        block = CPTensor([f[a:b] for f, (a, b) in zip(cp.factors, bounds)], cp.weights)
        return cls(block.to_dense(), cp.shape, g, owned)

    @classmethod
    def from_npy(cls, path: str | os.PathLike[str], grid: Any = None,
                 comm: MPI.Comm | None = None) -> DistTensor:
        """Each rank memory-maps the ``.npy`` file and reads only its own block.

        Big-endian data is converted to native byte order block by block. A
        missing, empty, truncated or 0-d file raises a ValueError naming the
        file on every rank. The file must be visible to every rank at ``path`` (a shared file
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
        local, shape, g, owned = read_npy_block(path, grid, comm)
        return cls(local, shape, g, owned)

    @classmethod
    def from_hdf5(cls, path: str | os.PathLike[str], dataset: str, grid: Any = None,
                  comm: MPI.Comm | None = None) -> DistTensor:
        """Each rank reads only its own block (a hyperslab) of an HDF5 dataset.

        Needs h5py (``pip install 'tensorpar[hdf5]'``); the file is opened
        read-only by every rank, no parallel HDF5 build is required.
        Big-endian data is converted to native byte order; a file that is not
        HDF5 (empty, truncated) or a 0-d dataset raises a ValueError on every rank.

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

        Under ``mpiexec -n 2 python script.py`` every rank opens the file and
        reads only its block; no tensor data is sent between ranks.
        """
        local, shape, g, owned = read_hdf5_block(path, dataset, grid, comm)
        return cls(local, shape, g, owned)

    # -- global operations --------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return cast("np.dtype[Any]", self.local.dtype)

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

        Under ``mpiexec -n 2 python script.py`` rank 0 gets the ``(3, 4)``
        array and rank 1 ``None``; every rank must call it.
        """
        flat = C.gatherv(self.grid.cart, self.local.ravel(), root=root)
        if self.grid.rank != root:
            return None
        return unpack_blocks(flat, self.shape, self.grid)

    def norm(self) -> float:
        """Frobenius norm (one allreduce of a scalar).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> X = DistTensor.from_function(lambda i, j: 2.0 + 0 * i * j, (3, 4))
        >>> X.norm()
        6.928203230275509
        >>> X.free()

        Under ``mpiexec -n 2 python script.py`` both ranks print the same norm.
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

        Under ``mpiexec -n 2 python script.py`` both ranks print ``24.0``
        (both tensors must share the grid, as here through ``grid=X.grid``).
        """
        if not isinstance(other, DistTensor):
            raise TypeError(f"other must be a DistTensor, got {type(other).__name__}")
        if other.shape != self.shape or other.grid.dims != self.grid.dims:
            raise ValueError(f"other has shape {other.shape} on grid {other.grid.dims}; expected "
                             f"shape {self.shape} on grid {self.grid.dims}")
        xp = get_array_module(self.local, other.local)
        s = xp.vdot(self.local.ravel(), other.local.ravel())
        total: float | complex = C.allreduce(self.grid.cart, xp.reshape(xp.asarray(s), (1,)))[0].item()
        return total

    # -- lifetime -----------------------------------------------------------
    def free(self) -> None:
        """Free the grid when this tensor created it (collective).

        Examples
        --------
        >>> from tensorpar.distributed import DistTensor
        >>> with DistTensor.from_function(lambda i, j: i + j + 0.0, (3, 4)) as X:
        ...     total = X.norm()           # the grid is freed on leaving the block

        Under ``mpiexec -n 2`` every rank must call it (it frees communicators);
        the ``with`` block does so on every rank.
        """
        if self._owns_grid:
            self.grid.free()
            self._owns_grid = False

    def __enter__(self) -> DistTensor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()
