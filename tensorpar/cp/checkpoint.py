"""CP-ALS state and its checkpoint file (``.npz``).

The state after an iteration is everything the next iteration reads: the
normalised factors, the weights, the Grams of the factors (stored, not
recomputed, so that a resumed run repeats the uninterrupted one bit for
bit), the fit history and the timings. Nothing random happens after the
initialisation, so no random-number state is needed.

The file is written to ``path + ".tmp"`` and then renamed over ``path``, so
an interruption while writing leaves the previous checkpoint intact. Arrays
are stored as plain numpy arrays (cupy data is copied to the host) and the
scalars as a JSON string; loading never unpickles.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._backend import to_numpy

__all__ = ["CPALSState", "save_checkpoint", "load_checkpoint"]

FORMAT_VERSION = 1


@dataclass
class CPALSState:
    """The CP-ALS iterate between two iterations.

    Attributes
    ----------
    factors : list of ndarray, each (I_n, R)
        Factors with unit-norm (or zero) columns.
    weights : ndarray, shape (R,)
    grams : list of ndarray, each (R, R)
        ``grams[n]`` is the Gram of ``factors[n]`` as the algorithm holds it.
    fits : list of float
        Fit after each iteration done so far.
    iter_times : list of float
        Seconds per iteration.
    norm_x : float
        ``||X||``.
    nonnegative : bool
    init_time : float
        Seconds of the initialisation.
    elapsed : float
        Wall seconds spent so far (all runs).
    """

    factors: list[Any]
    weights: Any
    grams: list[Any]
    fits: list[float] = field(default_factory=list)
    iter_times: list[float] = field(default_factory=list)
    norm_x: float = 0.0
    nonnegative: bool = False
    init_time: float = 0.0
    elapsed: float = 0.0

    @property
    def iteration(self) -> int:
        """Iterations done."""
        return len(self.fits)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(f.shape[0]) for f in self.factors)

    @property
    def rank(self) -> int:
        return int(self.weights.shape[0])


def save_checkpoint(path: str | os.PathLike[str], state: CPALSState) -> Path:
    """Write ``state`` to ``path`` (exactly that name; no suffix is added).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    meta = {
        "version": FORMAT_VERSION,
        "ndim": len(state.factors),
        "norm_x": float(state.norm_x),
        "nonnegative": bool(state.nonnegative),
        "init_time": float(state.init_time),
        "elapsed": float(state.elapsed),
    }
    arrays = {"meta": np.array(json.dumps(meta)),
              "weights": to_numpy(state.weights),
              "fits": np.asarray(state.fits, dtype=np.float64),
              "iter_times": np.asarray(state.iter_times, dtype=np.float64)}
    for n, (f, g) in enumerate(zip(state.factors, state.grams)):
        arrays[f"factor_{n}"] = to_numpy(f)
        arrays[f"gram_{n}"] = to_numpy(g)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike[str], xp: Any = np) -> CPALSState:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like
    xp : module
        Array module (``numpy`` or ``cupy``) to put the arrays in.

    Raises
    ------
    ValueError
        When the file does not exist or is not a tensorpar CP-ALS checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"resume={str(path)!r}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            n = int(meta["ndim"])
            state = CPALSState(
                factors=[xp.asarray(data[f"factor_{k}"]) for k in range(n)],
                weights=xp.asarray(data["weights"]),
                grams=[xp.asarray(data[f"gram_{k}"]) for k in range(n)],
                fits=[float(v) for v in data["fits"]],
                iter_times=[float(v) for v in data["iter_times"]],
                norm_x=float(meta["norm_x"]),
                nonnegative=bool(meta["nonnegative"]),
                init_time=float(meta["init_time"]),
                elapsed=float(meta["elapsed"]))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"resume={str(path)!r} is not a tensorpar CP-ALS checkpoint ({exc})") from exc
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"resume={str(path)!r} has checkpoint format version "
                         f"{meta.get('version')}, expected {FORMAT_VERSION}")
    return state
