"""Local validation followed by one agreement over the communicator.

Every distributed TT entry point runs its local checks through
:func:`agree_checked`, which hands their outcome and the arguments that must
be equal on every rank to :func:`tensorpar.distributed.comm.agree` (one small
``Allreduce``, counted as metadata) before the first message that moves data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..comm import agree

__all__ = ["agree_checked", "meta_or_none", "canonical"]


def agree_checked(comm: Any, check: Callable[[], Any], values: dict[str, Any]) -> Any:
    """Run the local ``check``, then agree on its outcome and on ``values`` (collective).

    Returns what ``check`` returned; raises the same exception on every rank
    when the check failed on any rank (ValueError and TypeError keep their
    type, others become RuntimeError) or ``values`` differ.

    Examples
    --------
    >>> from tensorpar.distributed.tt.agreement import agree_checked
    >>> agree_checked(None, lambda: 3, {"eps": 1e-8})   # one process: nothing to compare
    3
    """
    err: BaseException | None = None
    out = None
    try:
        out = check()
    except Exception as exc:  # noqa: BLE001 - any local failure must reach every rank
        err = exc
    agree(comm, {k: canonical(v) for k, v in values.items()}, error=err)
    return out


def canonical(value: Any) -> Any:
    """``value`` with numpy scalars as Python scalars, so that ``np.float64(x)`` agrees with ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar.distributed.tt.agreement import canonical
    >>> canonical((np.float64(0.5), [np.int64(3), "qr"]))
    (0.5, [3, 'qr'])
    """
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def meta_or_none(get: Callable[[], Any]) -> Any:
    """A value to agree on, or None when it cannot be read (the local check reports why).

    Examples
    --------
    >>> from tensorpar.distributed.tt.agreement import meta_or_none
    >>> meta_or_none(lambda: tuple(int(n) for n in (4, 5))), meta_or_none(lambda: len(3))
    ((4, 5), None)
    """
    try:
        return get()
    except Exception:  # noqa: BLE001 - malformed input is reported by the local check
        return None
