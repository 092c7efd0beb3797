"""Tensor-train arithmetic: sums, scaling and Hadamard products.

Every operation works core by core and never forms the dense tensor. The
per-core pieces (:func:`add_cores`, :func:`hadamard_core`) are public so
that the distributed TT code, which holds each core split along its mode
index, can apply them to its local slices: sums and Hadamard products need
no communication. Inner products and norms are in :mod:`tensorpar.tt.inner`
(re-exported here).

Costs, for cores of size ``r x n x r``: sums O(d n r^2) (memory), Hadamard
products O(d n r^4) (memory: the result has ranks ``r^2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import Engine, get_array_module, resolve_engine
from .._typing import Position
from .._validation import check_same_shape, check_scalar
from .checks import check_tt, check_tt_pair
from .inner import dot_step, scaled_chain, tt_dot, tt_log_dot, tt_log_norm, tt_norm
from .tensor import TTTensor

__all__ = ["tt_add", "tt_sub", "tt_scale", "tt_sum", "tt_hadamard", "add_cores",
           "hadamard_core", "core_position", "check_summands",
           # re-exported from tensorpar.tt.inner
           "tt_dot", "tt_norm", "tt_log_dot", "tt_log_norm", "dot_step", "scaled_chain"]


def core_position(k: int, d: int) -> Position:
    """Position of core ``k`` in a train of ``d`` cores, as :func:`add_cores` takes it.

    Examples
    --------
    >>> from tensorpar.tt.ops import core_position
    >>> [core_position(k, 3) for k in range(3)], core_position(0, 1)
    (['first', 'middle', 'last'], 'only')
    """
    if d == 1:
        return "only"
    return "first" if k == 0 else ("last" if k == d - 1 else "middle")


# -- sums ------------------------------------------------------------------
def add_cores(cores: Sequence[Any], position: Position,
              weights: Sequence[Any] | None = None) -> Any:
    """Core of a sum of TTs from the matching cores of the summands.

    Parameters
    ----------
    cores : sequence of ndarray, core ``j`` of shape (a_j, n, b_j)
        The cores at one position of every summand.
    position : {"first", "middle", "last", "only"}
        "first" concatenates along the right rank (shape ``(1, n, sum b_j)``),
        "last" along the left rank (``(sum a_j, n, 1)``), "middle" builds the
        block-diagonal core ``(sum a_j, n, sum b_j)``, "only" (``d = 1``) adds.
    weights : sequence of scalars, optional
        Coefficients of the summands; applied to the "first" (or "only") core.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> from tensorpar import random_tt
    >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
    >>> cores = [add_cores([x.cores[k], y.cores[k]], p, weights=[1.0, -1.0] if k == 0 else None)
    ...          for k, p in enumerate(["first", "middle", "last"])]
    >>> [c.shape for c in cores]
    [(1, 3, 5), (5, 4, 5), (5, 5, 1)]
    >>> bool(np.allclose(TTTensor(cores).to_dense(), x.to_dense() - y.to_dense()))
    True
    """
    xp = get_array_module(*cores)
    dtype = np.result_type(*[c.dtype for c in cores], *(weights or []))
    if weights is not None and position in ("first", "only"):
        cores = [c * w for c, w in zip(cores, weights)]
    if position == "only":
        out = cores[0].astype(dtype, copy=True)
        for c in cores[1:]:
            out += c
        return out
    if position == "first":
        return xp.concatenate([c.astype(dtype, copy=False) for c in cores], axis=2)
    if position == "last":
        return xp.concatenate([c.astype(dtype, copy=False) for c in cores], axis=0)
    n = cores[0].shape[1]
    rows = sum(c.shape[0] for c in cores)
    cols = sum(c.shape[2] for c in cores)
    out = xp.zeros((rows, n, cols), dtype=dtype)
    i = j = 0
    for c in cores:
        out[i:i + c.shape[0], :, j:j + c.shape[2]] = c
        i += c.shape[0]
        j += c.shape[2]
    return out


def check_summands(tensors: Sequence[TTTensor], weights: Sequence[Any] | None) -> list[Any] | None:
    """Check a list of same-shape TTs on one device and their weights; return the weights."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) == 0:
        raise TypeError("tensors must be a non-empty list of TTTensor")
    for j, t in enumerate(tensors):
        check_tt(t, f"tensors[{j}]")
    check_same_shape([t.shape for t in tensors], [f"tensors[{j}]" for j in range(len(tensors))])
    get_array_module(*[t.cores[0] for t in tensors])
    if weights is None:
        return None
    if len(weights) != len(tensors):
        raise ValueError(f"weights has length {len(weights)}, expected {len(tensors)}")
    return [check_scalar(w, f"weights[{j}]") for j, w in enumerate(weights)]


