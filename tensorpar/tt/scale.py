"""Exact power-of-two scaling: results that do not depend on the data's magnitude.

Algorithms that form Gram matrices or products of entries overflow or
underflow when the entries are far from 1 (beyond about ``1e+-77`` in
float64). :func:`normalize_cores` divides such cores by a power of two first
and :func:`restore_pow2` multiplies the result back -- both exact in floating
point -- so ``f(c X) = c f(X)`` for any representable ``c``; data already in
the safe range is left untouched (bit-identical results). The distributed
code passes an allreduce(max) so that every rank divides by the same powers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array

__all__ = ["scale_exponent", "times_pow2", "normalize_cores", "restore_pow2"]


def scale_exponent(maxabs: float, dtype: Any) -> int:
    """Power of two ``e`` to divide by, so that ``maxabs / 2**e`` lies in ``[0.5, 1)``.

    0 when ``maxabs`` is zero, not finite, or already inside the safe range
    ``[2**-m, 2**m]`` with ``m`` a quarter of the dtype's exponent range
    (256 in float64, 32 in float32), where squares and products of two
    entries cannot overflow or underflow.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.scale import scale_exponent
    >>> scale_exponent(3.0, np.float64), scale_exponent(1e200, np.float64)
    (0, 665)
    """
    if not maxabs > 0.0 or not math.isfinite(maxabs):
        return 0
    e = math.frexp(maxabs)[1]
    safe = np.finfo(np.dtype(dtype)).maxexp // 4
    return 0 if -safe <= e <= safe else e


def times_pow2(a: Array, e: int) -> Array:
    """``a * 2**e``, exact (barring underflow of entries far below the largest).

    The factor is applied in steps small enough to be representable in
    ``a``'s dtype (for float32 a Python float ``2**149`` would overflow).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.scale import times_pow2
    >>> times_pow2(np.array([3.0, 1e-300]), 1000)[1] == 1e-300 * 2.0**1000
    np.True_
    """
    if e == 0:
        return a
    step = np.finfo(a.dtype).maxexp - 28
    while e != 0:
        f = max(-step, min(step, e))
        a = a * a.dtype.type(2.0 ** f)
        e -= f
    return a


def normalize_cores(cores: Sequence[Array],
                    reduce_max: Callable[[Array], Array] | None = None) -> tuple[list[Array], int]:
    """Divide the cores outside the safe range by powers of two; return them and the total exponent.

    Parameters
    ----------
    cores : sequence of ndarray
    reduce_max : callable, optional
        Applied to the array of per-core largest magnitudes; the distributed
        code passes an allreduce(max) so that every rank scales its slices
        by the same powers.

    Returns
    -------
    (cores, E)
        The train equals ``2**E`` times the returned one, exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.scale import normalize_cores
    >>> cores, e = normalize_cores([np.full((1, 2, 1), 1e200), np.ones((1, 3, 1))])
    >>> e, float(cores[0].max()), float(cores[1].max())
    (665, 0.6532100883151302, 1.0)
    """
    xp = get_array_module(*cores)
    big = np.array([float(xp.abs(c).max()) for c in cores])
    if reduce_max is not None:
        big = np.asarray(reduce_max(big), dtype=np.float64)
    dtype = np.result_type(*[c.dtype for c in cores])
    exps = [scale_exponent(float(m), dtype) for m in big]
    return [times_pow2(c, -e) for c, e in zip(cores, exps)], sum(exps)


def restore_pow2(cores: Sequence[Array], e: int, position: int,
                 spread: bool = False) -> list[Array]:
    """Multiply a train by ``2**e`` exactly.

    The factor goes on ``cores[position]`` when that core stays in range,
    otherwise (or with ``spread=True``, a rule that does not look at the
    entries, as the distributed code needs) it is spread evenly over all cores.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.tt.scale import restore_pow2
    >>> [float(c.max()) for c in restore_pow2([np.ones((1, 2, 1))] * 2, 3, 0)]
    [8.0, 1.0]
    >>> [float(c.max()) for c in restore_pow2([np.ones((1, 2, 1))] * 2, 3, 0, spread=True)]
    [4.0, 2.0]
    """
    cores = list(cores)
    if e == 0:
        return cores
    if not spread:
        xp = get_array_module(*cores)
        fin = np.finfo(np.result_type(*[c.dtype for c in cores]))
        big = float(xp.abs(cores[position]).max())
        top = math.frexp(big)[1] + e if big > 0 else 0
        if fin.minexp + 60 <= top <= fin.maxexp - 4:
            cores[position] = times_pow2(cores[position], e)
            return cores
    d = len(cores)
    return [times_pow2(c, e // d + (1 if k < e % d else 0)) for k, c in enumerate(cores)]
