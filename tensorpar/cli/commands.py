"""What each ``tensorpar`` sub-command does (``cp``, ``tt``, ``info``, ``bench``).

Each ``run_*`` function takes the parsed arguments, the MPI communicator
(None for a serial run) and the logger, and returns the exit status. The
distributed runs gather the result to every rank and rank 0 writes the file.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import (
    InputError,
    check_finite_blocks,
    check_finite_distributed,
    open_distributed,
    open_serial,
    parse_input,
)

__all__ = ["Progress", "run_cp", "run_tt", "run_info", "run_bench", "find_benchmarks",
           "describe_file"]


class Progress:
    """CP-ALS callback that logs one line every ``every`` iterations (and never stops the run).

    Examples
    --------
    >>> import logging
    >>> p = Progress(logging.getLogger("demo"), every=2)
    >>> p(1, None, 0.5) is None
    True
    """

    def __init__(self, log: logging.Logger, every: int = 1) -> None:
        self.log = log
        self.every = every
        self.last_fit: float | None = None
        self.t_last = time.perf_counter()
        self.calls = 0

    def __call__(self, iteration: int, model: Any, fit: float) -> None:
        now = time.perf_counter()
        seconds, self.t_last = now - self.t_last, now
        change = "-" if self.last_fit is None else f"{fit - self.last_fit:+.3e}"
        self.last_fit = fit
        self.calls += 1
        # the first iteration of a run (also a resumed one) is always shown
        if iteration % self.every == 0 or self.calls == 1:
            self.log.info("iter %4d  fit %.10f  change %10s  %8.1f ms", iteration, fit, change,
                          seconds * 1e3)


def _stop_text(result: Any, tol: float) -> str:
    if result.stop_reason == "tol":
        return f"converged: fit change < {tol:g}"
    if result.stop_reason == "max_iter":
        return "stopped at --max-iter"
    return "stopped by the callback"


def _cp_serial(args: argparse.Namespace, spec: Any, progress: Progress) -> tuple[Any, Any, Any]:
    from ..cp.als import cp_als

    X = open_serial(spec)
    check_finite_blocks(X, spec)
    cp, result = cp_als(X, args.rank, init=args.init, seed=args.seed, max_iter=args.max_iter,
                        tol=args.tol, nonnegative=args.nonnegative, callback=progress,
                        checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                        resume=args.resume, engine=args.engine)
    return cp, result, X


def _cp_distributed(args: argparse.Namespace, spec: Any, comm: Any,
                    progress: Progress) -> tuple[Any, Any, Any]:
    from .. import distributed as dist

    if args.init == "svd":
        raise InputError("--init svd needs the whole tensor on one process; under mpiexec with "
                         "more than one process use --init random")
    X = open_distributed(spec, comm)
    check_finite_distributed(X, spec)
    # the distributed driver is being renamed dist_cp_als; accept either name
    dist_cp_als = getattr(dist, "dist_cp_als", None) or dist.cp_als
    cp, result = dist_cp_als(X, args.rank, init=args.init, seed=args.seed,
                             max_iter=args.max_iter, tol=args.tol, nonnegative=args.nonnegative,
                             callback=progress, checkpoint=args.checkpoint,
                             checkpoint_every=args.checkpoint_every, resume=args.resume,
                             engine=args.engine)
    return cp, result, X


def run_cp(args: argparse.Namespace, comm: Any, log: logging.Logger) -> int:
    """``tensorpar cp``: CP-ALS of the input, progress per iteration, optional save.

    Examples
    --------
    >>> import logging, os, tempfile
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.cli import build_parser
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "x.npy"), tp.random_cp((5, 4, 3), 2, seed=0).to_dense())
    ...     args = build_parser().parse_args(["cp", os.path.join(d, "x.npy"), "-r", "2", "--seed", "1",
    ...                                       "-o", os.path.join(d, "r.npz")])
    ...     status = run_cp(args, None, logging.getLogger("quiet"))
    ...     cp, result = tp.load(os.path.join(d, "r.npz"))
    >>> status, cp.rank, result.fit > 0.999
    (0, 2, True)
    """
    spec = parse_input(args.input)
    progress = Progress(log, args.progress_every)
    nprocs = 1 if comm is None else comm.Get_size()
    log.info("cp: %s, rank %d, init %s, %d process%s", spec, args.rank,
             "resume" if args.resume else args.init, nprocs, "" if nprocs == 1 else "es")
    if comm is None:
        cp, result, X = _cp_serial(args, spec, progress)
    else:
        cp, result, X = _cp_distributed(args, spec, comm, progress)
    shape = "x".join(str(s) for s in X.shape)
    log.info("cp: done: shape %s %s, rank %d, %d iterations (%s), fit %.10f, %.3f s, engine %s",
             shape, X.dtype, cp.rank, result.n_iter, _stop_text(result, args.tol), result.fit,
             result.wall_time, result.engine)
    if args.out is not None and (comm is None or comm.Get_rank() == 0):
        from ..io import save

        path = save(args.out, (cp, result))
        log.info("cp: saved to %s (load it with tensorpar.load)", path)
    return 0


def run_tt(args: argparse.Namespace, comm: Any, log: logging.Logger) -> int:
    """``tensorpar tt``: TT-SVD of the input to accuracy ``--eps``, saved to ``--out``.

    Examples
    --------
    >>> import logging, os, tempfile
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.cli import build_parser
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "x.npy"), tp.random_tt((4, 5, 6), 2, seed=0).to_dense())
    ...     args = build_parser().parse_args(["tt", os.path.join(d, "x.npy"), "--eps", "1e-10",
    ...                                       "-o", os.path.join(d, "t.npz")])
    ...     status = run_tt(args, None, logging.getLogger("quiet"))
    ...     ranks = tp.load(os.path.join(d, "t.npz")).ranks
    >>> status, ranks
    (0, (1, 2, 2, 1))
    """
    spec = parse_input(args.input)
    t0 = time.perf_counter()
    if comm is None:
        from ..tt.construct import tt_svd

        X = open_serial(spec, allow_complex=True)
        check_finite_blocks(X, spec)
        tt = tt_svd(np.asarray(X), eps=args.eps, max_rank=args.max_rank)
        shape, dtype = X.shape, X.dtype
    else:
        from .. import distributed as dist

        DX = open_distributed(spec, comm)
        check_finite_distributed(DX, spec)
        tt = dist.dist_tt_svd(DX, eps=args.eps, max_rank=args.max_rank).gather()
        shape, dtype = DX.shape, DX.dtype
    seconds = time.perf_counter() - t0
    params = sum(int(c.size) for c in tt.cores)
    log.info("tt: done: shape %s %s, ranks %s, %d numbers (compression ratio %.4g), %.3f s",
             "x".join(str(s) for s in shape), dtype, "-".join(str(r) for r in tt.ranks), params,
             math.prod(shape) / params, seconds)
    if comm is None or comm.Get_rank() == 0:
        from ..io import save

        path = save(args.out, tt)
        log.info("tt: saved to %s", path)
    return 0


def describe_file(path: str) -> list[str]:
    """The lines ``tensorpar info`` prints for a saved result or an input tensor.

    Examples
    --------
    >>> import os, tempfile
    >>> import tensorpar as tp
    >>> with tempfile.TemporaryDirectory() as d:
    ...     lines = describe_file(str(tp.save(os.path.join(d, "t.npz"), tp.random_tt((4, 5), 2))))
    >>> [line for line in lines if line.startswith(("kind", "ranks", "compression"))]
    ['kind: TT tensor', 'ranks: 1-2-1', 'compression ratio: 1.111 (20 entries / 18 numbers)']
    """
    spec = parse_input(path)
    if spec.dataset is not None or spec.path.endswith(".npy"):
        X = open_serial(spec, allow_complex=True)
        return [f"file: {spec}", "kind: dense tensor (input)",
                f"shape: {' x '.join(str(s) for s in X.shape)}", f"dtype: {X.dtype}",
                f"size: {X.nbytes / 2**20:.2f} MiB"]
    from ..io import load, read_metadata

    if not os.path.isfile(spec.path):
        raise InputError(f"{spec.path}: no such file")
    meta = read_metadata(spec.path)
    obj = load(spec.path)
    lines = [f"file: {spec.path}"]
    names = {"cp": "CP model", "cp_als": "CP model with its CP-ALS record", "tt": "TT tensor",
             "ttmatrix": "TT matrix", "cp_als_result": "CP-ALS record (no model)"}
    lines.append(f"kind: {names.get(meta['kind'], meta['kind'])}")
    lines.append(f"format version: {meta['format_version']} (written by tensorpar "
                 f"{meta.get('library_version', '?')})")
    model, result = (obj if isinstance(obj, tuple) else
                     (None, obj) if meta["kind"] == "cp_als_result" else (obj, None))
    if model is not None:
        shape = model.row_shape if meta["kind"] == "ttmatrix" else model.shape
        lines.append(f"shape: {' x '.join(str(s) for s in shape)}")
        lines.append(f"dtype: {model.dtype}")
        if meta["kind"] in ("cp", "cp_als"):
            lines.append(f"rank: {model.rank}")
            params = sum(int(f.size) for f in model.factors) + model.rank
            entries = math.prod(model.shape)
        else:
            lines.append(f"ranks: {'-'.join(str(r) for r in model.ranks)}")
            params = sum(int(c.size) for c in model.cores)
            entries = math.prod(model.shape)
        lines.append(f"compression ratio: {entries / params:.4g} ({entries} entries / "
                     f"{params} numbers)")
    if result is not None:
        state = "converged" if result.converged else f"stopped: {result.stop_reason}"
        lines.append(f"fit: {result.fit:.10f} after {result.n_iter} iterations ({state})")
        lines.append(f"time: {result.wall_time:.3f} s (engine {result.engine})")
    return lines


def run_info(args: argparse.Namespace, comm: Any, log: logging.Logger) -> int:
    """``tensorpar info``: print :func:`describe_file` to standard output.

    Examples
    --------
    >>> import logging, os, tempfile
    >>> import tensorpar as tp
    >>> from tensorpar.cli import build_parser
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +ELLIPSIS
    ...     path = str(tp.save(os.path.join(d, "cp.npz"), tp.random_cp((4, 3), 2)))
    ...     status = run_info(build_parser().parse_args(["info", path]), None,
    ...                       logging.getLogger())
    file: ...
    kind: CP model
    format version: 1 (written by tensorpar ...)
    shape: 4 x 3
    dtype: float64
    rank: 2
    compression ratio: 0.75 (12 entries / 16 numbers)
    """
    for line in describe_file(args.file):
        print(line)
    return 0


def find_benchmarks(folder: str | None = None) -> Path:
    """The ``benchmarks/`` folder of a source checkout.

    Looked for in ``folder`` when given, beside the installed package (an
    editable install of a checkout), then in the current folder and its
    parents. Raises :class:`InputError` when there is none: the benchmarks
    are not part of the wheel.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +ELLIPSIS
    ...     find_benchmarks(d)
    Traceback (most recent call last):
    ...
    tensorpar.cli.data.InputError: the benchmarks are not installed with the package; ...
    """
    if folder is not None:
        candidates = [Path(folder)]
    else:
        here = Path(__file__).resolve().parents[2]
        cwd = Path.cwd().resolve()
        candidates = [here / "benchmarks"] + [p / "benchmarks" for p in (cwd, *cwd.parents)]
    for c in candidates:
        if (c / "_machine.py").is_file():
            return c
    raise InputError("the benchmarks are not installed with the package; run 'tensorpar bench' "
                     "from a tensorpar source checkout or pass --dir path/to/benchmarks")


def run_bench(args: argparse.Namespace, comm: Any, log: logging.Logger) -> int:
    """``tensorpar bench [NAME [args...]]``: list the benchmarks or run one of them.

    Examples
    --------
    >>> import logging, os, tempfile
    >>> from tensorpar.cli import build_parser
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +ELLIPSIS
    ...     for name in ("_machine.py", "demo.py"):
    ...         with open(os.path.join(d, name), "w") as f:
    ...             _ = f.write("")
    ...     status = run_bench(build_parser().parse_args(["bench", "--dir", d]), None,
    ...                        logging.getLogger())
    benchmarks in ...: demo
    run one with: tensorpar bench NAME [--quick]
    """
    from .app import mpi_world_size

    if mpi_world_size() > 1:
        raise InputError("run 'tensorpar bench' without mpiexec: the MPI benchmarks start "
                         "their own processes")
    folder = find_benchmarks(args.dir)
    names = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if args.name is None:
        print("benchmarks in " + str(folder) + ": " + ", ".join(names))
        print("run one with: tensorpar bench NAME [--quick]")
        return 0
    if args.name not in names:
        raise InputError(f"no benchmark {args.name!r} in {folder}; choose from {', '.join(names)}")
    cmd = [sys.executable, str(folder / f"{args.name}.py"), *args.script_args]
    log.info("bench: %s", " ".join(cmd))
    return subprocess.call(cmd)
