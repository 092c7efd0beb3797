"""The CP (CANDECOMP/PARAFAC) tensor container."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import get_array_module, to_numpy
from .._typing import Engine
from .._validation import as_float_array, check_factors, check_positive_int

__all__ = ["CPTensor"]


@dataclass(eq=False)
class CPTensor:
    """A tensor in CP (CANDECOMP/PARAFAC) form.

    ``X = sum_r w_r a_0[:, r] o a_1[:, r] o (...) o a_{N-1}[:, r]``, where ``o`` is
    the outer product and ``a_n = factors[n]``.

    Parameters
    ----------
    factors : sequence of ndarray, each of shape (I_n, R)
        Factor matrices, numpy or cupy (all the same).
    weights : ndarray of shape (R,), optional
        Component weights; ones when omitted.

    Attributes
    ----------
    shape : tuple of int
        ``(I_0, ..., I_{N-1})``.
    rank : int
        Number of components ``R``.

    Examples
    --------
    >>> import numpy as np
    >>> cp = CPTensor([np.ones((2, 1)), np.ones((3, 1))], weights=np.array([2.0]))
    >>> cp.shape, cp.rank
    ((2, 3), 1)
    >>> cp.to_dense()
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """

    factors: list[Any]
    weights: Any = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.factors, (list, tuple)) or len(self.factors) == 0:
            raise TypeError("factors must be a non-empty list of 2-D arrays")
        xp = get_array_module(*self.factors, self.weights)
        self.factors = [as_float_array(f, f"factors[{n}]", min_ndim=2, max_ndim=2)
                        for n, f in enumerate(self.factors)]
        rank = check_factors(self.factors)
        dtype = np.result_type(*[f.dtype for f in self.factors])
        if self.weights is None:
            self.weights = xp.ones(rank, dtype=dtype)
        else:
            self.weights = as_float_array(self.weights, "weights", min_ndim=1, max_ndim=1)
            if self.weights.shape[0] != rank:
                raise ValueError(
                    f"weights has length {self.weights.shape[0]} but the factors have rank {rank}")

    # -- shape --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(f.shape[0]) for f in self.factors)

    @property
    def ndim(self) -> int:
        return len(self.factors)

    @property
    def rank(self) -> int:
        return int(self.factors[0].shape[1])

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.weights.dtype, *[f.dtype for f in self.factors])

    def __repr__(self) -> str:
        return f"CPTensor(shape={self.shape}, rank={self.rank}, dtype={self.dtype})"

    def copy(self) -> CPTensor:
        """Deep copy.

        Examples
        --------
        >>> cp = random_cp((3, 4), 2, seed=0)
        >>> c = cp.copy()
        >>> c.factors[0][0, 0] = 99.0
        >>> bool(cp.factors[0][0, 0] == 99.0)
        False
        """
        return CPTensor([f.copy() for f in self.factors], self.weights.copy())

    # -- algebra ------------------------------------------------------------
    def to_dense(self) -> Any:
        """Form the dense tensor (``prod I_n`` entries; for small tensors).

        Returns
        -------
        ndarray of shape ``self.shape``

        Examples
        --------
        >>> import numpy as np
        >>> cp = CPTensor([np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])])
        >>> cp.to_dense()
        array([[3., 4.],
               [6., 8.]])
        """
        from ..dense import khatri_rao

        xp = get_array_module(*self.factors)
        first = self.factors[0] * self.weights[None, :]
        if self.ndim == 1:
            return xp.sum(first, axis=1)
        rest = khatri_rao(self.factors[1:])
        return xp.reshape(first @ rest.T, self.shape)

    def gram_hadamard(self, skip: int | None = None) -> Any:
        """Hadamard product of the Gram matrices ``A_n^H A_n`` over modes ``n != skip``.

        Examples
        --------
        >>> import numpy as np
        >>> cp = CPTensor([np.eye(2), 2 * np.eye(2)])
        >>> cp.gram_hadamard(), cp.gram_hadamard(skip=1)
        (array([[4., 0.],
               [0., 4.]]), array([[1., 0.],
               [0., 1.]]))
        """
        xp = get_array_module(*self.factors)
        out = xp.ones((self.rank, self.rank), dtype=self.dtype)
        for n, f in enumerate(self.factors):
            if n != skip:
                out = out * (f.conj().T @ f)
        return out

    def norm(self) -> float:
        """Frobenius norm, from the Gram matrices (never forms the dense tensor).

        ``||X||^2 = w^H (G_0 * G_1 * ... * G_{N-1}) w`` with ``G_n = A_n^H A_n``.

        Examples
        --------
        >>> import numpy as np
        >>> cp = random_cp((5, 4, 3), 2, seed=0)
        >>> bool(np.isclose(cp.norm(), np.linalg.norm(cp.to_dense())))
        True
        """
        w = self.weights
        sq = float((w.conj() @ self.gram_hadamard() @ w).real)
        return float(np.sqrt(max(sq, 0.0)))

    def inner(self, X: Any, engine: Engine = "auto") -> float | complex:
        """Inner product ``<X, self>`` with a dense tensor ``X`` of the same shape.

        Computed from one MTTKRP, ``sum_r w_r sum_i A_0[i, r] M[i, r]`` with
        ``M = mttkrp(X, factors, 0)``, so the dense CP tensor is never formed.
        ``X`` may be a (nested) list: it is converted with ``numpy.asarray``
        (:func:`tensorpar.dense.as_array`).

        Examples
        --------
        >>> import numpy as np
        >>> cp = random_cp((5, 4, 3), 2, seed=0)
        >>> X = np.ones(cp.shape)
        >>> bool(np.isclose(cp.inner(X), cp.to_dense().sum()))
        True
        """
        from ..dense import as_array
        from ..mttkrp import mttkrp

        X = as_array(X, "X")
        if tuple(X.shape) != self.shape:
            raise ValueError(f"X has shape {tuple(X.shape)}, expected {self.shape}")
        M = mttkrp(X, self.factors, 0, engine=engine)
        xp = get_array_module(M)
        value: float | complex = (xp.sum(M * self.factors[0].conj(), axis=0)
                                  @ self.weights.conj()).item()
        return value

    def normalize(self) -> CPTensor:
        """Return an equivalent CPTensor whose factor columns have unit 2-norm.

        The column norms are absorbed into the weights. Zero columns stay zero
        and keep a zero weight.

        Examples
        --------
        >>> import numpy as np
        >>> cp = CPTensor([np.array([[3.0], [4.0]]), np.array([[2.0]])])
        >>> n = cp.normalize()
        >>> n.weights, n.factors[0].ravel()
        (array([10.]), array([0.6, 0.8]))
        """
        xp = get_array_module(*self.factors)
        weights = self.weights.copy()
        factors = []
        for f in self.factors:
            nrm = xp.linalg.norm(f, axis=0)
            safe = xp.where(nrm == 0, 1, nrm)
            factors.append(f / safe[None, :])
            weights = weights * nrm
        return CPTensor(factors, weights)

    def factor_match_score(self, other: CPTensor, weight_penalty: bool = True) -> float:
        """Factor match score (FMS) between two CP tensors of the same shape and rank.

        Components are paired by the best permutation (Hungarian algorithm on
        the score matrix); the score of a pair is the product over modes of
        the absolute cosine between the factor columns, times
        ``1 - |w_a - w_b| / max(w_a, w_b)`` when ``weight_penalty`` (as in the
        Tensor Toolbox's ``score``). 1 means identical up to permutation and
        scaling signs.

        Returns
        -------
        float in [0, 1]
            The mean score over the matched components.

        See Also
        --------
        tensorpar.factor_match_score : models of different ranks, the permutation.

        Examples
        --------
        >>> import numpy as np
        >>> a = random_cp((5, 4, 3), 2, seed=0)
        >>> b = CPTensor([f[:, ::-1] for f in a.factors], a.weights[::-1])
        >>> round(a.factor_match_score(b), 12)
        1.0
        """
        from scipy.optimize import linear_sum_assignment

        if not isinstance(other, CPTensor):
            raise TypeError(f"other must be a CPTensor, got {type(other).__name__}")
        if other.shape != self.shape or other.rank != self.rank:
            raise ValueError(
                f"other has shape {other.shape} and rank {other.rank}; expected shape "
                f"{self.shape} and rank {self.rank}")
        a, b = self.normalize(), other.normalize()
        score = np.ones((self.rank, self.rank))
        for fa, fb in zip(a.factors, b.factors):
            score *= np.abs(to_numpy(fa.conj().T @ fb))
        if weight_penalty:
            wa, wb = np.abs(to_numpy(a.weights)), np.abs(to_numpy(b.weights))
            top = np.maximum(wa[:, None], wb[None, :])
            top[top == 0] = 1.0
            score *= 1.0 - np.abs(wa[:, None] - wb[None, :]) / top
        rows, cols = linear_sum_assignment(-score)
        return float(score[rows, cols].mean())

    # -- interoperability ---------------------------------------------------
    def to_tensorly(self) -> Any:
        """Convert to :class:`tensorly.cp_tensor.CPTensor` (needs the ``peers`` extra).

        Examples
        --------
        >>> import numpy as np
        >>> import tensorly as tl
        >>> cp = random_cp((4, 3), 2, seed=0)
        >>> bool(np.allclose(tl.cp_to_tensor(cp.to_tensorly()), cp.to_dense()))
        True
        """
        from .interop import cp_to_tensorly

        return cp_to_tensorly(self)

    @classmethod
    def from_tensorly(cls, cp: Any) -> CPTensor:
        """Build from a tensorly CPTensor or a ``(weights, factors)`` pair.

        Examples
        --------
        >>> import numpy as np
        >>> CPTensor.from_tensorly((np.ones(2), [np.ones((4, 2)), np.ones((3, 2))])).shape
        (4, 3)
        """
        from .interop import cp_from_tensorly

        return cp_from_tensorly(cp)

    def to_pyttb(self) -> Any:
        """Convert to :class:`pyttb.ktensor` (needs the ``peers`` extra).

        Examples
        --------
        >>> import numpy as np
        >>> cp = random_cp((4, 3), 2, seed=0)
        >>> bool(np.allclose(cp.to_pyttb().full().data, cp.to_dense()))
        True
        """
        from .interop import cp_to_pyttb

        return cp_to_pyttb(self)

    @classmethod
    def from_pyttb(cls, kt: Any) -> CPTensor:
        """Build from a :class:`pyttb.ktensor`.

        Examples
        --------
        >>> import numpy as np
        >>> import pyttb as ttb
        >>> kt = ttb.ktensor([np.ones((4, 2)), np.ones((3, 2))], np.array([1.0, 2.0]))
        >>> CPTensor.from_pyttb(kt).weights
        array([1., 2.])
        """
        from .interop import cp_from_pyttb

        return cp_from_pyttb(kt)

    # -- unpacking as TensorLy's ``(weights, factors)`` pair ------------------
    # TensorLy's functions (``tl.cp_to_tensor``, ``tl.cp_normalize``, ...) unpack
    # their argument as ``weights, factors = cp``; these three make that work.
    def __iter__(self) -> Iterator[Any]:
        """Iterate as ``(weights, factors)``, so ``weights, factors = cp`` works.

        Examples
        --------
        >>> import numpy as np
        >>> weights, factors = CPTensor([np.ones((2, 1)), np.ones((3, 1))])
        >>> weights, [f.shape for f in factors]
        (array([1.]), [(2, 1), (3, 1)])
        """
        return iter((self.weights, self.factors))

    def __len__(self) -> int:
        """Always 2: the ``(weights, factors)`` pair."""
        return 2

    def __getitem__(self, index: int) -> Any:
        """``cp[0]`` is the weights, ``cp[1]`` the list of factors (TensorLy's order)."""
        return (self.weights, self.factors)[index]


def random_cp(shape: Sequence[int], rank: int, *, seed: Any = None,
              dtype: Any = np.float64) -> CPTensor:
    """A CPTensor with standard-normal factors and unit weights.

    Parameters
    ----------
    shape : sequence of int
        Integers (``5.7`` raises a TypeError).
    rank : int
        An integer >= 1 (``2.7`` raises a TypeError rather than being truncated).
    seed : int or numpy.random.Generator, optional
    dtype : float32 or float64

    Examples
    --------
    >>> cp = random_cp((5, 4, 3), 2, seed=0)
    >>> cp.shape, cp.rank, cp.weights
    ((5, 4, 3), 2, array([1., 1.]))
    """
    from ..dense import check_shape
    from .state import check_seed

    shape = check_shape(shape)
    rank = check_positive_int(rank, "rank")
    if np.dtype(dtype).type not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    rng = check_seed(seed)
    return CPTensor([rng.standard_normal((s, rank)).astype(dtype) for s in shape])
