"""cp_als with missing entries: TensorLy's masked parafac from one start, IL2, WLS, checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tensorpar import CPTensor, cp_als
from tensorpar.cp.missing import row_grams, wls_factor_update

tl = pytest.importorskip("tensorly")
from tensorly.decomposition import parafac  # noqa: E402

R = 3


def _problem(shape=(9, 8, 7), seed=0, frac=0.3):
    rng = np.random.default_rng(seed)
    X = CPTensor([rng.random((s, R)) for s in shape]).to_dense() + 0.1 * rng.random(shape)
    W = rng.random(shape) > frac
    init = [rng.random((s, R)) for s in shape]
    return X, W, init


def _observed_fit(model, W, X):
    return 1 - np.linalg.norm(W * (X - model)) / np.linalg.norm(W * X)


def _tensorly_fits(X, W, init, iters, **kw):
    """Fits on the observed entries of TensorLy's models after each iteration."""
    models = []

    def cb(cp, _err):
        models.append(tl.cp_to_tensor((cp.weights.copy(), [f.copy() for f in cp.factors])))

    X0 = np.where(W, X, 0.0)
    parafac(X0, R, init=(np.ones(R), [f.copy() for f in init]), n_iter_max=iters, tol=0,
            mask=W.astype(float), return_errors=True, callback=cb, **kw)
    return [_observed_fit(m, W, X) for m in models[1:]]


def test_em_equals_tensorly_masked_parafac():
    X, W, init = _problem()
    ref = _tensorly_fits(X, W, init, 12)
    _, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), mask=W, max_iter=12, tol=0)
    assert len(res.fits) == len(ref) == 12
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-8)


def test_em_with_l2_equals_tensorly():
    X, W, init = _problem(seed=3)
    ref = _tensorly_fits(X, W, init, 8, l2_reg=0.3)
    _, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), mask=W, max_iter=8, tol=0,
                    l2_reg=0.3)
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-8)


def test_nan_entries_are_the_mask_and_their_values_are_not_read():
    X, W, init = _problem(seed=1)
    kw = dict(init=CPTensor(init), max_iter=6, tol=0)
    _, a = cp_als(X, R, mask=W, **kw)
    _, b = cp_als(np.where(W, X, np.nan), R, missing="nan", **kw)
    _, c = cp_als(np.where(W, X, 1e5), R, mask=W.astype(int), **kw)
    assert a.fits == b.fits == c.fits


def test_reported_fit_is_the_observed_fit_of_the_model():
    X, W, init = _problem(seed=2)
    for method in ("em", "wls"):
        cp, res = cp_als(X, R, init=CPTensor(init), mask=W, max_iter=5, tol=0,
                         missing_method=method)
        assert abs(res.fit - _observed_fit(cp.to_dense(), W, X)) < 1e-12


