"""Sums and means of all entries of a TT: dense and teneva references, scale sweep, long trains."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tensorpar import TTTensor, random_tt, tt_scale
from tensorpar.tt.entry_sum import scaled_entry_sum, tt_entry_mean, tt_entry_sum

CASES = [((3, 4, 5), 2), ((7,), 1), ((2, 3, 2, 3, 2), 4), ((6, 1, 5), 3)]


@pytest.mark.parametrize("shape, rank", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_against_dense(xp, shape, rank, dtype):
    x = random_tt(shape, rank, seed=5, dtype=dtype)
    x = TTTensor([xp.asarray(c) for c in x.cores])
    dense = random_tt(shape, rank, seed=5, dtype=dtype).to_dense()
    dense = dense.astype(np.complex128 if dtype == np.complex128 else np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    scale = np.abs(dense).sum()
    assert abs(tt_entry_sum(x) - dense.sum()) <= tol * scale
    assert abs(tt_entry_mean(x) - dense.mean()) <= tol * scale / dense.size


def test_against_teneva():
    teneva = pytest.importorskip("teneva")
    Y = teneva.rand([4, 5, 6, 7, 3], 3, seed=2)
    x = TTTensor(Y)
    assert tt_entry_sum(x) == pytest.approx(teneva.sum(Y), rel=1e-13)
    assert tt_entry_mean(x) == pytest.approx(teneva.mean(Y), rel=1e-13)


@pytest.mark.parametrize("k", range(-300, 301, 25))
def test_scale_sweep(k):
    x = random_tt((4, 5, 6, 3), 3, seed=1)
    base = tt_entry_sum(x)
    c = 10.0 ** k
    assert tt_entry_sum(tt_scale(x, c)) == pytest.approx(c * base, rel=1e-14)
    assert tt_entry_mean(tt_scale(x, c)) == pytest.approx(c * tt_entry_mean(x), rel=1e-14)
    # powers of two are exact: bit-for-bit the scaled result
    e = int(round(k * math.log2(10)))
    if abs(e) < 1000:
        assert tt_entry_sum(tt_scale(x, 2.0 ** e)) == base * 2.0 ** e


def test_scale_spread_over_cores_does_not_overflow():
    # 1e300 in every one of 4 cores: entries of 1e1200 are not representable,
    # but 1e-300 in the others brings the sum back to a representable value
    cores = [np.full((1, 3, 1), 1e300)] * 2 + [np.full((1, 3, 1), 1e-300)] * 2
    assert tt_entry_sum(TTTensor(cores)) == pytest.approx(81.0, rel=1e-14)


def test_long_train_product_of_pieces():
    """1000 cores: rank-1 junctions make the sum a product of 100 ten-core sums."""
    pieces = [tt_scale(random_tt((3,) * 10, 3, seed=s), 1e-10) for s in range(100)]
    cores = [c for p in pieces for c in p.cores]
    sums = [p.to_dense().sum() for p in pieces]
    mantissa, exponent = scaled_entry_sum(cores)
    assert 0.5 <= abs(mantissa) < 1.0
    want_log = math.fsum(math.log(abs(s)) for s in sums)
    got_log = math.log(abs(mantissa)) + exponent * math.log(2.0)
    assert got_log == pytest.approx(want_log, rel=1e-12)
    assert np.sign(mantissa) == np.prod(np.sign(sums))
    # the value itself is far outside the float range
    assert abs(want_log) > 800 and tt_entry_sum(TTTensor(cores)) in (0.0, math.inf, -math.inf)


def test_long_train_exact_values():
    up = [np.full((1, 2, 1), 2.0**10)] * 500   # mode sums 2**11: naive products overflow
    down = [np.full((1, 2, 1), 2.0**-12)] * 500  # mode sums 2**-11
    assert tt_entry_sum(TTTensor(up + down)) == 1.0
    assert tt_entry_mean(TTTensor(up + down)) == 2.0**-1000
    small = [np.full((1, 2, 1), 0.25)] * 1000   # entries 2**-2000 underflow, the sum does not
    assert tt_entry_sum(TTTensor(small)) == 2.0**-1000
    assert tt_entry_mean(TTTensor([np.full((1, 10, 1), 3.0)] * 1000)) == math.inf


def test_zero_and_cancelling():
    x = random_tt((3, 4), 2, seed=0)
    assert tt_entry_sum(tt_scale(x, 0.0)) == 0.0
    g = np.array([[[1.0], [-1.0]]])
    assert tt_entry_sum(TTTensor([g, np.ones((1, 3, 1))])) == 0.0


def test_bad_input():
    with pytest.raises(TypeError, match="x must be a TTTensor"):
        tt_entry_sum(np.ones((2, 2)))
    with pytest.raises(TypeError, match="x must be a TTTensor"):
        tt_entry_mean([np.ones((1, 2, 1))])
