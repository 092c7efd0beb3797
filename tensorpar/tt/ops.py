"""Tensor-train arithmetic: sums, scaling, Hadamard products, inner products and norms.

Every operation works core by core and never forms the dense tensor. The
per-core pieces (:func:`add_cores`, :func:`hadamard_core`,
:func:`dot_step`) are public so that the distributed TT code, which holds
each core split along its mode index, can apply them to its local slices:
sums and Hadamard products need no communication, and the partial
contraction of :func:`dot_step` over a slice of the mode index is summed
over processes.

Costs, for cores of size ``r x n x r``: sums O(d n r^2) (memory), Hadamard
products O(d n r^4) (memory: the result has ranks ``r^2``), inner products
and norms O(d n r^3) in two matrix products per core.

Large ``d``: ``tt_dot`` and ``tt_norm`` rescale the running contraction
after every core and keep the scale as a logarithm, so intermediate values
never overflow or underflow; only a final result outside the floating-point
range does. :func:`tt_log_norm` and :func:`tt_log_dot` return logarithms and
stay finite for any ``d``. Cores with entries far from 1 (beyond ``2**+-256``
in float64) are divided by a power of two before they are contracted
(:func:`tensorpar.tt.orth.normalize_cores`), so a train whose norm is
representable never gives NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import Engine, get_array_module, resolve_engine
from .._typing import Array, NormMethod, Position
from .._validation import check_same_shape, check_scalar
from .orth import normalize_cores, tt_orthonormalize
from .tensor import TTTensor

__all__ = ["tt_add", "tt_sub", "tt_scale", "tt_sum", "tt_hadamard", "tt_dot", "tt_norm",
           "tt_log_dot", "tt_log_norm", "add_cores", "hadamard_core", "dot_step",
           "core_position", "scaled_chain", "log_dot_from_chain", "dot_from_chain",
           "log_norm_from_chain"]


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


def _check_tt(x: Any, name: str) -> TTTensor:
    if not isinstance(x, TTTensor):
        raise TypeError(f"{name} must be a TTTensor, got {type(x).__name__}")
    return x


def _check_pair(x: Any, y: Any) -> None:
    _check_tt(x, "x")
    _check_tt(y, "y")
    check_same_shape([x.shape, y.shape], ["x", "y"])
    get_array_module(x.cores[0], y.cores[0])


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


def check_summands(tensors: Sequence[TTTensor], weights: Sequence[Any] | None) -> list | None:
    """Check a list of same-shape TTs on one device and their weights; return the weights."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) == 0:
        raise TypeError("tensors must be a non-empty list of TTTensor")
    for j, t in enumerate(tensors):
        _check_tt(t, f"tensors[{j}]")
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
    """``x + y`` in TT form: ranks ``r_k(x) + r_k(y)`` (no rounding)."""
    _check_pair(x, y)
    return tt_sum([x, y])


def tt_sub(x: TTTensor, y: TTTensor) -> TTTensor:
    """``x - y`` in TT form: ranks ``r_k(x) + r_k(y)`` (no rounding)."""
    _check_pair(x, y)
    return tt_sum([x, y], weights=[1.0, -1.0])


