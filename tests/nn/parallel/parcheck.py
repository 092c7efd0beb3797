"""The closeness check of a parallel layer against its serial twin (for the tests).

Usage from any test in ``tests/nn/parallel/`` (pytest puts this folder on ``sys.path``)::

    from parcheck import assert_close
    assert_close(y_parallel, y_serial)            # float64: 1e-12 of the larger of 1 and max|b|
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorpar._backend import to_numpy

#: float64 runs of the same sums in another order stay this close, relative to the data
TOL = 1e-12


def assert_close(a: Any, b: Any, tol: float = TOL, err_msg: str = "") -> None:
    """Assert ``|a - b| <= tol * max(1, max|b|)`` entrywise; numpy or cupy; NaN is never close."""
    a, b = to_numpy(a), to_numpy(b)
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, float(np.abs(b).max())),
                               equal_nan=False, err_msg=err_msg)


def assert_gathered_close(layer: Any, ref: Any, bias: bool) -> None:
    """Assert that a layer with ``gathered()`` (RotatedLinear, SummaLinear) holds the serial
    ``ref``'s weight, and after the same backward passes its weight (and bias) gradients."""
    full = layer.gathered(grad=True)
    assert_close(full["weight"], ref.weight.grad)
    if bias:
        assert_close(full["bias"], ref.bias.grad)
    assert_close(layer.gathered()["weight"], ref.weight.data)
