"""Plots of results (needs the ``plot`` extra: ``pip install 'tensorpar[plot]'``).

* :func:`plot_convergence` -- relative error (or fit) per CP-ALS iteration;
* :func:`plot_factors` -- the factor columns of a CP model, one panel per mode
  (as pyttb's ``viz``);
* :func:`plot_tt_ranks` -- the TT rank profile against the largest possible ranks;
* :func:`plot_singular_values` -- singular-value decay at every TT bond
  (:func:`bond_singular_values`);
* :func:`plot_scaling` -- strong scaling from ``benchmarks/results/*_mpi.json``.

matplotlib is imported when a plot is made, never by ``import tensorpar``.
Every function returns the :class:`matplotlib.figure.Figure` (made through
pyplot, so notebooks and sphinx-gallery pick it up) or draws into ``ax``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import to_numpy

__all__ = ["plot_convergence", "plot_factors", "plot_tt_ranks", "bond_singular_values",
           "plot_singular_values", "plot_scaling", "load_scaling"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError naming the ``plot`` extra."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("tensorpar.plot needs matplotlib; install it with: "
                          "pip install 'tensorpar[plot]'")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Any, **fig_kw: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = pyplot().subplots(**fig_kw)
    return fig, ax


def plot_convergence(results: Any, labels: Sequence[str] | None = None, *,
                     quantity: str = "error", ax: Any = None) -> Any:
    """Relative error ``1 - fit`` (log scale) or fit per iteration of CP-ALS runs.

    Parameters
    ----------
    results : CPALSResult or sequence of CPALSResult
        E.g. the second item of :func:`tensorpar.cp_als`'s return value, or
        ``tensorpar.load("run.npz")[1]``.
    labels : sequence of str, optional
        Legend entries, one per result.
    quantity : {"error", "fit"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tensorpar as tp
    >>> from tensorpar.plot import plot_convergence
    >>> X = tp.random_cp((6, 5, 4), 2, seed=0).to_dense()
    >>> _, res = tp.cp_als(X, 2, seed=1, max_iter=10, tol=0)
    >>> fig = plot_convergence(res)
    >>> len(fig.axes[0].lines[0].get_xdata())
    10
    """
    if quantity not in ("error", "fit"):
        raise ValueError(f"quantity must be 'error' or 'fit', got {quantity!r}")
    runs = [results] if hasattr(results, "fits") else list(results)
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} results")
    fig, ax = _axes(ax, figsize=(5, 3.5), layout="constrained")
    for k, res in enumerate(runs):
        y = np.asarray(res.fits, dtype=float)
        if quantity == "error":
            y = 1.0 - y
        label = labels[k] if labels is not None else None
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, label=label)
    if quantity == "error":
        ax.set_yscale("log")
        ax.set_ylabel("relative error  ||X - X_hat|| / ||X||")
    else:
        ax.set_ylabel("fit")
    ax.set_xlabel("iteration")
    ax.set_title("CP-ALS convergence")
    if labels is not None:
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_factors(cp: Any, *, components: Sequence[int] | None = None,
                 mode_names: Sequence[str] | None = None, sort: bool = True) -> Any:
    """The factor columns of a CP model: one panel per mode, one line per component.

    Parameters
    ----------
    cp : CPTensor (or a TensorLy CP tensor / pyttb ktensor)
    components : sequence of int, optional
        Which components to draw (after sorting); all by default.
    mode_names : sequence of str, optional
        Panel titles.
    sort : bool
        Normalise and order the components by decreasing weight first
        (:func:`tensorpar.cp_sort_components`), then fix their signs
        (:func:`tensorpar.cp_fix_signs`), so runs are comparable.

    Returns
    -------
    matplotlib.figure.Figure
        With ``cp.ndim`` axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tensorpar as tp
    >>> from tensorpar.plot import plot_factors
    >>> fig = plot_factors(tp.random_cp((6, 5, 4), 3, seed=0))
    >>> len(fig.axes), [len(ax.lines) for ax in fig.axes]
    (3, [3, 3, 3])
    """
    from .cp.compare import as_cp, cp_fix_signs, cp_sort_components

    model = as_cp(cp, "cp")
    if sort:
        model = cp_fix_signs(cp_sort_components(model))
    comps = list(range(model.rank)) if components is None else [int(c) for c in components]
    if any(not 0 <= c < model.rank for c in comps):
        raise ValueError(f"components must lie in [0, {model.rank}), got {comps}")
    if mode_names is not None and len(mode_names) != model.ndim:
        raise ValueError(f"mode_names has {len(mode_names)} entries for {model.ndim} modes")
    plt = pyplot()
    fig, axes = plt.subplots(1, model.ndim, figsize=(3.2 * model.ndim, 3), layout="constrained",
                             squeeze=False)
    weights = to_numpy(model.weights)
    for n, ax in enumerate(axes[0]):
        f = to_numpy(model.factors[n])
        for c in comps:
            ax.plot(np.arange(f.shape[0]), f[:, c].real, label=f"{c} (w={weights[c].real:.3g})")
        ax.set_title(mode_names[n] if mode_names is not None else f"mode {n}")
        ax.set_xlabel("index")
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(title="component", fontsize="small")
    return fig


def plot_tt_ranks(tt: Any, *, ax: Any = None, label: str | None = None) -> Any:
    """The TT ranks ``r_1, ..., r_{d-1}`` per bond, with the largest ranks the shape allows.

    Parameters
    ----------
    tt : TTTensor
    ax : matplotlib Axes, optional
        Draw into it (e.g. to compare several trains).
    label : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Line 0: the ranks; line 1: ``min(prod n_<k, prod n_>=k)``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tensorpar as tp
    >>> from tensorpar.plot import plot_tt_ranks
    >>> fig = plot_tt_ranks(tp.random_tt((4, 4, 4, 4), 3, seed=0))
    >>> [int(r) for r in fig.axes[0].lines[0].get_ydata()]
    [3, 3, 3]
    """
    if not hasattr(tt, "ranks") or not hasattr(tt, "cores"):
        raise TypeError(f"tt must be a TTTensor, got {type(tt).__name__}")
    fig, ax = _axes(ax, figsize=(5, 3.5), layout="constrained")
    shape, ranks = tt.shape, list(tt.ranks[1:-1])
    bonds = np.arange(1, len(shape))
    full = [min(math.prod(shape[:k]), math.prod(shape[k:])) for k in bonds]
    ax.plot(bonds, ranks, marker="o", label=label or "TT ranks")
    ax.plot(bonds, full, linestyle="--", color="gray", label="largest possible")
    ax.set_yscale("log")
    ax.set_xticks(bonds)
    ax.set_xlabel("bond k (between modes k-1 and k)")
    ax.set_ylabel("rank r_k")
    ax.set_title("TT rank profile")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig


def bond_singular_values(tt: Any) -> list[np.ndarray]:
    """Singular values of every TT unfolding ``X_<k>`` (bonds ``k = 1, ..., d-1``), from the cores.

    The train is left-orthogonalised, then a right-to-left sweep of SVDs
    exposes at bond ``k`` the singular values of the reshaping of ``X`` to
    ``(n_0 ... n_{k-1}) x (n_k ... n_{d-1})`` (exactly, up to rounding), at
    the cost of the rounding sweep; nothing of size ``prod n_k`` is formed.

    Returns
    -------
    list of ndarray
        ``d - 1`` arrays, each of length ``r_k``, in decreasing order.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.plot import bond_singular_values
    >>> X = np.random.default_rng(0).standard_normal((3, 4, 5))
    >>> s = bond_singular_values(tp.tt_svd(X))
    >>> bool(np.allclose(s[0], np.linalg.svd(X.reshape(3, 20), compute_uv=False)))
    True
    """
    from .tt.orth import tt_orthogonalize

    cores = [to_numpy(c) for c in tt_orthogonalize(tt, "left").cores]
    out: list[np.ndarray] = []
    for k in range(len(cores) - 1, 0, -1):
        r0, n, r1 = cores[k].shape
        U, s, Vh = np.linalg.svd(cores[k].reshape(r0, n * r1), full_matrices=False)
        cores[k] = Vh.reshape(-1, n, r1)
        cores[k - 1] = np.tensordot(cores[k - 1], U * s[None, :], axes=(2, 0))
        out.append(s)
    return out[::-1]


def plot_singular_values(tt: Any, *, bonds: Sequence[int] | None = None, eps: float | None = None,
                         ax: Any = None) -> Any:
    """Decay of the normalised singular values ``sigma_i / sigma_1`` at TT bonds.

    Parameters
    ----------
    tt : TTTensor
        E.g. ``tt_svd(X)`` with a small ``eps`` to see the whole spectrum.
    bonds : sequence of int, optional
        Bonds ``1 .. d-1`` to draw; all by default.
    eps : float, optional
        Draw the per-bond truncation level ``eps / sqrt(d - 1)`` of TT-SVD.

    Returns
    -------
    matplotlib.figure.Figure
        One line per bond.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.plot import plot_singular_values
    >>> x = tp.random_tt((4, 5, 6), [3, 2], seed=0)
    >>> fig = plot_singular_values(x)
    >>> [len(line.get_ydata()) for line in fig.axes[0].lines]
    [3, 2]
    """
    sv = bond_singular_values(tt)
    which = list(range(1, len(sv) + 1)) if bonds is None else [int(b) for b in bonds]
    if any(not 1 <= b <= len(sv) for b in which):
        raise ValueError(f"bonds must lie in [1, {len(sv)}], got {which}")
    fig, ax = _axes(ax, figsize=(5, 3.5), layout="constrained")
    for b in which:
        s = sv[b - 1]
        ax.plot(np.arange(1, len(s) + 1), s / s[0] if s[0] > 0 else s, label=f"bond {b}")
    if eps is not None:
        ax.axhline(eps / math.sqrt(max(len(sv), 1)), color="gray", linestyle=":",
                   label="eps / sqrt(d-1)")
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1")
    ax.set_title("singular values at the TT bonds")
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def load_scaling(source: Any) -> dict[str, list[tuple[int, float]]]:
    """Measured ``(processes, seconds)`` per operation from a ``*_mpi.json`` benchmark record.

    Reads the ``table`` of ``benchmarks/results/cp_mpi.json`` (``ranks``,
    ``t_iter_ms``: operation ``"cp_als iteration"``) or ``tt_mpi.json``
    (``op``, ``P``, ``time_s``).

    Parameters
    ----------
    source : path or dict
        The JSON file or its parsed content.

    Examples
    --------
    >>> load_scaling({"table": [{"op": "dot", "P": 1, "time_s": 2.0},
    ...                         {"op": "dot", "P": 2, "time_s": 1.1}]})
    {'dot': [(1, 2.0), (2, 1.1)]}
    """
    data = json.loads(Path(source).read_text()) if isinstance(source, (str, os.PathLike)) \
        else source
    if not isinstance(data, dict) or not isinstance(data.get("table"), list):
        raise ValueError("source must be a *_mpi.json benchmark record with a 'table' list")
    series: dict[str, list[tuple[int, float]]] = {}
    for row in data["table"]:
        if "t_iter_ms" in row:
            key, p, t = "cp_als iteration", int(row["ranks"]), float(row["t_iter_ms"]) / 1e3
        elif "time_s" in row:
            key, p, t = str(row["op"]), int(row["P"]), float(row["time_s"])
        else:
            raise ValueError(f"unknown row in the benchmark table: {sorted(row)}")
        series.setdefault(key, []).append((p, t))
    for points in series.values():
        points.sort()
    return series


def plot_scaling(source: Any, *, title: str | None = None) -> Any:
    """Strong scaling from a benchmark record: time and speed-up against processes.

    Parameters
    ----------
    source : path or dict
        ``benchmarks/results/cp_mpi.json``, ``tt_mpi.json`` (see :func:`load_scaling`).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Axes 0: seconds per operation (log-log); axes 1: speed-up over one
        process, with the ideal ``P`` as a dashed line (the last line).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from tensorpar.plot import plot_scaling
    >>> rec = {"table": [{"ranks": 1, "t_iter_ms": 60.0}, {"ranks": 2, "t_iter_ms": 32.0}]}
    >>> fig = plot_scaling(rec)
    >>> [float(v) for v in fig.axes[1].lines[0].get_ydata()]
    [1.0, 1.875]
    """
    series = load_scaling(source)
    plt = pyplot()
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    procs: list[int] = []
    for name, points in series.items():
        p = np.array([q for q, _ in points])
        t = np.array([s for _, s in points])
        procs.extend(p.tolist())
        ax_t.plot(p, t, marker="o", label=name)
        ax_s.plot(p, t[0] * p[0] / t, marker="o", label=name)
    grid = np.unique(procs)
    ax_s.plot(grid, grid / grid[0], linestyle="--", color="gray", label="ideal")
    for ax in (ax_t, ax_s):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("MPI processes")
        ax.set_xticks(grid, [str(g) for g in grid])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    ax_t.set_yscale("log")
    ax_t.set_ylabel("seconds")
    ax_s.set_ylabel("speed-up")
    fig.suptitle(title or "strong scaling")
    return fig
