"""Distributed MTTKRP in the medium-grained scheme of PLANC.

Layout (Ballard, Hayashi and Kannan, HiPC 2018; Eswar et al., TOMS 2021):
the tensor is a :class:`~tensorpar.distributed.dist_tensor.DistTensor` on a
``P_0 x ... x P_{N-1}`` grid; rank ``p`` keeps the **factor block**
``A_k[J_k(p_k), :]`` of every mode (replicated over the mode-``k`` slice of
``q_k = P / P_k`` ranks) and **owns** a sub-block of those rows
(:func:`owned_rows`), so that the owned rows of all ``P`` ranks tile each
factor exactly once.

The mode-``n`` MTTKRP is then

1. a local MTTKRP of the block with the factor blocks, by the shared-memory
   engine (:func:`tensorpar.mttkrp`, or :func:`tensorpar.mttkrp.mttkrp_sweep`
   for all modes, dimension tree included): a partial ``|J_n(p_n)| x R``
   result;
2. a ``Reduce_scatter`` of it over the mode-``n`` slice communicator, which
   sums the partial results and leaves each rank its owned rows.

In CP-ALS the new owned rows are then solved for and one ``Allgatherv`` over
the same slice refreshes the factor block (:func:`dist_mttkrp_sweep`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from .._backend import ENGINES, Engine, get_array_module
from .._validation import check_mode
from ..mttkrp import mttkrp as _local_mttkrp
from ..mttkrp import mttkrp_sweep as _local_sweep
from . import comm as C
from .dist_tensor import DistTensor
from .grid import block_sizes, owned_bounds

__all__ = ["factor_blocks", "owned_rows", "owned_counts", "dist_mttkrp", "dist_mttkrp_sweep",
           "sweep_unchecked", "allgather_factor"]


def owned_counts(X: DistTensor, mode: int) -> list[int]:
    """Rows of ``J_mode(p_mode)`` owned by each rank of the mode's slice, in slice-rank order.

    Examples
    --------
    >>> from tensorpar.distributed import DistTensor
    >>> with DistTensor.from_function(lambda i, j, k: i + j + k + 0.0, (6, 5, 4)) as X:
    ...     print([owned_counts(X, n) for n in range(3)])
    [[6], [5], [4]]

    Under ``mpiexec -n 2`` (grid ``(2, 1, 1)``) every rank prints
    ``[[3], [3, 2], [2, 2]]``: mode 0's block is owned by its one slice member,
    modes 1 and 2 are shared by the two ranks of their slice.
    """
    g = X.grid
    a, b = X.bounds[mode]
    return block_sizes(b - a, g.size // g.dims[mode])


def owned_rows(X: DistTensor, mode: int, rank: int | None = None) -> tuple[int, int]:
    """Global ``(start, stop)`` of the factor-``mode`` rows owned by ``rank`` (default: this rank).

    A rank's place in its slice is the row-major index of its coordinates
    without ``mode`` (the order ``Cartcomm.Sub`` keeps).

    Examples
    --------
    >>> from tensorpar.distributed import DistTensor, owned_rows
    >>> with DistTensor.from_function(lambda i, j: i + j + 0.0, (6, 4)) as X:
    ...     print(owned_rows(X, 0))    # (0, 3) and (3, 6) on 2 ranks
    (0, 6)
    """
    g = X.grid
    coords = g.coords if rank is None else g.coords_of(rank)
    rest = [(c, d) for k, (c, d) in enumerate(zip(coords, g.dims)) if k != mode]
    j = 0
    for c, d in rest:
        j = j * d + c
    return owned_bounds(X.shape[mode], g.dims[mode], coords[mode], g.size // g.dims[mode], j)


def factor_blocks(X: DistTensor, factors: Sequence[Any]) -> list[Any]:
    """This rank's factor blocks ``A_k[J_k(p_k), :]`` cut from full (replicated) factors.

    Examples
    --------
    >>> import tensorpar as tp
    >>> from tensorpar.distributed import DistTensor, factor_blocks
    >>> cp = tp.random_cp((6, 5, 4), 2, seed=0)
    >>> with DistTensor.from_cp(cp) as X:
    ...     print([b.shape for b in factor_blocks(X, cp.factors)])
    [(6, 2), (5, 2), (4, 2)]

    Under ``mpiexec -n 2 python script.py`` (grid ``(2, 1, 1)``) both ranks
    print ``[(3, 2), (5, 2), (4, 2)]``: rank 0 holds rows 0..2 of the first
    factor, rank 1 rows 3..5.
    """
    if len(factors) != X.ndim:
        raise ValueError(f"factors has {len(factors)} matrices but the tensor has order {X.ndim}")
    for k, f in enumerate(factors):
        if getattr(f, "ndim", None) != 2 or f.shape[0] != X.shape[k]:
            raise ValueError(f"factors[{k}] must have shape ({X.shape[k]}, R), "
                             f"got {tuple(getattr(f, 'shape', ()))}")
    xp = get_array_module(*factors)
    return [xp.ascontiguousarray(f[a:b]) for f, (a, b) in zip(factors, X.bounds)]


def _check(X: DistTensor, blocks: Sequence[Any], mode: Any, engine: Any) -> int | None:
    """Validate the arguments on every rank and agree on them before any data moves.

    Checks ``mode`` (None for a sweep), ``engine`` and the factor blocks
    locally, then one ``comm.agree`` makes every rank raise the same error
    when a rank's arguments are bad or the ranks differ in the mode, the
    rank ``R`` of the blocks, the engine asked for, or the tensor's global
    shape, grid and dtype. Returns the checked mode.
    """
    if not isinstance(X, DistTensor):
        raise TypeError(f"X must be a DistTensor, got {type(X).__name__}")
    err: BaseException | None = None
    R: int | None = None
    try:
        if mode is not None:
            mode = check_mode(mode, X.ndim)
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        R = _block_rank(X, blocks, mode)
    except (TypeError, ValueError) as exc:
        err = exc
    C.agree(X.grid.cart, {"mode": mode, "rank R of the factor blocks": R, "engine": engine,
                          "X.shape": X.shape, "X.grid": X.grid.dims, "X.dtype": X.dtype.str},
            error=err)
    return cast("int | None", mode)


def _block_rank(X: DistTensor, blocks: Sequence[Any], skip: int | None) -> int:
    """The common column count of the factor blocks, checking their row counts."""
    if not isinstance(blocks, (list, tuple)) or len(blocks) != X.ndim:
        raise ValueError(f"factor blocks must be a list of {X.ndim} matrices")
    ranks = {b.shape[1] for k, b in enumerate(blocks)
             if k != skip and getattr(b, "ndim", 0) == 2}
    for k, (blk, (a, b)) in enumerate(zip(blocks, X.bounds)):
        if k == skip:
            continue
        if getattr(blk, "ndim", 0) != 2 or blk.shape[0] != b - a or len(ranks) != 1:
            raise ValueError(f"factor block {k} must have shape ({b - a}, R) with the same R in "
                             f"every mode, got {tuple(getattr(blk, 'shape', ()))}")
    if not ranks:
        raise ValueError(f"factor blocks must hold at least one matrix besides blocks[{skip}]")
    return int(ranks.pop())


def _reduce_to_owned(X: DistTensor, M_local: Any, mode: int) -> Any:
    return C.reduce_scatter(X.grid.slice_comm(mode), M_local, owned_counts(X, mode))


def dist_mttkrp(X: DistTensor, blocks: Sequence[Any], mode: int, engine: Engine = "auto") -> Any:
    """Distributed MTTKRP: this rank's owned rows of ``unfold(X, n) @ khatri_rao(A_k, k != n)``.

    Parameters
    ----------
    X : DistTensor, global shape (I_0, ..., I_{N-1})
    blocks : list of ndarray, ``blocks[k]`` of shape (``|J_k(p_k)|``, R)
        Factor blocks (:func:`factor_blocks`); ``blocks[mode]`` is not read.
    mode : int
    engine : {"auto", "numpy", "numba", "cupy"}
        Engine of the local MTTKRP.

    Returns
    -------
    ndarray, shape (stop - start, R)
        Rows ``[start, stop) = owned_rows(X, mode)`` of the global MTTKRP.

    Notes
    -----
    **Words moved per rank** (counted by :mod:`~tensorpar.distributed.comm`):
    one ``Reduce_scatter`` of ``|J_n(p_n)| * R`` words over the mode-``n``
    slice, i.e. ``|J_n(p_n)| * R * itemsize`` bytes in 1 call, where
    ``|J_n(p_n)| = ceil(I_n / P_n)`` or ``floor(I_n / P_n)``; **nothing** when
    ``P_n = P`` (the slice has one rank). A bandwidth-optimal reduce-scatter
    sends ``(q_n - 1) / q_n`` of that, ``q_n = P / P_n``. Validation adds one
    small allreduce of argument fingerprints (:func:`~tensorpar.distributed.comm.agree`,
    counted as ``"meta"``).
    one-integer allreduce (counted as ``"meta"``).

    Examples
    --------
    The owned rows agree with the serial MTTKRP at any number of ranks
    (``mpiexec -n 2``: each rank gets its share of the rows):

    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.distributed import DistTensor, dist_mttkrp, factor_blocks, owned_rows
    >>> cp = tp.random_cp((6, 5, 4), 3, seed=0)
    >>> Xfull = cp.to_dense()
    >>> with DistTensor.from_cp(cp) as X:
    ...     M = dist_mttkrp(X, factor_blocks(X, cp.factors), 1)
    ...     a, b = owned_rows(X, 1)
    >>> bool(np.allclose(M, tp.mttkrp(Xfull, cp.factors, 1)[a:b]))
    True
    """
    mode = cast(int, _check(X, blocks, mode, engine))
    M_local = _local_mttkrp(X.local, list(blocks), mode, engine=engine)
    return _reduce_to_owned(X, M_local, mode)


def dist_mttkrp_sweep(X: DistTensor, blocks: list[Any], update: Callable[[int, Any], Any],
                      engine: Engine = "auto") -> None:
    """All-modes distributed MTTKRP, as one CP-ALS iteration runs it.

    For ``n = 0, ..., N-1``: the owned rows ``M`` of the mode-``n`` MTTKRP
    (with the factors updated so far), then ``A = update(n, M)`` (the new
    owned rows of factor ``n``, shape of ``M``), then one ``Allgatherv``
    over the mode-``n`` slice sets ``blocks[n]`` to the new factor block.
    The local part runs in :func:`tensorpar.mttkrp.mttkrp_sweep`, so the
    shared-memory engine's reuse across modes (dimension tree) applies.
    ``blocks`` is modified in place; ``update`` may communicate (e.g. the
    Gram allreduce of CP-ALS), identically on every rank.

    Notes
    -----
    **Words moved per rank** by the sweep itself: for every mode with
    ``q_n = P / P_n > 1``, ``|J_n(p_n)| * R`` in a ``Reduce_scatter`` and
    ``|J_n(p_n)| * R`` in an ``Allgatherv``, both over the mode-``n`` slice:
    ``2 * R * sum_{n: q_n > 1} |J_n(p_n)|`` words in ``2 * #{n: q_n > 1}``
    calls, plus what ``update`` sends and one ``"meta"`` validation.

    Examples
    --------
    >>> import tensorpar as tp
    >>> from tensorpar.distributed import DistTensor, dist_mttkrp_sweep, factor_blocks
    >>> cp = tp.random_cp((6, 5, 4), 2, seed=0)
    >>> seen = []
    >>> with DistTensor.from_cp(cp) as X:
    ...     blocks = factor_blocks(X, cp.factors)
    ...     dist_mttkrp_sweep(X, blocks, lambda n, M: seen.append(n) or M / 10)
    >>> seen
    [0, 1, 2]

    Under ``mpiexec -n 2 python script.py`` (grid ``(2, 1, 1)``) ``update``
    receives only the owned rows of each ``M``: ``(3, 2), (3, 2), (2, 2)`` on
    rank 0 and ``(3, 2), (2, 2), (2, 2)`` on rank 1.
    """
    _check(X, blocks, None, engine)
    sweep_unchecked(X, blocks, update, engine)


def sweep_unchecked(X: DistTensor, blocks: list[Any], update: Callable[[int, Any], Any],
                    engine: Engine = "auto") -> None:
    """:func:`dist_mttkrp_sweep` without the validation (for drivers that checked once).

    Examples
    --------
    >>> import tensorpar as tp
    >>> from tensorpar.distributed import DistTensor, factor_blocks
    >>> cp = tp.random_cp((6, 5, 4), 2, seed=0)
    >>> shapes = []
    >>> with DistTensor.from_cp(cp) as X:
    ...     blocks = factor_blocks(X, cp.factors)
    ...     sweep_unchecked(X, blocks, lambda n, M: shapes.append(M.shape) or M, "numpy")
    >>> shapes
    [(6, 2), (5, 2), (4, 2)]

    Under ``mpiexec -n 2`` (grid ``(2, 1, 1)``) ``update`` sees the owned rows
    only: ``(3, 2), (3, 2), (2, 2)`` on rank 0 and ``(3, 2), (2, 2), (2, 2)``
    on rank 1. A bad argument is not caught here and may leave ranks waiting.
    """
    _local_sweep(X.local, blocks, _step(X, update), engine=engine)


def _step(X: DistTensor, update: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
    """The per-mode callback of the local sweep: reduce-scatter, update, all-gather."""
    def step(n: int, M_local: Any) -> Any:
        counts = owned_counts(X, n)
        A_owned = update(n, _reduce_to_owned(X, M_local, n))
        want = counts[X.grid.slice_comm(n).Get_rank()]
        if A_owned.shape[0] != want:
            raise ValueError(f"update({n}, M) returned {A_owned.shape[0]} rows; it must return "
                             f"the {want} owned rows, like M")
        return C.allgatherv(X.grid.slice_comm(n), A_owned, counts)
    return step


def allgather_factor(X: DistTensor, A_owned: Any, mode: int) -> Any:
    """The full factor ``(I_mode, R)`` on every rank, from each rank's owned rows.

    One ``Allgatherv`` of ``I_mode * R`` words over the whole grid.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorpar as tp
    >>> from tensorpar.distributed import DistTensor, allgather_factor, owned_rows
    >>> cp = tp.random_cp((6, 5, 4), 2, seed=0)
    >>> with DistTensor.from_cp(cp) as X:
    ...     a, b = owned_rows(X, 0)
    ...     full = allgather_factor(X, cp.factors[0][a:b], 0)
    >>> bool(np.array_equal(full, cp.factors[0]))
    True

    Under ``mpiexec -n 2 python script.py`` rank 0 owns rows ``(0, 3)`` and
    rank 1 ``(3, 6)`` of the first factor; both get the full ``(6, 2)`` factor.
    """
    g = X.grid
    starts = [owned_rows(X, mode, r) for r in range(g.size)]
    counts = [b - a for a, b in starts]
    full = C.allgatherv(g.cart, A_owned, counts)
    xp = get_array_module(full)
    order = sorted(range(g.size), key=lambda r: starts[r][0])
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    return xp.concatenate([full[offsets[r]:offsets[r + 1]] for r in order])
