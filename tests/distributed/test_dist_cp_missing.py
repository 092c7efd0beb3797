"""dist_cp_als with the CP-ALS variants (missing data, ridge, fixed, nonnegative modes,
extrapolation) equals the serial cp_als; the mask in every accepted form; resume."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mpi4py")

import tensorpar  # noqa: E402
from tensorpar import CPTensor  # noqa: E402
from tensorpar.distributed.cp import dist_cp_als  # noqa: E402
from tensorpar.distributed.dist_tensor import DistTensor  # noqa: E402

pytestmark = pytest.mark.mpi

R = 3


def _problem(shape=(9, 8, 7), seed=0):
    rng = np.random.default_rng(seed)
    X = CPTensor([rng.random((s, R)) for s in shape]).to_dense() + 0.1 * rng.random(shape)
    W = rng.random(shape) > 0.3
    init = CPTensor([rng.random((s, R)) for s in shape])
    return X, W, init


def _dist(X, comm):
    return DistTensor.scatter(X if comm.rank == 0 else None, comm=comm)


CASES = [dict(mask=True), dict(mask=True, missing_method="wls"), dict(l2_reg=0.5),
         dict(fixed_modes=[0, 2]), dict(fixed_modes=[2], l2_reg=0.1),
         dict(nonnegative=[0, 2], n_inner=3), dict(linesearch=True),
         dict(linesearch=True, mask=True),
         dict(mask=True, missing_method="wls", l2_reg=0.2, linesearch=True)]


@pytest.mark.parametrize("shape", [(9, 8, 7), (5, 6, 4, 7)])
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(map(str, kw.items())))
def test_variants_equal_serial(comm, shape, kw):
    X, W, init = _problem(shape)
    kw = {**kw, **({"mask": W} if kw.get("mask") else {})}
    _, ref = tensorpar.cp_als(X, R, init=init, max_iter=14, tol=0, **kw)
    with _dist(X, comm) as T:
        cp, res = dist_cp_als(T, R, init=init, max_iter=14, tol=0, **kw)
    assert res.n_iter == ref.n_iter == 14
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-10)


def test_mask_forms_and_nan(comm):
    X, W, init = _problem(seed=1)
    kw = dict(init=init, max_iter=6, tol=0)
    _, ref = tensorpar.cp_als(X, R, mask=W, **kw)
    with _dist(X, comm) as T:
        fits = [dist_cp_als(T, R, mask=W, **kw)[1].fits,
                dist_cp_als(T, R, mask=lambda i, j, k: W[i, j, k], **kw)[1].fits]
        with _dist(W.astype(float), comm) as M:
            fits.append(dist_cp_als(T, R, mask=M, **kw)[1].fits)
    with _dist(np.where(W, X, np.nan), comm) as Tn:
        fits.append(dist_cp_als(Tn, R, missing="nan", **kw)[1].fits)
    for f in fits:
        np.testing.assert_allclose(f, ref.fits, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(mask=True), dict(linesearch=True, l2_reg=0.1),
                                dict(mask=True, missing_method="wls", fixed_modes=[1])],
                         ids=["em", "ls-l2", "wls-fixed"])
def test_resume_repeats_the_serial_run(comm, shared_dir, kw):
    X, W, _ = _problem(seed=2)
    kw = {**kw, **({"mask": W} if kw.get("mask") else {})}
    path = os.path.join(shared_dir, "v.npz")
    _, full = tensorpar.cp_als(X, R, seed=3, max_iter=12, tol=0, **kw)
    with _dist(X, comm) as T:
        dist_cp_als(T, R, seed=3, max_iter=7, tol=0, checkpoint=path, **kw)
        _, resumed = dist_cp_als(T, R, seed=3, max_iter=12, tol=0, resume=path, **kw)
        with pytest.raises(ValueError, match="other options"):
            dist_cp_als(T, R, seed=3, max_iter=12, tol=0, resume=path,
                        **{**kw, "n_inner": 2})
    np.testing.assert_allclose(resumed.fits, full.fits, rtol=0, atol=1e-10)


def test_differing_variant_options_raise_on_every_rank(comm):
    X, W, _ = _problem(seed=3)
    last = comm.size - 1
    with _dist(X, comm) as T:
        for kw in (dict(l2_reg=0.1 if comm.rank == last else 0.0),
                   dict(fixed_modes=[0] if comm.rank == last else None),
                   dict(linesearch=comm.rank == last),
                   dict(missing_method="wls" if comm.rank == last else "em", mask=W),
                   dict(mask=W if comm.rank == last else None)):
            if comm.size == 1:
                continue
            with pytest.raises(ValueError, match="argument 'variant' differs across ranks"):
                dist_cp_als(T, R, seed=0, max_iter=2, **kw)
        with pytest.raises(ValueError, match="l2_reg must be a finite number"):
            dist_cp_als(T, R, seed=0, max_iter=2, l2_reg=-1.0 if comm.rank == last else 0.0)
        with pytest.raises(ValueError, match="mask has shape"):
            dist_cp_als(T, R, seed=0, max_iter=2, mask=W[:-1] if comm.rank == last else W)


@pytest.mark.parametrize("method", ["em", "wls"])
def test_traffic_equals_the_formula(comm, method):
    from tensorpar.distributed import comm as C
    shape = (7, 6, 5)
    X, W, _ = _problem(shape, seed=4)
    iters = 3
    with _dist(X, comm) as T:
        with C.count_traffic() as c:
            dist_cp_als(T, R, seed=1, max_iter=iters, tol=0, mask=W, missing_method=method)
        P, dims = comm.size, T.grid.dims
        split = [P // dims[n] > 1 for n in range(3)]
        per_iter = sum(2 * R * (b - a) for n, (a, b) in enumerate(T.bounds) if split[n])
        if P > 1:
            per_iter += 3 * R * R + 1 + 1  # Gram allreduces (+ the fit's inner), the residual
        if method == "wls":  # the row matrices, reduce-scattered like the MTTKRP
            per_iter += sum(R * R * (b - a) for n, (a, b) in enumerate(T.bounds) if split[n])
        norm = 1 if P > 1 else 0
        final = sum(shape) * R if P > 1 else 0
        assert c.total_bytes == 8 * (norm + iters * per_iter + final)


def test_linesearch_traffic_equals_the_formula(comm):
    from tensorpar.distributed import comm as C
    shape = (7, 6, 5)
    X, _, _ = _problem(shape, seed=5)
    iters, jumps = 9, 2  # jumps tried at iterations 6 and 8 (from 0)
    with _dist(X, comm) as T:
        with C.count_traffic() as c:
            dist_cp_als(T, R, seed=1, max_iter=iters, tol=0, linesearch=True)
        P, dims = comm.size, T.grid.dims
        split = [P // dims[n] > 1 for n in range(3)]
        per_iter = sum(2 * R * (b - a) for n, (a, b) in enumerate(T.bounds) if split[n])
        per_jump = R * (T.bounds[2][1] - T.bounds[2][0]) if split[2] else 0  # last MTTKRP
        if P > 1:
            per_iter += 3 * R * R + 1
            per_jump += 3 * R * R + 1  # the jumped factors' Grams, the jump's inner
        norm = 1 if P > 1 else 0
        final = sum(shape) * R if P > 1 else 0
        assert c.total_bytes == 8 * (norm + iters * per_iter + jumps * per_jump + final)