def test_il2_dataset_equals_tensorly():
    datasets = pytest.importorskip("tensorly.datasets")
    try:
        X = np.asarray(datasets.load_IL2data().tensor, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - the data set may be absent from an install
        pytest.skip(f"IL2 data not loadable: {exc}")
    W = ~np.isnan(X)
    assert (~W).sum() > 0
    rng = np.random.default_rng(0)
    init = [rng.random((s, R)) for s in X.shape]
    ref = _tensorly_fits(np.nan_to_num(X), W, init, 15)
    _, res = cp_als(X, R, init=CPTensor([f.copy() for f in init]), missing="nan", max_iter=15,
                    tol=0)
    np.testing.assert_allclose(res.fits, ref, rtol=0, atol=1e-8)
    _, wls = cp_als(X, R, init=CPTensor([f.copy() for f in init]), missing="nan",
                    missing_method="wls", max_iter=15, tol=0)
    assert np.isfinite(wls.fits).all() and wls.fit > 0.5


def test_wls_update_is_the_rowwise_least_squares_solution():
    # One mode update against numpy's lstsq on each row's observed entries.
    X, W, init = _problem(shape=(6, 5, 4), seed=4, frac=0.4)
    factors = [f / np.linalg.norm(f, axis=0) for f in init]
    from tensorpar.dense import khatri_rao, unfold
    K = khatri_rao(factors, skip=0)
    M = unfold(np.where(W, X, 0), 0) @ K
    A = wls_factor_update(M, row_grams(W, factors, 0))
    for i in range(X.shape[0]):
        obs = unfold(W, 0)[i]
        ref = np.linalg.lstsq(K[obs], unfold(X, 0)[i, obs], rcond=None)[0]
        np.testing.assert_allclose(A[i], ref, rtol=1e-10, atol=1e-12)


def test_wls_with_every_entry_observed_is_plain_als():
    X, _, init = _problem(seed=5)
    _, a = cp_als(X, R, init=CPTensor(init), max_iter=6, tol=0)
    _, b = cp_als(X, R, init=CPTensor(init), mask=np.ones(X.shape, bool), max_iter=6, tol=0,
                  missing_method="wls")
    np.testing.assert_allclose(a.fits, b.fits, rtol=0, atol=1e-12)


def test_wls_reaches_a_better_observed_fit_than_em_per_iteration():
    X, W, init = _problem(seed=6, frac=0.6)
    _, em = cp_als(X, R, init=CPTensor(init), mask=W, max_iter=10, tol=0)
    _, wls = cp_als(X, R, init=CPTensor(init), mask=W, max_iter=10, tol=0,
                    missing_method="wls")
    assert wls.fit >= em.fit - 1e-12
    assert all(b >= a - 1e-12 for a, b in zip(wls.fits, wls.fits[1:]))  # exact block descent


@pytest.mark.parametrize("method", ["em", "wls"])
@pytest.mark.parametrize("c", [2.0**-600, 3.0e150])
def test_scale_invariance(method, c):
    X, W, init = _problem(seed=7)
    kw = dict(mask=W, max_iter=6, tol=0, missing_method=method, seed=1)
    cp, res = cp_als(X, R, **kw)
    cpc, resc = cp_als(c * X, R, **kw)
    np.testing.assert_allclose(resc.fits, res.fits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpc.weights / c, cp.weights, rtol=1e-10)


@pytest.mark.parametrize("method", ["em", "wls"])
def test_resume_repeats_the_uninterrupted_run(tmp_path, method):
    X, W, init = _problem(seed=8)
    path = os.fspath(tmp_path / "m.npz")
    kw = dict(mask=W, tol=0, seed=2, missing_method=method)
    _, full = cp_als(X, R, max_iter=9, **kw)
    cp_als(X, R, max_iter=4, checkpoint=path, **kw)
    _, resumed = cp_als(X, R, max_iter=9, resume=path, **kw)
    assert resumed.fits == full.fits
    with pytest.raises(ValueError, match="missing"):
        cp_als(X, R, max_iter=9, resume=path, seed=2, tol=0)  # no mask: another problem


def test_bad_arguments_name_themselves():
    X, W, _ = _problem()
    with pytest.raises(ValueError, match="mask has shape"):
        cp_als(X, R, mask=W[:-1])
    with pytest.raises(ValueError, match="mask must be boolean"):
        cp_als(X, R, mask=W * 2.0)
    with pytest.raises(TypeError, match="mask must be boolean"):
        cp_als(X, R, mask=W.astype(complex))
    with pytest.raises(ValueError, match="missing must be None or 'nan'"):
        cp_als(X, R, missing="zero")
    with pytest.raises(ValueError, match="missing_method must be 'em' or 'wls'"):
        cp_als(X, R, mask=W, missing_method="exact")
    with pytest.raises(ValueError, match="missing='nan'"):
        cp_als(np.where(W, X, np.nan), R, mask=W | True)
    with pytest.raises(ValueError, match="no nonnegative variant"):
        cp_als(X, R, mask=W, missing_method="wls", nonnegative=True)


def test_memory_is_checked_before_anything_is_allocated(monkeypatch):
    import tensorpar.dense as dense
    X, W, _ = _problem()
    monkeypatch.setattr(dense, "available_memory", lambda: 26 * X.size)
    cp_als(X, R, mask=W, max_iter=1, seed=0)  # EM: 3 words and a byte per entry fit
    with pytest.raises(ValueError, match="missing_method: CP-ALS with missing entries"):
        cp_als(X, R, mask=W, max_iter=1, seed=0, missing_method="wls", l2_reg=0.0)


@pytest.mark.parametrize("kw", [dict(mask=True), dict(mask=True, missing_method="wls"),
                                dict(l2_reg=0.3, nonnegative=[0, 2]),
                                dict(linesearch=True, fixed_modes=[1])],
                         ids=["em", "wls", "l2-nn", "ls-fixed"])
def test_device_matches_host(xp, kw):
    X, W, init = _problem(seed=9)
    kw = {**kw, **({"mask": W} if kw.get("mask") else {})}
    _, ref = cp_als(X, R, init=CPTensor(init), tol=0, max_iter=10, engine="numpy", **kw)
    dev = {k: xp.asarray(v) if k == "mask" else v for k, v in kw.items()}
    cp, res = cp_als(xp.asarray(X), R, init=CPTensor([xp.asarray(f) for f in init]), tol=0,
                     max_iter=10, **dev)
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    assert type(cp.factors[0]) is type(xp.asarray(X))
