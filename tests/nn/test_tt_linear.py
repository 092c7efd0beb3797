"""TTLinear and TT core initialisation: gradients, dense equality, TT-SVD, ranks, state, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import assert_gradients

from tensorpar._backend import to_numpy
from tensorpar.nn import TTLinear, load_state, save_state
from tensorpar.nn.tt_cores import resolve_tt_ranks, tt_num_params
from tensorpar.nn.tt_init import tt_matrix_init, tt_target_variance

IN, OUT = (2, 3, 2), (3, 2, 2)


@pytest.mark.parametrize("implementation", ["sweep", "factorized", "reconstructed", "auto"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients(implementation, bias):
    lay = TTLinear(IN, OUT, rank=[2, 3], bias=bias, implementation=implementation, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 12))
    res = assert_gradients(lay, x)
    assert set(res) == {"input0", "cores.0", "cores.1", "cores.2"} | ({"bias"} if bias else set())


def test_output_equals_reconstructed_dense_layer(xp):
    rng = np.random.default_rng(2)
    layouts = set()
    for implementation, batch in itertools.product(("sweep", "factorized", "reconstructed", "auto"),
                                                   (7, 40)):
        lay = TTLinear((4, 3, 5), (2, 6, 3), rank=3, implementation=implementation, seed=3, xp=xp)
        x = xp.asarray(rng.standard_normal((batch, 60)))
        W = to_numpy(lay.weight().to_dense())
        ref = to_numpy(x) @ W.T + to_numpy(lay.bias.data)
        np.testing.assert_allclose(to_numpy(lay(x)), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        layouts.add(lay.cache["tape"].batch_first)
        g = rng.standard_normal((batch, 36))
        np.testing.assert_allclose(to_numpy(lay.backward(xp.asarray(g))), g @ W, rtol=1e-12,
                                   atol=1e-12 * np.abs(g @ W).max())
    assert layouts == {True, False}   # rows as they come, and the transposed layout (the sweep)


def test_from_dense_eps_and_rank():
    rng = np.random.default_rng(4)
    # a weight with decaying TT spectrum, so eps truncates for real
    W = TTLinear((4, 4, 4), (4, 4, 4), rank=6, bias=False, seed=5).weight().to_dense()
    W = W + 1e-3 * rng.standard_normal(W.shape)
    for eps in (1e-1, 1e-2, 1e-8):
        lay = TTLinear.from_dense(W, (4, 4, 4), (4, 4, 4), eps=eps)
        err = np.linalg.norm(lay.weight().to_dense() - W)
        assert err <= eps * np.linalg.norm(W) * (1 + 1e-12)
        assert lay.bias is None
    lay = TTLinear.from_dense(W, (4, 4, 4), (4, 4, 4), rank=2, bias=np.arange(64.0))
    assert max(lay.ranks) == 2
    np.testing.assert_array_equal(lay.bias.data, np.arange(64.0))
    with pytest.raises(ValueError, match="rank=... or eps"):
        TTLinear.from_dense(W, (4, 4, 4), (4, 4, 4))
    with pytest.raises(ValueError, match="W has shape"):
        TTLinear.from_dense(W, (4, 4, 2), (4, 4, 4), eps=0.1)


def test_ranks_and_parameter_counts():
    assert resolve_tt_ranks(4, (4, 4), (4, 4)) == (1, 4, 1)
    assert resolve_tt_ranks([1, 2, 3, 1], (2, 2, 2), (2, 2, 2)) == (1, 2, 3, 1)
    assert resolve_tt_ranks(100, (2, 2), (2, 2)) == (1, 4, 1)  # clipped to full rank
    for frac in (0.05, 0.2, 0.5):
        ranks = resolve_tt_ranks(frac, (8, 8, 8), (8, 8, 8))
        n = tt_num_params((8, 8, 8), (8, 8, 8), ranks)
        bigger = tt_num_params((8, 8, 8), (8, 8, 8), [1, ranks[1] + 1, ranks[2] + 1, 1])
        assert n <= frac * 8**6 < bigger
    lay = TTLinear((8, 20, 20, 18), (12, 4, 4, 4), rank=4, bias=False, seed=0)
    assert lay.num_parameters() == 3232
    assert lay.compression() == pytest.approx(57600 * 768 / 3232)
    f = lay.flops(16)
    assert f["dense_forward"] == 2 * 16 * 57600 * 768 and f["backward"] > f["forward"] > 0


def test_state_dict_round_trip_and_file(tmp_path):
    a = TTLinear(IN, OUT, rank=2, seed=6)
    b = TTLinear(IN, OUT, rank=2, seed=7)
    sd = a.state_dict()
    assert list(sd) == ["bias", "cores.0", "cores.1", "cores.2"]
    b.load_state_dict(sd)
    x = np.random.default_rng(8).standard_normal((3, 12))
    np.testing.assert_array_equal(a(x), b(x))
    c = TTLinear(IN, OUT, rank=2, seed=9)
    save_state(a, tmp_path / "tt.npz")
    load_state(c, tmp_path / "tt.npz")
    np.testing.assert_array_equal(a(x), c(x))
    with pytest.raises(ValueError, match="shape"):
        TTLinear(IN, OUT, rank=3, seed=0).load_state_dict(sd)


@pytest.mark.parametrize("init", ["glorot", "he"])
def test_init_gives_target_variance(init):
    rows, cols, ranks = (4, 4, 4), (3, 5, 4), (1, 5, 3, 1)
    target = tt_target_variance(60, 64, init)
    samples = [tt_matrix_init(rows, cols, ranks, init, rng=s) for s in range(400)]
    from tensorpar import TTMatrix

    # one entry per draw (independent draws): its variance is the target
    vals = np.array([TTMatrix(c).to_dense()[5, 7] for c in samples])
    var = vals.var()
    # sample variance of 400 draws of a heavy-tailed (product) variable: allow 35 %
    assert abs(var / target - 1) < 0.35, (var, target)
    # pooled over every entry of every draw the estimate is far tighter
    pooled = np.mean([TTMatrix(c).to_dense().var() for c in samples])
    assert abs(pooled / target - 1) < 0.08, (pooled, target)
    with pytest.raises(ValueError, match="init must be"):
        tt_target_variance(1, 1, "xavier")  # type: ignore[arg-type]


@pytest.mark.parametrize("implementation", ["sweep", "factorized", "reconstructed"])
def test_saved_bytes_match_the_memory_model(implementation):
    lay = TTLinear((2, 3, 2, 2), (3, 2, 2, 2), rank=3, implementation=implementation, seed=0)
    lay(np.ones((5, 24)))
    plan = lay.plan(5)
    assert lay.saved_bytes() == 8 * plan.saved_elements == lay.cache["tape"].kept_bytes()
    lay.eval()
    lay(np.ones((5, 24)))
    assert lay.saved_bytes() == 0


def test_float32_layer():
    lay = TTLinear(IN, OUT, rank=2, dtype=np.float32, seed=0)
    x = np.ones((2, 12), np.float32)
    y = lay(x)
    assert y.dtype == np.float32 and lay.backward(np.ones_like(y)).dtype == np.float32
    assert lay.cores.grads()[0].dtype == np.float32


class FakeCupy:
    dtype = np.dtype(np.float64)
    ndim = 2
    shape = (2, 12)


FakeCupy.__module__ = "cupy._core"


def test_bad_input():
    lay = TTLinear(IN, OUT, rank=2, seed=0)
    with pytest.raises(ValueError, match="x must have 12 features"):
        lay(np.ones((2, 11)))
    with pytest.raises(ValueError, match="x contains NaN"):
        lay(np.full((2, 12), np.nan))
    with pytest.raises(TypeError, match="x"):
        lay(np.ones((2, 12), np.float32))
    with pytest.raises(TypeError, match="x"):
        lay(FakeCupy())
    with pytest.raises(ValueError, match="same number of modes"):
        TTLinear((2, 3), (2, 3, 4), rank=2)
    with pytest.raises(ValueError, match="in_shape\\[1\\]"):
        TTLinear((2, 0), (2, 3), rank=2)
    with pytest.raises(ValueError, match="ranks do not chain"):
        TTLinear((2, 2), (2, 2), None, cores=[np.ones((1, 2, 2, 3)), np.ones((2, 2, 2, 1))])
    with pytest.raises(ValueError, match="expected"):
        TTLinear((2, 2), (2, 2), None, cores=[np.ones((1, 2, 4, 2)), np.ones((2, 2, 1, 1))])
    with pytest.raises(ValueError, match="rank must have 1 inner"):
        TTLinear((2, 2), (2, 2), rank=[2, 2])
    with pytest.raises(ValueError, match="fraction"):
        TTLinear((2, 2), (2, 2), rank=1.5)
    with pytest.raises(ValueError, match="implementation"):
        TTLinear((2, 2), (2, 2), rank=2, implementation="fast")  # type: ignore[arg-type]
    y = lay(np.ones((2, 12)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        lay.backward(np.ones((2, 11)))
    lay.eval()
    lay(np.ones((2, 12)))
    with pytest.raises(RuntimeError, match="eval mode"):
        lay.backward(np.ones_like(y))


def test_tt_factory_in_a_transformer_block():
    from tensorpar.nn import TransformerBlock, tt_factory
    from tensorpar.nn.tt_linear import tt_modes

    assert tt_modes(48, 3) == (4, 4, 3) and tt_modes(1, 2) == (1, 1)
    block = TransformerBlock(12, 2, 24, linear=tt_factory(2, d=2, seed=0), seed=1)
    tt_names = [n for n, _ in block.named_parameters() if ".cores." in n]
    assert len(tt_names) == 4 * 2   # four linear maps, two cores each
    x = np.random.default_rng(2).standard_normal((2, 3, 12))
    res = assert_gradients(block, x)
    assert all(name in res for name in tt_names)
