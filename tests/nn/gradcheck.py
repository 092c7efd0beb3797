"""Central finite-difference check of a module's hand-written backward (for the tests).

Usage from any test in ``tests/nn/`` (pytest puts this folder on ``sys.path``)::

    from gradcheck import assert_gradients
    assert_gradients(layer, x)                       # input and every parameter
    assert_gradients(loss, logits, target)           # losses: forward returns a float

The scalar checked is ``L = sum_k <w_k, y_k>`` over the outputs ``y_k`` of
``module(*inputs)`` (one array or a tuple of arrays) with fixed random
weights ``w_k`` (a loss's float output is used as ``L`` directly). The
analytic gradients come from ``module.backward(w)`` (``backward(*w)`` for a
tuple of outputs, ``backward()`` for a loss); it returns one array (the
gradient of the first floating-point input) or a tuple (one per
floating-point input, in order, ``None`` allowed to skip one). Parameter
gradients are read from ``Parameter.grad`` after ``zero_grad``.

Each numeric entry is ``(L(v + eps) - L(v - eps)) / (2 eps)``. A tensor
passes when ``|num - ana| <= rtol * max(|num|, |ana|)`` (Euclidean norms
over the tensor) or the difference is below ``atol`` (both near zero). Work
in float64: the central difference's rounding error is about
``1e-16 |L| / eps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _to_host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _xp(a: Any) -> Any:
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def _entries(size: int, max_entries: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


def _numeric(loss: Callable[[], float], arr: Any, idx: np.ndarray, eps: float) -> np.ndarray:
    if not arr.flags.c_contiguous:
        raise ValueError("gradcheck perturbs arrays in place through a flat view: pass contiguous ones")
    flat = arr.reshape(-1)
    out = np.empty(len(idx))
    for j, i in enumerate(idx):
        old = flat[i].copy()
        flat[i] = old + eps
        lp = loss()
        flat[i] = old - eps
        lm = loss()
        flat[i] = old
        out[j] = (lp - lm) / (2 * eps)
    return out


def check_gradients(module: Any, *inputs: Any, eps: float = 1e-6, params: bool = True,
                    before_forward: Callable[[], None] | None = None,
                    max_entries: int | None = None, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Return ``{name: (relative error, absolute error)}`` for each checked input and parameter.

    Inputs are named ``input0, input1, ...`` (floating-point inputs only);
    parameters by their dotted names. ``before_forward`` runs before every
    forward pass (e.g. to reseed a dropout mask). ``max_entries`` samples
    that many entries of larger tensors (seeded).
    """
    # a seed sequence no test uses for its data: with default_rng(0) data and default_rng(0)
    # weights, a LayerNorm's output gradient is orthogonal to the weights (a maximum)
    rng = np.random.default_rng((seed, 7919))
    weights: list[Any] = []

    def forward() -> Any:
        if before_forward is not None:
            before_forward()
        return module(*inputs)

    first = forward()
    is_loss = isinstance(first, float)
    outs = first if isinstance(first, tuple) else (first,)
    if not is_loss:
        for y in outs:
            xp = _xp(y)
            weights.append(xp.asarray(rng.standard_normal(y.shape)).astype(y.dtype))

    def scalar() -> float:
        y = forward()
        if is_loss:
            return float(y)
        ys = y if isinstance(y, tuple) else (y,)
        return float(sum(float((w * yk).sum()) for w, yk in zip(weights, ys)))

    # analytic
    if hasattr(module, "zero_grad"):
        module.zero_grad()
    forward()
    if is_loss:
        got = module.backward()
    else:
        got = module.backward(*weights)
    got = got if isinstance(got, tuple) else (got,)
    float_inputs = [a for a in inputs if hasattr(a, "dtype") and a.dtype.kind == "f"]
    checks: list[tuple[str, Any, Any]] = []
    for k, (a, g) in enumerate(zip(float_inputs, got)):
        if g is not None:
            checks.append((f"input{k}", a, _to_host(g).copy()))
    if params and hasattr(module, "named_parameters"):
        checks += [(name, p.data, _to_host(p.grad).copy()) for name, p in module.named_parameters()]

    result: dict[str, tuple[float, float]] = {}
    for name, arr, ana in checks:
        if tuple(ana.shape) != tuple(arr.shape):
            raise AssertionError(f"gradient of {name} has shape {ana.shape}, expected {arr.shape}")
        idx = _entries(arr.size, max_entries, rng)
        num = _numeric(scalar, arr, idx, eps)
        a = ana.reshape(-1)[idx]
        diff = float(np.linalg.norm(num - a))
        scale = max(float(np.linalg.norm(num)), float(np.linalg.norm(a)))
        result[name] = (diff / scale if scale > 0 else 0.0, diff)
    return result


def assert_gradients(module: Any, *inputs: Any, rtol: float = 1e-6, atol: float = 1e-9,
                     **kwargs: Any) -> dict[str, tuple[float, float]]:
    """Run :func:`check_gradients` and raise AssertionError listing every tensor that fails."""
    result = check_gradients(module, *inputs, **kwargs)
    bad = {k: v for k, v in result.items() if not (v[0] <= rtol or v[1] <= atol)}
    if bad:
        lines = ", ".join(f"{k}: rel {r:.2e} abs {a:.2e}" for k, (r, a) in bad.items())
        raise AssertionError(f"gradient check failed (rtol {rtol}, atol {atol}): {lines}")
    if not result:
        raise AssertionError("gradient check compared nothing")
    return result
