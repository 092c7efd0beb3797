"""The variants of CP-ALS beyond the plain iteration, and their checks.

One record, :class:`ALSVariant`, says which of these a run uses; the shared
loop (:mod:`tensorpar.cp.loop`) reads it from the state, the checkpoint
stores it and a resume compares it:

* ``nonnegative_modes`` -- modes updated by HALS (``n_inner`` column sweeps
  per update, :func:`~tensorpar.cp.update.hals_factor_update`), the others
  by the least-squares solve;
* ``l2_reg`` -- ridge ``lambda sum_n ||A_n||^2`` on the factors as TensorLy
  holds them (weights 1, each factor with its own column scales: see
  :mod:`tensorpar.cp.scales`);
* ``fixed_modes`` -- factors never updated;
* ``linesearch`` -- Bro's extrapolation between sweeps
  (:mod:`tensorpar.cp.accel`);
* ``missing`` -- ``None`` (every entry observed), ``"em"`` (missing entries
  imputed by the model after each sweep) or ``"wls"`` (row-wise weighted
  least squares), :mod:`tensorpar.cp.missing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .._validation import check_positive_int

__all__ = ["ALSVariant", "MissingMethod", "check_variant", "check_modes"]

#: How CP-ALS treats missing entries (:mod:`tensorpar.cp.missing`).
MissingMethod = Literal["em", "wls"]


@dataclass(frozen=True)
class ALSVariant:
    """Which CP-ALS variant a run uses (module docstring); the default is plain ALS.

    Examples
    --------
    >>> ALSVariant().tracks_scales, ALSVariant(l2_reg=0.1).tracks_scales
    (False, True)
    """

    nonnegative_modes: tuple[int, ...] = ()
    l2_reg: float = 0.0
    fixed_modes: tuple[int, ...] = ()
    n_inner: int = 1
    linesearch: bool = False
    missing: MissingMethod | None = None

    @property
    def tracks_scales(self) -> bool:
        """Whether the loop keeps each factor's column scales (ridge, extrapolation)."""
        return self.l2_reg > 0 or self.linesearch

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), as the checkpoint's JSON stores them.

        Examples
        --------
        >>> ALSVariant(fixed_modes=(0,)).as_dict()["fixed_modes"]
        [0]
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ALSVariant:
        """Inverse of :meth:`as_dict`.

        Examples
        --------
        >>> v = ALSVariant(nonnegative_modes=(0, 2), l2_reg=0.5)
        >>> ALSVariant.from_dict(v.as_dict()) == v
        True
        """
        return cls(nonnegative_modes=tuple(int(m) for m in d["nonnegative_modes"]),
                   l2_reg=float(d["l2_reg"]),
                   fixed_modes=tuple(int(m) for m in d["fixed_modes"]),
                   n_inner=int(d["n_inner"]), linesearch=bool(d["linesearch"]),
                   missing=d["missing"])


def check_modes(value: Any, ndim: int, name: str) -> tuple[int, ...]:
    """A sorted tuple of distinct modes in ``[0, ndim)`` (negatives count from the end).

    Examples
    --------
    >>> check_modes([2, -3], 3, "fixed_modes")
    (0, 2)
    >>> check_modes([3], 3, "fixed_modes")
    Traceback (most recent call last):
    ...
    ValueError: fixed_modes: mode 3 is out of range for a tensor of order 3
    """
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of ints, got {type(value).__name__}")
    out = []
    for m in value:
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"{name} must hold ints, got {type(m).__name__}")
        if not -ndim <= m < ndim:
            raise ValueError(f"{name}: mode {m} is out of range for a tensor of order {ndim}")
        out.append(int(m) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names a mode twice: {list(value)}")
    return tuple(sorted(out))


def _nonnegative_modes(value: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(value, (bool, np.bool_)):
        return tuple(range(ndim)) if value else ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"nonnegative must be a bool, got {type(value).__name__} (or a "
                        "sequence of modes)")
    return check_modes(value, ndim, "nonnegative")


def check_variant(ndim: int, *, nonnegative: Any = False, l2_reg: Any = 0.0,
                  fixed_modes: Any = None, n_inner: Any = 1, linesearch: Any = False,
                  missing_method: Any = "em", masked: bool = False) -> ALSVariant:
    """Validate the variant options of CP-ALS (TypeError/ValueError naming the argument).

    ``missing_method`` is checked always and recorded only when ``masked``.

    Examples
    --------
    >>> check_variant(3, nonnegative=[0, 2], l2_reg=0.5).nonnegative_modes
    (0, 2)
    >>> check_variant(3, l2_reg=-1)
    Traceback (most recent call last):
    ...
    ValueError: l2_reg must be a finite number >= 0, got -1
    """
    nn = _nonnegative_modes(nonnegative, ndim)
    if isinstance(l2_reg, bool) or not isinstance(l2_reg, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(l2_reg) and l2_reg >= 0):
        raise ValueError(f"l2_reg must be a finite number >= 0, got {l2_reg!r}")
    fixed = check_modes(fixed_modes, ndim, "fixed_modes")
    inner = check_positive_int(n_inner, "n_inner")
    if not isinstance(linesearch, (bool, np.bool_)):
        raise TypeError(f"linesearch must be a bool, got {type(linesearch).__name__}")
    if missing_method not in ("em", "wls"):
        raise ValueError(f"missing_method must be 'em' or 'wls', got {missing_method!r}")
    if masked and missing_method == "wls" and nn:
        raise ValueError("missing_method='wls' has no nonnegative variant; use "
                         "missing_method='em' with nonnegative")
    return ALSVariant(nonnegative_modes=nn, l2_reg=float(l2_reg), fixed_modes=fixed,
                      n_inner=inner, linesearch=bool(linesearch),
                      missing=missing_method if masked else None)
