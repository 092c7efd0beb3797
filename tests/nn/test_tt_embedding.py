"""TTEmbedding: lookups equal the dense table, core gradients vs finite differences, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar._backend import to_numpy
from tensorpar.nn import TTEmbedding


def test_lookup_equals_table(xp):
    emb = TTEmbedding(50, 24, (4, 4, 4), (2, 3, 4), rank=[3, 2], seed=0, xp=xp)
    idx = np.array([[0, 49, 7], [7, 13, 0]])
    out = to_numpy(emb(xp.asarray(idx)))
    table = to_numpy(emb.table())
    assert table.shape == (50, 24)
    np.testing.assert_allclose(out, table[idx], rtol=1e-13, atol=1e-15)


def test_core_gradients_against_central_differences():
    emb = TTEmbedding(30, 12, (2, 4, 4), (2, 3, 2), rank=3, seed=1)
    idx = np.array([[0, 29, 5, 5], [17, 3, 29, 8]])   # repeated rows and repeated digits
    W = np.random.default_rng(2).standard_normal((2, 4, 12))
    emb.zero_grad()
    emb(idx)
    assert emb.backward(W) is None
    h = 1e-6
    for name, p in emb.named_parameters():
        num = np.zeros(p.shape)
        for i in np.ndindex(p.shape):
            old = p.data[i]
            p.data[i] = old + h
            up = float((emb(idx) * W).sum())
            p.data[i] = old - h
            down = float((emb(idx) * W).sum())
            p.data[i] = old
            num[i] = (up - down) / (2 * h)
        assert np.linalg.norm(p.grad - num) <= 1e-6 * np.linalg.norm(num), name
    # dense reference: the table gradient is a scatter-add, pulled back through the cores
    assert emb.num_parameters() == 1 * 2 * 2 * 3 + 3 * 4 * 3 * 3 + 3 * 4 * 2 * 1


def test_state_round_trip_and_bad_input():
    a = TTEmbedding(30, 12, (2, 4, 4), (2, 3, 2), rank=3, seed=1)
    b = TTEmbedding(30, 12, (2, 4, 4), (2, 3, 2), rank=3, seed=2)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.table(), b.table())
    with pytest.raises(ValueError, match="idx has entries outside \\[0, 30\\)"):
        a(np.array([30]))
    with pytest.raises(TypeError, match="idx must be an integer array"):
        a(np.array([1.0]))
    with pytest.raises(ValueError, match="num_embeddings"):
        TTEmbedding(40, 12, (2, 4, 4), (2, 3, 2), rank=3)
    with pytest.raises(ValueError, match="emb_shape"):
        TTEmbedding(30, 13, (2, 4, 4), (2, 3, 2), rank=3)
    with pytest.raises(ValueError, match="same number of modes"):
        TTEmbedding(30, 12, (2, 16), (2, 3, 2), rank=3)
    a(np.array([1, 2]))
    with pytest.raises(ValueError, match="grad_out"):
        a.backward(np.ones((2, 11)))
