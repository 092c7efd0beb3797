"""TT-matrices (matrix product operators) and their products with TT vectors and dense matrices.

``A @ x`` dispatches on the operand: a :class:`TTTensor` goes to
:meth:`TTMatrix.matvec` (a TT vector of multiplied ranks), a dense array to
:meth:`TTMatrix.matmat` (the plan and its FLOP/memory model are in
:mod:`tensorpar.tt.matrix_plan`, the gradients in :mod:`tensorpar.tt.matrix_grad`).

A :class:`TTMatrix` with cores ``A_k`` of shape ``(r_k, m_k, n_k, r_{k+1})``
represents the ``(prod m_k) x (prod n_k)`` matrix

``A[(i_0, ..., i_{d-1}), (j_0, ..., j_{d-1})] = A_0[:, i_0, j_0, :] ... A_{d-1}[:, i_{d-1}, j_{d-1}, :]``

with row and column multi-indices both in C order (the last mode fastest).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._backend import get_array_module
from .._validation import as_float_array, check_core_chain, check_positive_int, check_same_shape
from .matrix_grad import ttm_matmat_forward
from .matrix_plan import Implementation
from .tensor import TTTensor

__all__ = ["TTMatrix", "ttm_matvec", "ttm_matmat", "ttm_matvec_core"]


class TTMatrix:
    """A matrix in TT (MPO) form.

    Parameters
    ----------
    cores : sequence of ndarray
        Core ``k`` has shape ``(r_k, m_k, n_k, r_{k+1})`` with
        ``r_0 = r_d = 1``; neighbouring ranks must chain.

    Attributes
    ----------
    row_shape, col_shape : tuple of int
        ``(m_0, ..., m_{d-1})`` and ``(n_0, ..., n_{d-1})``.
    shape : tuple of int
        ``(prod m_k, prod n_k)``.
    ranks : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTMatrix
    >>> A = np.arange(24.0).reshape(4, 6)
    >>> T = TTMatrix.from_dense(A, (2, 2), (2, 3))
    >>> T.shape, T.ranks
    ((4, 6), (1, 2, 1))
    >>> bool(np.allclose(T.to_dense(), A))
    True
    """

    __array_ufunc__ = None

    def __init__(self, cores: Sequence[Any]) -> None:
        if not isinstance(cores, (list, tuple)) or len(cores) == 0:
            raise TypeError("cores must be a non-empty list of 4-D arrays")
        get_array_module(*cores)
        cores = [as_float_array(c, f"cores[{k}]", min_ndim=4, max_ndim=4)
                 for k, c in enumerate(cores)]
        check_core_chain(cores, rank_axis=3)
        self.cores: list[Any] = list(cores)

    @property
    def row_shape(self) -> tuple[int, ...]:
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def col_shape(self) -> tuple[int, ...]:
        return tuple(int(c.shape[2]) for c in self.cores)

    @property
    def shape(self) -> tuple[int, int]:
        return math.prod(self.row_shape), math.prod(self.col_shape)

    @property
    def ndim(self) -> int:
        """Number of cores ``d``."""
        return len(self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        return (1,) + tuple(int(c.shape[3]) for c in self.cores)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[c.dtype for c in self.cores])

    def __repr__(self) -> str:
        return (f"TTMatrix(row_shape={self.row_shape}, col_shape={self.col_shape}, "
                f"ranks={self.ranks}, dtype={self.dtype})")

    @property
    def T(self) -> TTMatrix:
        """Transpose (not conjugated): cores with the row and column modes swapped."""
        xp = get_array_module(*self.cores)
        return TTMatrix([xp.ascontiguousarray(c.transpose(0, 2, 1, 3)) for c in self.cores])

    def as_tt(self) -> TTTensor:
        """The same cores viewed as a TT tensor with modes of size ``m_k n_k``.

        Examples
        --------
        >>> import numpy as np
        >>> A = TTMatrix.from_dense(np.eye(6), (2, 3), (2, 3))
        >>> A.as_tt().shape, A.as_tt().ranks
        ((4, 9), (1, 1, 1))
        """
        return TTTensor([c.reshape(c.shape[0], c.shape[1] * c.shape[2], c.shape[3])
                         for c in self.cores])

    @classmethod
    def from_tt(cls, tt: TTTensor, row_shape: Sequence[int], col_shape: Sequence[int]) -> TTMatrix:
        """Inverse of :meth:`as_tt`: split mode ``k`` of size ``m_k n_k`` into ``(m_k, n_k)``.

        Examples
        --------
        >>> import numpy as np
        >>> A = TTMatrix.from_dense(np.eye(6), (2, 3), (2, 3))
        >>> B = TTMatrix.from_tt(A.as_tt(), (2, 3), (2, 3))
        >>> B.row_shape, B.col_shape, bool(np.allclose(B.to_dense(), np.eye(6)))
        ((2, 3), (2, 3), True)
        """
        row_shape, col_shape = _check_shapes(row_shape, col_shape)
        want = tuple(m * n for m, n in zip(row_shape, col_shape))
        if tt.shape != want:
            raise ValueError(f"tt has shape {tt.shape}; row_shape x col_shape needs {want}")
        return cls([c.reshape(c.shape[0], m, n, c.shape[2])
                    for c, m, n in zip(tt.cores, row_shape, col_shape)])

    def to_dense(self) -> Any:
        """The full ``(prod m_k) x (prod n_k)`` matrix (small matrices only).

        Examples
        --------
        >>> import numpy as np
        >>> W = np.arange(24.0).reshape(4, 6)
        >>> A = TTMatrix.from_dense(W, (2, 2), (2, 3))
        >>> bool(np.allclose(A.to_dense(), W))
        True
        """
        xp = get_array_module(*self.cores)
        d = self.ndim
        full = self.as_tt().to_dense().reshape(
            [s for m, n in zip(self.row_shape, self.col_shape) for s in (m, n)])
        full = xp.transpose(full, list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2)))
        return xp.reshape(full, self.shape)

    @classmethod
    def from_dense(cls, A: Any, row_shape: Sequence[int], col_shape: Sequence[int],
                   eps: float = 1e-12, max_rank: int | None = None) -> TTMatrix:
        """TT-matrix of a dense matrix by TT-SVD of its mode-interleaved reshaping.

        Parameters
        ----------
        A : ndarray, shape (prod(row_shape), prod(col_shape))
        row_shape, col_shape : sequence of int, same length ``d``
        eps, max_rank
            As in :func:`tensorpar.tt_svd`: ``||A - T||_F <= eps ||A||_F``.

        Examples
        --------
        >>> import numpy as np
        >>> A = TTMatrix.from_dense(np.kron(np.eye(4), np.ones((2, 3))), (4, 2), (4, 3))
        >>> A.ranks                       # a Kronecker product has TT-matrix rank 1
        (1, 1, 1)
        """
        from .construct import tt_svd

        row_shape, col_shape = _check_shapes(row_shape, col_shape)
        A = as_float_array(A, "A", min_ndim=2, max_ndim=2)
        want = (math.prod(row_shape), math.prod(col_shape))
        if tuple(A.shape) != want:
            raise ValueError(f"A has shape {tuple(A.shape)}; row_shape and col_shape give {want}")
        xp = get_array_module(A)
        d = len(row_shape)
        T = xp.reshape(A, row_shape + col_shape)
        order = [i for k in range(d) for i in (k, d + k)]
        T = xp.reshape(xp.transpose(T, order), [m * n for m, n in zip(row_shape, col_shape)])
        return cls.from_tt(tt_svd(xp.ascontiguousarray(T), eps=eps, max_rank=max_rank),
                           row_shape, col_shape)

    def round(self, eps: float = 1e-12, max_rank: int | None = None,
              method: Literal["qr", "gram", "randomized"] = "qr", **options: Any) -> TTMatrix:
        """Round the cores as a TT tensor; see :func:`tensorpar.tt_round`.

        Examples
        --------
        >>> import numpy as np
        >>> A = TTMatrix.from_dense(np.kron(np.eye(4), np.ones((2, 3))), (4, 2), (4, 3))
        >>> B = TTMatrix.from_tt(A.as_tt() + A.as_tt(), A.row_shape, A.col_shape)
        >>> B.ranks, B.round(eps=1e-12).ranks
        ((1, 2, 1), (1, 1, 1))
        """
        return TTMatrix.from_tt(self.as_tt().round(eps, max_rank, method, **options),
                                self.row_shape, self.col_shape)

    def matvec(self, x: TTTensor) -> TTTensor:
        """TT-matrix times TT vector; ranks multiply (round the result if needed).

        Parameters
        ----------
        x : TTTensor, shape (n_0, ..., n_{d-1})

        Returns
        -------
        TTTensor, shape (m_0, ..., m_{d-1}), ranks ``r_k(A) r_k(x)``

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar import TTMatrix, TTTensor
        >>> A = TTMatrix.from_dense(np.arange(24.0).reshape(4, 6), (2, 2), (2, 3))
        >>> x = TTTensor.from_dense(np.arange(6.0).reshape(2, 3))
        >>> y = A.matvec(x)  # or A @ x
        >>> bool(np.allclose(y.to_dense().ravel(), A.to_dense() @ np.arange(6.0)))
        True
        """
        if not isinstance(x, TTTensor):
            raise TypeError(f"x must be a TTTensor, got {type(x).__name__}")
        get_array_module(*self.cores, *x.cores)
        check_same_shape([self.col_shape, x.shape], ["A's col_shape", "x"])
        return TTTensor([ttm_matvec_core(a, b) for a, b in zip(self.cores, x.cores)])

    def matmat(self, X: Any, implementation: Implementation = "auto") -> Any:
        """TT-matrix times a dense vector or matrix, without forming the matrix.

        Parameters
        ----------
        X : ndarray, shape (N,) or (N, B)
            numpy or cupy, same device as the cores.
        implementation : {"auto", "factorized", "sweep", "reconstructed"}
            Contraction plan family (:func:`tensorpar.tt.matrix_plan.plan_ttm_matmat`):
            "auto" takes the cheapest under the FLOP-and-bandwidth model.

        Returns
        -------
        ndarray, shape (M,) or (M, B)

        Notes
        -----
        The plain sweep (``implementation="sweep"``, left to right) costs
        ``sum_k 2 B r_k m_k n_k r_{k+1} prod_{j<k} m_j prod_{j>k} n_j`` flops
        and its largest intermediate holds
        ``max_k B r_{k+1} prod_{j<=k} m_j prod_{j>k} n_j`` elements; right to
        left swaps ``m`` and ``n``. Every step is one stacked GEMM, with no
        transposed copy of the intermediates.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar import TTMatrix
        >>> A = TTMatrix.from_dense(np.arange(24.0).reshape(4, 6), (2, 2), (2, 3))
        >>> X = np.ones((6, 2))
        >>> bool(np.allclose(A.matmat(X), A.to_dense() @ X)), (A @ X[:, 0]).shape
        (True, (4,))
        """
        X = as_float_array(X, "X", min_ndim=1, max_ndim=2)
        get_array_module(X, *self.cores)
        N = self.shape[1]
        if X.shape[0] != N:
            raise ValueError(f"X has {X.shape[0]} rows but A has {N} columns")
        vector = X.ndim == 1
        Y, _ = ttm_matmat_forward(self.cores, X[:, None] if vector else X, implementation,
                                  keep=False)
        return Y[:, 0] if vector else Y

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, TTTensor):
            return self.matvec(other)
        if hasattr(other, "ndim") and hasattr(other, "dtype"):
            return self.matmat(other)
        return NotImplemented


def _check_shapes(row_shape: Sequence[int], col_shape: Sequence[int]) -> tuple[list[int], list[int]]:
    rows = [check_positive_int(m, f"row_shape[{k}]") for k, m in enumerate(row_shape)]
    cols = [check_positive_int(n, f"col_shape[{k}]") for k, n in enumerate(col_shape)]
    if len(rows) != len(cols) or not rows:
        raise ValueError(f"row_shape {tuple(rows)} and col_shape {tuple(cols)} need the same "
                         "non-zero length")
    return rows, cols


def ttm_matvec_core(a: Any, b: Any) -> Any:
    """Core of a TT-matrix times a TT vector.

    Parameters
    ----------
    a : ndarray, shape (r, m, n, q)
        TT-matrix core.
    b : ndarray, shape (s, n, t)
        TT vector core.

    Returns
    -------
    ndarray, shape (r s, m, q t)
        ``out[i s + j, p, k t + l] = sum_c a[i, p, c, k] b[j, c, l]``: one matrix
        product of ``2 r m q s n t`` flops and a transposed copy.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.ones((1, 2, 3, 2)), np.ones((2, 3, 1))
    >>> c = ttm_matvec_core(a, b)
    >>> c.shape, float(c[0, 0, 0])
    ((2, 2, 2), 3.0)
    """
    xp = get_array_module(a, b)
    r, m, n, q = a.shape
    s, _, t = b.shape
    prod = xp.tensordot(a, b, axes=([2], [1]))  # (r, m, q, s, t)
    return xp.ascontiguousarray(prod.transpose(0, 3, 1, 2, 4)).reshape(r * s, m, q * t)


def ttm_matvec(A: TTMatrix, x: TTTensor) -> TTTensor:
    """Deprecated alias of :meth:`TTMatrix.matvec` (``A @ x``); removed in the next release.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> from tensorpar import TTMatrix, TTTensor, ttm_matvec
    >>> A = TTMatrix.from_dense(np.eye(4), (2, 2), (2, 2))
    >>> x = TTTensor.from_dense(np.ones((2, 2)))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     ttm_matvec(A, x).shape
    (2, 2)
    """
    warnings.warn("ttm_matvec(A, x) is deprecated; use A.matvec(x) or A @ x",
                  DeprecationWarning, stacklevel=2)
    if not isinstance(A, TTMatrix):
        raise TypeError(f"A must be a TTMatrix, got {type(A).__name__}")
    return A.matvec(x)


def ttm_matmat(A: TTMatrix, X: Any) -> Any:
    """Deprecated alias of :meth:`TTMatrix.matmat` (``A @ X``); removed in the next release.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> from tensorpar import TTMatrix, ttm_matmat
    >>> A = TTMatrix.from_dense(np.eye(4), (2, 2), (2, 2))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     ttm_matmat(A, np.ones((4, 3))).shape
    (4, 3)
    """
    warnings.warn("ttm_matmat(A, X) is deprecated; use A.matmat(X) or A @ X",
                  DeprecationWarning, stacklevel=2)
    if not isinstance(A, TTMatrix):
        raise TypeError(f"A must be a TTMatrix, got {type(A).__name__}")
    return A.matmat(X)
