"""RotatedLinear (RTP) against the serial Linear, its ring traffic and its memory, at any rank count."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from mpi_subprocess import run_job  # noqa: E402
from parcheck import assert_close, assert_gathered_close  # noqa: E402

from tensorpar.distributed.comm import allgatherv, count_traffic  # noqa: E402
from tensorpar.nn import Linear  # noqa: E402
from tensorpar.nn.parallel import RotatedLinear, memory_ledger  # noqa: E402
from tensorpar.nn.parallel.rotated import rotated_traffic  # noqa: E402

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("bias", [True, False])
def test_rotated_equals_serial(comm, bias, xp):
    P, r = comm.Get_size(), comm.Get_rank()
    fin, fout = 5, 3 * P * 2
    rng = np.random.default_rng(7)
    rows = [2 + (q % 3) for q in range(P)]            # a different batch on every rank
    xs = [xp.asarray(rng.standard_normal((n, 2, fin))) for n in rows]
    gs = [xp.asarray(rng.standard_normal((n, 2, fout))) for n in rows]
    ref = Linear(fin, fout, bias, seed=11, xp=xp)
    lin = RotatedLinear(fin, fout, bias, seed=11, xp=xp)
    y = lin(xs[r])
    dx = lin.backward(gs[r])
    y_ref = ref(xs[r])
    dx_ref = ref.backward(gs[r])
    for q in range(P):                                # the serial gradient of all ranks' rows
        if q != r:
            ref(xs[q])
            ref.backward(gs[q])
    assert_close(y, y_ref)
    assert_close(dx, dx_ref)
    assert_gathered_close(lin, ref, bias)


def test_rotated_traffic_is_the_formula(comm):
    P = comm.Get_size()
    lin = RotatedLinear(6, 4 * P, seed=0)
    x = np.ones((3, 6))
    with count_traffic() as fwd:
        y = lin(x)
    with count_traffic() as bwd:
        lin.backward(np.ones_like(y))
    want = rotated_traffic(6, 4 * P, True, P)
    assert fwd.calls.get("Sendrecv", 0) == want["forward_calls"] == P - 1
    assert fwd.nbytes.get("Sendrecv", 0) == want["forward_bytes"] == (P - 1) * 4 * 7 * 8
    assert bwd.calls.get("Sendrecv", 0) == want["backward_calls"]
    assert bwd.nbytes.get("Sendrecv", 0) == want["backward_bytes"]
    assert fwd.total_bytes == fwd.nbytes.get("Sendrecv", 0)   # nothing else moves data
    assert bwd.total_bytes == bwd.nbytes.get("Sendrecv", 0)


def test_rotated_parameter_memory_is_one_over_p(comm):
    P = comm.Get_size()
    lin = RotatedLinear(10, 6 * P, seed=0)
    serial = Linear(10, 6 * P, seed=0).parameter_bytes()
    assert memory_ledger(lin).parameters * P == serial   # the ledger of this rank
    total = allgatherv(comm, np.array([float(lin.parameter_bytes())]), [1] * P)
    assert float(total.sum()) == serial


def test_rotated_indivisible_raises_everywhere(comm):
    P = comm.Get_size()
    if P == 1:
        pytest.skip("every size divides by one rank")
    with pytest.raises(ValueError, match="out_features=.* is not divisible by"):
        RotatedLinear(4, 2 * P + 1, seed=0)


def test_rotated_bad_input_on_one_rank_raises_everywhere(comm):
    lin = RotatedLinear(4, 2 * comm.Get_size(), seed=0)
    x = np.ones((2, 5 if comm.Get_rank() == comm.Get_size() - 1 else 4))
    with pytest.raises(ValueError, match="must have 4 features"):
        lin(x)


def test_rotated_disagreeing_seed_raises_on_every_rank(tmp_path, serial_only):
    res = run_job(tmp_path, """
        from tensorpar.distributed.comm import resolve_comm
        from tensorpar.nn.parallel import RotatedLinear
        rank = resolve_comm().Get_rank()
        try:
            RotatedLinear(4, 4, seed=rank)          # rank 1 passes a different seed
        except ValueError as exc:
            print(f"rank {rank}: {exc}", flush=True)
    """)
    assert res.returncode == 0, res.stderr
    for rank in (0, 1):
        assert f"rank {rank}: argument 'seed' differs across ranks" in res.stdout, res.stdout
