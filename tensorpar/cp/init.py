"""Initial guesses for CP-ALS: random, leading singular vectors, or a given CPTensor.

Every initialisation returns a :class:`~tensorpar.CPTensor` whose columns
are normalised into the weights (the convention of
:mod:`tensorpar.cp.update`). Random numbers are drawn on the host with a
``numpy.random.Generator``, mode by mode in increasing order, so the same
seed gives the same start on numpy and cupy data and on any number of MPI
ranks (each rank draws the full factors and keeps its rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._backend import get_array_module
from .tensor import CPTensor

__all__ = ["initialize_cp", "random_factors", "svd_factor", "unfolding_gram", "check_init"]

InitMethod = Literal["random", "svd"]

#: Largest block (bytes) copied at a time when a Gram needs a permuted layout;
#: small enough that the copy is still in cache when the GEMM reads it.
GRAM_BLOCK_BYTES = 2 * 2**20


def random_factors(shape: Sequence[int], rank: int, rng: np.random.Generator, *,
                   nonnegative: bool = False, dtype: Any = np.float64) -> list[np.ndarray]:
    """Random host factors, drawn mode by mode in increasing order.

    Entries are standard normal, or uniform on ``[0, 1)`` when
    ``nonnegative``.

    Returns
    -------
    list of numpy.ndarray, each (I_n, rank)
    """
    draw = rng.random if nonnegative else rng.standard_normal
    return [np.asarray(draw((int(s), int(rank))), dtype=dtype) for s in shape]


def unfolding_gram(X: Any, mode: int, block_bytes: int = GRAM_BLOCK_BYTES) -> Any:
    """``X_(n) X_(n)^T`` (shape ``(I_n, I_n)``) without an unfolded copy of ``X``.

    The Gram does not depend on the order of the unfolding's columns, so when
    ``X_(n)`` (or its transpose) is a reshape of the memory -- mode 0 or the
    last mode of a C- or Fortran-contiguous tensor -- it is one matrix
    product on a view. Otherwise ``X`` is cut along another axis into blocks
    of at most about ``block_bytes``; each block is unfolded (a copy of the
    block only) and its Gram accumulated.
    """
    xp = get_array_module(X)
    N = X.ndim
    if N > 1 and X.flags.f_contiguous and not X.flags.c_contiguous:
        return unfolding_gram(X.T, N - 1 - mode, block_bytes)
    if X.flags.c_contiguous:
        # xp.dot on (Y, Y.T) runs BLAS syrk (half the flops of a GEMM).
        if mode == 0:
            Y = X.reshape(X.shape[0], -1)
            return xp.dot(Y, Y.T)
        if mode == N - 1:
            Y = X.reshape(-1, X.shape[-1])
            return xp.dot(Y.T, Y)
    axis = 0 if mode != 0 else 1
    slab = X.nbytes // max(X.shape[axis], 1)
    step = max(1, block_bytes // max(slab, 1))
    G = xp.zeros((X.shape[mode], X.shape[mode]), dtype=X.dtype)
    for start in range(0, X.shape[axis], step):
        index = [slice(None)] * N
        index[axis] = slice(start, start + step)
        block = X[tuple(index)]
        Y = xp.moveaxis(block, mode, 0).reshape(X.shape[mode], -1)
        G += xp.dot(Y, Y.T)
    return G


def svd_factor(X: Any, mode: int, rank: int, rng: np.random.Generator, *,
               nonnegative: bool = False) -> Any:
    """Leading ``rank`` left singular vectors of ``X_(n)``, from its Gram.

    The eigenvectors of :func:`unfolding_gram` are the left singular vectors;
    their signs are fixed so that the entry of largest magnitude in each is
    positive. When ``rank > I_n`` the remaining columns are random (drawn
    from ``rng`` as in :func:`random_factors`); with ``nonnegative`` the
    absolute value is taken.

    Returns
    -------
    ndarray, shape (I_n, rank), same array module as ``X``
    """
    xp = get_array_module(X)
    _, Q = xp.linalg.eigh(unfolding_gram(X, mode))
    k = min(rank, X.shape[mode])
    U = Q[:, ::-1][:, :k]
    pivot = xp.argmax(xp.abs(U), axis=0)
    U = U * xp.where(U[pivot, xp.arange(k)] < 0, -1.0, 1.0).astype(U.dtype)[None, :]
    if rank > k:
        extra = random_factors([X.shape[mode]], rank - k, rng, nonnegative=nonnegative,
                               dtype=X.dtype)[0]
        U = xp.concatenate([U, xp.asarray(extra)], axis=1)
    if nonnegative:
        U = xp.abs(U)
    return xp.ascontiguousarray(U)


def check_init(init: CPTensor, shape: Sequence[int], rank: int, *,
               nonnegative: bool = False) -> None:
    """Raise a ValueError unless ``init`` has the shape and rank of the decomposition."""
    if init.ndim != len(shape):
        raise ValueError(f"init has order {init.ndim} but X has order {len(shape)}")
    if init.rank != rank:
        raise ValueError(f"init has rank {init.rank} but rank={rank} was asked for")
    if init.shape != tuple(shape):
        raise ValueError(f"init has shape {init.shape} but X has shape {tuple(shape)}")
    xp = get_array_module(*init.factors, init.weights)
    for n, f in enumerate([*init.factors, init.weights]):
        label = f"init.factors[{n}]" if n < init.ndim else "init.weights"
        if not bool(xp.isfinite(f).all()):
            raise ValueError(f"{label} contains NaN or infinite values")
        if nonnegative and bool((f < 0).any()):
            raise ValueError(f"{label} has negative entries; nonnegative=True needs a "
                             "nonnegative init")


def initialize_cp(X: Any, rank: int, init: InitMethod | CPTensor = "random", *,
                  rng: np.random.Generator | None = None,
                  nonnegative: bool = False) -> CPTensor:
    """Initial CP model for ``X``, columns normalised into the weights.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Real dense tensor, numpy or cupy.
    rank : int
    init : {"random", "svd"} or CPTensor
        ``"random"``: :func:`random_factors`; ``"svd"``: :func:`svd_factor` of
        every mode; a CPTensor (same shape and rank) is copied to ``X``'s
        array module and dtype.
    rng : numpy.random.Generator, optional
        Source of every random number (a fresh default one when omitted).
    nonnegative : bool
        Draw nonnegative random factors; a given init must be nonnegative.

    Returns
    -------
    CPTensor
        Weights ``w`` and factors with unit-norm (or zero) columns.
    """
    xp = get_array_module(X)
    rng = np.random.default_rng() if rng is None else rng
    if isinstance(init, CPTensor):
        check_init(init, X.shape, rank, nonnegative=nonnegative)
        get_array_module(X, *init.factors)
        factors = [xp.array(f, dtype=X.dtype, order="C", copy=True) for f in init.factors]
        weights = xp.array(init.weights, dtype=X.dtype, copy=True)
    elif isinstance(init, str) and init == "random":
        factors = [xp.asarray(f) for f in
                   random_factors(X.shape, rank, rng, nonnegative=nonnegative, dtype=X.dtype)]
        weights = None
    elif isinstance(init, str) and init == "svd":
        factors = [svd_factor(X, n, rank, rng, nonnegative=nonnegative) for n in range(X.ndim)]
        weights = None
    else:
        raise ValueError(
            f"init must be 'random', 'svd' or a CPTensor, got {init!r}"
            if isinstance(init, str) else
            f"init must be 'random', 'svd' or a CPTensor, got {type(init).__name__}")
    return CPTensor(factors, weights).normalize()

