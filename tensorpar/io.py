"""Results on disk: :func:`save` and :func:`load`.

One file holds one of: a :class:`~tensorpar.CPTensor`, a
:class:`~tensorpar.TTTensor`, a :class:`~tensorpar.TTMatrix`, a
:class:`~tensorpar.CPALSResult`, or the ``(CPTensor, CPALSResult)`` pair
that :func:`~tensorpar.cp_als` returns. :func:`load` gives back the same
kind of object (numpy arrays, whatever the arrays were when saved).

Formats
-------
``.npz`` (the default; any other suffix is written as ``.npz``): plain numpy
arrays plus one JSON string ``__tensorpar__`` with the file's kind, the
**format version** and the library version. Loading uses
``allow_pickle=False``, so a file can never run code. ``.h5`` / ``.hdf5``
(needs the ``hdf5`` extra, h5py): the same arrays as datasets and the JSON
string as the root attribute ``tensorpar``.

A file written by a newer format version than this tensorpar reads raises a
ValueError naming both versions. Files of an older format version stay
readable.

Distributed results
-------------------
:func:`tensorpar.distributed.cp_als` returns the full model on every rank:
save it on one rank (``if comm.Get_rank() == 0: save(...)``). A
:class:`~tensorpar.distributed.DistTTTensor` is collected with its
collective ``gather()`` (every rank calls it) and then saved on one rank;
:func:`save` does that itself when handed a ``DistTTTensor``: every rank
must call it, rank ``root`` writes, the others return None.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import require, to_numpy
from .cp.result import CPALSResult
from .cp.tensor import CPTensor
from .tt.matrix import TTMatrix
from .tt.tensor import TTTensor

__all__ = ["save", "load", "FORMAT_VERSION", "read_metadata"]

#: Version of the file layout written by :func:`save`; bump it when the layout changes.
FORMAT_VERSION = 1
_META_KEY = "__tensorpar__"
_HDF5_SUFFIXES = (".h5", ".hdf5")


def _library_version() -> str:
    from . import __version__

    return str(__version__)


def _result_arrays(result: CPALSResult) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split a CPALSResult into JSON scalars and float64 arrays (its list fields)."""
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, list):
            arrays[f"result_{f.name}"] = np.asarray(value, dtype=np.float64)
        else:
            scalars[f.name] = value
    return scalars, arrays


