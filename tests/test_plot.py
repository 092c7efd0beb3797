"""tensorpar.plot: the figures hold the data they claim to (Agg backend)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="the plot extra: pip install 'tensorpar[plot]'")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import tensorpar as tp  # noqa: E402
from tensorpar import plot as tplot  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_convergence_curve_is_the_error_history():
    X = tp.random_cp((8, 7, 6), 3, seed=0).to_dense() + 0.01
    _, r1 = tp.cp_als(X, 3, seed=1, max_iter=12, tol=0)
    _, r2 = tp.cp_als(X, 2, seed=1, max_iter=8, tol=0)
    fig = tplot.plot_convergence([r1, r2], labels=["R=3", "R=2"])
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 13))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 1 - np.array(r1.fits), rtol=0, atol=0)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), r2.errors, rtol=0, atol=0)
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["R=3", "R=2"]
    fit = tplot.plot_convergence(r1, quantity="fit").axes[0]
    np.testing.assert_array_equal(fit.lines[0].get_ydata(), r1.fits)
    with pytest.raises(ValueError, match="labels"):
        tplot.plot_convergence([r1], labels=["a", "b"])
    with pytest.raises(ValueError, match="quantity"):
        tplot.plot_convergence(r1, quantity="loss")


def test_factor_panels_show_sorted_sign_fixed_columns():
    cp = tp.random_cp((6, 5, 4), 3, seed=0)
    cp = tp.CPTensor(cp.factors, np.array([1.0, 5.0, 2.0]))
    fig = tplot.plot_factors(cp, mode_names=["a", "b", "c"])
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    want = tp.cp_fix_signs(tp.cp_sort_components(cp))
    for n, ax in enumerate(fig.axes):
        assert len(ax.lines) == 3
        for c, line in enumerate(ax.lines):
            np.testing.assert_array_equal(line.get_ydata(), want.factors[n][:, c])
    fig = tplot.plot_factors(cp, components=[0], sort=False)
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), cp.factors[1][:, 0])
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    with pytest.raises(ValueError, match="components"):
        tplot.plot_factors(cp, components=[3])


def test_tt_rank_profile():
    tt = tp.random_tt((3, 4, 5, 6), [2, 7, 3], seed=0)
    ax = tplot.plot_tt_ranks(tt).axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2, 7, 3])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3, 12, 6])
    with pytest.raises(TypeError):
        tplot.plot_tt_ranks(np.ones(3))


def test_bond_singular_values_against_dense_unfoldings():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4, 5, 2)) * 1e-150  # scale must not matter
    tt = tp.tt_svd(X)
    sv = tplot.bond_singular_values(tt)
    assert len(sv) == 3
    for k, s in enumerate(sv, start=1):
        want = np.linalg.svd(X.reshape(int(np.prod(X.shape[:k])), -1), compute_uv=False)
        np.testing.assert_allclose(s, want[: len(s)], rtol=1e-10, atol=1e-12 * want[0])
    ax = tplot.plot_singular_values(tt, eps=1e-3).axes[0]
    assert len(ax.lines) == 4  # three bonds and the threshold
    np.testing.assert_allclose(ax.lines[1].get_ydata(), sv[1] / sv[1][0])
    with pytest.raises(ValueError, match="bonds"):
        tplot.plot_singular_values(tt, bonds=[4])


def test_scaling_from_a_record(tmp_path):
    rec = {"table": [{"op": "dot", "P": 1, "time_s": 4.0}, {"op": "dot", "P": 2, "time_s": 2.5},
                     {"op": "round", "P": 2, "time_s": 3.0}, {"op": "round", "P": 1, "time_s": 6.0},
                     {"op": "round", "P": 4, "time_s": 2.0}]}
    path = tmp_path / "tt_mpi.json"
    path.write_text(json.dumps(rec))
    fig = tplot.plot_scaling(path)
    ax_t, ax_s = fig.axes
    np.testing.assert_array_equal(ax_t.lines[1].get_xdata(), [1, 2, 4])
    np.testing.assert_array_equal(ax_t.lines[1].get_ydata(), [6.0, 3.0, 2.0])
    np.testing.assert_array_equal(ax_s.lines[0].get_ydata(), [1.0, 1.6])
    np.testing.assert_array_equal(ax_s.lines[1].get_ydata(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ax_s.lines[-1].get_ydata(), [1, 2, 4])  # ideal
    with pytest.raises(ValueError, match="table"):
        tplot.plot_scaling({"rows": []})


@pytest.mark.parametrize("name", ["cp_mpi.json", "tt_mpi.json"])
def test_scaling_of_the_recorded_benchmarks(name):
    if not (RESULTS / name).is_file():
        pytest.skip("benchmarks/results is part of a source checkout")
    series = tplot.load_scaling(RESULTS / name)
    fig = tplot.plot_scaling(RESULTS / name)
    assert len(fig.axes[0].lines) == len(series)
    table = json.loads((RESULTS / name).read_text())["table"]
    assert sum(len(v) for v in series.values()) == len(table)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(ImportError, match=r"tensorpar\[plot\]"):
        tplot.plot_tt_ranks(tp.random_tt((3, 4), 2))


def test_import_tensorpar_does_not_import_matplotlib():
    import subprocess

    code = "import sys, tensorpar, tensorpar.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)}, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
