"""Inverted dropout with a seeded generator per layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .checks import cached, check_grad, check_input
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)`` (training only).

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1]``; ``p = 1`` zeroes everything.
    seed : int, optional
        Seeds the layer's own generator (``numpy.random.default_rng`` for
        numpy data, ``cupy.random.default_rng`` for cupy data, so the masks of
        the two differ). Each forward pass in training mode draws a new mask;
        :meth:`reseed` restarts the sequence.

    Notes
    -----
    In evaluation mode (``module.eval()``) and for ``p = 0`` the layer is the
    identity and keeps nothing. In training it keeps the scaled mask,
    ``x.size`` elements of ``x``'s dtype, for backward (``grad * mask``).

    Examples
    --------
    >>> import numpy as np
    >>> d = Dropout(0.5, seed=0)
    >>> y = d(np.ones(6))
    >>> sorted(set(y.tolist())), bool((d.backward(np.ones(6)) == y).all())
    ([0.0, 2.0], True)
    >>> d.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, *, seed: int | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the mask sequence from ``seed``.

        Examples
        --------
        >>> import numpy as np
        >>> d = Dropout(0.5, seed=0)
        >>> first = d(np.ones(8))
        >>> d.reseed(0)
        >>> bool((d(np.ones(8)) == first).all())
        True
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed
        self.generators: dict[str, Any] = {}

    def forward(self, x: Array) -> Array:
        check_input(x, "x", min_ndim=0)
        if not self.training or self.p == 0:
            self.cache = {"identity": True, "shape": tuple(x.shape), "like": x[:0] if x.ndim else x}
            return x
        xp = get_array_module(x)
        key = "numpy" if xp is np else "cupy"
        if key not in self.generators:
            self.generators[key] = xp.random.default_rng(self.seed)
        if self.p == 1:
            mask = xp.zeros(x.shape, dtype=x.dtype)
        else:
            keep = self.generators[key].random(x.shape, dtype=x.dtype) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.cache = {"mask": mask}
        return x * mask

    def backward(self, grad_out: Array) -> Array:
        c = cached(self.cache, "Dropout")
        if "mask" not in c:
            check_grad(grad_out, c["shape"], like=c["like"])
            return grad_out
        check_grad(grad_out, tuple(c["mask"].shape), like=c["mask"])
        return grad_out * c["mask"]

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
