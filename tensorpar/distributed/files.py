"""Reading a :class:`~tensorpar.distributed.DistTensor` from files, each rank its own block.

Rank-local checks run before the ranks agree and read their blocks: a
missing, empty, truncated or 0-d file, or an unsupported dtype, raises a
ValueError (TypeError for the dtype) that names the file. Big-endian data
is accepted here and converted to native order when a block is read.
:func:`read_npy_block` and :func:`read_hdf5_block` are the bodies of
:meth:`DistTensor.from_npy <tensorpar.distributed.DistTensor.from_npy>` and
:meth:`DistTensor.from_hdf5 <tensorpar.distributed.DistTensor.from_hdf5>`:
they check the file, agree on it and on the grid on every rank
(:func:`~tensorpar.distributed.blocks.make_grid`), then read one block.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._backend import require
from .._validation import SUPPORTED_DTYPES, as_float_array
from .blocks import block_slices, make_grid, rank_bounds
from .grid import ProcessGrid

__all__ = ["open_npy", "hdf5_shape", "check_file_dtype", "read_npy_block", "read_hdf5_block"]


def check_file_dtype(dtype: Any, name: str) -> None:
    """Raise a TypeError naming ``name`` unless ``dtype`` is a float, complex or integer dtype.

    Examples
    --------
    >>> check_file_dtype(np.dtype(">f8"), "x")      # big-endian is fine
    >>> check_file_dtype(np.dtype("U3"), "x")
    Traceback (most recent call last):
    TypeError: x has dtype <U3; expected a float or complex dtype
    """
    if np.dtype(dtype).type not in SUPPORTED_DTYPES and np.dtype(dtype).kind not in "iu":
        raise TypeError(f"{name} has dtype {dtype}; expected a float or complex dtype")


def open_npy(path: Any) -> Any:
    """Memory-map a ``.npy`` file, with a ValueError naming it when it is not a usable array.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.ones((2, 3)))
    >>> open_npy(path).shape
    (2, 3)
    >>> np.save(path, np.float64(1.0))
    >>> open_npy(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the array in '...x.npy' is 0-d (a scalar); a DistTensor needs at least one dimension
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ValueError(f"path {name!r} is not a file")
    try:
        data = np.load(name, mmap_mode="r", allow_pickle=False)
    except (EOFError, OSError, ValueError) as exc:
        raise ValueError(f"cannot read {name!r} as a .npy array (empty or truncated file?): "
                         f"{exc}") from exc
    if not isinstance(data, np.ndarray):
        raise ValueError(f"{name!r} holds {type(data).__name__}, not one .npy array")
    check_file_dtype(data.dtype, f"the array in {name!r}")
    if data.ndim == 0:
        raise ValueError(f"the array in {name!r} is 0-d (a scalar); a DistTensor needs at least "
                         "one dimension")
    return data


def hdf5_shape(path: Any, dataset: str) -> tuple[int, ...]:
    """Shape of an HDF5 dataset, with a ValueError naming the file when it is not usable.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "empty.h5")
    >>> open(path, "wb").close()
    >>> hdf5_shape(path, "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: cannot read '...empty.h5' as an HDF5 file (empty or truncated file?): ...
    """
    h5py = require("h5py", "DistTensor.from_hdf5")
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ValueError(f"path {name!r} is not a file")
    try:
        f = h5py.File(name, "r")
    except OSError as exc:
        raise ValueError(f"cannot read {name!r} as an HDF5 file (empty or truncated file?): "
                         f"{exc}") from exc
    with f:
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise ValueError(f"dataset {dataset!r} not found in {name!r}")
        check_file_dtype(f[dataset].dtype, f"dataset {dataset!r}")
        shape = tuple(int(s) for s in f[dataset].shape)
    if not shape:
        raise ValueError(f"dataset {dataset!r} in {name!r} is 0-d (a scalar); a DistTensor "
                         "needs at least one dimension")
    return shape


def read_npy_block(path: str | os.PathLike[str], grid: Any = None,
                   comm: Any = None) -> tuple[Any, tuple[int, ...], ProcessGrid, bool]:
    """This rank's block of a ``.npy`` file: ``(local, shape, grid, owned)`` (collective).

    The body of :meth:`tensorpar.distributed.DistTensor.from_npy`: every rank
    memory-maps the file, the ranks agree on its shape and on the grid, and
    each reads only its block (``owned``: the grid was created here).

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.ones((6, 5)))
    >>> local, shape, g, owned = read_npy_block(path)   # one process: the whole array
    >>> local.shape, shape, g.dims, owned
    ((6, 5), (6, 5), (1, 1), True)
    >>> g.free()
    """
    data: Any = None
    err: BaseException | None = None
    try:
        data = open_npy(path)
    except (TypeError, ValueError) as exc:
        err = exc
    g, owned, shape = make_grid(None if data is None else data.shape, grid, comm, err)
    local = as_float_array(np.array(data[block_slices(rank_bounds(shape, g, g.rank))]), "data")
    del data
    return local, shape, g, owned


def read_hdf5_block(path: str | os.PathLike[str], dataset: str, grid: Any = None,
                    comm: Any = None) -> tuple[Any, tuple[int, ...], ProcessGrid, bool]:
    """This rank's block (a hyperslab) of an HDF5 dataset: ``(local, shape, grid, owned)``.

    The body of :meth:`tensorpar.distributed.DistTensor.from_hdf5` (collective,
    as :func:`read_npy_block`); needs h5py.

    Examples
    --------
    >>> import tempfile
    >>> import h5py
    >>> path = os.path.join(tempfile.mkdtemp(), "x.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("/cube", data=np.ones((6, 5, 4)))
    >>> local, shape, g, owned = read_hdf5_block(path, "/cube")
    >>> local.shape, shape, g.dims, owned
    ((6, 5, 4), (6, 5, 4), (1, 1, 1), True)
    >>> g.free()
    """
    shape: Any = None
    err: BaseException | None = None
    try:
        shape = hdf5_shape(path, dataset)
    except (ImportError, TypeError, ValueError) as exc:
        err = exc
    g, owned, shape = make_grid(shape, grid, comm, err)
    h5py = require("h5py", "DistTensor.from_hdf5")
    with h5py.File(path, "r") as f:
        local = as_float_array(np.asarray(f[dataset][block_slices(rank_bounds(shape, g, g.rank))]),
                               "dataset")
    return local, shape, g, owned
