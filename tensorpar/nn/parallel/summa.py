"""2-D SUMMA linear layer (Optimus): inputs and weights in ``q x q`` blocks on a square grid.

Write the serial layer as ``C = A B + b`` with ``A = x`` (``N x K``,
``K = in_features``) and ``B = W^T`` (``K x M``, ``M = out_features``). On a
``q x q`` :class:`~tensorpar.distributed.grid.ProcessGrid` rank ``(i, j)``
holds the blocks ``A_ij`` (rows ``i`` of ``q``, feature block ``j``),
``B_ij`` (stored as the PyTorch-layout weight block
``W[M-block j, K-block i]``) and produces ``C_ij``, which is in the same
layout as its input: the next SUMMA layer takes it as is.

forward
    for ``k = 0 .. q-1``: rank ``(i, k)`` broadcasts ``A_ik`` along grid row
    ``i`` and rank ``(k, j)`` broadcasts ``B_kj`` along grid column ``j``;
    every rank adds ``A_ik B_kj``: **q row and q column broadcasts**.
backward
    ``dA_ik = sum_j dC_ij B_kj^T`` (``B_kj`` broadcast along columns, partial
    products reduced along rows onto ``(i, k)``) and ``dB_kj = sum_i A_ik^T
    dC_ij`` (``A_ik`` broadcast along rows, reduced along columns onto
    ``(k, j)``): q row and q column broadcasts plus q row and q column
    reduces.

The bias ``b`` is split in ``q^2`` pieces (rank ``(i, j)`` holds piece ``i``
of block ``j``); forward all-gathers block ``j`` along the column and
backward reduce-scatters its gradient, so parameter memory per rank is
exactly ``1/q^2`` of the serial layer's. Activation memory (the cached
input block) is ``1/q^2`` too. Counted bytes per rank, with ``n`` rows in
this grid row, ``k = K/q``, ``m = M/q`` and 8-byte floats
(:func:`summa_traffic`): forward ``q`` row ``Bcast`` of ``n k`` and ``q``
column ``Bcast`` of ``k m``; backward the same broadcasts and ``q`` row
``Reduce`` of ``n k`` and ``q`` column ``Reduce`` of ``m k``; with a bias an
``Allgatherv`` (forward) and a ``Reduce_scatter`` (backward) of ``m`` on the
column.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from ..._backend import get_array_module
from ..._typing import Array, Comm
from ...distributed.comm import agree, allgatherv, bcast, reduce, reduce_scatter, resolve_comm
from ...distributed.grid import ProcessGrid, block_bounds
from ..checks import cached, check_grad, check_input, check_positive_int
from ..linear import Linear
from ..module import Module, Parameter
from .rotated import local_error, shard_rows

__all__ = ["SummaLinear", "summa_grid", "summa_traffic"]


def summa_grid(comm: Comm = None) -> ProcessGrid:
    """A ``q x q`` :class:`ProcessGrid` over ``comm``; a ValueError unless its size is a square.

    Every rank knows the size, so every rank raises the same error without a message.

    Examples
    --------
    >>> with summa_grid() as g:          # one rank: a 1 x 1 grid
    ...     g.dims
    (1, 1)
    """
    comm = resolve_comm(comm)
    size = comm.Get_size()
    q = math.isqrt(size)
    if q * q != size:
        raise ValueError(f"SUMMA needs a square number of ranks (a q x q grid), got {size}; "
                         f"run on {q * q} or {(q + 1) ** 2} ranks")
    return ProcessGrid((q, q), comm)


def summa_traffic(rows: int, in_features: int, out_features: int, q: int, bias: bool = True,
                  itemsize: int = 8) -> dict[str, dict[str, dict[str, int]]]:
    """Counted bytes per rank and communicator of one forward and one backward.

    ``rows`` is the number of input rows of this rank's grid row. Keys:
    ``"row"`` (grid-row communicator, ``slice0``) and ``"col"`` (``slice1``).

    Examples
    --------
    >>> summa_traffic(4, 6, 8, 2)["forward"]
    {'row': {'Bcast': 192}, 'col': {'Bcast': 192, 'Allgatherv': 32}}
    """
    if q == 1:
        return {"forward": {"row": {}, "col": {}}, "backward": {"row": {}, "col": {}}}
    k, m = in_features // q, out_features // q
    a, b = rows * k * itemsize, k * m * itemsize
    fwd: dict[str, dict[str, int]] = {"row": {"Bcast": q * a}, "col": {"Bcast": q * b}}
    bwd: dict[str, dict[str, int]] = {"row": {"Bcast": q * a, "Reduce": q * a},
                                      "col": {"Bcast": q * b, "Reduce": q * b}}
    if bias:
        fwd["col"]["Allgatherv"] = m * itemsize
        bwd["col"]["Reduce_scatter"] = m * itemsize
    return {"forward": fwd, "backward": bwd}


class SummaLinear(Module):
    """``y = x W^T + b`` on a ``q x q`` grid with SUMMA products (Optimus' 2-D layout).

    Parameters
    ----------
    in_features, out_features : int
        As :class:`~tensorpar.nn.Linear`; both divisible by ``q`` (and
        ``out_features`` by ``q^2`` with a bias), checked on every rank.
    bias : bool
        Learned bias, split in ``q^2`` pieces.
    grid : ProcessGrid, optional
        A ``(q, q)`` grid (shared by the layers of a model); default
        :func:`summa_grid` over ``comm``, freed by :meth:`free`.
    comm : mpi4py communicator, optional
        Used only when ``grid`` is None.
    dtype, seed, xp
        As :class:`~tensorpar.nn.Linear`; the blocks are cut from
        ``Linear(in_features, out_features, bias, seed=seed)`` (pass the same
        integer seed on every rank); the full layer exists transiently during
        construction.

    Attributes
    ----------
    weight : Parameter
        ``W[M-block j, K-block i]``, shape ``(out/q, in/q)`` on rank ``(i, j)``.
    bias : Parameter or None
        Piece ``i`` of bias block ``j``, shape ``(out/q^2,)``.

    Notes
    -----
    Input: this rank's block ``(n, in/q)`` (or ``(..., in/q)``, the leading
    axes flattened to ``n`` rows); the ranks of a grid row must pass the same
    ``n`` (agreed). Output ``(..., out/q)``, block ``(i, j)`` of ``y``.
    :meth:`input_block` cuts a full array. Collective over the grid; every
    entry point agrees on its arguments first.

    Examples
    --------
    Under ``mpiexec -n 4`` (a 2 x 2 grid)::

        grid = summa_grid()
        lin = SummaLinear(8, 8, grid=grid, seed=0)   # each rank: a 4 x 4 block, 2 bias entries
        y_blk = lin(lin.input_block(x_full))         # 2 row and 2 column broadcasts
        dx_blk = lin.backward(g_blk)

    >>> import numpy as np
    >>> lin = SummaLinear(4, 2, seed=0)              # one rank: the serial layer
    >>> bool(np.allclose(lin(np.ones((3, 4))), Linear(4, 2, seed=0)(np.ones((3, 4)))))
    True
    >>> lin.free()
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 grid: ProcessGrid | None = None, comm: Comm = None, dtype: Any = np.float64,
                 seed: int | np.random.Generator | None = None, xp: ModuleType = np) -> None:
        super().__init__()
        self._owns_grid = grid is None
        self.grid = summa_grid(comm) if grid is None else grid
        if len(self.grid.dims) != 2 or self.grid.dims[0] != self.grid.dims[1]:
            raise ValueError(f"grid must be a square (q, q) ProcessGrid, got dims {self.grid.dims}")
        q = self.q = self.grid.dims[0]
        self.i, self.j = self.grid.coords
        self.row_comm, self.col_comm = self.grid.slice_comm(0), self.grid.slice_comm(1)

        def check() -> None:
            check_positive_int(in_features, "in_features")
            check_positive_int(out_features, "out_features")
            shard_rows(in_features, q, "in_features")
            shard_rows(out_features, q * q if bias else q, "out_features")
        agree(self.grid.comm, {"in_features": in_features, "out_features": out_features,
                               "bias": bias, "dtype": str(np.dtype(dtype)),
                               "seed": seed if not isinstance(seed, np.random.Generator) else None},
              error=local_error(check))
        full = Linear(in_features, out_features, bias, dtype=dtype, seed=seed, xp=xp)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.k, self.m = self.in_features // q, self.out_features // q
        w = full.weight.data[self.j * self.m:(self.j + 1) * self.m,
                             self.i * self.k:(self.i + 1) * self.k]
        self.weight = Parameter(w.copy())
        self.bias = None
        if full.bias is not None:
            piece = self.m // q
            start = self.j * self.m + self.i * piece
            self.bias = Parameter(full.bias.data[start:start + piece].copy())

    def input_block(self, x: Array, features: int | None = None) -> Array:
        """This rank's block of a full array ``x`` (same on every rank): rows ``i``, features ``j``.

        Rows are the first axis, split by
        :func:`~tensorpar.distributed.grid.block_bounds` (``q`` near-equal
        parts); the last axis (``features``, default ``in_features``) in ``q``
        equal blocks. Use it with ``out_features`` to cut the matching output
        block of a serial result.
        """
        f = self.in_features if features is None else features
        r0, r1 = block_bounds(x.shape[0], self.q, self.i)
        c = f // self.q
        return x[r0:r1, ..., self.j * c:(self.j + 1) * c]

    def _agree_rows(self, n: int, err: BaseException | None) -> None:
        # rows must match within a grid row; a mismatch there must still raise everywhere
        row_err = local_error(agree, self.row_comm, {"rows": n}, error=err)
        agree(self.grid.comm, {"in_features": self.in_features,
                               "out_features": self.out_features}, error=row_err)

    def forward(self, x: Array) -> Array:
        err = local_error(check_input, x, "x", like=self.weight.data, features=self.k)
        n = int(np.prod(x.shape[:-1])) if hasattr(x, "shape") else 0
        self._agree_rows(n, err)
        xp = get_array_module(x)
        a_mine = x.reshape(n, self.k)
        c = xp.zeros((n, self.m), dtype=x.dtype)
        for k in range(self.q):
            a = self._bcast(self.row_comm, a_mine, self.j == k, k, (n, self.k), xp)
            w = self._bcast(self.col_comm, self.weight.data, self.i == k, k, (self.m, self.k), xp)
            c += a @ w.T
        if self.bias is not None:
            c += allgatherv(self.col_comm, self.bias.data, [self.m // self.q] * self.q)
        self.cache = {"x": x}
        return c.reshape(*x.shape[:-1], self.m)

    def backward(self, grad_out: Array) -> Array:
        x = cached(self.cache, "SummaLinear")["x"]
        n = int(np.prod(x.shape[:-1]))
        err = local_error(check_grad, grad_out, (*x.shape[:-1], self.m), like=x)
        self._agree_rows(n, err)
        xp = get_array_module(x)
        a_mine, g = x.reshape(n, self.k), grad_out.reshape(n, self.m)
        dx: Array = None  # set at k = j: this rank's own block of the input gradient
        for k in range(self.q):
            w = self._bcast(self.col_comm, self.weight.data, self.i == k, k, (self.m, self.k), xp)
            part = reduce(self.row_comm, g @ w, root=k)         # dA_ik onto (i, k)
            if self.j == k:
                dx = part
            a = self._bcast(self.row_comm, a_mine, self.j == k, k, (n, self.k), xp)
            part = reduce(self.col_comm, g.T @ a, root=k)       # dB_kj^T onto (k, j)
            if self.i == k:
                self.weight.grad += part
        if self.bias is not None:
            self.bias.grad += reduce_scatter(self.col_comm, g.sum(axis=0),
                                             [self.m // self.q] * self.q)
        return dx.reshape(x.shape)

    def _bcast(self, comm: Any, mine: Array, is_root: bool, root: int,
               shape: tuple[int, ...], xp: ModuleType) -> Array:
        out = bcast(comm, mine if is_root else None, root=root, shape=shape, dtype=mine.dtype)
        return xp.asarray(out)

    def gathered(self, grad: bool = False) -> dict[str, Array]:
        """The full (serial-layout) weight and bias, or their gradients, on every rank (collective).

        One ``Allgatherv`` per parameter over the grid.
        """
        agree(self.grid.comm, {"grad": grad, "out_features": self.out_features})
        P = self.q * self.q
        coords = [self.grid.coords_of(r) for r in range(P)]
        w = self.weight.grad if grad else self.weight.data
        blocks = allgatherv(self.grid.comm, w.reshape(1, -1), [1] * P)
        xp = get_array_module(w)
        full = xp.empty((self.out_features, self.in_features), dtype=w.dtype)
        for r, (i, j) in enumerate(coords):
            full[j * self.m:(j + 1) * self.m, i * self.k:(i + 1) * self.k] = \
                blocks[r].reshape(self.m, self.k)
        out = {"weight": full}
        if self.bias is not None:
            b = self.bias.grad if grad else self.bias.data
            pieces = allgatherv(self.grid.comm, b.reshape(1, -1), [1] * P)
            bias = xp.empty(self.out_features, dtype=b.dtype)
            piece = self.m // self.q
            for r, (i, j) in enumerate(coords):
                bias[j * self.m + i * piece:j * self.m + (i + 1) * piece] = pieces[r]
            out["bias"] = bias
        return out

    def free(self) -> None:
        """Free the grid if this layer created it (collective)."""
        if self._owns_grid:
            self.grid.free()

    def __repr__(self) -> str:
        return (f"SummaLinear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, grid={self.q}x{self.q})")
