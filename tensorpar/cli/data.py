"""Input tensors of the command line: ``.npy`` files and HDF5 datasets.

An INPUT is either a ``.npy`` file (opened memory-mapped: nothing is read
until used) or ``file.h5:/path/to/dataset``. Serially the whole tensor is
used; under MPI every rank reads only its block
(:meth:`~tensorpar.distributed.DistTensor.from_npy`,
:meth:`~tensorpar.distributed.DistTensor.from_hdf5`).

Every problem a user can cause (missing file, unsupported dtype, NaN or
infinite entries) raises :class:`InputError`, which the command line turns
into a one-line message and a non-zero exit status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import require

__all__ = ["InputError", "InputSpec", "parse_input", "open_serial", "open_distributed",
           "check_finite_blocks", "check_finite_distributed", "ACCEPTED_KINDS"]

#: dtype kinds accepted: floating point, and integers (converted to float64).
ACCEPTED_KINDS = "fiu"
_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")


class InputError(ValueError):
    """A problem with the user's input file, reported without a traceback.

    Examples
    --------
    >>> try:
    ...     open_serial(InputSpec("missing.npy"))
    ... except InputError as exc:
    ...     print(exc)
    missing.npy: no such file
    """


@dataclass(frozen=True)
class InputSpec:
    """Where an input tensor lives.

    Attributes
    ----------
    path : str
        The file.
    dataset : str or None
        HDF5 dataset path (None for ``.npy``).

    Examples
    --------
    >>> str(InputSpec("scan.h5", "/cube"))
    'scan.h5:/cube'
    """

    path: str
    dataset: str | None = None

    def __str__(self) -> str:
        return self.path if self.dataset is None else f"{self.path}:{self.dataset}"


def parse_input(text: str) -> InputSpec:
    """Split ``file.npy`` or ``file.h5:/dataset`` into an :class:`InputSpec`.

    Examples
    --------
    >>> parse_input("data/x.h5:/group/X")
    InputSpec(path='data/x.h5', dataset='/group/X')
    >>> parse_input("x.npy")
    InputSpec(path='x.npy', dataset=None)
    """
    path, sep, dataset = text.rpartition(":")
    if sep and path.lower().endswith(_HDF5_SUFFIXES) and dataset:
        return InputSpec(path, dataset)
    if text.lower().endswith(_HDF5_SUFFIXES):
        raise InputError(f"{text}: name the HDF5 dataset as FILE.h5:/path/to/dataset")
    return InputSpec(text)


def _check_file(spec: InputSpec) -> None:
    if not os.path.exists(spec.path):
        raise InputError(f"{spec.path}: no such file")
    if not os.path.isfile(spec.path):
        raise InputError(f"{spec.path}: not a file")


def _check_dtype(dtype: np.dtype, spec: InputSpec, allow_complex: bool) -> None:
    kinds = ACCEPTED_KINDS + ("c" if allow_complex else "")
    if dtype.kind not in kinds or dtype.itemsize > 16 or dtype == np.float16:
        want = "float32, float64" + (", complex64, complex128" if allow_complex else "") + \
            " or an integer type"
        raise InputError(f"{spec}: unsupported dtype {dtype}; expected {want}")


def open_serial(spec: InputSpec, *, allow_complex: bool = False) -> Any:
    """The whole tensor: a read-only memory map (``.npy``) or an array (HDF5).

    Integer data is converted to float64 (then it is read into memory).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "x.npy"), np.ones((3, 4, 5)))
    ...     X = open_serial(parse_input(os.path.join(d, "x.npy")))
    ...     print(type(X).__name__, X.shape, X.dtype)
    ...     del X
    memmap (3, 4, 5) float64
    """
    _check_file(spec)
    if spec.dataset is None:
        try:
            X = np.load(spec.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"{spec}: not a readable .npy file ({exc})") from None
    else:
        h5py = require("h5py", "reading HDF5 input")
        try:
            with h5py.File(spec.path, "r") as f:
                node = f.get(spec.dataset)
                if not isinstance(node, h5py.Dataset):
                    raise InputError(f"{spec}: no dataset {spec.dataset!r} in {spec.path}")
                _check_dtype(node.dtype, spec, allow_complex)
                X = node[()]
        except OSError as exc:
            raise InputError(f"{spec}: not a readable HDF5 file ({exc})") from None
    _check_dtype(X.dtype, spec, allow_complex)
    if X.ndim < 2:
        raise InputError(f"{spec}: a tensor of order >= 2 is needed, got shape {X.shape}")
    if X.dtype.kind in "iu":
        X = np.asarray(X, dtype=np.float64)
    return X


def check_finite_blocks(X: Any, spec: InputSpec, block_entries: int = 1 << 22) -> None:
    """Raise InputError on NaN or infinity, reading ``X`` in slabs (a memmap stays small).

    Examples
    --------
    >>> import numpy as np
    >>> check_finite_blocks(np.array([[1.0, np.inf]]), InputSpec("x.npy"))
    Traceback (most recent call last):
    ...
    tensorpar.cli.data.InputError: x.npy: the data contains NaN or infinite values
    """
    per_row = max(1, int(np.prod(X.shape[1:])))
    step = max(1, block_entries // per_row)
    for start in range(0, X.shape[0], step):
        if not np.isfinite(X[start:start + step]).all():
            raise InputError(f"{spec}: the data contains NaN or infinite values")


def check_finite_distributed(X: Any, spec: InputSpec) -> None:
    """Raise InputError on every rank when any rank's block of ``X`` holds NaN or infinity.

    The distributed twin of :func:`check_finite_blocks` (collective: one
    small message, so one rank's bad block cannot leave the others waiting).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed import DistTensor
    >>> X = DistTensor.scatter(np.array([[1.0, np.nan], [2.0, 3.0]]))
    >>> check_finite_distributed(X, InputSpec("x.npy"))
    Traceback (most recent call last):
    ...
    tensorpar.cli.data.InputError: x.npy: the data contains NaN or infinite values
    """
    from ..distributed import check_all

    check_all(X.grid.cart, bool(np.isfinite(X.local).all()),
              f"{spec}: the data contains NaN or infinite values", InputError)


def open_distributed(spec: InputSpec, comm: Any) -> Any:
    """A :class:`~tensorpar.distributed.DistTensor`: each rank reads its own block (collective).

    Examples
    --------
    With one process the whole tensor is the block; under ``mpiexec -n 2``
    the same lines give each rank half of the file.

    >>> import os, tempfile
    >>> import numpy as np
    >>> from mpi4py import MPI
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "x.npy"), np.ones((4, 3, 2)))
    ...     X = open_distributed(parse_input(os.path.join(d, "x.npy")), MPI.COMM_SELF)
    >>> X.shape, X.local.shape
    ((4, 3, 2), (4, 3, 2))
    """
    from ..distributed import DistTensor

    # Every rank sees the same file system, so these checks agree without messages.
    _check_file(spec)
    try:
        if spec.dataset is None:
            X = DistTensor.from_npy(spec.path, comm=comm)
        else:
            X = DistTensor.from_hdf5(spec.path, spec.dataset, comm=comm)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{spec}: {exc}") from None
    if X.ndim < 2:
        raise InputError(f"{spec}: a tensor of order >= 2 is needed, got shape {X.shape}")
    return X
