"""dense helpers: khatri_rao's skip, integer shapes, lists as arrays."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import random_cp
from tensorpar.dense import fold, khatri_rao, mode_dot, tensor_norm, unfold


def test_khatri_rao_negative_skip_counts_from_the_end(rng):
    mats = [rng.standard_normal((n, 3)) for n in (2, 3, 4)]
    np.testing.assert_array_equal(khatri_rao(mats, skip=-1), khatri_rao(mats[:2]))
    np.testing.assert_array_equal(khatri_rao(mats, skip=-3), khatri_rao(mats[1:]))
    np.testing.assert_array_equal(khatri_rao(mats, skip=1), khatri_rao([mats[0], mats[2]]))


@pytest.mark.parametrize("skip,exc", [(5, ValueError), (3, ValueError), (-4, ValueError),
                                      (1.0, TypeError)])
def test_khatri_rao_skip_out_of_range(rng, skip, exc):
    mats = [rng.standard_normal((n, 3)) for n in (2, 3, 4)]
    with pytest.raises(exc, match="skip"):
        khatri_rao(mats, skip=skip)


def test_fold_shape_must_be_integers():
    M = np.ones((5, 42))
    with pytest.raises(TypeError, match="shape must hold integers"):
        fold(M, 0, (5.7, 6, 7))
    with pytest.raises(TypeError, match="shape must hold integers"):
        fold(M, 0, (5, True, 7))
    assert fold(M, 0, (np.int64(5), 6, 7)).shape == (5, 6, 7)


def test_lists_are_accepted_as_arrays():
    X = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unfold(X.tolist(), 1), unfold(X, 1))
    np.testing.assert_array_equal(fold(unfold(X, 2).tolist(), 2, (2, 3, 4)), X)
    np.testing.assert_array_equal(mode_dot(X.tolist(), np.ones((5, 3)).tolist(), 1),
                                  mode_dot(X, np.ones((5, 3)), 1))
    cp = random_cp((2, 3, 4), 2, seed=0)
    assert cp.inner(X.tolist()) == pytest.approx(cp.inner(X), rel=1e-15)
    assert tensor_norm(X.tolist()) == tensor_norm(X)


@pytest.mark.parametrize("bad", [[[1.0, 2.0], [3.0]], ["a", "b"], {"x": 1}])
def test_non_numeric_or_ragged_lists_rejected(bad):
    with pytest.raises(TypeError, match="X must be an array or a \\(nested\\) list"):
        unfold(bad, 0)


def test_tensor_norm_at_extreme_scales():
    X = np.random.default_rng(0).standard_normal((3, 4, 5))
    ref = np.linalg.norm(X)
    for c in (1e-300, 1e-170, 1e170, 1e300):
        assert tensor_norm(c * X) == pytest.approx(c * ref, rel=1e-14)
    for e in (-1000, 1000):
        assert tensor_norm(np.ldexp(X, e)) == np.ldexp(ref, e)
    assert tensor_norm(np.full(4, 1e308)) == np.inf  # the norm itself overflows
    assert np.isnan(tensor_norm(np.array([1.0, np.nan])))
    assert tensor_norm(np.zeros((2, 3))) == 0.0
