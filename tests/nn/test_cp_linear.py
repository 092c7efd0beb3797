"""CPLinear: gradients vs finite differences, equality with the dense and TT forms, state, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar._backend import to_numpy
from tensorpar.nn import CPLinear


@pytest.mark.parametrize("shapes", [((2, 3, 2), (3, 2, 2)), ((5,), (4,)), ((3, 4), (2, 2))])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients(shapes, bias):
    lay = CPLinear(*shapes, rank=3, bias=bias, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 3, int(np.prod(shapes[0]))))
    res = assert_gradients(lay, x)
    assert sum(k.startswith("factors.") for k in res) == len(shapes[0])


def test_output_equals_dense_and_tt_forms(xp):
    lay = CPLinear((4, 3, 5), (2, 6, 3), rank=4, seed=2, xp=xp)
    F = [to_numpy(p.data) for _, p in lay.factors.named_parameters()]
    # W[(a, b, c), (d, e, f)] = sum_r F0[a, d, r] F1[b, e, r] F2[c, f, r]
    full = np.einsum("adr,ber,cfr->abcdef", *F).reshape(36, 60)
    np.testing.assert_allclose(to_numpy(lay.to_dense()), full, rtol=1e-13, atol=1e-13)
    x = np.random.default_rng(3).standard_normal((7, 60))
    ref = x @ full.T + to_numpy(lay.bias.data)
    np.testing.assert_allclose(to_numpy(lay(xp.asarray(x))), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    g = np.random.default_rng(4).standard_normal((7, 36))
    np.testing.assert_allclose(to_numpy(lay.backward(xp.asarray(g))), g @ full, rtol=1e-12,
                               atol=1e-12 * np.abs(g @ full).max())


def test_init_variance_and_state():
    pooled = np.mean([CPLinear((4, 4), (4, 4), rank=5, seed=s).to_dense().var() for s in range(300)])
    assert abs(pooled / (2 / 32) - 1) < 0.1
    a, b = CPLinear((2, 3), (3, 2), rank=2, seed=5), CPLinear((2, 3), (3, 2), rank=2, seed=6)
    b.load_state_dict(a.state_dict())
    x = np.ones((2, 6))
    np.testing.assert_array_equal(a(x), b(x))
    assert a.num_parameters() == 2 * (3 * 2 + 2 * 3) + 6


class FakeCupy:
    dtype = np.dtype(np.float64)
    ndim = 2
    shape = (2, 6)


FakeCupy.__module__ = "cupy._core"


def test_bad_input():
    lay = CPLinear((2, 3), (3, 2), rank=2, seed=0)
    with pytest.raises(TypeError, match="x"):
        lay(FakeCupy())
    with pytest.raises(ValueError, match="x must have 6 features"):
        lay(np.ones((2, 5)))
    with pytest.raises(ValueError, match="x contains NaN"):
        lay(np.full((2, 6), np.nan))
    with pytest.raises(TypeError, match="x"):
        lay(np.ones((2, 6), np.float32))
    with pytest.raises(ValueError, match="same number of modes"):
        CPLinear((2, 3), (6,), rank=2)
    with pytest.raises(ValueError, match="rank"):
        CPLinear((2, 3), (3, 2), rank=0)
    with pytest.raises(ValueError, match="grad_out"):
        lay(np.ones((2, 6)))
        lay.backward(np.ones((2, 7)))
