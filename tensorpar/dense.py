"""Dense-tensor helpers: unfolding, folding, Khatri-Rao and mode-n products.

Index conventions (see :doc:`/conventions`):

* ``unfold(X, n)`` has shape ``(I_n, prod_{k != n} I_k)``; the column index
  runs over the remaining modes in increasing order in **C order** (the last
  remaining mode varies fastest). This is TensorLy's convention.
* ``khatri_rao([A, B, C])[(i*J + j)*K + k, r] = A[i, r] * B[j, r] * C[k, r]``:
  the last matrix varies fastest, matching the unfolding, so that
  ``unfold(cp.to_dense(), n) == A_n @ diag(w) @ khatri_rao([A_k, k != n]).T``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._backend import get_array_module
from ._typing import Array
from ._validation import as_float_array, check_mode

__all__ = ["unfold", "fold", "khatri_rao", "mode_dot", "tensor_norm", "sum_squares",
           "abs_max", "sample_indices", "available_memory", "check_memory", "as_array",
           "check_shape"]

#: Elements converted to float64 at a time when float32 data is accumulated.
CHUNK = 2**16


def as_array(X: Any, name: str) -> Array:
    """``X`` itself when it is a numpy/cupy array; array-likes (lists) through ``numpy.asarray``.

    Ragged or non-numeric input (an object array) raises a TypeError naming ``name``.

    Examples
    --------
    >>> as_array([[1, 2], [3, 4]], "X").shape
    (2, 2)
    """
    if hasattr(X, "shape") and hasattr(X, "dtype") and hasattr(X, "ndim"):
        return X
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array or a (nested) list of numbers, "
                        f"got {type(X).__name__}") from exc
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be an array or a (nested) list of numbers, "
                        f"got {type(X).__name__} of {arr.dtype}")
    return arr


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """``shape`` as a tuple of ints >= 0; a TypeError for non-integers (``5.7``, ``True``).

    Examples
    --------
    >>> check_shape((5.7, 6, 7))
    Traceback (most recent call last):
    ...
    TypeError: shape must hold integers, got 5.7 (float)
    """
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got "
                        f"{type(shape).__name__}") from None
    for s in items:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{name} must hold integers, got {s!r} ({type(s).__name__})")
        if s < 0:
            raise ValueError(f"{name} must hold sizes >= 0, got {s}")
    return tuple(int(s) for s in items)


def unfold(X: Any, mode: int) -> Any:
    """Mode-``mode`` unfolding (matricization) of a dense tensor.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Dense tensor, numpy or cupy; a (nested) list is accepted and converted
        with ``numpy.asarray``.
    mode : int
        Mode whose index becomes the row index (negative counts from the end).

    Returns
    -------
    ndarray, shape (I_mode, prod_{k != mode} I_k)
        Remaining modes in increasing order, C order (last fastest). This is a
        copy unless ``mode == 0`` and ``X`` is C-contiguous.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> unfold(X, 1).shape
    (3, 8)
    >>> bool(unfold(X, 1)[2, 5] == X[1, 2, 1])
    True
    """
    X = as_array(X, "X")
    xp = get_array_module(X)
    if X.ndim < 1:
        raise ValueError(f"X must have at least one dimension, got shape {X.shape}")
    mode = check_mode(mode, X.ndim)
    return xp.reshape(xp.moveaxis(X, mode, 0), (X.shape[mode], -1))


def fold(M: Any, mode: int, shape: Sequence[int]) -> Any:
    """Inverse of :func:`unfold`: rebuild the tensor of ``shape`` from its unfolding.

    Parameters
    ----------
    M : ndarray, shape (shape[mode], prod of the other sizes)
        A (nested) list is accepted and converted with ``numpy.asarray``.
    mode : int
    shape : sequence of int
        Integers only: ``5.7`` raises a TypeError.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> bool((fold(unfold(X, 2), 2, X.shape) == X).all())
    True
    """
    M = as_array(M, "M")
    xp = get_array_module(M)
    shape = check_shape(shape)
    mode = check_mode(mode, len(shape))
    rest = tuple(s for k, s in enumerate(shape) if k != mode)
    if M.ndim != 2 or M.shape[0] != shape[mode] or M.shape[1] != int(np.prod(rest, dtype=np.int64)):
        raise ValueError(
            f"M has shape {tuple(M.shape)}; an unfolding of a tensor of shape {shape} "
            f"in mode {mode} has shape ({shape[mode]}, {int(np.prod(rest, dtype=np.int64))})")
    return xp.moveaxis(xp.reshape(M, (shape[mode],) + rest), 0, mode)


def khatri_rao(matrices: Sequence[Any], skip: int | None = None) -> Any:
    """Column-wise Kronecker (Khatri-Rao) product, last matrix fastest.

    Parameters
    ----------
    matrices : sequence of ndarray, each (I_k, R)
        Matrices with the same number of columns.
    skip : int, optional
        Index of a matrix to leave out (as in an MTTKRP); negative counts from
        the end, as the modes of :func:`unfold` and :func:`~tensorpar.mttkrp.mttkrp`.

    Returns
    -------
    ndarray, shape (prod I_k, R)
        ``out[(i_0 * I_1 + i_1) * I_2 + i_2, r] = A_0[i_0, r] A_1[i_1, r] A_2[i_2, r]``.

    Raises
    ------
    ValueError
        When ``skip`` is out of range, or when the output and the one partial
        product alive beside it (``2 prod I_k R`` elements) would exceed
        :func:`available_memory` (checked before anything is allocated).

    Notes
    -----
    Builds the product left to right, so the peak extra memory is the output
    plus one partial product.

    Examples
    --------
    >>> import numpy as np
    >>> A, B = np.array([[1., 2.], [3., 4.]]), np.array([[1., 0.], [1., 1.], [0., 2.]])
    >>> khatri_rao([A, B])[:, 1]
    array([0., 2., 4., 0., 4., 8.])
    >>> khatri_rao([A, B, A], skip=-1).shape
    (6, 2)
    """
    if not isinstance(matrices, (list, tuple)):
        raise TypeError(f"matrices must be a list of 2-D arrays, got {type(matrices).__name__}")
    if skip is not None:
        skip = check_mode(skip, len(matrices), "skip") if matrices else skip
    mats = [m for k, m in enumerate(matrices) if k != skip]
    if len(mats) == 0:
        raise ValueError("matrices must contain at least one matrix")
    xp = get_array_module(*mats)
    mats = [as_float_array(m, f"matrices[{k}]", min_ndim=2, max_ndim=2) for k, m in enumerate(mats)]
    rank = mats[0].shape[1]
    for k, m in enumerate(mats):
        if m.shape[1] != rank:
            raise ValueError(
                f"matrices[{k}] has {m.shape[1]} columns, expected {rank} like matrices[0]")
    rows = math.prod(int(m.shape[0]) for m in mats)
    itemsize = np.result_type(*[m.dtype for m in mats]).itemsize
    check_memory(2 * rows * rank * itemsize, "matrices",
                 f"the Khatri-Rao product of shape ({rows}, {rank})")
    out = mats[0]
    for m in mats[1:]:
        out = xp.reshape(out[:, None, :] * m[None, :, :], (-1, rank))
    return out


def mode_dot(X: Any, M: Any, mode: int, transpose: bool = False) -> Any:
    """Mode-``mode`` product ``X x_mode M``.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
    M : ndarray, shape (J, I_mode), or (I_mode,) for a vector (the mode is contracted away)
    mode : int
    transpose : bool
        Multiply by ``M.T`` instead (``M`` of shape ``(I_mode, J)``).

    Returns
    -------
    ndarray
        Shape of ``X`` with ``I_mode`` replaced by ``J`` (matrix) or removed (vector).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((2, 3, 4)); M = np.ones((5, 3))
    >>> mode_dot(X, M, 1).shape
    (2, 5, 4)
    """
    X, M = as_array(X, "X"), as_array(M, "M")
    xp = get_array_module(X, M)
    mode = check_mode(mode, X.ndim)
    if M.ndim == 1:
        if M.shape[0] != X.shape[mode]:
            raise ValueError(
                f"M has length {M.shape[0]} but X has size {X.shape[mode]} in mode {mode}")
        return xp.tensordot(X, M, axes=([mode], [0]))
    if M.ndim != 2:
        raise ValueError(f"M must be a vector or a matrix, got shape {tuple(M.shape)}")
    Mt = M.T if transpose else M
    if Mt.shape[1] != X.shape[mode]:
        raise ValueError(
            f"M has shape {tuple(M.shape)}; its {'rows' if transpose else 'columns'} must "
            f"match X's size {X.shape[mode]} in mode {mode}")
    return xp.moveaxis(xp.tensordot(Mt, X, axes=([1], [mode])), 0, mode)


def tensor_norm(X: Any) -> float:
    """Frobenius norm of a dense tensor, accurate at any scale, without flattening copies.

    float32 (and complex64) data are accumulated in float64 (a chunk of
    :data:`CHUNK` elements converted at a time), so the relative error is
    that of float64 summation, not ``n * eps(float32)``. When the sum of
    squares would overflow or underflow (entries beyond about ``1e±150`` in
    float64) the entries are scaled by the power of two of the largest one
    first (exact), so every representable norm is returned.

    Examples
    --------
    >>> import numpy as np
    >>> tensor_norm(np.full((2, 2), 3.0))
    6.0
    >>> tensor_norm(np.full((2, 2), 3e-200))
    6e-200
    >>> X = np.full((40, 40, 200), 0.1, dtype=np.float32)
    >>> bool(abs(tensor_norm(X) / (np.sqrt(X.size) * float(X[0, 0, 0])) - 1) < 1e-12)
    True
    """
    X = as_array(X, "X")
    s = sum_squares(X)
    if 2.0**-960 <= s <= 2.0**960 or s == 0.0 and X.size == 0 or math.isnan(s):
        return math.sqrt(s)
    top = abs_max(X)
    if top == 0.0 or not math.isfinite(top):
        return top if top == 0.0 or math.isnan(top) else math.inf
    e = math.frexp(top)[1]
    try:
        return math.ldexp(math.sqrt(sum_squares(X, e)), e)
    except OverflowError:
        return math.inf


def _flat_chunks(X: Array) -> Iterator[Array]:
    flat = X.ravel(order="K")
    for start in range(0, flat.shape[0], CHUNK):
        yield flat[start:start + CHUNK]


def sum_squares(X: Array, exponent: int = 0) -> float:
    """``sum |X * 2**-exponent|^2``, accumulated in float64 (may overflow or underflow).

    float64 data with ``exponent == 0`` is one BLAS dot product (the value
    ``numpy.linalg.norm`` squares); other cases go through chunks of
    :data:`CHUNK` elements converted to float64 and scaled exactly.

    Examples
    --------
    >>> import numpy as np
    >>> sum_squares(np.full(4, 3.0)), sum_squares(np.full(4, 3.0), exponent=1)
    (36.0, 9.0)
    """
    xp = get_array_module(X)
    if X.dtype.kind not in "fc":
        X = X.astype(np.float64)
    wide = X.dtype.itemsize >= (16 if X.dtype.kind == "c" else 8)
    if wide and exponent == 0:
        flat = X.ravel(order="K")
        return float(xp.vdot(flat, flat).real)
    total = 0.0
    big = np.complex128 if X.dtype.kind == "c" else np.float64
    for chunk in _flat_chunks(X):
        c = chunk.astype(big)
        if exponent:
            c = xp.ldexp(c, -exponent) if X.dtype.kind != "c" else c * 2.0**-exponent
        total += float(xp.vdot(c, c).real)
    return total


def abs_max(X: Array) -> float:
    """``max |X|`` as a float (0 for an empty tensor; NaN when ``X`` holds NaN).

    Examples
    --------
    >>> import numpy as np
    >>> abs_max(np.array([1.0, -3.0]))
    3.0
    """
    xp = get_array_module(X)
    if X.size == 0:
        return 0.0
    if X.dtype.kind == "c":
        return float(max(float(xp.abs(c).max()) for c in _flat_chunks(X)))
    hi, lo = float(X.max()), float(X.min())
    return hi if math.isnan(hi) else max(hi, -lo)


def sample_indices(shape: Sequence[int], count: int = 16) -> list[tuple[int, ...]]:
    """``count`` multi-indices into a tensor of ``shape``, fixed by the shape alone.

    Used as a cheap fingerprint of a tensor (its entries at these indices):
    the serial and the distributed CP-ALS pick the same entries. Empty for
    an empty tensor.

    Examples
    --------
    >>> sample_indices((3, 4), count=2) == sample_indices((3, 4), count=2)
    True
    """
    shape = check_shape(shape)
    if 0 in shape:
        return []
    rng = np.random.default_rng([0x7E5, *shape])
    cols = [rng.integers(0, s, size=count) for s in shape]
    return [tuple(int(c[i]) for c in cols) for i in range(count)]


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use, or None when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux), else the free physical
    pages from ``os.sysconf``. The estimate of :func:`check_memory` is
    compared with it.

    Examples
    --------
    >>> m = available_memory()
    >>> m is None or m > 0
    True
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: int, name: str, what: str) -> None:
    """Raise a ValueError naming ``name`` when ``nbytes`` exceed :func:`available_memory`.

    The rule: a call whose estimated working memory is larger than the
    memory available right now would fail (or swap) later; fail at once,
    before anything is allocated, with the size in the message.

    Examples
    --------
    >>> check_memory(10**30, "rank", "the Grams")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: rank: the Grams need about 9.31e+20 GiB, more than the memory available ...
    """
    limit = available_memory()
    if limit is not None and nbytes > limit:
        raise ValueError(f"{name}: {what} need about {nbytes / 2**30:.3g} GiB, more than the "
                         f"memory available ({limit / 2**30:.3g} GiB)")
