"""SummaLinear (2-D SUMMA, Optimus) against the serial Linear on 1 and 4 ranks; square-count errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402
from parcheck import assert_close, assert_gathered_close  # noqa: E402

from tensorpar.distributed.comm import count_traffic  # noqa: E402
from tensorpar.nn import Linear  # noqa: E402
from tensorpar.nn.parallel import SummaLinear, memory_ledger, summa_grid  # noqa: E402
from tensorpar.nn.parallel.summa import summa_traffic  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.fixture
def grid(comm):
    q = math.isqrt(comm.Get_size())
    if q * q != comm.Get_size():
        pytest.skip("SUMMA runs on a square number of ranks")
    g = summa_grid(comm)
    yield g
    g.free()


@pytest.mark.parametrize("bias", [True, False])
def test_summa_equals_serial(grid, bias, xp):
    q = grid.dims[0]
    fin, fout, n = 3 * q, 2 * q * q, 7                 # 7 rows: uneven row blocks at q = 2
    rng = np.random.default_rng(3)
    x, g = xp.asarray(rng.standard_normal((n, fin))), xp.asarray(rng.standard_normal((n, fout)))
    ref = Linear(fin, fout, bias, seed=5, xp=xp)
    y_ref = ref(x)
    dx_ref = ref.backward(g)
    lin = SummaLinear(fin, fout, bias, grid=grid, seed=5, xp=xp)
    y = lin(lin.input_block(x))
    dx = lin.backward(lin.input_block(g, fout))
    assert_close(y, lin.input_block(y_ref, fout))
    assert_close(dx, lin.input_block(dx_ref))
    assert_gathered_close(lin, ref, bias)


def test_summa_traffic_is_the_formula(grid):
    q = grid.dims[0]
    fin, fout = 2 * q, 3 * q * q
    lin = SummaLinear(fin, fout, grid=grid, seed=0)
    x = np.ones((5, 2, fin // q))                       # every grid row passes 10 rows
    with count_traffic() as fwd:
        y = lin(x)
    with count_traffic() as bwd:
        lin.backward(np.ones_like(y))
    want = summa_traffic(10, fin, fout, q)
    for got, exp in ((fwd, want["forward"]), (bwd, want["backward"])):
        for name, key in (("tensorpar.slice0", "row"), ("tensorpar.slice1", "col")):
            moved = {op: b for op, b in got.by_comm.get(name, {}).items() if op != "meta"}
            assert moved == exp[key]
        assert got.calls.get("Bcast", 0) == (2 * q if q > 1 else 0)
    assert bwd.calls.get("Reduce", 0) == (2 * q if q > 1 else 0)


def test_summa_parameter_memory_is_one_over_q2(grid):
    q = grid.dims[0]
    lin = SummaLinear(4 * q, 2 * q * q, grid=grid, seed=0)
    assert memory_ledger(lin).parameters * q * q == Linear(4 * q, 2 * q * q, seed=0).parameter_bytes()
    assert lin.weight.shape == (2 * q, 4)


def test_summa_indivisible_raises_everywhere(grid):
    if grid.dims[0] == 1:
        pytest.skip("every size divides by one rank")
    with pytest.raises(ValueError, match="out_features=6 is not divisible by 4 ranks"):
        SummaLinear(4, 6, grid=grid, seed=0)


def test_summa_rows_differ_within_a_grid_row_raises_everywhere(grid, comm):
    if grid.dims[0] == 1:
        pytest.skip("one rank per grid row")
    lin = SummaLinear(2, 4, grid=grid, seed=0)
    rows = 3 if comm.Get_rank() == 1 else 2            # rank 1 disagrees with rank 0 (same grid row)
    with pytest.raises(ValueError, match="'rows' differs across ranks"):
        lin(np.ones((rows, 1)))


def test_summa_needs_a_square_count(comm):
    if math.isqrt(comm.Get_size()) ** 2 == comm.Get_size():
        pytest.skip("square rank count")
    with pytest.raises(ValueError, match="SUMMA needs a square number of ranks"):
        SummaLinear(4, 4, seed=0)


@pytest.mark.parametrize("n", [2, 3])
def test_summa_nonsquare_job_raises_on_every_rank(tmp_path, serial_only, n):
    res = run_job(tmp_path, """
        from tensorpar.distributed.comm import resolve_comm
        from tensorpar.nn.parallel import SummaLinear
        rank = resolve_comm().Get_rank()
        try:
            SummaLinear(4, 4, seed=0)
        except ValueError as exc:
            print(f"rank {rank}: {exc}", flush=True)
    """, n=n)
    assert res.returncode == 0, res.stderr
    for rank in range(n):
        assert f"rank {rank}: SUMMA needs a square number of ranks" in res.stdout, res.stdout


def test_summa_disagreeing_features_raise_on_every_rank(tmp_path, serial_only):
    res = run_job(tmp_path, """
        from tensorpar.distributed.comm import resolve_comm
        from tensorpar.nn.parallel import SummaLinear
        rank = resolve_comm().Get_rank()
        try:
            SummaLinear(4, 8 if rank == 3 else 4, bias=False, seed=0)
        except ValueError as exc:
            print(f"rank {rank}: {exc}", flush=True)
    """, n=4)
    assert res.returncode == 0, res.stderr
    for rank in range(4):
        assert f"rank {rank}: argument 'out_features' differs across ranks" in res.stdout, res.stdout
