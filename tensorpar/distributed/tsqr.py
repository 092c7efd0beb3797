"""QR factorization of a tall matrix whose rows are split over the ranks (TSQR).

Each rank factors its own rows, ``A_p = Q_p R_p``; the small ``R_p`` factors
are gathered on every rank (one ``Allgatherv``) and every rank factors the
stacked ``[R_0; ...; R_{P-1}] = Q' R`` redundantly, so all ranks hold the
bit-identical ``R`` with no broadcast. The local orthonormal factor is
``Q_p Q'_p`` (``Q'_p`` the rows of ``Q'`` that belong to rank ``p``).

This is the flat (one-level) reduction tree: one message per factorization,
``P min(m_p, n) n`` gathered words, against ``log2 P`` messages of ``n^2``
words for the binomial tree. For the small ``n`` of TT ranks and the rank
counts tensorpar targets the latency term dominates, and the flat tree needs
no second (down) sweep to form ``Q_p``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .._tt_linalg import matmul, qr
from .comm import allgatherv, resolve_comm

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = ["tsqr"]


def tsqr(comm: "MPI.Comm | None", a: Any, rows: Sequence[int]) -> tuple[Any, Any]:
    """Reduced QR of the row-distributed matrix ``A = [A_0; ...; A_{P-1}]``.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
        Collective over ``comm``.
    a : ndarray, shape (m_p, n)
        This rank's rows ``A_p``, ``m_p = rows[rank] >= 1``.
    rows : sequence of int, one per rank
        ``m_p`` of every rank (known on every rank, so no metadata is sent).

    Returns
    -------
    q : ndarray, shape (m_p, k)
        This rank's rows of the orthonormal factor, ``k = min(sum_p min(m_p, n), n)``.
    r : ndarray, shape (k, n)
        Upper triangular factor, identical on every rank; ``A = Q R``.

    Notes
    -----
    One ``Allgatherv`` of ``sum_p min(m_p, n) * n`` entries (none on one rank).
    """
    comm = resolve_comm(comm)
    n = a.shape[1]
    q1, r1 = qr(a)
    kept = [min(int(m), n) for m in rows]
    if comm.Get_size() == 1:
        return q1, r1
    stacked = allgatherv(comm, r1, counts=kept, axis=0)
    q2, r = qr(stacked)
    off = sum(kept[:comm.Get_rank()])
    return matmul(q1, q2[off:off + kept[comm.Get_rank()]]), r
