"""The CP-ALS checkpoint file (``.npz``) of a :class:`~tensorpar.cp.state.CPALSState`.

The state after an iteration is everything the next iteration reads: the
normalised factors, the weights, the Grams of the factors (stored, not
recomputed, so that a resumed run repeats the uninterrupted one bit for
bit), the fit history and the timings. Nothing random happens after the
initialisation, so no random-number state is needed.

The file is written to ``path + ".tmp"`` and then renamed over ``path``, so
an interruption while writing leaves the previous checkpoint intact. Arrays
are stored as plain numpy arrays (cupy data is copied to the host) and the
scalars as a JSON string; loading never unpickles. The weights are stored
unscaled (the model's weights, :meth:`CPALSState.model_weights`), so the
file does not depend on the frame a driver computes in. A fingerprint of
``X`` (its norm and a few sampled entries) is stored so that a resume from
a different tensor is refused.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._backend import to_numpy
from .state import CPALSState
from .variant import ALSVariant

__all__ = ["CPALSState", "save_checkpoint", "load_checkpoint"]

#: Version 2 added the sampled entries of X, version 3 the variant (its options, the
#: column scales, the extrapolation's state); older files still load as plain ALS.
FORMAT_VERSION = 3


def save_checkpoint(path: str | os.PathLike[str], state: CPALSState) -> Path:
    """Write ``state`` to ``path`` (exactly that name; no suffix is added).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> s = CPALSState([np.ones((2, 1))], np.array([0.75]), [np.ones((1, 1))], fits=[0.5])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save_checkpoint(f"{d}/run.ckpt", s)
    ...     print(path.name, load_checkpoint(path).fits)
    run.ckpt [0.5]
    """
    path = Path(path)
    meta = {
        "version": FORMAT_VERSION,
        "ndim": len(state.factors),
        "norm_x": float(state.norm_x),
        "nonnegative": bool(state.nonnegative),
        "init_time": float(state.init_time),
        "elapsed": float(state.elapsed),
        "samples": [float(v) for v in state.samples],
        "variant": state.variant.as_dict(),
        "ls_pow": float(state.ls_pow),
        "ls_fail": int(state.ls_fail),
    }
    arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta)),
              "weights": to_numpy(state.model_weights()),
              "fits": np.asarray(state.fits, dtype=np.float64),
              "iter_times": np.asarray(state.iter_times, dtype=np.float64)}
    for n, (f, g) in enumerate(zip(state.factors, state.grams)):
        arrays[f"factor_{n}"] = to_numpy(f)
        arrays[f"gram_{n}"] = to_numpy(g)
    # Column scales in the unscaled frame, like the weights (each factor takes 2^(e/N)).
    step = 2.0 ** (state.scale_exp / max(len(state.factors), 1))
    for n, sc in enumerate(state.col_scales):
        arrays[f"col_scales_{n}"] = to_numpy(sc * step)
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
        When the file does not exist or is not a tensorpar CP-ALS checkpoint
        (a ``.npy`` array, a foreign ``.npz``, an unknown format version).

    Examples
    --------
    >>> import tempfile
    >>> s = CPALSState([np.ones((2, 1))], np.array([0.75]), [np.ones((1, 1))], norm_x=2.0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     t = load_checkpoint(save_checkpoint(f"{d}/run.npz", s))
    >>> t.weights, t.norm_x, t.shape
    (array([0.75]), 2.0, (2,))
    >>> load_checkpoint("no-such-file.npz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"resume={str(path)!r}: no such checkpoint file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"resume={str(path)!r} is not a tensorpar CP-ALS checkpoint "
                         f"({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"resume={str(path)!r} is a single .npy array, not a tensorpar "
                         "CP-ALS checkpoint (an .npz written with checkpoint=)")
    with data:
        try:
            meta = json.loads(str(data["meta"]))
            version = meta.get("version")
        except (KeyError, ValueError, TypeError, AttributeError, OSError,
                zipfile.BadZipFile) as exc:
            raise ValueError(f"resume={str(path)!r} is not a tensorpar CP-ALS checkpoint "
                             f"({exc})") from exc
        if version not in (1, 2, FORMAT_VERSION):
            raise ValueError(f"resume={str(path)!r} has checkpoint format version "
                             f"{version}, expected {FORMAT_VERSION}")
        try:
            state = _read_state(data, meta, xp)
        except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"resume={str(path)!r} is not a tensorpar CP-ALS checkpoint "
                             f"({exc})") from exc
    return state


def _read_state(data: Any, meta: dict[str, Any], xp: Any) -> CPALSState:
    n = int(meta["ndim"])
    if "variant" in meta:
        variant = ALSVariant.from_dict(meta["variant"])
    else:  # versions 1 and 2: plain ALS, nonnegative in every mode or none
        variant = ALSVariant(nonnegative_modes=tuple(range(n)) if meta["nonnegative"] else ())
    scales = [xp.asarray(data[f"col_scales_{k}"]) for k in range(n)] \
        if variant.tracks_scales else []
    return CPALSState(
        factors=[xp.asarray(data[f"factor_{k}"]) for k in range(n)],
        weights=xp.asarray(data["weights"]),
        grams=[xp.asarray(data[f"gram_{k}"]) for k in range(n)],
        fits=[float(v) for v in data["fits"]],
        iter_times=[float(v) for v in data["iter_times"]],
        norm_x=float(meta["norm_x"]),
        nonnegative=bool(meta["nonnegative"]),
        init_time=float(meta["init_time"]),
        elapsed=float(meta["elapsed"]),
        samples=[float(v) for v in meta.get("samples", [])],
        variant=variant, col_scales=scales, ls_pow=float(meta.get("ls_pow", 2.0)),
        ls_fail=int(meta.get("ls_fail", 0)))
