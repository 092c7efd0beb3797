"""QR factorization of a tall matrix whose rows are split over the ranks (TSQR).

Each rank factors its own rows, ``A_p = Q_p R_p``; the small ``R_p`` factors
are gathered on every rank (one ``Allgatherv``) and every rank factors the
stacked ``[R_0; ...; R_{P-1}] = Q' R`` redundantly, so all ranks hold the
bit-identical ``R`` with no broadcast. The local orthonormal factor is
``Q_p Q'_p`` (``Q'_p`` the rows of ``Q'`` that belong to rank ``p``).

This is the flat (one-level) reduction tree, the default: one collective per
factorization, ``P min(m_p, n) n`` gathered words, and no second (down)
sweep to form ``Q_p``. ``tree="binomial"`` combines the R factors up a
binomial tree instead (:func:`tensorpar.distributed.comm.tree_reduce`,
``ceil(log2 P)`` levels of ``n x n`` factors), broadcasts the final ``R``
and sends each subtree its block of the tree's Q factors back down the same
edges: ``O(log2 P)`` messages of ``n^2`` words, the choice for large ``P``
(see the alpha-beta model in ``benchmarks/tt_mpi.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from .._backend import get_array_module
from .._linalg import ct, matmul, qr
from .comm import allgatherv, bcast, recv, resolve_comm, send, tree_reduce, tree_schedule

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

_TAG_UP, _TAG_DOWN = 7101, 7102

__all__ = ["tsqr", "orth_left_core", "orth_right_rows", "rows_to_right_core"]


def tsqr(comm: MPI.Comm | None, a: Any, rows: Sequence[int],
         tree: Literal["flat", "binomial"] = "flat") -> tuple[Any, Any]:
    """Reduced QR of the row-distributed matrix ``A = [A_0; ...; A_{P-1}]``.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
        Collective over ``comm``.
    a : ndarray, shape (m_p, n)
        This rank's rows ``A_p``, ``m_p = rows[rank] >= 1``.
    rows : sequence of int, one per rank
        ``m_p`` of every rank (known on every rank, so no metadata is sent).
    tree : {"flat", "binomial"}
        "flat": one ``Allgatherv`` of the ``P`` local R factors, the stack
        factored redundantly on every rank. "binomial": the R factors are
        combined up a binomial tree (:func:`tensorpar.distributed.comm.tree_reduce`,
        ``ceil(log2 P)`` levels, one ``n x n`` factor per edge), the final
        ``R`` is broadcast and the ``Q`` factors of the tree are applied back
        down the same edges: ``O(log P)`` messages of ``n^2`` words per rank
        instead of ``P n^2`` gathered words.

    Returns
    -------
    q : ndarray, shape (m_p, k)
        This rank's rows of the orthonormal factor, ``k = min(sum_p min(m_p, n), n)``.
    r : ndarray, shape (k, n)
        Upper triangular factor, identical on every rank; ``A = Q R``.

    Notes
    -----
    Flat: one ``Allgatherv`` of ``sum_p min(m_p, n) * n`` entries (none on one
    rank). Binomial: the root receives and sends ``ceil(log2 P)`` factors and
    broadcasts ``R``; every rank sends and receives at most that many.

    Examples
    --------
    On one process TSQR is the local QR:

    >>> import numpy as np
    >>> a = np.random.default_rng(0).standard_normal((6, 3))
    >>> q, r = tsqr(None, a, [6])
    >>> q.shape, r.shape, bool(np.allclose(q @ r, a)), bool(np.allclose(q.T @ q, np.eye(3)))
    ((6, 3), (3, 3), True, True)

    Under ``mpiexec -n 2 python script.py`` each rank passes its own rows::

        import numpy as np
        from mpi4py import MPI
        from tensorpar.distributed import tsqr
        comm = MPI.COMM_WORLD
        a = np.random.default_rng(0).standard_normal((6, 3))
        mine = a[3 * comm.rank:3 * comm.rank + 3]
        q, r = tsqr(comm, mine, [3, 3], tree="binomial")
        print(comm.rank, q.shape, np.allclose(q @ r, mine))

    Each rank gets its ``(3, 3)`` block of ``Q`` and the same ``R``; ``R``
    equals the serial one up to the signs of its rows.
    """
    comm = resolve_comm(comm)
    if tree not in ("flat", "binomial"):
        raise ValueError(f"tree must be 'flat' or 'binomial', got {tree!r}")
    n = a.shape[1]
    q1, r1 = qr(a)
    kept = [min(int(m), n) for m in rows]
    if comm.Get_size() == 1:
        return q1, r1
    if tree == "binomial":
        return _tsqr_binomial(comm, q1, r1)
    stacked = allgatherv(comm, r1, counts=kept, axis=0)
    q2, r = qr(stacked)
    off = sum(kept[:comm.Get_rank()])
    return matmul(q1, q2[off:off + kept[comm.Get_rank()]]), r


def _tsqr_binomial(comm: Any, q1: Any, r1: Any) -> tuple[Any, Any]:
    xp = get_array_module(r1)
    levels: list[tuple[int, Any]] = []  # (rows of mine, Q of the stacked pair), per level

    def combine(mine: Any, theirs: Any) -> Any:
        q, r = qr(xp.concatenate([mine, theirs.astype(mine.dtype, copy=False)], axis=0))
        levels.append((mine.shape[0], q))
        return r

    r = tree_reduce(comm, r1, combine, root=0, tag=_TAG_UP)
    r = bcast(comm, r, root=0)
    steps = tree_schedule(comm.Get_size(), comm.Get_rank(), 0)
    # down sweep: the block of the final Q that belongs to each subtree
    if steps and steps[-1][1] == "send":
        B = xp.asarray(recv(comm, steps[-1][0], tag=_TAG_DOWN)).astype(r1.dtype, copy=False)
    else:
        B = xp.eye(r.shape[0], dtype=r.dtype)
    partners = [p for p, role in steps if role == "recv"]
    for partner, (k_mine, q) in zip(reversed(partners), reversed(levels)):
        send(comm, matmul(q[k_mine:], B), partner, tag=_TAG_DOWN)
        B = matmul(q[:k_mine], B)
    return matmul(q1, B), r


def orth_left_core(comm: MPI.Comm | None, core: Any, counts: Sequence[int],
                   tree: Literal["flat", "binomial"] = "flat") -> tuple[Any, Any]:
    """Left-orthonormalize a core split along its mode index: ``core = Q R`` over the ranks.

    Parameters
    ----------
    core : ndarray, shape (r, m_p, q)
        This rank's slice; ``counts`` holds every rank's ``m_p``.

    Returns
    -------
    q_core : ndarray, shape (r, m_p, k)
        This rank's slice of a core whose global left unfolding ``(r n) x k``
        has orthonormal columns.
    R : ndarray, shape (k, q)
        Identical on every rank.

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((2, 5, 3))
    >>> Qc, R = orth_left_core(None, core, [5])   # one process: the whole core
    >>> U = Qc.reshape(10, -1)
    >>> bool(np.allclose(U.T @ U, np.eye(3))), bool(np.allclose(np.einsum("imk,kq->imq", Qc, R), core))
    (True, True)

    Under ``mpiexec -n 2`` each rank passes its slice ``core[:, lo:hi, :]`` and
    ``counts = [3, 2]``; the ranks get their slices of ``Q`` and the same ``R``.
    """
    xp = get_array_module(core)
    r, m, q = core.shape
    # rows (m, i) of the transposed unfolding are partitioned over the ranks
    rows = xp.ascontiguousarray(core.transpose(1, 0, 2)).reshape(m * r, q)
    Q, R = tsqr(comm, rows, [c * r for c in counts], tree)
    return xp.ascontiguousarray(Q.reshape(m, r, Q.shape[1]).transpose(1, 0, 2)), R


def orth_right_rows(comm: MPI.Comm | None, core: Any, counts: Sequence[int],
                    tree: Literal["flat", "binomial"] = "flat") -> tuple[Any, Any]:
    """TSQR of the conjugate transpose of a core's right unfolding ``M`` (``r x (n q)``).

    Returns ``(Q, R)`` with ``M^H = Q R``: ``Q`` of shape ``(m_p q, k)`` holds
    this rank's rows (ordered ``(mode index, right rank)``) and ``R`` of
    shape ``(k, r)`` is identical on every rank, so ``M = R^H Q^H``. Turn
    ``Q`` (or ``Q W`` for a small ``W``) back into a core with
    :func:`rows_to_right_core`.

    Examples
    --------
    >>> import numpy as np
    >>> core = np.random.default_rng(0).standard_normal((3, 5, 2))
    >>> Q, R = orth_right_rows(None, core, [5])   # one process
    >>> V = rows_to_right_core(Q, 5, 2)          # (k, m, q), orthonormal rows
    >>> bool(np.allclose(np.einsum("rk,kmq->rmq", R.T, V), core))
    True

    Under ``mpiexec -n 2`` each rank passes its slice and ``counts = [3, 2]``;
    ``Q`` holds the rank's rows, ``R`` is the same everywhere.
    """
    xp = get_array_module(core)
    r, m, q = core.shape
    rows = xp.ascontiguousarray(core.transpose(1, 2, 0)).reshape(m * q, r)
    return tsqr(comm, rows.conj() if rows.dtype.kind == "c" else rows, [c * q for c in counts],
                tree)


def rows_to_right_core(v: Any, m: int, q: int) -> Any:
    """The core ``V^H`` of shape ``(k, m, q)`` from rows ``V`` of shape ``(m q, k)``.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.arange(12.0).reshape(6, 2)   # rows ordered (mode index, right rank)
    >>> c = rows_to_right_core(v, 3, 2)
    >>> c.shape, bool(c[1, 2, 0] == v[2 * 2 + 0, 1])
    ((2, 3, 2), True)
    """
    xp = get_array_module(v)
    return xp.ascontiguousarray(ct(v)).reshape(v.shape[1], m, q)
