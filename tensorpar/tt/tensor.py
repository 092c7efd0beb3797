"""The tensor-train (TT) container.

The arithmetic lives in function modules (:mod:`tensorpar.tt.ops`,
:mod:`tensorpar.tt.orth`, :mod:`tensorpar.tt.rounding`, :mod:`tensorpar.tt.construct`);
the operators and methods of :class:`TTTensor` delegate to them. The argument
checks live in :mod:`tensorpar.tt.checks`, the random constructor
:func:`~tensorpar.tt.random.random_tt` in :mod:`tensorpar.tt.random`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .._backend import Engine, get_array_module, resolve_engine
from .._validation import as_float_array, check_core_chain, check_finite

__all__ = ["TTTensor"]

_SCALARS = (int, float, complex, np.integer, np.floating, np.complexfloating)


class TTTensor:
    """A tensor in tensor-train form.

    ``X[i_0, ..., i_{d-1}] = G_0[:, i_0, :] @ G_1[:, i_1, :] @ ... @ G_{d-1}[:, i_{d-1}, :]``

    Parameters
    ----------
    cores : sequence of ndarray
        Core ``k`` has shape ``(r_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``;
        neighbouring ranks must chain. numpy or cupy, one dtype family;
        finite entries (NaN or infinity raise a ValueError naming the core).

    Attributes
    ----------
    shape : tuple of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : tuple of int
        TT ranks ``(r_0, ..., r_d)``, including the boundary ones.

    Notes
    -----
    Operators: ``x + y``, ``x - y`` (ranks add, no rounding), ``alpha * x``,
    ``x / alpha``, ``-x``, and ``x * y`` for the Hadamard (entrywise)
    product (ranks multiply). A number added to a TT is the constant tensor.
    Round the results with :meth:`round`.

    Examples
    --------
    >>> from tensorpar import TTTensor
    >>> import numpy as np
    >>> tt = TTTensor([np.ones((1, 2, 2)), np.ones((2, 3, 1))])
    >>> tt.shape, tt.ranks
    ((2, 3), (1, 2, 1))
    >>> tt.to_dense()
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """

    def __init__(self, cores: Sequence[Any]) -> None:
        if not isinstance(cores, (list, tuple)) or len(cores) == 0:
            raise TypeError("cores must be a non-empty list of 3-D arrays")
        get_array_module(*cores)
        cores = [as_float_array(c, f"cores[{k}]", min_ndim=3, max_ndim=3)
                 for k, c in enumerate(cores)]
        check_core_chain(cores, rank_axis=2)
        for k, c in enumerate(cores):  # NaN would turn every later result into garbage or zero
            check_finite(c, f"cores[{k}]")
        self.cores: list[Any] = list(cores)

    # -- shape --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def ndim(self) -> int:
        return len(self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        return (1,) + tuple(int(c.shape[2]) for c in self.cores)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[c.dtype for c in self.cores])

    #: numpy scalars defer to the reflected operators below instead of broadcasting.
    __array_ufunc__ = None

    def __repr__(self) -> str:
        return f"TTTensor(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype})"

    def copy(self) -> TTTensor:
        """Deep copy.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4), 2, seed=0)
        >>> y = x.copy()
        >>> y.cores[0][...] = 0
        >>> bool(x.norm() > 0), y.norm()
        (True, 0.0)
        """
        return TTTensor([c.copy() for c in self.cores])

    # -- evaluation ---------------------------------------------------------
    def to_dense(self) -> Any:
        """Form the full tensor (``prod n_k`` entries; for small tensors only).

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> X = x.to_dense()
        >>> X.shape, bool(np.isclose(np.linalg.norm(X), x.norm()))
        ((3, 4, 5), True)
        """
        xp = get_array_module(*self.cores)
        out = self.cores[0].reshape(self.shape[0], -1)
        for c in self.cores[1:]:
            r, n, s = c.shape
            out = xp.reshape(out @ xp.reshape(c, (r, n * s)), (-1, s))
        return xp.reshape(out, self.shape)

    def entries(self, indices: Any, engine: Engine = "auto") -> Any:
        """Entries at given multi-indices.

        Parameters
        ----------
        indices : array_like of int, shape (m, d) or (d,)
            Multi-indices; negative values count from the end as in numpy.
        engine : {"auto", "numpy", "numba", "cupy"}
            "numpy" (and "cupy") gather the ``m`` core slices of each mode and
            contract them with a batched product; "numba" runs the ``m``
            chains in parallel without gathered copies.

        Returns
        -------
        ndarray of shape (m,) (or a scalar for a single multi-index)
            Computed with ``d`` batched vector-matrix products, O(m d r^2).

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> X = x.to_dense()
        >>> vals = x.entries([[0, 1, 2], [2, 3, -1]], engine="numpy")
        >>> bool(np.allclose(vals, [X[0, 1, 2], X[2, 3, 4]]))
        True
        """
        xp = get_array_module(*self.cores)
        idx = np.asarray(indices.get() if hasattr(indices, "get") else indices)
        single = idx.ndim == 1
        idx = np.atleast_2d(idx)
        if idx.ndim != 2 or idx.shape[1] != self.ndim:
            raise ValueError(
                f"indices must have shape (m, {self.ndim}), got {tuple(np.shape(indices))}")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        shape = np.asarray(self.shape)
        if ((idx < -shape) | (idx >= shape)).any():
            raise ValueError(f"indices out of range for a TT tensor of shape {self.shape}")
        idx = idx % shape
        if resolve_engine(engine, xp, op="tt_entries") == "numba":
            from ..kernels import get_kernel

            vals = get_kernel("tt_entries", "numba")(self.cores, idx)
            return vals[0] if single else vals
        vec = xp.ones((idx.shape[0], 1), dtype=self.dtype)
        for k, c in enumerate(self.cores):
            sel = c[:, xp.asarray(idx[:, k]), :]          # (r, m, s)
            vec = xp.einsum("mr,rms->ms", vec, sel)
        vals = vec[:, 0]
        return vals[0] if single else vals

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_dense(cls, X: Any, eps: float = 1e-12, max_rank: int | None = None) -> TTTensor:
        """TT-SVD of a dense tensor; see :func:`tensorpar.tt_svd`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> X = random_tt((4, 5, 6), 2, seed=0).to_dense()
        >>> y = TTTensor.from_dense(X, eps=1e-10)
        >>> y.ranks, bool(np.allclose(y.to_dense(), X))
        ((1, 2, 2, 1), True)
        """
        from .construct import tt_svd

        return tt_svd(X, eps=eps, max_rank=max_rank)

    @classmethod
    def from_function(cls, f: Callable[..., Any], grids: Sequence[Any], eps: float = 1e-12,
                      max_rank: int | None = None) -> TTTensor:
        """Sample ``f`` on a tensor grid and compress by TT-SVD; see :func:`tensorpar.tt_from_function`.

        Examples
        --------
        >>> g = np.linspace(0.0, 1.0, 8)
        >>> y = TTTensor.from_function(lambda a, b, c: a + b + c, [g, g, g], eps=1e-10)
        >>> y.ranks, round(float(y.entries([7, 7, 7])), 6)
        ((1, 2, 2, 1), 3.0)
        """
        from .construct import tt_from_function

        return tt_from_function(f, grids, eps=eps, max_rank=max_rank)

    # -- operators ------------------------------------------------------------
    def _constant(self, value: Any) -> TTTensor:
        xp = get_array_module(*self.cores)
        dtype = np.result_type(self.dtype, type(value))
        cores = [xp.ones((1, n, 1), dtype=dtype) for n in self.shape]
        cores[0] = cores[0] * value
        return TTTensor(cores)

    def __add__(self, other: Any) -> TTTensor:
        from .ops import tt_add

        if isinstance(other, _SCALARS):
            other = self._constant(other)
        if not isinstance(other, TTTensor):
            return NotImplemented
        return tt_add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> TTTensor:
        from .ops import tt_sub

        if isinstance(other, _SCALARS):
            other = self._constant(other)
        if not isinstance(other, TTTensor):
            return NotImplemented
        return tt_sub(self, other)

    def __rsub__(self, other: Any) -> TTTensor:
        if not isinstance(other, _SCALARS):
            return NotImplemented
        return self._constant(other) - self

    def __neg__(self) -> TTTensor:
        from .ops import tt_scale

        return tt_scale(self, -1.0)

    def __mul__(self, other: Any) -> TTTensor:
        from .ops import tt_hadamard, tt_scale

        if isinstance(other, TTTensor):
            return tt_hadamard(self, other)
        if isinstance(other, _SCALARS):
            return tt_scale(self, other)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> TTTensor:
        from .ops import tt_scale

        if not isinstance(other, _SCALARS):
            return NotImplemented
        if other == 0:
            raise ZeroDivisionError("division of a TTTensor by zero")
        return tt_scale(self, 1.0 / other)

    # -- methods delegating to the function modules ---------------------------
    def hadamard(self, other: TTTensor, engine: Engine = "auto") -> TTTensor:
        """Entrywise product; see :func:`tensorpar.tt_hadamard`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> z = x.hadamard(x)
        >>> z.ranks, bool(np.allclose(z.to_dense(), x.to_dense() ** 2))
        ((1, 4, 4, 1), True)
        """
        from .ops import tt_hadamard

        return tt_hadamard(self, other, engine=engine)

    def dot(self, other: TTTensor) -> float | complex:
        """Inner product ``sum conj(self) * other``; see :func:`tensorpar.tt_dot`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
        >>> bool(np.isclose(x.dot(y), np.sum(x.to_dense() * y.to_dense())))
        True
        """
        from .inner import tt_dot

        return tt_dot(self, other)

    def norm(self, method: Literal["gram", "qr"] = "gram") -> float:
        """Frobenius norm; see :func:`tensorpar.tt_norm`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> bool(np.isclose(x.norm(), np.linalg.norm(x.to_dense())))
        True
        """
        from .inner import tt_norm

        return tt_norm(self, method=method)

    def log_norm(self, method: Literal["gram", "qr"] = "gram") -> float:
        """Natural logarithm of the Frobenius norm; see :func:`tensorpar.tt_log_norm`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> bool(np.isclose((1e300 * x).log_norm(), 300 * np.log(10) + np.log(x.norm())))
        True
        """
        from .inner import tt_log_norm

        return tt_log_norm(self, method=method)

    def orthogonalize(self, direction: Literal["left", "right"] = "left") -> TTTensor:
        """QR sweep; see :func:`tensorpar.tt_orthogonalize`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> y = x.orthogonalize("left")
        >>> U = y.cores[0].reshape(3, -1)
        >>> bool(np.allclose(U.T @ U, np.eye(U.shape[1]))), bool(np.allclose(y.to_dense(), x.to_dense()))
        (True, True)
        """
        from .orth import tt_orthogonalize

        return tt_orthogonalize(self, direction)

    def round(self, eps: float = 1e-12, max_rank: int | None = None,
              method: Literal["qr", "gram", "randomized"] = "qr", **options: Any) -> TTTensor:
        """Recompress to relative accuracy ``eps``; see :func:`tensorpar.tt_round`.

        Examples
        --------
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> y = (x + x).round(eps=1e-10)
        >>> y.ranks, bool(np.allclose(y.to_dense(), 2 * x.to_dense()))
        ((1, 2, 2, 1), True)
        """
        from .rounding import tt_round

        return tt_round(self, eps=eps, max_rank=max_rank, method=method, **options)

    # -- interoperability ---------------------------------------------------
    @classmethod
    def from_tensorly(cls, tt: Any) -> TTTensor:
        """Build from a TensorLy TT; see :func:`tensorpar.tt.interop.tt_from_tensorly`.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorly.decomposition import tensor_train
        >>> X = np.arange(24.0).reshape(2, 3, 4)
        >>> TTTensor.from_tensorly(tensor_train(X, rank=[1, 2, 2, 1])).ranks
        (1, 2, 2, 1)
        """
        from .interop import tt_from_tensorly

        return tt_from_tensorly(tt)

    def to_tensorly(self) -> Any:
        """Convert to a TensorLy TT; see :func:`tensorpar.tt.interop.tt_to_tensorly`.

        Examples
        --------
        >>> import numpy as np
        >>> import tensorly as tl
        >>> from tensorpar import random_tt
        >>> x = random_tt((3, 4, 5), 2, seed=0)
        >>> bool(np.allclose(tl.tt_to_tensor(x.to_tensorly()), x.to_dense()))
        True
        """
        from .interop import tt_to_tensorly

        return tt_to_tensorly(self)
