"""Token split, chunked causal scores and K/V-ring traffic of the TSP layout (:mod:`.tsp`).

Non-causal layers split the sequence into ``P`` contiguous blocks. Causal
layers use the zigzag split: the sequence is cut into ``2 P`` chunks and
rank ``r`` takes chunks ``r`` and ``2 P - 1 - r``, which gives every rank the
same causal work (:func:`causal_work`, :func:`block_scores`).
"""

from __future__ import annotations

import math

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array, Comm
from ...distributed.comm import agree, allgatherv, resolve_comm

__all__ = ["block_scores", "causal_work", "tsp_gather", "tsp_positions", "tsp_split",
           "tsp_traffic"]


def tsp_positions(seq_len: int, nranks: int, rank: int, causal: bool) -> np.ndarray:
    """Global token positions held by ``rank``: contiguous, or zigzag when ``causal``.

    A ValueError when ``seq_len`` does not divide into ``P`` (``2 P`` when
    causal) equal parts.

    Examples
    --------
    >>> tsp_positions(8, 2, 0, causal=True)
    array([0, 1, 6, 7])
    >>> tsp_positions(8, 2, 1, causal=False)
    array([4, 5, 6, 7])
    """
    parts = 2 * nranks if causal else nranks
    if seq_len % parts:
        raise ValueError(f"seq_len={seq_len} must be divisible by {parts} "
                         f"({'2 x ' if causal else ''}{nranks} ranks{', zigzag split' if causal else ''})")
    c = seq_len // parts
    if not causal:
        return np.arange(rank * c, (rank + 1) * c)
    return np.concatenate([np.arange(rank * c, (rank + 1) * c),
                           np.arange((parts - 1 - rank) * c, (parts - rank) * c)])


def causal_work(seq_len: int, nranks: int) -> list[int]:
    """Unmasked causal query-key pairs per rank under the zigzag split (equal on every rank).

    Examples
    --------
    >>> causal_work(8, 2)
    [18, 18]
    """
    out = []
    for r in range(nranks):
        q = tsp_positions(seq_len, nranks, r, True)
        out.append(int(sum(p + 1 for p in q)))
    return out


def tsp_split(x: Array, comm: Comm = None, causal: bool = False, axis: int = 1) -> Array:
    """This rank's tokens of a full array ``x`` (no message; every rank holds ``x``).

    Examples
    --------
    >>> import numpy as np
    >>> tsp_split(np.arange(4.0)[None], causal=True).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    """
    comm = resolve_comm(comm)
    pos = tsp_positions(x.shape[axis], comm.Get_size(), comm.Get_rank(), causal)
    xp = get_array_module(x)
    return xp.take(x, xp.asarray(pos), axis=axis)


def tsp_gather(x: Array, comm: Comm = None, causal: bool = False, axis: int = 1) -> Array:
    """Every rank's tokens back in sequence order, on every rank (one ``Allgatherv``; collective).

    Examples
    --------
    >>> import numpy as np
    >>> tsp_gather(np.arange(4.0)[None], causal=True).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    """
    comm = resolve_comm(comm)
    P, n = comm.Get_size(), x.shape[axis]
    agree(comm, {"tokens": n, "causal": causal})
    xp = get_array_module(x)
    moved = xp.moveaxis(x, axis, 0)
    full = allgatherv(comm, xp.ascontiguousarray(moved), [n] * P)
    order = np.concatenate([tsp_positions(n * P, P, r, causal) for r in range(P)])
    out = xp.empty_like(full)
    out[xp.asarray(order)] = full
    return xp.moveaxis(out, 0, axis)


def tsp_traffic(batch: int, seq_len: int, embed_dim: int, nranks: int,
                itemsize: int = 8) -> dict[str, int]:
    """Counted ``Sendrecv`` bytes per rank of the attention's K/V ring, forward and backward.

    Examples
    --------
    >>> tsp_traffic(2, 8, 4, 2)
    {'forward_calls': 1, 'forward_bytes': 512, 'backward_calls': 2, 'backward_bytes': 1536}
    """
    blk = batch * seq_len // nranks * embed_dim * itemsize
    if nranks == 1:
        return {"forward_calls": 0, "forward_bytes": 0, "backward_calls": 0, "backward_bytes": 0}
    return {"forward_calls": nranks - 1, "forward_bytes": (nranks - 1) * 2 * blk,
            "backward_calls": nranks, "backward_bytes": (nranks - 1) * 4 * blk + 2 * blk}


def block_scores(q: Array, k: Array, qpos: np.ndarray, kpos: np.ndarray,
                 causal: bool) -> tuple[Array | None, int]:
    """Scaled scores ``q k^T / sqrt(Dh)`` of the local queries against one key block.

    Causal: the causal mask is added, each side is taken as two chunks (the
    zigzag halves) and a chunk pair whose keys all follow its queries is not
    computed (left at minus infinity). Returns the scores (None when every
    key follows every query) and the number of chunk products computed.

    Examples
    --------
    >>> import numpy as np
    >>> q = k = np.ones((4, 2))
    >>> s, products = block_scores(q, k, np.array([0, 1, 6, 7]), np.array([2, 3, 4, 5]), True)
    >>> products, bool(np.isinf(s[:2]).all())
    (2, True)
    """
    xp = get_array_module(q, k)
    scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))
    if not causal:
        return (q @ xp.swapaxes(k, -1, -2)) * scale, 1
    if kpos.min() > qpos.max():
        return None, 0
    n, c = q.shape[-2], q.shape[-2] // 2
    s = xp.full((*q.shape[:-1], k.shape[-2]), -xp.inf, dtype=q.dtype)
    products = 0
    halves = (slice(0, c), slice(c, n))
    for qi in halves:
        for ki in halves:
            if kpos[ki].min() > qpos[qi].max():
                continue  # every key of this chunk follows every query of that one
            s[..., qi, ki] = (q[..., qi, :] @ xp.swapaxes(k[..., ki, :], -1, -2)) * scale
            products += 1
    s += xp.asarray(np.where(kpos[None, :] > qpos[:, None], -np.inf, 0.0).astype(q.dtype))
    return s, products
