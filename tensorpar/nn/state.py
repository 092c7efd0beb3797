"""Saving and loading a module's parameters as ``.npz`` files (no pickle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .module import Module

__all__ = ["save_state", "load_state"]

_FORMAT = "tensorpar.nn.state/1"


def save_state(module: Module, path: str | Path) -> None:
    """Save ``module.state_dict()`` to an ``.npz`` file (no pickle).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from tensorpar.nn import Linear
    >>> a, b = Linear(3, 2, seed=0), Linear(3, 2, seed=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> save_state(a, path); load_state(b, path)
    >>> bool(np.array_equal(a.weight.data, b.weight.data))
    True
    """
    if not isinstance(module, Module):
        raise TypeError(f"module must be a Module, got {type(module).__name__}")
    state = module.state_dict()
    state["__format__"] = np.array(_FORMAT)
    np.savez(Path(path), **state)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def load_state(module: Module, path: str | Path, strict: bool = True) -> None:
    """Load a state saved by :func:`save_state` into ``module`` (names and shapes checked).

    Examples
    --------
    >>> import tempfile, os
    >>> from tensorpar.nn import Linear
    >>> a, b = Linear(3, 2, seed=0), Linear(3, 2, seed=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> np.savez(path, weight=a.weight.data)   # a plain .npz, not from save_state
    >>> load_state(b, path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ... is not a tensorpar.nn state file (tensorpar.nn.state/1)
    >>> save_state(a, path); load_state(b, path)
    >>> bool(np.array_equal(a.bias.data, b.bias.data))
    True
    """
    with np.load(Path(path), allow_pickle=False) as f:
        if "__format__" not in f.files or str(f["__format__"]) != _FORMAT:
            raise ValueError(f"{path} is not a tensorpar.nn state file ({_FORMAT})")
        state = {k: f[k] for k in f.files if k != "__format__"}
    module.load_state_dict(state, strict=strict)