def tt_scale(x: TTTensor, alpha: Any) -> TTTensor:
    """``alpha * x``: the first core is scaled, the others are shared (not copied)."""
    _check_tt(x, "x")
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
    """
    xp = get_array_module(a, b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"cores have mode sizes {a.shape[1]} and {b.shape[1]}; expected equal")
    eng = resolve_engine(engine, xp, has_numba_kernel=True)
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
    _check_pair(x, y)
    return TTTensor([hadamard_core(a, b, engine) for a, b in zip(x.cores, y.cores)])


# -- inner products and norms -------------------------------------------------
def _dot_step_ab(W: Any, a: Any, b: Any) -> Any:
    ra, n, qa = a.shape
    rb, _, qb = b.shape
    t = (W @ b.reshape(rb, n * qb)).reshape(ra * n, qb)
    al = a.reshape(ra * n, qa)
    return (al.conj() if al.dtype.kind == "c" else al).T @ t


def dot_step(W: Any, a: Any, b: Any) -> Any:
    """One step of the left-to-right contraction of ``<x, y>``.

    ``W_new = sum_m a[:, m, :]^H @ W @ b[:, m, :]`` (``a`` conjugated).

    Parameters
    ----------
    W : ndarray, shape (r, s)
        Contraction of the cores to the left.
    a : ndarray, shape (r, n, q)
        Core of ``x``.
    b : ndarray, shape (s, n, t)
        Core of ``y``.

    Returns
    -------
    ndarray, shape (q, t)
        Two matrix products, ``2 n (r s t + r q t)`` flops (or the cheaper
        mirrored order ``2 n (r s q + s q t)``). Summing the results of
        slices of the mode index gives the result for the whole core.
    """
    ra, n, qa = a.shape
    rb, _, qb = b.shape
    if ra * rb * qb + ra * qa * qb <= ra * rb * qa + rb * qa * qb:
        return _dot_step_ab(W, a, b)
    # W_new^H = sum_m b_m^H W^H a_m: contract b first when that is cheaper.
    return _dot_step_ab(W.conj().T, b, a).conj().T


def scaled_chain(x_cores: Sequence[Array], y_cores: Sequence[Array],
                 reduce: Callable[[Array], Array] | None = None,
                 reduce_max: Callable[[Array], Array] | None = None) -> tuple[Any, float]:
    """Contract ``<x, y>`` core by core, rescaling after every core.

    Parameters
    ----------
    x_cores, y_cores : sequences of ndarray
        Cores (or, in the distributed code, local slices of cores along the
        mode index) of the two trains.
    reduce : callable, optional
        Applied to each step's ``r x s`` partial result before rescaling; the
        distributed code passes an allreduce, since :func:`dot_step` results
        over slices of the mode index add up.
    reduce_max : callable, optional
        Applied to the per-core largest magnitudes before cores far from 1
        are divided by powers of two (an allreduce(max) in the distributed
        code, so that every rank divides by the same power).

    Returns
    -------
    (value, log_scale)
        ``<x, y> = value * exp(log_scale)``; ``(0, 0)`` for a zero product and
        ``(nan, 0)`` when a step overflows to infinity or NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.ops import scaled_chain
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> value, log_scale = scaled_chain(x.cores, x.cores)
    >>> bool(np.isclose(value * np.exp(log_scale), np.linalg.norm(x.to_dense()) ** 2))
    True
    """
    xp = get_array_module(x_cores[0], y_cores[0])
    dtype = np.result_type(*[c.dtype for c in x_cores], *[c.dtype for c in y_cores])
    same = x_cores is y_cores
    x_cores, ex = normalize_cores(x_cores, reduce_max)
    y_cores, ey = (x_cores, ex) if same else normalize_cores(y_cores, reduce_max)
    W = xp.ones((1, 1), dtype=dtype)
    log_scale = (ex + ey) * math.log(2.0)
    for a, b in zip(x_cores, y_cores):
        W = dot_step(W, a, b)
        if reduce is not None:
            W = reduce(W)
        s = float(xp.abs(W).max())
        if s == 0.0:
            return 0.0, 0.0
        if not math.isfinite(s):
            return math.nan, 0.0
        W = W / s
        log_scale += math.log(s)
    return W[0, 0].item(), log_scale


def log_dot_from_chain(value: Any, log_scale: float) -> tuple[float | complex, float]:
    """``(sign, logabs)`` of ``value * exp(log_scale)``, the result of :func:`scaled_chain`.

    Examples
    --------
    >>> from tensorpar.tt.ops import log_dot_from_chain
    >>> log_dot_from_chain(-2.0, 1.0)
    (-1.0, 1.6931471805599454)
    """
    if value == 0 or not np.isfinite(value):
        return (0.0, -math.inf) if value == 0 else (value, math.nan)
    sign = value / abs(value)
    return sign, log_scale + math.log(abs(value))


def dot_from_chain(value: Any, log_scale: float) -> float | complex:
    """The inner product ``value * exp(log_scale)``; infinite only past the float64 range.

    Examples
    --------
    >>> from tensorpar.tt.ops import dot_from_chain
    >>> dot_from_chain(1.0, 709.5) < float("inf"), dot_from_chain(1.0, 710.0)
    (True, inf)
    """
    sign, logabs = log_dot_from_chain(value, log_scale)
    return sign * _exp(logabs) if sign != 0 else sign


def log_norm_from_chain(value: Any, log_scale: float) -> float:
    """``log ||x||`` from the :func:`scaled_chain` of ``x`` with itself (``-inf`` for zero).

    Examples
    --------
    >>> from tensorpar.tt.ops import log_norm_from_chain
    >>> log_norm_from_chain(1.0, 2.0)
    1.0
    """
    value = abs(value.real if isinstance(value, complex) else value)
    return -math.inf if value == 0 else 0.5 * (log_scale + math.log(value))


def tt_log_dot(x: TTTensor, y: TTTensor) -> tuple[float | complex, float]:
    """Inner product as ``(sign, logabs)`` with ``<x, y> = sign * exp(logabs)``.

    Like :func:`numpy.linalg.slogdet`: ``sign`` is ``+-1`` for real data or a
    complex number of modulus 1, and ``(0, -inf)`` for a zero inner product.
    ``x`` is conjugated. Finite for any number of cores.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_log_dot
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> sign, logabs = tt_log_dot(1e200 * x, 1e200 * x)
    >>> sign, bool(np.isclose(logabs, 400 * np.log(10) + 2 * np.log(np.linalg.norm(x.to_dense()))))
    (1.0, True)
    """
    _check_pair(x, y)
    return log_dot_from_chain(*scaled_chain(x.cores, y.cores))


def tt_dot(x: TTTensor, y: TTTensor) -> float | complex:
    """Inner product ``<x, y> = sum conj(x) * y`` by left-to-right contraction.

    O(d n r^3) in two matrix products per core; the running contraction is
    rescaled after every core, so only a result outside the floating-point
    range overflows (use :func:`tt_log_dot` then).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_dot
    >>> x, y = random_tt((3, 4, 5), 2, seed=0), random_tt((3, 4, 5), 3, seed=1)
    >>> bool(np.isclose(tt_dot(x, y), np.vdot(x.to_dense(), y.to_dense())))
    True
    """
    _check_pair(x, y)
    return dot_from_chain(*scaled_chain(x.cores, y.cores))


def tt_log_norm(x: TTTensor, method: NormMethod = "gram") -> float:
    """Natural logarithm of the Frobenius norm; finite for any number of cores.

    Parameters
    ----------
    x : TTTensor
    method : {"gram", "qr"}
        "gram" contracts ``<x, x>`` (two matrix products per core, the fast
        default); "qr" orthogonalizes and reads the norm off the last core. The
        Gram route computes ``||x||^2`` as a sum of terms as large as the
        squared norms of the partial contractions, so its relative error grows
        when ``x`` is a nearly cancelling sum (e.g. ``x - round(x)``); the QR
        route is accurate to machine precision relative to ``||x||`` at about
        twice the cost.

    Returns
    -------
    float
        ``log ||x||_F``; ``-inf`` for the zero tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTTensor, tt_log_norm
    >>> x = TTTensor([np.full((1, 4, 1), 10.0)] * 1000)
    >>> bool(np.isclose(tt_log_norm(x), 1000 * np.log(20.0)))
    True
    """
    _check_tt(x, "x")
    if method == "qr":
        return tt_orthonormalize(x, "left")[1]
    if method != "gram":
        raise ValueError(f"method must be 'gram' or 'qr', got {method!r}")
    return log_norm_from_chain(*scaled_chain(x.cores, x.cores))


def tt_norm(x: TTTensor, method: NormMethod = "gram") -> float:
    """Frobenius norm ``||x||_F`` (see :func:`tt_log_norm` for ``method``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt, tt_norm
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> bool(np.isclose(tt_norm(x), np.linalg.norm(x.to_dense())))
    True
    """
    return _exp(tt_log_norm(x, method))


def _exp(t: float) -> float:
    """``exp`` that overflows to ``inf`` instead of raising."""
    return math.inf if t > 709.78 else math.exp(t)

