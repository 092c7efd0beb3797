"""TT-matrix x dense batch: contraction plans, the cost model, forward and VJPs vs dense and FD."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tensorpar as tp
from tensorpar._backend import to_numpy
from tensorpar.tt.matrix_grad import merge_cores, merge_cores_vjp, ttm_matmat_forward, ttm_matmat_vjp
from tensorpar.tt.matrix_plan import plan_ttm_matmat, sweep_flops

ROWS, COLS = (2, 3, 4, 2), (3, 2, 2, 3)


def _ttm(xp, rows, cols, ranks, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return tp.TTMatrix([xp.asarray(rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1]))
                                   .astype(dtype)) for k in range(len(rows))])


def _all_plans(rows, cols, ranks, batch):
    d = len(rows)
    for cuts in itertools.product([False, True], repeat=d - 1):
        bounds = [0] + [k + 1 for k, c in enumerate(cuts) if c] + [d]
        groups = tuple(zip(bounds[:-1], bounds[1:]))
        for direction in ("left", "right"):
            base = plan_ttm_matmat(rows, cols, ranks, batch, direction=direction)
            yield type(base)(groups, direction, 0, 0, 0, 0, 0.0)


def test_every_plan_matches_dense_forward_and_vjp(xp):
    A = _ttm(xp, ROWS, COLS, (1, 2, 3, 2, 1), 0)
    D = to_numpy(A.to_dense())
    rng = np.random.default_rng(1)
    X, G = rng.standard_normal((A.shape[1], 5)), rng.standard_normal((A.shape[0], 5))
    # reference core gradients: d<G, A X>/dcore through the dense reconstruction (exact, linear)
    ref = []
    for k, c in enumerate(A.cores):
        grad = np.zeros(c.shape)
        for idx in np.ndindex(c.shape):
            unit = [to_numpy(cc) for cc in A.cores]
            unit[k] = np.zeros(c.shape)
            unit[k][idx] = 1.0
            grad[idx] = np.sum(G * (tp.TTMatrix(unit).to_dense() @ X))
        ref.append(grad)
    for plan, first in itertools.product(_all_plans(ROWS, COLS, A.ranks, 5), (False, True)):
        # batch_first: rows in, rows out (Y^T = X^T A^T), the same numbers
        Xin, Gin = (X.T.copy(), G.T.copy()) if first else (X, G)
        Y, tape = ttm_matmat_forward(A.cores, xp.asarray(Xin), plan, batch_first=first)
        dX, dcores = ttm_matmat_vjp(tape, xp.asarray(Gin))
        Y, dX = (to_numpy(Y).T, to_numpy(dX).T) if first else (to_numpy(Y), to_numpy(dX))
        np.testing.assert_allclose(Y, D @ X, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dX, D.T @ G, rtol=1e-12, atol=1e-12)
        for k in range(4):
            np.testing.assert_allclose(to_numpy(dcores[k]), ref[k], rtol=1e-12, atol=1e-11,
                                       err_msg=f"{plan.groups} {plan.direction} {first} core {k}")
        none, _ = ttm_matmat_vjp(tape, xp.asarray(Gin), need_input=False)
        assert none is None


def test_vjp_against_central_differences():
    A = _ttm(np, (2, 3, 2), (2, 2, 3), (1, 3, 2, 1), 2)
    rng = np.random.default_rng(3)
    X, G = rng.standard_normal((12, 4)), rng.standard_normal((12, 4))
    loss = lambda cores, X: float(np.sum(np.tanh(ttm_matmat_forward(cores, X, keep=False)[0]) * G))
    Y, tape = ttm_matmat_forward(A.cores, X, "sweep")
    dX, dcores = ttm_matmat_vjp(tape, G * (1 - np.tanh(Y) ** 2))
    h = 1e-6
    for k, c in enumerate(A.cores + [X]):
        num = np.zeros(c.shape)
        for idx in np.ndindex(c.shape):
            old = c[idx]
            c[idx] = old + h
            up = loss(A.cores, X)
            c[idx] = old - h
            down = loss(A.cores, X)
            c[idx] = old
            num[idx] = (up - down) / (2 * h)
        got = dX if k == 3 else dcores[k]
        assert np.linalg.norm(got - num) <= 1e-6 * np.linalg.norm(num)


def test_merge_vjp_matches_dense():
    rng = np.random.default_rng(4)
    cores = [rng.standard_normal(s) for s in [(2, 2, 3, 3), (3, 2, 1, 2), (2, 3, 2, 1)]]
    merged, steps = merge_cores(cores)
    ref = np.einsum("aijb,bklc,cmnd->aikmjlnd", *cores).reshape(2, 12, 6, 1)
    np.testing.assert_allclose(merged, ref, rtol=1e-13)
    W = rng.standard_normal(merged.shape)
    grads = merge_cores_vjp(cores, steps, W)
    Wr = W.reshape(2, 2, 2, 3, 3, 1, 2, 1)
    np.testing.assert_allclose(grads[1], np.einsum("aikmjlnd,aijb,cmnd->bklc", Wr, cores[0], cores[2]),
                               rtol=1e-12)
    np.testing.assert_allclose(grads[0], np.einsum("aikmjlnd,bklc,cmnd->aijb", Wr, cores[1], cores[2]),
                               rtol=1e-12)


def test_float32_stays_float32():
    A = _ttm(np, ROWS, COLS, (1, 2, 2, 2, 1), 5, np.float32)
    X = np.ones((A.shape[1], 3), np.float32)
    Y, tape = ttm_matmat_forward(A.cores, X)
    dX, dcores = ttm_matmat_vjp(tape, np.ones_like(Y))
    assert Y.dtype == dX.dtype == dcores[0].dtype == np.float32


def test_flop_model_matches_issue_and_plans():
    s = (8, 8, 8, 8)
    dense = 2 * 256 * 4096 * 4096
    ratios = [dense / sweep_flops(s, s, (1, r, r, r, 1), 256) for r in (4, 8, 16)]
    np.testing.assert_allclose(ratios, [12.8, 3.56, 0.94], rtol=0.01)
    # non-square: the two directions differ and "auto" takes the cheaper one
    rows, cols, ranks = (2, 2, 16), (16, 2, 2), (1, 4, 4, 1)
    left = sweep_flops(rows, cols, ranks, 8, "left")
    right = sweep_flops(rows, cols, ranks, 8, "right")
    assert left != right
    p = plan_ttm_matmat(rows, cols, ranks, 8, "sweep", balance=0.0)
    assert p.forward_flops == min(left, right)
    assert p.direction == ("left" if left < right else "right")
    # with balance 0 the model is pure flops: "auto" never costs more than any fixed family
    for r in (2, 8, 32):
        costs = {imp: plan_ttm_matmat(s, s, (1, r, r, r, 1), 64, imp, balance=0.0).cost
                 for imp in ("auto", "factorized", "sweep", "reconstructed")}
        assert costs["auto"] == min(costs.values())
    rec = plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256, "reconstructed")
    assert rec.groups == ((0, 4),) and rec.forward_flops >= dense
    assert plan_ttm_matmat(s, s, (1, 4, 4, 4, 1), 256, "factorized").groups != ((0, 4),)


def test_plan_errors():
    with pytest.raises(ValueError, match="implementation"):
        plan_ttm_matmat((2,), (2,), (1, 1), 1, "dense")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        plan_ttm_matmat((2,), (2,), (1, 1), 1, direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not fit"):
        plan_ttm_matmat((2, 2), (2,), (1, 1), 1)
    with pytest.raises(ValueError, match="batch"):
        plan_ttm_matmat((2,), (2,), (1, 1), 0)


def test_batch_shards_add_up():
    """Data parallelism: core gradients of column shards sum to the full batch's."""
    A = _ttm(np, ROWS, COLS, (1, 3, 2, 2, 1), 6)
    rng = np.random.default_rng(7)
    X, G = rng.standard_normal((A.shape[1], 9)), rng.standard_normal((A.shape[0], 9))
    plan = plan_ttm_matmat(ROWS, COLS, A.ranks, 9, "factorized")
    Y, tape = ttm_matmat_forward(A.cores, X, plan)
    dX, full = ttm_matmat_vjp(tape, G)
    parts = []
    for cols in (slice(0, 4), slice(4, 9)):
        Ys, ts = ttm_matmat_forward(A.cores, X[:, cols], plan)
        np.testing.assert_allclose(Ys, Y[:, cols], rtol=1e-13, atol=1e-13)
        parts.append(ttm_matmat_vjp(ts, G[:, cols])[1])
    for k in range(4):
        np.testing.assert_allclose(parts[0][k] + parts[1][k], full[k], rtol=1e-12, atol=1e-12)


