"""Per-bond TT rank bounds in dist_tt_svd and dist_tt_round: equal to the serial results at
every rank count, bounds agreed in their per-bond form, bad bounds raised on every rank."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import assert_cases, read_cases, run_job  # noqa: E402

import tensorpar as tp  # noqa: E402
from tensorpar.distributed import DistTensor, DistTTTensor, ProcessGrid  # noqa: E402
from tensorpar.distributed.tt import dist_tt_round, dist_tt_svd  # noqa: E402

pytestmark = pytest.mark.mpi


def _tensor(shape, seed=0):
    rng = np.random.default_rng(seed)
    return tp.random_tt(shape, 6, seed=rng).to_dense() + 1e-3 * rng.standard_normal(shape)


def _close(a, b, scale):
    np.testing.assert_allclose(a.to_dense(), b.to_dense(), rtol=0, atol=1e-11 * scale)


@pytest.mark.parametrize("shape,bounds", [((6, 7, 8), [3, 5]), ((4, 5, 6, 5), [2, 9, 3]),
                                          ((4, 5, 6, 5), [1, 2, 5, 3, 1])])
def test_dist_tt_svd_equals_serial(comm, shape, bounds):
    X = _tensor(shape)
    ref = tp.tt_svd(X, eps=0.0, max_rank=bounds)
    for dims in (None, (comm.size,) + (1,) * (len(shape) - 1)):
        grid = None if dims is None else ProcessGrid(dims, comm=comm)
        T = DistTensor.scatter(X if comm.rank == 0 else None, grid=grid, comm=comm)
        tt = dist_tt_svd(T, eps=0.0, max_rank=bounds)
        assert tt.ranks == ref.ranks
        _close(tt.gather(), ref, np.linalg.norm(X))


@pytest.mark.parametrize("method", ["qr", "gram", "randomized"])
@pytest.mark.parametrize("bounds", [[2, 5, 3, 4], [4, 1, 2, 6], [1, 3, 4, 3, 2, 1]])
def test_dist_tt_round_equals_serial(comm, method, bounds):
    x = tp.random_tt((5, 6, 7, 6, 5), [3, 6, 5, 4], seed=2)
    x = x + tp.random_tt(x.shape, 2, seed=3)
    ref = tp.tt_round(x, eps=1e-8, max_rank=bounds, method=method, seed=4)
    X = DistTTTensor.scatter(x if comm.rank == 0 else None, comm)
    y = dist_tt_round(X, eps=1e-8, max_rank=bounds, method=method, seed=4)
    assert y.ranks == ref.ranks
    per_bond = bounds[1:-1] if len(bounds) == 6 else bounds
    assert all(r <= b for r, b in zip(y.ranks[1:-1], per_bond))
    scale = np.linalg.norm(x.to_dense())
    # gram: accurate to about sqrt(machine eps) relative, the serial one too
    tol = 1e-6 if method == "gram" else 1e-11
    np.testing.assert_allclose(y.gather().to_dense(), ref.to_dense(), rtol=0, atol=tol * scale)


def test_equivalent_forms_agree_across_ranks(comm):
    # 3 on some ranks and [3, 3] or TensorLy's [1, 3, 3, 1] on others: the same bound
    x = tp.random_tt((5, 6, 7), 4, seed=5)
    forms = [3, [3, 3], (1, 3, 3, 1), np.array([3, 3])]
    X = DistTTTensor.scatter(x if comm.rank == 0 else None, comm)
    y = dist_tt_round(X + X, eps=0.0, max_rank=forms[comm.rank % len(forms)])
    assert y.ranks == (1, 3, 3, 1)
    T = DistTensor.scatter(x.to_dense() if comm.rank == 0 else None, comm=comm)
    assert dist_tt_svd(T, max_rank=forms[comm.rank % len(forms)]).ranks == (1, 3, 3, 1)


def test_bad_bounds_raise_on_every_rank(comm):
    x = tp.random_tt((5, 6, 7), 2, seed=6)
    X = DistTTTensor.scatter(x if comm.rank == 0 else None, comm)
    T = DistTensor.scatter(x.to_dense() if comm.rank == 0 else None, comm=comm)
    with pytest.raises(ValueError, match="max_rank must be an int or a list of d - 1 = 2"):
        dist_tt_round(X, max_rank=[2, 3, 4])
    with pytest.raises(TypeError, match=r"max_rank\[0\] must be an integer"):
        dist_tt_svd(T, max_rank=[2.0, 3])
    with pytest.raises(ValueError, match=r"max_rank\[1\] must be >= 1"):
        dist_tt_svd(T, max_rank=[2, 0])


# --- a bound that differs between ranks, in a subprocess with a timeout -----------------
JOB = """
import numpy as np
from mpi4py import MPI
import tensorpar as tp
from tensorpar.distributed import DistTensor, DistTTTensor
from tensorpar.distributed.tt import dist_tt_round, dist_tt_svd
comm = MPI.COMM_WORLD
x = tp.random_tt((5, 6, 7), 3, seed=0)
X = DistTTTensor.scatter(x if comm.rank == 0 else None, comm)
T = DistTensor.scatter(x.to_dense() if comm.rank == 0 else None, comm=comm)
cases = {
    "round": lambda: dist_tt_round(X, max_rank=[2, 3 + (comm.rank == 1)]),
    "svd": lambda: dist_tt_svd(T, max_rank=[2, 3] if comm.rank else 2),
    "round_bad_one_rank": lambda: dist_tt_round(X, max_rank=[2, 3] if comm.rank else [2, 0]),
}
with open(f"{OUT}/rank{comm.rank}.txt", "w") as fh:
    for name, run in cases.items():
        try:
            run()
            fh.write(f"CASE|{name}|none|\\n")
        except Exception as exc:
            fh.write(f"CASE|{name}|{type(exc).__name__}|{exc}\\n")
"""


@pytest.mark.parametrize("n", [2, 3])
def test_differing_bounds_raise_on_every_rank(tmp_path, serial_only, n):
    res = run_job(tmp_path, f"OUT = {str(tmp_path)!r}\n" + JOB, n=n, timeout=90)
    assert res.returncode == 0, res.stderr[-3000:]
    expected = {"round": ("ValueError", "argument 'max_rank' differs"),
                "svd": ("ValueError", "argument 'max_rank' differs"),
                "round_bad_one_rank": ("ValueError", "max_rank[1] must be >= 1")}
    assert_cases(read_cases(tmp_path, n), expected, n)
