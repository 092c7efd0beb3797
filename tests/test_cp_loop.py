"""The shared ALS loop and state: hooks, the scaled frame, option checks."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpar.dense as dense
from tensorpar import cp_als, random_cp
from tensorpar.cp.als import checked_norm, initial_state, model_of
from tensorpar.cp.loop import ALSHooks, check_als_memory, run_als
from tensorpar.cp.state import CPALSState, check_als_options, scale_exponent
from tensorpar.mttkrp import mttkrp_sweep


def _X():
    rng = np.random.default_rng(0)
    return random_cp((7, 6, 5), 3, seed=1).to_dense() + 0.2 * rng.standard_normal((7, 6, 5))


def _run(X, hooks_kw, max_iter=6, **opts):
    state = initial_state(X, 3, "random", rng=np.random.default_rng(2), nonnegative=False,
                          norm_x=checked_norm(X))
    hooks = ALSHooks(sweep=lambda update: mttkrp_sweep(X, state.factors, update),
                     view=model_of, **hooks_kw)
    res = run_als(state, hooks, check_als_options(3, max_iter=max_iter, tol=0, **opts),
                  callback=None, engine="auto", t_origin=0.0)
    return state, res


def test_the_loop_is_the_serial_driver():
    X = _X()
    _, res = _run(X, {})
    _, ref = cp_als(X, 3, seed=2, max_iter=6, tol=0)
    assert res.fits == ref.fits


def test_the_reduction_path_on_one_process_equals_the_serial_path():
    # what the distributed driver does (Gram sums, the fit's share in the last message)
    X = _X()
    calls = []

    def reduce(a):
        calls.append(a.shape)
        return a.copy()

    _, res = _run(X, {"allreduce": reduce})
    _, ref = _run(X, {})
    np.testing.assert_allclose(res.fits, ref.fits, rtol=0, atol=1e-12)
    assert calls[:3] == [(3, 3), (3, 3), (10,)]  # R^2 + 1 words in the last mode's message


def test_save_and_stop_hooks(tmp_path):
    X = _X()
    saved, asked = [], []
    state, res = _run(X, {"save": lambda st: saved.append(st.iteration),
                          "any_true": lambda flag: asked.append(flag) or flag},
                      max_iter=7, checkpoint=str(tmp_path / "c.npz"), checkpoint_every=3)
    assert saved == [3, 6, 7] and asked == []  # no callback: no stop decision needed


def test_state_frame_is_exact():
    w = np.array([0.75, 0.5])
    s = CPALSState([np.ones((2, 2))], w.copy(), [np.eye(2)], scale_exp=-600)
    np.testing.assert_array_equal(s.model_weights(), np.ldexp(w, -600))
    s.rescale(400)
    np.testing.assert_array_equal(s.model_weights(), np.ldexp(w, -600))
    s.rescale(-600)
    np.testing.assert_array_equal(s.weights, w)
    assert scale_exponent(0.5) == 0 and scale_exponent(1.0) == 1 and scale_exponent(0.0) == 0


def test_memory_rule(monkeypatch):
    monkeypatch.setattr(dense, "available_memory", lambda: 8 * (9 * 100**2 + 3 * 100 * 6))
    check_als_memory((1, 2, 3), 100, 8)  # exactly the limit: fine
    with pytest.raises(ValueError, match="rank: CP-ALS with rank=101"):
        check_als_memory((1, 2, 3), 101, 8)
    monkeypatch.setattr(dense, "available_memory", lambda: None)  # unknown: no check
    check_als_memory((1, 2, 3), 10**9, 8)
