"""Matricized tensor times Khatri-Rao product (MTTKRP).

``mttkrp(X, factors, n) = unfold(X, n) @ khatri_rao([A_k for k != n])``,
shape ``(I_n, R)``, computed without forming the unfolding or the full
Khatri-Rao product.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ._backend import Engine, get_array_module, resolve_engine
from ._validation import as_float_array, check_factors, check_mode

__all__ = ["mttkrp", "mttkrp_reference", "mttkrp_sweep"]


def mttkrp_reference(X: Any, factors: Sequence[Any], mode: int) -> Any:
    """Plain-definition MTTKRP: the oracle of the tests (numpy or cupy).

    Contracts the modes other than ``mode`` one at a time with
    ``einsum``, which keeps the rank index shared (a Hadamard-style
    contraction) without forming the unfolding.
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


def mttkrp(X: Any, factors: Sequence[Any], mode: int, engine: Engine = "auto",
           out: Any = None) -> Any:
    """MTTKRP of a dense tensor in one mode.

    Parameters
    ----------
    X : ndarray, shape (I_0, ..., I_{N-1})
        Dense tensor, numpy or cupy.
    factors : list of ndarray, each (I_k, R)
        Factor matrices; ``factors[mode]`` is not read (it may be None).
    mode : int
    engine : {"auto", "numpy", "numba", "cupy"}
        See :mod:`tensorpar._backend` for how "auto" resolves.
    out : ndarray, shape (I_mode, R), optional

    Returns
    -------
    ndarray, shape (I_mode, R)
    """
    X = as_float_array(X, "X", min_ndim=2)
    mode = check_mode(mode, X.ndim)
    check_factors(factors, X.shape, skip=mode)
    xp = get_array_module(X, *[f for f in factors if f is not None])
    eng = resolve_engine(engine, xp, has_numba_kernel=False)
    res = mttkrp_reference(X, factors, mode)
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
    engine : {"auto", "numpy", "numba", "cupy"}
    """
    for n in range(X.ndim):
        factors[n] = update(n, mttkrp(X, factors, n, engine=engine))
