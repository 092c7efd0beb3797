"""Initial guesses for CP-ALS: random, leading singular vectors, or a given CPTensor.

Every initialisation returns a :class:`~tensorpar.CPTensor` whose columns
are normalised into the weights (the convention of
:mod:`tensorpar.cp.update`). Random numbers are drawn on the host with a
``numpy.random.Generator``, mode by mode in increasing order, so the same
seed gives the same start on numpy and cupy data and on any number of MPI
ranks (each rank draws the full factors and keeps its rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import InitMethod
from .state import ldexp_array
from .tensor import CPTensor

__all__ = ["initialize_cp", "raw_initial_cp", "random_factors", "svd_factor", "unfolding_gram", "check_init"]

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

    Examples
    --------
    >>> A = random_factors((3, 4), 2, np.random.default_rng(0), nonnegative=True)
    >>> [a.shape for a in A], bool(all((a >= 0).all() and (a < 1).all() for a in A))
    ([(3, 2), (4, 2)], True)
    """
    draw = rng.random if nonnegative else rng.standard_normal
    return [np.asarray(draw((int(s), int(rank))), dtype=dtype) for s in shape]


def _blocks(X: Any, mode: int, axis: int, block_bytes: int, scale_exp: int) -> Iterator[Any]:
    """Unfoldings ``(I_mode or rows, columns)`` of slabs of ``X`` cut along ``axis``.

    Each slab holds at most about ``block_bytes`` (one slice at least) and is
    multiplied by ``2^-scale_exp`` (exact); only the slab is copied. Yields
    ``(start, Y)`` with ``Y`` the mode-``mode`` unfolding of
    ``X[..., start:start + step, ...]`` (slab along ``axis``).
    """
    xp = get_array_module(X)
    slab = X.nbytes // max(X.shape[axis], 1)
    step = max(1, block_bytes // max(slab, 1))
    for start in range(0, X.shape[axis], step):
        index = [slice(None)] * X.ndim
        index[axis] = slice(start, start + step)
        block = X[tuple(index)]
        if scale_exp:
            block = ldexp_array(block, -scale_exp)
        Y = xp.moveaxis(block, mode, 0)
        yield start, Y.reshape(Y.shape[0], -1)


def unfolding_gram(X: Any, mode: int, block_bytes: int = GRAM_BLOCK_BYTES,
                   scale_exp: int = 0) -> Any:
    """``X_(n) X_(n)^T`` (shape ``(I_n, I_n)``) without an unfolded copy of ``X``.

    The Gram does not depend on the order of the unfolding's columns, so when
    ``X_(n)`` (or its transpose) is a reshape of the memory -- mode 0 or the
    last mode of a C- or Fortran-contiguous tensor -- it is one matrix
    product on a view. Otherwise ``X`` is cut along another axis into blocks
    of at most about ``block_bytes``; each block is unfolded (a copy of the
    block only) and its Gram accumulated. With ``scale_exp`` the Gram is that
    of ``X 2^-scale_exp`` (blocks scaled exactly as they are copied), which
    keeps the squares of data far from 1 in range.

    Examples
    --------
    >>> from tensorpar import unfold
    >>> X = np.random.default_rng(0).standard_normal((3, 4, 5))
    >>> G = unfolding_gram(X, 1, block_bytes=64)
    >>> G.shape, bool(np.allclose(G, unfold(X, 1) @ unfold(X, 1).T))
    ((4, 4), True)
    """
    xp = get_array_module(X)
    N = X.ndim
    if N > 1 and X.flags.f_contiguous and not X.flags.c_contiguous:
        return unfolding_gram(X.T, N - 1 - mode, block_bytes, scale_exp)
    if X.flags.c_contiguous and not scale_exp:
        # xp.dot on (Y, Y.T) runs BLAS syrk (half the flops of a GEMM).
        if mode == 0:
            Y = X.reshape(X.shape[0], -1)
            return xp.dot(Y, Y.T)
        if mode == N - 1:
            Y = X.reshape(-1, X.shape[-1])
            return xp.dot(Y.T, Y)
    axis = 0 if mode != 0 else 1
    G = xp.zeros((X.shape[mode], X.shape[mode]), dtype=X.dtype)
    for _, Y in _blocks(X, mode, axis, block_bytes, scale_exp):
        G += xp.dot(Y, Y.T)
    return G


def _right_side_vectors(X: Any, mode: int, k: int, scale_exp: int) -> Any:
    """Leading left singular vectors of ``X_(n)`` from the Gram of its rows' side.

    For ``I_n > J = prod_{k != n} I_k``: ``H = X_(n)^T X_(n)`` (``J x J``) has
    eigenpairs ``(s^2, v)`` and ``u = X_(n) v / s``; both passes over ``X``
    go through row slabs of the unfolding, so the memory is ``O(J^2 + I_n k)``
    beside ``X``. Directions with a numerically zero singular value are
    dropped (the caller pads with random columns).
    """
    xp = get_array_module(X)
    J = X.size // X.shape[mode]
    H = xp.zeros((J, J), dtype=X.dtype)
    for _, Y in _blocks(X, mode, mode, GRAM_BLOCK_BYTES, scale_exp):
        H += xp.dot(Y.T, Y)
    w, Q = xp.linalg.eigh(H)
    w, Q = w[::-1][:k], Q[:, ::-1][:, :k]
    top = float(w[0]) if k else 0.0
    keep = int((w > J * np.finfo(X.dtype).eps * top).sum()) if top > 0 else 0
    Q = Q[:, :keep] / xp.sqrt(w[:keep])[None, :]
    U = xp.empty((X.shape[mode], keep), dtype=X.dtype)
    for start, Y in _blocks(X, mode, mode, GRAM_BLOCK_BYTES, scale_exp):
        U[start:start + Y.shape[0]] = Y @ Q
    return U


def svd_factor(X: Any, mode: int, rank: int, rng: np.random.Generator, *,
               nonnegative: bool = False, scale_exp: int = 0) -> Any:
    """Leading ``rank`` left singular vectors of ``X_(n)``, from a Gram.

    When ``I_n <= J = prod_{k != n} I_k`` they are the eigenvectors of
    :func:`unfolding_gram` (``I_n x I_n``); otherwise they come from the
    smaller ``J x J`` Gram of the other side (:func:`_right_side_vectors`),
    so a long mode (shape ``(2, 2, 50000)``) never forms an ``I_n x I_n``
    matrix: memory ``O(min(I_n, J)^2 + I_n R)`` beside ``X``. Signs are fixed
    so that the entry of largest magnitude in each vector is positive. When
    ``rank`` exceeds the number of directions found the remaining columns
    are random (drawn from ``rng`` as in :func:`random_factors`); with
    ``nonnegative`` the absolute value is taken. ``scale_exp`` (the exponent
    of ``||X||``) scales the data by ``2^-scale_exp`` inside the Gram when
    ``|scale_exp| > 256``, where the squares would leave the floating-point
    range; the vectors do not depend on it otherwise.

    Returns
    -------
    ndarray, shape (I_n, rank), same array module as ``X``

    Examples
    --------
    >>> from tensorpar import unfold
    >>> X = np.random.default_rng(0).standard_normal((3, 4, 5))
    >>> U = svd_factor(X, 1, 2, np.random.default_rng(1))
    >>> V = np.linalg.svd(unfold(X, 1))[0][:, :2]
    >>> U.shape, bool(np.allclose(np.abs(U.T @ V), np.eye(2)))
    ((4, 2), True)
    """
    xp = get_array_module(X)
    e = scale_exp if abs(scale_exp) > 256 else 0
    I_n = X.shape[mode]
    if I_n > X.size // max(I_n, 1):
        U = _right_side_vectors(X, mode, min(rank, I_n), e)
    else:
        _, Q = xp.linalg.eigh(unfolding_gram(X, mode, scale_exp=e))
        U = Q[:, ::-1][:, :min(rank, I_n)]
    k = U.shape[1]
    if k:
        pivot = xp.argmax(xp.abs(U), axis=0)
        U = U * xp.where(U[pivot, xp.arange(k)] < 0, -1.0, 1.0).astype(U.dtype)[None, :]
    if rank > k:
        extra = random_factors([I_n], rank - k, rng, nonnegative=nonnegative,
                               dtype=X.dtype)[0]
        U = xp.concatenate([U, xp.asarray(extra)], axis=1)
    if nonnegative:
        U = xp.abs(U)
    return xp.ascontiguousarray(U)


def check_init(init: CPTensor, shape: Sequence[int], rank: int, *,
               nonnegative: bool = False) -> None:
    """Raise a ValueError unless ``init`` has the shape and rank of the decomposition.

    Examples
    --------
    >>> from tensorpar import random_cp
    >>> check_init(random_cp((3, 4), 2, seed=0), (3, 4), 2)  # passes silently
    >>> check_init(random_cp((3, 4), 2, seed=0), (3, 4), 3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
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
                  nonnegative: bool = False, scale_exp: int = 0) -> CPTensor:
    """Initial CP model for ``X``, columns normalised into the weights.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Real dense tensor, numpy or cupy.
    rank : int
    init : {"random", "random_uniform", "svd"} or CPTensor
        ``"random"``: :func:`random_factors` (standard normal; uniform when
        ``nonnegative``); ``"random_uniform"``: uniform ``[0, 1)`` factors
        whatever ``nonnegative`` (TensorLy's ``init="random"``); ``"svd"``:
        :func:`svd_factor` of every mode; a CPTensor (same shape and rank) is
        copied to ``X``'s array module and dtype.
    rng : numpy.random.Generator, optional
        Source of every random number (a fresh default one when omitted).
    nonnegative : bool
        Draw nonnegative random factors; a given init must be nonnegative.
    scale_exp : int
        Exponent of ``||X||`` (:func:`tensorpar.cp.state.scale_exponent`), for
        ``"svd"`` on data whose squares leave the floating-point range.

    Returns
    -------
    CPTensor
        Weights ``w`` and factors with unit-norm (or zero) columns.

    Examples
    --------
    >>> import numpy as np
    >>> cp = initialize_cp(np.zeros((3, 4)), 2, "random_uniform", rng=np.random.default_rng(0))
    >>> bool((cp.factors[0] >= 0).all()), cp.weights.shape
    (True, (2,))
    """
    return raw_initial_cp(X, rank, init, rng=rng, nonnegative=nonnegative,
                          scale_exp=scale_exp).normalize()


def raw_initial_cp(X: Any, rank: int, init: InitMethod | CPTensor = "random", *,
                   rng: np.random.Generator | None = None,
                   nonnegative: bool = False, scale_exp: int = 0) -> CPTensor:
    """:func:`initialize_cp` before the normalisation: factors as drawn or given.

    The drawn factors' column norms are what TensorLy's ``parafac`` starts
    from (:mod:`tensorpar.cp.scales`); weights are None for a drawn start.
    """
    xp = get_array_module(X)
    rng = np.random.default_rng() if rng is None else rng
    if isinstance(init, CPTensor):
        check_init(init, X.shape, rank, nonnegative=nonnegative)
        get_array_module(X, *init.factors)
        factors = [xp.array(f, dtype=X.dtype, order="C", copy=True) for f in init.factors]
        weights = xp.array(init.weights, dtype=X.dtype, copy=True)
    elif isinstance(init, str) and init in ("random", "random_uniform"):
        uniform = nonnegative or init == "random_uniform"
        factors = [xp.asarray(f) for f in
                   random_factors(X.shape, rank, rng, nonnegative=uniform, dtype=X.dtype)]
        weights = None
    elif isinstance(init, str) and init == "svd":
        factors = [svd_factor(X, n, rank, rng, nonnegative=nonnegative, scale_exp=scale_exp)
                   for n in range(X.ndim)]
        weights = None
    else:
        raise ValueError(
            f"init must be 'random', 'svd' or a CPTensor (or 'random_uniform'), got {init!r}"
            if isinstance(init, str) else
            "init must be 'random', 'svd' or a CPTensor (or 'random_uniform'), got "
            f"{type(init).__name__}")
    return CPTensor(factors, weights)