def _encode(obj: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and the arrays that represent ``obj``."""
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], CPTensor) \
            and isinstance(obj[1], CPALSResult):
        meta, arrays = _encode(obj[0])
        scalars, more = _result_arrays(obj[1])
        meta.update(kind="cp_als", result=scalars)
        arrays.update(more)
        return meta, arrays
    if isinstance(obj, CPTensor):
        arrays = {f"factor_{n}": to_numpy(f) for n, f in enumerate(obj.factors)}
        arrays["weights"] = to_numpy(obj.weights)
        return {"kind": "cp", "ndim": obj.ndim}, arrays
    if isinstance(obj, (TTTensor, TTMatrix)):
        kind = "tt" if isinstance(obj, TTTensor) else "ttmatrix"
        return ({"kind": kind, "ndim": len(obj.cores)},
                {f"core_{k}": to_numpy(c) for k, c in enumerate(obj.cores)})
    if isinstance(obj, CPALSResult):
        scalars, arrays = _result_arrays(obj)
        return {"kind": "cp_als_result", "result": scalars}, arrays
    raise TypeError("obj must be a CPTensor, TTTensor, TTMatrix, CPALSResult or a "
                    f"(CPTensor, CPALSResult) pair, got {type(obj).__name__}")


def save(path: str | os.PathLike[str], obj: Any, *, root: int = 0) -> Path | None:
    """Write a CP/TT model or a CP-ALS result to ``path`` (``.npz``, or ``.h5`` with h5py).

    Parameters
    ----------
    path : str or path-like
        ``.h5``/``.hdf5`` writes HDF5; anything else ``.npz`` (numpy adds the
        ``.npz`` suffix when it is missing).
    obj : CPTensor, TTTensor, TTMatrix, CPALSResult or (CPTensor, CPALSResult)
        The pair is what :func:`~tensorpar.cp_als` returns. A
        ``DistTTTensor`` is gathered first (collective, see the module notes).
    root : int
        The rank that writes a ``DistTTTensor``.

    Returns
    -------
    pathlib.Path or None
        The file written (None on the ranks that did not write).

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> X = tp.random_cp((5, 4, 3), 2, seed=0).to_dense()
    >>> cp, result = tp.cp_als(X, 2, seed=1, max_iter=20)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = tp.save(os.path.join(d, "run.npz"), (cp, result))
    ...     cp2, result2 = tp.load(path)
    >>> bool(np.array_equal(cp2.factors[0], cp.factors[0])), result2.fits == result.fits
    (True, True)
    """
    if type(obj).__name__ == "DistTTTensor" and hasattr(obj, "gather"):
        gathered = obj.gather()  # collective: every rank takes part
        if obj.comm.Get_rank() != root:
            return None
        obj = gathered
    meta, arrays = _encode(obj)
    meta.update(format_version=FORMAT_VERSION, library_version=_library_version())
    path = Path(path)
    if path.suffix.lower() in _HDF5_SUFFIXES:
        h5py = require("h5py", "saving to HDF5")
        with h5py.File(path, "w") as f:
            f.attrs["tensorpar"] = json.dumps(meta)
            for name, a in arrays.items():
                f.create_dataset(name, data=a)
        return path
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays[_META_KEY] = np.array(json.dumps(meta))
    contents: dict[str, Any] = dict(arrays)
    np.savez(path, **contents)
    return path


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and every array of a file written by :func:`save`."""
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    where = f"{str(path)!r} is not a tensorpar file"
    if path.suffix.lower() in _HDF5_SUFFIXES:
        h5py = require("h5py", "loading HDF5 files")
        try:
            with h5py.File(path, "r") as f:
                meta = json.loads(str(f.attrs["tensorpar"]))
                arrays = {name: np.asarray(f[name]) for name in f.keys()}
        except (KeyError, OSError, ValueError) as exc:
            raise ValueError(f"{where} ({exc})") from exc
        return meta, arrays
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META_KEY]))
            arrays = {k: data[k] for k in data.files if k != _META_KEY}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{where} ({exc})") from exc
    return meta, arrays


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a saved file (kind, format and library versions, result scalars).

    Raises the same ValueError as :func:`load` for a file of a newer format.

    Examples
    --------
    >>> import tempfile, os
    >>> import tensorpar as tp
    >>> from tensorpar.io import read_metadata, FORMAT_VERSION
    >>> with tempfile.TemporaryDirectory() as d:
    ...     meta = read_metadata(tp.save(os.path.join(d, "x.npz"), tp.random_tt((3, 4), 2)))
    >>> meta["kind"], meta["format_version"] == FORMAT_VERSION
    ('tt', True)
    """
    meta, _ = _read_checked(Path(path))
    return meta


def _read_checked(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta, arrays = _read(path)
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{str(path)!r} has no valid tensorpar format version ({version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by tensorpar {meta.get('library_version', '?')} in file "
            f"format version {version}; this tensorpar ({_library_version()}) reads format "
            f"versions up to {FORMAT_VERSION}: upgrade tensorpar to read it")
    return meta, arrays


def _decode_result(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> CPALSResult:
    known = {f.name for f in dataclasses.fields(CPALSResult)}
    kwargs: dict[str, Any] = {k: v for k, v in meta["result"].items() if k in known}
    for name in known:
        if f"result_{name}" in arrays:
            kwargs[name] = [float(v) for v in arrays[f"result_{name}"]]
    return CPALSResult(**kwargs)


def load(path: str | os.PathLike[str]) -> Any:
    """Read a file written by :func:`save`; returns the object that was saved.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    CPTensor, TTTensor, TTMatrix, CPALSResult or (CPTensor, CPALSResult)
        numpy arrays of the dtypes that were saved.

    Raises
    ------
    ValueError
        When the file is missing, is not a tensorpar file, or comes from a
        newer file format version.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> tt = tp.random_tt((3, 4, 5), 2, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = tp.load(tp.save(os.path.join(d, "tt.npz"), tt))
    >>> back.ranks, bool(np.array_equal(back.cores[1], tt.cores[1]))
    ((1, 2, 2, 1), True)
    """
    meta, arrays = _read_checked(Path(path))
    kind = meta.get("kind")
    try:
        if kind in ("cp", "cp_als"):
            cp = CPTensor([arrays[f"factor_{n}"] for n in range(int(meta["ndim"]))],
                          arrays["weights"])
            return cp if kind == "cp" else (cp, _decode_result(meta, arrays))
        if kind in ("tt", "ttmatrix"):
            cores = [arrays[f"core_{k}"] for k in range(int(meta["ndim"]))]
            return TTTensor(cores) if kind == "tt" else TTMatrix(cores)
        if kind == "cp_als_result":
            return _decode_result(meta, arrays)
    except KeyError as exc:
        raise ValueError(f"{str(path)!r} is incomplete: missing {exc}") from exc
    raise ValueError(f"{str(path)!r} holds an object of unknown kind {kind!r}")
