"""CP-ALS: recovery, agreement with tensorly and pyttb, monotone error, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tensorpar import CPALSResult, CPTensor, cp_als, random_cp
from tensorpar.cp.checkpoint import load_checkpoint
from tensorpar.kernels import has_kernel


def noisy_low_rank(shape, rank, noise, seed=0):
    """A rank-``rank`` tensor with known factors plus Gaussian noise of relative size ``noise``."""
    rng = np.random.default_rng(seed)
    true = random_cp(shape, rank, seed=rng)
    X = true.to_dense()
    E = rng.standard_normal(shape)
    return X + noise * np.linalg.norm(X) / np.linalg.norm(E) * E, true


def host_engines():
    engines = ["numpy"]
    if has_kernel("mttkrp", "numba"):
        engines.append("numba")
    return engines


# -- recovery ---------------------------------------------------------------------

@pytest.mark.parametrize("init", ["random", "svd"])
def test_recovers_known_factors(init):
    X, true = noisy_low_rank((14, 12, 10), 3, 1e-3)
    cp, res = cp_als(X, 3, init=init, seed=5, tol=1e-12, max_iter=500)
    assert cp.factor_match_score(true) >= 0.99
    assert res.fit > 0.998 and res.converged and res.stop_reason == "tol"


def test_recovers_order_four():
    X, true = noisy_low_rank((7, 6, 5, 6), 2, 1e-3, seed=3)
    cp, res = cp_als(X, 2, seed=1, tol=1e-12, max_iter=500)
    assert cp.factor_match_score(true) >= 0.99


def test_fit_formula_matches_dense_residual():
    X, _ = noisy_low_rank((8, 7, 6), 3, 0.2)
    cp, res = cp_als(X, 3, seed=2, tol=0, max_iter=7)
    dense_fit = 1 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)
    assert abs(res.fits[-1] - dense_fit) < 1e-12
    assert abs(res.norm_x - np.linalg.norm(X)) < 1e-12 * res.norm_x
    np.testing.assert_allclose([np.linalg.norm(f, axis=0) for f in cp.factors], 1.0, rtol=1e-12)


# -- peers --------------------------------------------------------------------------

@pytest.mark.parametrize("shape,rank", [((9, 8, 7), 4), ((5, 6, 4, 5), 3)])
def test_same_fits_as_tensorly(shape, rank):
    from tensorly.decomposition import parafac

    rng = np.random.default_rng(1)
    X = random_cp(shape, rank, seed=0).to_dense() + 0.1 * rng.standard_normal(shape)
    init = random_cp(shape, rank, seed=3)
    _, res = cp_als(X, rank, init=init, tol=0, max_iter=10)
    _, errors = parafac(X, rank, n_iter_max=10, init=init.to_tensorly(), tol=0,
                        return_errors=True)
    assert len(errors) == res.n_iter == 10
    np.testing.assert_allclose(res.fits, 1 - np.asarray(errors), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape,rank", [((9, 8, 7), 4), ((5, 6, 4, 5), 3)])
def test_same_fit_as_pyttb(shape, rank):
    import pyttb as ttb

    rng = np.random.default_rng(2)
    X = random_cp(shape, rank, seed=0).to_dense() + 0.1 * rng.standard_normal(shape)
    init = random_cp(shape, rank, seed=4)
    # pyttb drops the weights of a ktensor init; the ALS iterates do not depend on them.
    init.weights = np.array([1.0, 2.0, 0.5, 3.0][:rank])
    _, res = cp_als(X, rank, init=init, tol=0, max_iter=10)
    _, _, out = ttb.cp_als(ttb.tensor(X), rank, maxiters=10, stoptol=0,
                           init=init.to_pyttb(), printitn=0)
    assert out["iters"] + 1 == res.n_iter == 10
    assert abs(out["fit"] - res.fits[-1]) < 1e-10


# -- monotone error, nonnegativity ----------------------------------------------------

@pytest.mark.parametrize("engine", host_engines())
def test_error_never_increases(engine):
    X, _ = noisy_low_rank((10, 9, 8), 4, 0.3, seed=4)
    _, res = cp_als(X, 5, seed=0, tol=0, max_iter=40, engine=engine)
    assert np.all(np.diff(res.fits) >= -1e-12)
    assert res.engine == engine


def test_nonnegative_stays_nonnegative_and_monotone():
    X, _ = noisy_low_rank((10, 9, 8), 3, 0.1, seed=6)
    X = np.abs(X)
    cp, res = cp_als(X, 4, seed=0, tol=0, max_iter=30, nonnegative=True)
    assert all(float(f.min()) >= 0 for f in cp.factors) and float(cp.weights.min()) >= 0
    assert np.all(np.diff(res.fits) >= -1e-12)
    dense_fit = 1 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)
    assert abs(res.fits[-1] - dense_fit) < 1e-12


def test_nonnegative_recovers_nonnegative_factors():
    rng = np.random.default_rng(0)
    true = CPTensor([rng.random((s, 3)) for s in (12, 11, 10)])
    X = true.to_dense()
    cp, res = cp_als(X, 3, init="svd", tol=1e-12, max_iter=3000, nonnegative=True)
    assert res.fit > 0.99
    assert cp.factor_match_score(true) >= 0.95


def test_nonnegative_init_checked():
    X = np.abs(noisy_low_rank((5, 4, 3), 2, 0.1)[0])
    bad = random_cp(X.shape, 2, seed=0)
    with pytest.raises(ValueError, match="negative"):
        cp_als(X, 2, init=bad, nonnegative=True)


# -- stopping, callback, verbose --------------------------------------------------------

def test_stops_on_max_iter_and_records():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    cp, res = cp_als(X, 2, seed=0, tol=0, max_iter=5)
    assert isinstance(res, CPALSResult)
    assert res.n_iter == len(res.fits) == len(res.iter_times) == 5
    assert res.stop_reason == "max_iter" and not res.converged
    assert res.wall_time >= sum(res.iter_times) and res.resumed_from == 0
    assert res.errors[-1] == pytest.approx(1 - res.fit)


def test_tolerance_stops_early():
    X, _ = noisy_low_rank((8, 7, 6), 3, 0.2)
    _, res = cp_als(X, 3, seed=0, tol=1e-6, max_iter=1000)
    assert res.converged and 3 <= res.n_iter < 1000
    assert abs(res.fits[-1] - res.fits[-2]) < 1e-6 <= abs(res.fits[-2] - res.fits[-3])


def test_callback_sees_each_iteration_and_can_stop():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    seen = []

    def callback(it, cp, fit):
        seen.append((it, cp.rank, fit))
        return it == 3

    _, res = cp_als(X, 2, seed=0, tol=0, max_iter=10, callback=callback)
    assert [s[0] for s in seen] == [1, 2, 3] and res.n_iter == 3
    assert res.stop_reason == "callback" and not res.converged
    assert [s[2] for s in seen] == res.fits


def test_verbose_prints_one_line_per_iteration(capsys):
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    _, res = cp_als(X, 2, seed=0, tol=0, max_iter=4, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(f"iter {k + 1:4d}" in ln for k, ln in enumerate(lines))
    assert f"{res.fits[-1]:.12f}" in lines[-1]


def test_seed_reproducible_and_generator_accepted():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    a, ra = cp_als(X, 2, seed=7, tol=0, max_iter=3)
    b, rb = cp_als(X, 2, seed=np.random.default_rng(7), tol=0, max_iter=3)
    assert ra.fits == rb.fits
    for fa, fb in zip(a.factors, b.factors):
        np.testing.assert_array_equal(fa, fb)


def test_max_iter_zero_returns_normalised_init():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    init = random_cp(X.shape, 2, seed=1)
    cp, res = cp_als(X, 2, init=init, max_iter=0)
    assert res.n_iter == 0 and np.isnan(res.fit)
    np.testing.assert_allclose(cp.to_dense(), init.to_dense(), rtol=1e-12)


# -- layouts, dtypes, ranks ---------------------------------------------------------------

def test_memory_layout_does_not_change_the_result():
    X, _ = noisy_low_rank((7, 6, 5), 3, 0.2)
    init = random_cp(X.shape, 3, seed=1)
    _, ref = cp_als(X, 3, init=init, tol=0, max_iter=6)
    big = np.zeros((9, 8, 7))
    big[1:8, 1:7, 1:6] = X
    for Y in (np.asfortranarray(X), big[1:8, 1:7, 1:6]):
        _, res = cp_als(Y, 3, init=init, tol=0, max_iter=6)
        np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-12)


def test_float32():
    X, true = noisy_low_rank((8, 7, 6), 2, 1e-3)
    cp, res = cp_als(X.astype(np.float32), 2, seed=0, tol=1e-6, max_iter=200)
    assert cp.factors[0].dtype == np.float32 and cp.weights.dtype == np.float32
    assert res.fit > 0.99


@pytest.mark.parametrize("init", ["random", "svd"])
def test_rank_larger_than_a_dimension(init):
    X, _ = noisy_low_rank((3, 9, 8), 2, 0.2)
    cp, res = cp_als(X, 5, init=init, seed=0, tol=0, max_iter=15)
    assert cp.rank == 5 and all(np.isfinite(f).all() for f in cp.factors)
    assert np.all(np.diff(res.fits) >= -1e-10)
    dense_fit = 1 - np.linalg.norm(X - cp.to_dense()) / np.linalg.norm(X)
    assert abs(res.fits[-1] - dense_fit) < 1e-10


def test_engines_agree():
    X, _ = noisy_low_rank((7, 6, 5), 3, 0.2)
    fits = [cp_als(X, 3, seed=0, tol=0, max_iter=8, engine=e)[1].fits for e in host_engines()]
    for f in fits[1:]:
        np.testing.assert_allclose(f, fits[0], rtol=0, atol=1e-10)


def test_device_matches_host(xp):
    X, _ = noisy_low_rank((7, 6, 5), 3, 0.2)
    init = random_cp(X.shape, 3, seed=1)
    _, ref = cp_als(X, 3, init=init, tol=0, max_iter=8, engine="numpy")
    dev_init = CPTensor([xp.asarray(f) for f in init.factors], xp.asarray(init.weights))
    cp, res = cp_als(xp.asarray(X), 3, init=dev_init, tol=0, max_iter=8)
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)
    assert type(cp.factors[0]) is type(xp.asarray(X))


# -- checkpoint and resume ----------------------------------------------------------------

def _assert_same_run(a, ra, b, rb):
    assert ra.fits == rb.fits and ra.n_iter == rb.n_iter
    assert ra.stop_reason == rb.stop_reason
    for fa, fb in zip(a.factors, b.factors):
        np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(a.weights, b.weights)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_resume_after_crash_equals_uninterrupted(tmp_path, nonnegative):
    X = np.abs(noisy_low_rank((8, 7, 6), 3, 0.2)[0])
    opts = dict(seed=3, tol=0, max_iter=12, nonnegative=nonnegative)
    full, rfull = cp_als(X, 3, **opts)

    def crash(it, cp, fit):
        if it == 7:
            raise KeyboardInterrupt

    path = tmp_path / "state.npz"
    with pytest.raises(KeyboardInterrupt):
        cp_als(X, 3, checkpoint=path, checkpoint_every=3, callback=crash, **opts)
    assert load_checkpoint(path).iteration == 6
    resumed, rres = cp_als(X, 3, resume=path, **opts)
    _assert_same_run(full, rfull, resumed, rres)
    assert rres.resumed_from == 6 and len(rres.iter_times) == 12


def test_resume_extends_a_finished_run(tmp_path):
    X, _ = noisy_low_rank((8, 7, 6), 3, 0.2)
    path = tmp_path / "run.ckpt"
    full, rfull = cp_als(X, 3, seed=1, tol=0, max_iter=9)
    cp_als(X, 3, seed=1, tol=0, max_iter=4, checkpoint=path, checkpoint_every=100)
    assert path.is_file() and load_checkpoint(path).iteration == 4
    resumed, rres = cp_als(X, 3, tol=0, max_iter=9, resume=path, checkpoint=path)
    _assert_same_run(full, rfull, resumed, rres)
    assert load_checkpoint(path).iteration == 9


def test_resume_of_a_converged_run_returns_it(tmp_path):
    X, _ = noisy_low_rank((6, 5, 4), 2, 1e-4)
    path = tmp_path / "c.npz"
    cp, res = cp_als(X, 2, seed=0, tol=1e-6, max_iter=500, checkpoint=path)
    again, res2 = cp_als(X, 2, tol=1e-6, max_iter=500, resume=path)
    _assert_same_run(cp, res, again, res2)
    assert res2.converged and res2.n_iter == res.n_iter


def test_resume_errors(tmp_path):
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    path = tmp_path / "s.npz"
    cp_als(X, 2, seed=0, max_iter=2, checkpoint=path)
    with pytest.raises(ValueError, match="no such checkpoint"):
        cp_als(X, 2, resume=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="rank"):
        cp_als(X, 3, resume=path)
    with pytest.raises(ValueError, match="shape"):
        cp_als(X[:5], 2, resume=path)
    with pytest.raises(ValueError, match="nonnegative"):
        cp_als(X, 2, resume=path, nonnegative=True)
    with pytest.raises(ValueError, match="different tensor"):
        cp_als(2 * X, 2, resume=path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a tensorpar CP-ALS checkpoint"):
        cp_als(X, 2, resume=junk)


# -- bad input ------------------------------------------------------------------------------

def test_bad_input_errors():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        cp_als(X, 0)
    with pytest.raises(TypeError, match="rank must be an integer"):
        cp_als(X, 2.0)
    for bad in (np.nan, np.inf):
        Y = X.copy()
        Y[1, 2, 3] = bad
        with pytest.raises(ValueError, match="X contains NaN or infinite"):
            cp_als(Y, 2)
    with pytest.raises(TypeError, match="X has dtype complex128"):
        cp_als(X.astype(complex), 2)
    with pytest.raises(ValueError, match="X must have >= 2 dimensions"):
        cp_als(np.ones(5), 1)
    with pytest.raises(ValueError, match="max_iter must be >= 0"):
        cp_als(X, 2, max_iter=-1)
    with pytest.raises(ValueError, match="tol must be a number >= 0"):
        cp_als(X, 2, tol=-1.0)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        cp_als(X, 2, checkpoint_every=0)
    with pytest.raises(TypeError, match="callback must be callable"):
        cp_als(X, 2, callback=3)
    with pytest.raises(ValueError, match="init must be 'random', 'svd' or a CPTensor"):
        cp_als(X, 2, init="nvecs")
    with pytest.raises(ValueError, match="engine must be one of"):
        cp_als(X, 2, engine="fortran")


def test_init_shape_errors():
    X, _ = noisy_low_rank((6, 5, 4), 2, 0.3)
    with pytest.raises(ValueError, match="init has shape"):
        cp_als(X, 2, init=random_cp((6, 5, 3), 2))
    with pytest.raises(ValueError, match="init has rank 3"):
        cp_als(X, 2, init=random_cp((6, 5, 4), 3))
    with pytest.raises(ValueError, match="init has order 2"):
        cp_als(X, 2, init=random_cp((6, 5), 2))
    bad = random_cp((6, 5, 4), 2)
    bad.factors[1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"init.factors\[1\] contains NaN"):
        cp_als(X, 2, init=bad)


def test_zero_tensor_does_not_break():
    cp, res = cp_als(np.zeros((4, 5, 6)), 2, seed=0, tol=0, max_iter=3)
    assert res.fits == [0.0, 0.0, 0.0]
    assert all(np.isfinite(f).all() for f in cp.factors)