def tt_sum(tensors: Sequence[TTTensor], weights: Sequence[Any] | None = None) -> TTTensor:
    """``sum_j weights[j] * tensors[j]`` in TT form; the ranks add.

    Parameters
    ----------
    tensors : sequence of TTTensor
        Same shape.
    weights : sequence of scalars, optional
        Default all ones.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_sum
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> s = tt_sum([x, x, x], weights=[1.0, 2.0, -1.0])
    >>> s.ranks
    (1, 6, 6, 1)
    >>> bool(np.allclose(s.to_dense(), 2 * x.to_dense()))
    True
    """
    weights = check_summands(tensors, weights)
    d = tensors[0].ndim
    return TTTensor([add_cores([t.cores[k] for t in tensors], core_position(k, d), weights)
                     for k in range(d)])


def tt_add(x: TTTensor, y: TTTensor) -> TTTensor:
    """``x + y`` in TT form: ranks ``r_k(x) + r_k(y)`` (no rounding).

    Examples
    --------
    >>> from tensorpar import random_tt, tt_add
    >>> tt_add(random_tt((3, 4), 2, seed=0), random_tt((3, 4), 1, seed=1)).ranks
    (1, 3, 1)
    """
    check_tt_pair(x, y)
    return tt_sum([x, y])


def tt_sub(x: TTTensor, y: TTTensor) -> TTTensor:
    """``x - y`` in TT form: ranks ``r_k(x) + r_k(y)`` (no rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_sub
    >>> x = random_tt((3, 4), 2, seed=0)
    >>> bool(np.abs(tt_sub(x, x).to_dense()).max() < 1e-15)
    True
    """
    check_tt_pair(x, y)
    return tt_sum([x, y], weights=[1.0, -1.0])


def tt_scale(x: TTTensor, alpha: Any) -> TTTensor:
    """``alpha * x``: the first core is scaled, the others are shared (not copied).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_scale
    >>> x = random_tt((3, 4), 2, seed=0)
    >>> bool(np.allclose(tt_scale(x, 2.0).to_dense(), 2 * x.to_dense()))
    True
    """
    check_tt(x, "x")
    alpha = check_scalar(alpha)
    return TTTensor([x.cores[0] * alpha] + list(x.cores[1:]))


# -- Hadamard product ------------------------------------------------------
def hadamard_core_reference(a: Any, b: Any) -> Any:
    """Face-splitting product of two cores by broadcasting (numpy engine, the oracle).

    ``out[i * s + j, m, k * t + l] = a[i, m, k] * b[j, m, l]`` for ``a`` of shape
    ``(r, n, q)`` and ``b`` of shape ``(s, n, t)``; ``out`` has shape ``(r s, n, q t)``.
    """
    r, n, q = a.shape
    s, _, t = b.shape
    return (a[:, None, :, :, None] * b[None, :, :, None, :]).reshape(r * s, n, q * t)


def hadamard_core(a: Any, b: Any, engine: Engine = "auto") -> Any:
    """Core of the Hadamard (entrywise) product of two TTs; ranks multiply.

    Parameters
    ----------
    a : ndarray, shape (r, n, q)
    b : ndarray, shape (s, n, t)
    engine : {"auto", "numpy", "numba", "cupy"}
        "numpy" broadcasts (:func:`hadamard_core_reference`); "numba" and
        "cupy" write the output in one parallel pass.

    Returns
    -------
    ndarray, shape (r s, n, q t)
        ``out[i * s + j, m, k * t + l] = a[i, m, k] * b[j, m, l]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.standard_normal((2, 4, 3)), rng.standard_normal((1, 4, 2))
    >>> c = hadamard_core(a, b, engine="numpy")
    >>> c.shape, bool(np.isclose(c[1 * 1 + 0, 2, 2 * 2 + 1], a[1, 2, 2] * b[0, 2, 1]))
    ((2, 4, 6), True)
    """
    xp = get_array_module(a, b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"cores have mode sizes {a.shape[1]} and {b.shape[1]}; expected equal")
    eng = resolve_engine(engine, xp, op="tt_hadamard_core")
    if eng == "numpy":
        return hadamard_core_reference(a, b)
    from ..kernels import get_kernel

    return get_kernel("tt_hadamard_core", eng)(a, b)


def tt_hadamard(x: TTTensor, y: TTTensor, engine: Engine = "auto") -> TTTensor:
    """Entrywise product ``x * y`` in TT form; ranks ``r_k(x) r_k(y)`` (no rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_hadamard
    >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
    >>> z = tt_hadamard(x, y)
    >>> z.ranks
    (1, 6, 6, 1)
    >>> bool(np.allclose(z.to_dense(), x.to_dense() * y.to_dense()))
    True
    """
    check_tt_pair(x, y)
    return TTTensor([hadamard_core(a, b, engine) for a, b in zip(x.cores, y.cores)])
