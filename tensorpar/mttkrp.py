"""Matricized tensor times Khatri-Rao product (MTTKRP).

``mttkrp(X, factors, n) = unfold(X, n) @ khatri_rao([A_k for k != n])``,
shape ``(I_n, R)``, computed without forming the unfolding or the full
Khatri-Rao product, and without copying or permuting ``X``.

Engines: ``"numpy"`` is the plain definition (:func:`mttkrp_reference`, the
oracle of the tests); ``"numba"`` and ``"cupy"`` run the blocked algorithm of
:mod:`tensorpar._mttkrp_plan` (BLAS GEMMs on blocks of ``X`` in its memory
layout, plus multi-TTV kernels from :mod:`tensorpar.kernels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import _mttkrp_plan as plan
from ._backend import Engine, get_array_module, resolve_engine
from ._validation import REAL_DTYPES, as_float_array, check_dtype, check_factors, check_mode
from .kernels import get_kernel

__all__ = ["mttkrp", "mttkrp_reference", "mttkrp_sweep"]


def mttkrp_reference(X: Any, factors: Sequence[Any], mode: int) -> Any:
    """Plain-definition MTTKRP: the oracle of the tests (numpy or cupy).

    Contracts the modes other than ``mode`` one at a time with
    ``einsum``, which keeps the rank index shared (a Hadamard-style
    contraction) without forming the unfolding. No input checks: use
    :func:`mttkrp` (``engine="numpy"`` runs this function after validating).

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1}), N <= 17
    factors : list of ndarray, each (I_k, R); ``factors[mode]`` is not read
    mode : int

    Returns
    -------
    ndarray, shape (I_mode, R)

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import khatri_rao, unfold
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((3, 4, 5))
    >>> A = [rng.standard_normal((n, 2)) for n in X.shape]
    >>> M = mttkrp_reference(X, A, 1)
    >>> M.shape, bool(np.allclose(M, unfold(X, 1) @ khatri_rao(A, skip=1)))
    ((4, 2), True)
    """
    xp = get_array_module(X, *[f for k, f in enumerate(factors) if k != mode])
    letters = "abcdefghijklmnopq"
    idx = letters[: X.ndim]
    ops, subs = [X], [idx]
    for k, f in enumerate(factors):
        if k != mode:
            ops.append(f)
            subs.append(idx[k] + "z")
    return xp.einsum(",".join(subs) + "->" + idx[mode] + "z", *ops, optimize=True)


def _prepare(X: Any, factors: Sequence[Any], skip: int | None) -> tuple[list[Any], int, Any]:
    """Validate ``factors`` against ``X``; return them in X's dtype, the rank, and xp."""
    rank = check_factors(factors, X.shape, skip=skip)
    xp = get_array_module(X, *[f for f in factors if f is not None])
    fs = list(factors)
    for k, f in enumerate(fs):
        if k == skip and f is None:
            continue
        check_dtype(f, f"factors[{k}]", REAL_DTYPES)
        if f.dtype != X.dtype:  # factors are small: compute in X's dtype, never cast X
            fs[k] = f.astype(X.dtype)
    return fs, rank, xp


def _engine(eng: str, xp: Any) -> plan.Engine:
    block = plan.HOST_BLOCK if eng == "numba" else None
    return plan.Engine(xp, get_kernel("khatri_rao_t", eng), get_kernel("multi_ttv", eng), block)


def _check_out(out: Any, shape: tuple[int, int], X: Any, xp: Any) -> None:
    get_array_module(X, out)
    if not hasattr(out, "shape") or tuple(out.shape) != shape:
        got = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
        raise ValueError(f"out must have shape {shape}, got {got}")
    if out.dtype != X.dtype:
        raise TypeError(f"out has dtype {out.dtype}; expected {X.dtype} like X")


