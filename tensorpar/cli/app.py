"""The ``tensorpar`` command: argument parser, logging, MPI detection, error reporting.

``tensorpar cp|tt|info|bench ...`` (also ``python -m tensorpar``). Started by
``mpiexec -n P`` with ``P > 1`` the ``cp`` and ``tt`` commands run the
distributed algorithms, each rank reading only its block of the input;
with one process they run the serial ones. Progress goes through
:mod:`logging` (logger ``tensorpar.cli``) on rank 0 only. A user error
(missing file, bad option, unsupported dtype, NaN in the data) ends the
run with a one-line message on standard error and exit status 1 (2 for
an argument the parser rejects); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main", "mpi_world_size", "LOGGER_NAME"]

LOGGER_NAME = "tensorpar.cli"
#: Environment variables through which MPI launchers announce the job size.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def mpi_world_size() -> int:
    """Processes in the MPI job that started this one, from the launcher's environment.

    Read without importing mpi4py, so a serial run never initialises MPI.

    Examples
    --------
    >>> import os
    >>> mpi_world_size() >= 1
    True
    """
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def _launcher_rank() -> int:
    """This process's rank as the MPI launcher announced it (0 when none did)."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--progress-every", type=_positive_int, default=1, metavar="N",
                   help="log one progress line every N iterations (default 1)")
    g.add_argument("-q", "--quiet", action="store_true", help="only errors")
    g.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    p.add_argument("--engine", choices=["auto", "numpy", "numba", "cupy"], default="auto",
                   help="kernel engine (default auto)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tensorpar`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["cp", "x.npy", "--rank", "4"])
    >>> args.command, args.rank, args.init, args.tol
    ('cp', 4, 'random', 1e-08)
    """
    from .. import __version__
    from . import commands

    parser = argparse.ArgumentParser(
        prog="tensorpar", description="CP and tensor-train decompositions of your own tensors, "
        "serially or under mpiexec -n P.",
        epilog="Run 'tensorpar COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"tensorpar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cp = sub.add_parser("cp", help="CP decomposition by alternating least squares",
                        description="CP-ALS of INPUT (FILE.npy or FILE.h5:/dataset).")
    cp.add_argument("input", metavar="INPUT", help="FILE.npy or FILE.h5:/dataset")
    cp.add_argument("-r", "--rank", type=_positive_int, required=True, help="number of components")
    cp.add_argument("--nonnegative", action="store_true", help="nonnegative factors (HALS)")
    cp.add_argument("--init", choices=["random", "svd"], default="random",
                    help="initialisation (svd: serial runs only; default random)")
    cp.add_argument("--tol", type=_nonneg_float, default=1e-8,
                    help="stop when the fit changes by less (default 1e-8)")
    cp.add_argument("--max-iter", type=_positive_int, default=100, help="default 100")
    cp.add_argument("--seed", type=int, default=None, help="random seed of the initialisation")
    cp.add_argument("-o", "--out", default=None, metavar="FILE",
                    help="save the model and its CP-ALS record (.npz or .h5)")
    cp.add_argument("--checkpoint", default=None, metavar="FILE",
                    help="write the solver state every --checkpoint-every iterations")
    cp.add_argument("--checkpoint-every", type=_positive_int, default=10, metavar="N")
    cp.add_argument("--resume", default=None, metavar="FILE", help="continue from a checkpoint")
    _common(cp)
    cp.set_defaults(func=commands.run_cp)

    tt = sub.add_parser("tt", help="tensor-train decomposition (TT-SVD)",
                        description="TT-SVD of INPUT (FILE.npy or FILE.h5:/dataset).")
    tt.add_argument("input", metavar="INPUT", help="FILE.npy or FILE.h5:/dataset")
    tt.add_argument("--eps", type=_nonneg_float, required=True,
                    help="relative accuracy ||X - TT|| <= eps ||X||")
    tt.add_argument("--max-rank", type=_positive_int, default=None, help="cap on every TT rank")
    tt.add_argument("-o", "--out", required=True, metavar="FILE", help="where to save the TT")
    _common(tt)
    tt.set_defaults(func=commands.run_tt)

    info = sub.add_parser("info", help="describe a saved result or an input tensor",
                          description="Shape, ranks, fit, format version and compression ratio "
                          "of a file written by tensorpar (or the shape and dtype of an input).")
    info.add_argument("file", metavar="FILE")
    info.add_argument("--debug", action="store_true", help="show tracebacks")
    info.set_defaults(func=commands.run_info, quiet=False)

    bench = sub.add_parser("bench", help="run a benchmark of a source checkout",
                           description="Run benchmarks/NAME.py of a tensorpar source checkout "
                           "and print its tables. Arguments after NAME go to the script "
                           "(e.g. --quick).")
    bench.add_argument("name", nargs="?", default=None, metavar="NAME",
                       help="mttkrp, cp, tt, cp_mpi, tt_mpi, ... (omit to list them)")
    bench.add_argument("script_args", nargs=argparse.REMAINDER, metavar="...")
    bench.add_argument("--dir", default=None, help="the benchmarks folder (default: found from "
                       "the installed package, then the current folder)")
    bench.add_argument("--debug", action="store_true", help="show tracebacks")
    bench.set_defaults(func=commands.run_bench, quiet=False)
    return parser


def _setup_logging(quiet: bool, debug: bool, root: bool) -> logging.Logger:
    log = logging.getLogger(LOGGER_NAME)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.propagate = False
    if not root:
        log.setLevel(logging.CRITICAL + 1)  # progress and summary on rank 0 only
    else:
        log.setLevel(logging.WARNING if quiet else logging.DEBUG if debug else logging.INFO)
    return log


def _world(command: str) -> Any:
    """COMM_WORLD when started by mpiexec with more than one process, else None."""
    if mpi_world_size() <= 1 or command not in ("cp", "tt"):
        return None
    from .._backend import require

    require("mpi4py", "running tensorpar under mpiexec")
    from ..distributed import comm as C

    world = C.resolve_comm(None)
    return world if world.Get_size() > 1 else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tensorpar`` command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     status = main(["cp", "missing.npy", "--rank", "2", "--quiet"])
    >>> status, err.getvalue().strip()
    (1, 'tensorpar: error: missing.npy: no such file')
    """
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    comm = None
    root = True
    if args.command == "info" and mpi_world_size() > 1 and _launcher_rank() != 0:
        return 0  # ``mpiexec -n P tensorpar info F``: one report, from rank 0
    try:
        comm = _world(args.command)
        root = comm is None or comm.Get_rank() == 0
        log = _setup_logging(bool(args.quiet), debug, root)
        status: int = args.func(args, comm, log)
        return status
    except BrokenPipeError:
        # the reader went away (``tensorpar info F | head``): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        print("tensorpar: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes one line unless --debug
        if debug:
            raise
        if root:
            print(f"tensorpar: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    from .data import InputError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (InputError, ValueError, TypeError, ImportError, OSError)):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
