"""Sum and mean of all entries of a tensor train, exact in scale.

Naming: :func:`tensorpar.tt_sum` already means the sum of several trains (a
train); the sum of the entries of one train is :func:`tt_entry_sum` (teneva's
``sum``) and their mean :func:`tt_entry_mean` (teneva's ``mean``).

**Algorithm.** ``sum_i X[i] = S_0 S_1 ... S_{d-1}`` with the mode sums
``S_k = sum_j G_k[:, j, :]`` (``r_k x r_{k+1}``; for the mean, divided by
``n_k``). Every core is first scaled by ``2**-e_k``, ``e_k`` the binary exponent
of its largest entry, so the entries of ``S_k`` are at most ``n_k``; the
running row vector ``v <- v S_k`` is renormalised by a power of two after
every core and the exponents are added as integers. Multiplying by a power
of two is exact, so no intermediate value overflows or underflows for any
number of cores and the result is the one of the unscaled computation; only
a result outside the floating-point range overflows (to ``inf``) or
underflows (:func:`scaled_entry_sum` returns it as mantissa and exponent).
Cost: ``O(sum_k n_k r_k r_{k+1})`` flops, one pass over the cores.

The distributed versions (:mod:`tensorpar.distributed.tt.entry_sum`) hold
each core split along its mode index: the mode sums of the slices add up, so
they pass in the two reductions (a maximum of the exponents and a sum of the
mode sums) and run the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .checks import check_tt
from .tensor import TTTensor

__all__ = ["tt_entry_sum", "tt_entry_mean", "scaled_entry_sum", "ldexp_scalar"]

#: Exponent reported for an all-zero core (below every float exponent).
ZERO_EXPONENT = -4096


def _pow2(a: Any, e: int) -> Any:
    """``a * 2**e`` exactly (real and imaginary parts separately for complex data)."""
    xp = get_array_module(a)
    if a.dtype.kind == "c":
        return xp.ldexp(a.real, e) + 1j * xp.ldexp(a.imag, e)
    return xp.ldexp(a, e)


def _exponent(a: Any) -> int:
    """Binary exponent ``e`` with ``max|a| < 2**e`` (``ZERO_EXPONENT`` for zeros)."""
    xp = get_array_module(a)
    amax = float(xp.abs(a).max()) if a.size else 0.0
    return math.frexp(amax)[1] if amax > 0 else ZERO_EXPONENT


def scaled_entry_sum(cores: Sequence[Any], *, mean: bool = False,
                     shape: Sequence[int] | None = None,
                     reduce_exponents: Callable[[np.ndarray], np.ndarray] | None = None,
                     reduce_sums: Callable[[Any], Any] | None = None) -> tuple[Any, int]:
    """Sum (or mean) of the entries of a train as ``mantissa * 2**exponent``.

    Parameters
    ----------
    cores : sequence of ndarray, core ``k`` of shape (r_k, m_k, r_{k+1})
        The cores, or (distributed) this process's slices along the mode index.
    mean : bool
        Divide mode ``k`` by ``shape[k]``.
    shape : sequence of int, optional
        Global mode sizes for ``mean`` (default: the cores' own).
    reduce_exponents : callable, optional
        Maximum over processes of the ``d`` core exponents (an int64 array).
    reduce_sums : callable, optional
        Sum over processes of the concatenated, scaled mode sums (a 1-d array).

    Returns
    -------
    (mantissa, exponent)
        A Python float or complex with ``0.5 <= |mantissa| < 1`` (or 0) and an int;
        the result is ``mantissa * 2**exponent``. ``(0, 0)`` for a zero sum.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTTensor
    >>> from tensorpar.tt.entry_sum import scaled_entry_sum
    >>> x = TTTensor([np.full((1, 2, 1), 2.0**600)] * 4)   # sum 2**2404
    >>> scaled_entry_sum(x.cores)
    (0.5, 2405)
    """
    xp = get_array_module(*cores)
    shape = [int(c.shape[1]) for c in cores] if shape is None else list(shape)
    exps = np.array([_exponent(c) for c in cores], dtype=np.int64)
    if reduce_exponents is not None:
        exps = np.asarray(reduce_exponents(exps), dtype=np.int64)
    if (exps == ZERO_EXPONENT).any():
        return 0.0, 0
    sums = [_pow2(c, -int(e)).sum(axis=1) for c, e in zip(cores, exps)]
    if mean:
        sums = [s / n for s, n in zip(sums, shape)]
    if reduce_sums is not None:  # one message for all cores: concatenate, reduce, split
        flat = reduce_sums(xp.concatenate([s.ravel() for s in sums]))
        ends = np.cumsum([0] + [s.size for s in sums])
        sums = [flat[a:b].reshape(s.shape) for a, b, s in zip(ends[:-1], ends[1:], sums)]
    v = sums[0]
    total = int(exps.sum())
    for k in range(1, len(sums) + 1):
        e = _exponent(v)
        if e == ZERO_EXPONENT:
            return 0.0, 0
        v = _pow2(v, -e)          # |v| in [0.5, 1): the next product cannot overflow
        total += e
        if k < len(sums):
            v = v @ sums[k]
    return v.reshape(-1)[0].item(), total


def ldexp_scalar(mantissa: Any, exponent: int) -> float | complex:
    """``mantissa * 2**exponent`` as a Python scalar; ``inf`` (not an error) on overflow.

    Examples
    --------
    >>> ldexp_scalar(0.75, 3), ldexp_scalar(0.5, 2000), ldexp_scalar(1 + 1j, 1)
    (6.0, inf, (2+2j))
    """
    with np.errstate(over="ignore", under="ignore"):
        if isinstance(mantissa, complex):
            return complex(np.ldexp(mantissa.real, exponent), np.ldexp(mantissa.imag, exponent))
        return float(np.ldexp(mantissa, exponent))


def tt_entry_sum(x: TTTensor) -> float | complex:
    """Sum of all entries of a tensor train (teneva's ``sum``).

    Not :func:`tensorpar.tt_sum`, which adds several trains. Exact in scale:
    cores are rescaled by powers of two (see :mod:`tensorpar.tt.entry_sum`),
    so the result is correct for any number of cores and overflows to
    ``inf`` only when it is itself outside the floating-point range.
    O(sum_k n_k r_k r_{k+1}) flops.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_tt
    >>> from tensorpar.tt.entry_sum import tt_entry_sum
    >>> x = random_tt((3, 4, 5), 2, seed=0)
    >>> bool(np.isclose(tt_entry_sum(x), x.to_dense().sum()))
    True
    >>> tt_entry_sum(2.0**1000 * x) == 2.0**1000 * tt_entry_sum(x)   # bit for bit
    True
    """
    return ldexp_scalar(*scaled_entry_sum(check_tt(x).cores))


def tt_entry_mean(x: TTTensor) -> float | complex:
    """Mean of all entries of a tensor train (teneva's ``mean``).

    Each mode sum is divided by its ``n_k``, so ``prod n_k`` is never formed
    (it overflows for long trains); exact in scale as :func:`tt_entry_sum`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTTensor
    >>> from tensorpar.tt.entry_sum import tt_entry_mean, tt_entry_sum
    >>> cores = [np.full((1, 10, 1), 2.0)] * 500 + [np.full((1, 10, 1), 0.5)] * 500
    >>> x = TTTensor(cores)          # 10**1000 entries, each equal to 1
    >>> tt_entry_mean(x), tt_entry_sum(x)
    (1.0, inf)
    """
    return ldexp_scalar(*scaled_entry_sum(check_tt(x).cores, mean=True))