def mttkrp(X: Any, factors: Sequence[Any], mode: int, engine: Engine = "auto",
           out: Any = None) -> Any:
    """MTTKRP of a dense tensor in one mode.

    ``M[i, r] = sum over all k != mode of X[i_0, ..., i, ..., i_{N-1}] * prod_k A_k[i_k, r]``,
    i.e. ``unfold(X, mode) @ khatri_rao(factors, skip=mode)`` (see :doc:`/conventions`).

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Dense tensor of order ``N >= 2``, float32 or float64, numpy or cupy;
        C- or F-ordered, any axis permutation of a contiguous array, or a
        strided view.
    factors : list of ndarray, each (I_k, R)
        Factor matrices, float32 or float64 (converted to ``X``'s dtype when
        they differ); ``factors[mode]`` is not read (it may be None).
    mode : int
        Output mode; negative values count from the end.
    engine : {"auto", "numpy", "numba", "cupy"}
        ``"numpy"`` is the reference (:func:`mttkrp_reference`); ``"numba"``
        and ``"cupy"`` the blocked algorithm. ``"auto"`` picks cupy for cupy
        arrays, numba for numpy arrays when numba is installed, else numpy
        (:func:`tensorpar.resolve_engine`, :doc:`/engines`). The numba
        engine's threads are the BLAS's (``OPENBLAS_NUM_THREADS``); its
        numba kernels are serial (see :mod:`tensorpar.kernels._mttkrp_numba`).
    out : ndarray, shape (I_mode, R), optional
        Written in place and returned; same dtype and array module as ``X``.

    Returns
    -------
    ndarray, shape (I_mode, R), dtype of X

    Raises
    ------
    ValueError
        Factor shapes that do not match ``X`` (row counts, equal ranks,
        number of factors), ``mode`` out of range, ``out`` of the wrong shape.
    TypeError
        Numpy and cupy arrays mixed, a non-real-floating dtype, ``out`` of
        the wrong dtype.

    Notes
    -----
    **Algorithm** (numba, cupy). ``X`` is read in its memory layout as a
    matrix ``(K, cols)`` whose ``K`` rows are a group ``G`` of modes at one
    end of the memory order: one GEMM ``KR(G)^T @ X`` (BLAS), then a
    multi-TTV with the Khatri-Rao rows of the remaining modes. ``G`` maximizes
    ``min(K, size / K)`` (ties: the slow end of memory, then the smaller
    ``K``); when ``G`` is every mode but ``mode`` this is the 1-step algorithm,
    otherwise the 2-step one (:func:`tensorpar._mttkrp_plan.choose_plan`).

    **Memory.** ``X`` is never copied or permuted when it is a permutation of
    a contiguous array (C, F, ``X.transpose(...)``). The extra memory is the
    output plus ``R (K + A + B + I_mode)`` elements for the Khatri-Rao products
    of the three mode groups (``K A B = size / I_mode``, so at most
    ``R (size / I_mode + I_mode + 2)``: never more than the full Khatri-Rao
    product the textbook algorithm forms, and ``O(R sqrt(size))`` for
    balanced shapes), plus a GEMM work buffer of ``max(2^19, R * B)``
    elements on the host (the whole GEMM output on a GPU). A strided view is
    processed in slabs along its outermost axis, each copied into a buffer
    of at most 32 MB (or one slice of that axis).

    **Non-finite values** are not scanned for: this is the hot loop of CP-ALS
    and a scan would cost a pass over ``X``. NaN and infinity propagate as
    IEEE arithmetic says (CP-ALS checks ``X`` once before iterating).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import mttkrp, unfold, khatri_rao
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((4, 5, 6))
    >>> A = [rng.standard_normal((n, 3)) for n in X.shape]
    >>> M = mttkrp(X, A, 1)
    >>> M.shape
    (5, 3)
    >>> bool(np.allclose(M, unfold(X, 1) @ khatri_rao(A, skip=1)))
    True
    """
    X = as_float_array(X, "X", allowed=REAL_DTYPES, min_ndim=2)
    mode = check_mode(mode, X.ndim)
    fs, rank, xp = _prepare(X, factors, skip=mode)
    shape = (X.shape[mode], rank)
    if out is not None:
        _check_out(out, shape, X, xp)
    eng = resolve_engine(engine, xp, op="mttkrp")
    if X.size == 0 or rank == 0:
        res = xp.zeros(shape, dtype=X.dtype)
    elif eng == "numpy":
        res = mttkrp_reference(X, fs, mode)
    else:
        e = _engine(eng, xp)
        layout = plan.contiguous_layout(X)
        if layout is None:
            return plan.mttkrp_strided(e, X, fs, mode, rank, X.dtype, out)
        return plan.mttkrp_layout(e, layout, fs, mode, rank, X.dtype, out)
    if out is not None:
        out[...] = res
        return out
    return res