def test_forward_and_vjp_shape_errors():
    A = _ttm(np, ROWS, COLS, (1, 2, 2, 2, 1), 8)
    with pytest.raises(ValueError, match=r"X must have shape \(N, B\) with N = 36"):
        ttm_matmat_forward(A.cores, np.ones((35, 2)))
    _, tape = ttm_matmat_forward(A.cores, np.ones((36, 2)))
    with pytest.raises(ValueError, match=r"grad_Y must have shape \(48, 2\)"):
        ttm_matmat_vjp(tape, np.ones((48, 3)))


@pytest.mark.parametrize("shape", [(7, 3, 5), (1, 3, 5), (7, 3, 1), (1, 3, 1)])
@pytest.mark.parametrize("chunk", [1, 2 * 4 * 3, 2**18])
def test_step_vjp_every_stack_shape_and_chunking(monkeypatch, shape, chunk):
    # one stacked step against einsum: stacked GEMM, single GEMM for L == 1 or R == 1,
    # the dC sum over l in chunks of 1, 2 and all of the stack (4 * 3 = P * K per l)
    import tensorpar.tt.matrix_grad as mg

    monkeypatch.setattr(mg, "STACK_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(3)
    L, K, R = shape
    C, Z, G = rng.standard_normal((4, K)), rng.standard_normal(shape), rng.standard_normal((L, 4, R))
    np.testing.assert_allclose(mg.step_forward(C, Z), np.einsum("pk,lkr->lpr", C, Z), rtol=1e-13, atol=1e-13)
    dC, dZ = mg.step_vjp(C, Z, G)
    np.testing.assert_allclose(dC, np.einsum("lpr,lkr->pk", G, Z), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dZ, np.einsum("pk,lpr->lkr", C, G), rtol=1e-13, atol=1e-13)
    assert mg.step_vjp(C, Z, G, need_input=False)[1] is None


def test_batch_first_shape_errors():
    A = _ttm(np, ROWS, COLS, (1, 2, 2, 2, 1), 0)
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        ttm_matmat_forward(A.cores, np.ones((A.shape[1], 3)), batch_first=True)
    _, tape = ttm_matmat_forward(A.cores, np.ones((3, A.shape[1])), batch_first=True)
    with pytest.raises(ValueError, match="grad_Y"):
        ttm_matmat_vjp(tape, np.ones((A.shape[0], 3)))


def test_stacked_gemm_count_matches_the_steps():
    # the count of the planner equals the stacks the forward actually multiplies
    from tensorpar.tt.matrix_plan import stacked_gemms

    A = _ttm(np, ROWS, COLS, (1, 2, 3, 2, 1), 0)
    for plan, first in itertools.product(_all_plans(ROWS, COLS, A.ranks, 5), (False, True)):
        X = np.ones((5, A.shape[1]) if first else (A.shape[1], 5))
        _, tape = ttm_matmat_forward(A.cores, X, plan, batch_first=first)
        P = [tape.merged[g].shape for g in range(len(plan.groups))]
        P = [s[1] * s[3] if plan.direction == "left" else s[0] * s[1] for s in P]
        P = P if plan.direction == "left" else P[::-1]
        got = [(L, 6 * L * p * K * R) for (L, K, R), p in zip((Z.shape for Z in tape.inputs), P)
               if L > 1 and R > 1]
        assert stacked_gemms(plan, ROWS, COLS, A.ranks, 5, first) == (
            sum(g[0] for g in got), sum(g[1] for g in got)), (plan.groups, plan.direction, first)