def mttkrp_sweep(X: Any, factors: list[Any], update: Callable[[int, Any], Any],
                 engine: Engine = "auto") -> None:
    """All-modes MTTKRP sweep, as one CP-ALS iteration needs it.

    For ``n = 0, 1, ..., N-1`` in order: ``M = mttkrp(X, factors, n)`` with the
    factors as updated so far, then ``factors[n] = update(n, M)``. The list
    ``factors`` is modified in place.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
    factors : list of ndarray, each (I_k, R)
    update : callable ``(mode, M) -> ndarray of shape (I_mode, R)``
        Receives a fresh ``M`` each time (it may keep it).
    engine : {"auto", "numpy", "numba", "cupy"}
        ``"numpy"`` runs the loop above with :func:`mttkrp_reference`.

    Notes
    -----
    The numba and cupy engines use a two-level **dimension tree**: the modes
    split into a first half ``{0..h-1}`` and a second half. One GEMM pass
    over ``X`` contracts the second half with its (not yet updated) factors
    into a partial tensor of shape ``(R, I_0 ... I_{h-1})``; every first-half
    MTTKRP is a multi-TTV on that partial. A second pass contracts the first
    half with its updated factors, and the second half follows the same way.
    ``X`` is read twice per sweep instead of ``N`` times, and the results and
    the order of the ``update`` calls are exactly those of the loop. ``h``
    balances the two halves' sizes; a half of one mode is computed by the
    single-mode plan of :func:`mttkrp`. One partial tensor exists at a time,
    of at most ``max(X.size, 2^16)`` elements; where it would be larger (rank
    above the smaller half's size), where ``X`` is a strided view, or for
    order 2, the sweep runs ``N`` separate MTTKRPs instead.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((3, 4, 5))
    >>> A = [rng.standard_normal((n, 2)) for n in X.shape]
    >>> seen = []
    >>> mttkrp_sweep(X, A, lambda n, M: seen.append(M.shape) or M / 10)
    >>> seen
    [(3, 2), (4, 2), (5, 2)]
    """
    if not isinstance(factors, list):
        raise TypeError(f"factors must be a list (it is updated in place), got "
                        f"{type(factors).__name__}")
    X = as_float_array(X, "X", allowed=REAL_DTYPES, min_ndim=2)
    fs, rank, xp = _prepare(X, factors, skip=None)
    eng = resolve_engine(engine, xp, op="mttkrp")

    def check(n: int, A: Any) -> Any:
        if not hasattr(A, "shape") or tuple(A.shape) != (X.shape[n], rank):
            got = tuple(A.shape) if hasattr(A, "shape") else type(A).__name__
            raise ValueError(f"update({n}, M) must return an array of shape "
                             f"{(X.shape[n], rank)}, got {got}")
        get_array_module(X, A)
        return A

    if eng != "numpy" and X.ndim >= 3 and X.size > 0 and rank > 0:
        layout = plan.contiguous_layout(X)
        if layout is not None:
            work = list(fs)
            done = plan.sweep_tree(_engine(eng, xp), layout, work, update, rank, X.dtype,
                                   lambda n, A: _store(factors, work, n, check(n, A), X.dtype))
            if done:
                return
    for n in range(X.ndim):
        factors[n] = check(n, update(n, mttkrp(X, factors, n, engine=eng)))


def _store(factors: list[Any], work: list[Any], n: int, A: Any, dtype: Any) -> Any:
    """Record ``update``'s result in the caller's list; the tree computes in X's dtype."""
    factors[n] = A
    return A if A.dtype == dtype else A.astype(dtype)
