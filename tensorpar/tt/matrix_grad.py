"""TT-matrix times dense batch, forward sweep and vector-Jacobian products.

For a TT-matrix ``A`` with cores ``G_k`` of shape ``(r_k, m_k, n_k, r_{k+1})``
and a batch ``X`` of shape ``(N, B)`` (columns), :func:`ttm_matmat_forward`
computes ``Y = A X`` of shape ``(M, B)`` by the plan of
:mod:`tensorpar.tt.matrix_plan` and keeps, in a :class:`TTMatmatTape`, the
partial contractions of the sweep (the input of every step) and the merged
super-cores. :func:`ttm_matmat_vjp` takes ``dL/dY`` and returns ``dL/dX`` and
``dL/dG_k`` for every core, reusing what the tape holds: no contraction of
the forward is recomputed (only the small step matrices are laid out again).
For complex data the products are the plain transposes (no conjugation):
``dX = A^T dY``. A neural-net layer ``y = x W^T`` with ``W = A`` and a
batch-first ``x`` of shape ``(B, N)`` calls these with ``X = x`` and
``batch_first=True`` (the batch becomes the slowest index of every step's
stack ``L`` instead of the fastest of its columns ``R``: the same GEMMs on the
row-major data, no transposed copy), or with ``X = x.T``.

Every step is a stacked GEMM ``Y_g = C_g @ Z_g`` (see
:mod:`~tensorpar.tt.matrix_plan`), so its VJP is two stacked GEMMs::

    dC_g = sum_l dY_g[l] @ Z_g[l]^T        dZ_g = C_g^T @ dY_g

and the VJP of merging cores ``a, b`` into one super-core is two tensordots.
The batch is only ever a column index: a shard of the columns runs the
same code, and the core gradients of shards add up (data parallelism).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .matrix_plan import Implementation, TTMatmatPlan, plan_ttm_matmat

__all__ = ["TTMatmatTape", "merge_cores", "merge_cores_vjp", "step_forward", "step_vjp",
           "ttm_matmat_forward", "ttm_matmat_vjp"]


@dataclass
class TTMatmatTape:
    """What the forward sweep keeps for the backward.

    Attributes
    ----------
    plan : TTMatmatPlan
    cores : list of ndarray
        The TT cores the forward used.
    merged : list of ndarray
        One super-core per group of the plan (the core itself for a singleton).
    merge_steps : list of list of ndarray
        Per group, the running merges ``G_i, G_i G_{i+1}, ...`` (the VJP of a
        merge needs its left operand).
    inputs : list of ndarray
        Per step (in sweep order) the ``(L, K, R)`` operand ``Z_g``.
    batch_first : bool
        The batch was the rows of ``X`` (``(B, N)``) rather than its columns.
    """

    plan: TTMatmatPlan
    cores: list[Array]
    merged: list[Array]
    merge_steps: list[list[Array]]
    inputs: list[Array] = field(default_factory=list)
    batch_first: bool = False

    def kept_bytes(self) -> int:
        """Bytes held: step inputs and merged cores (the original cores not counted)."""
        arrays = self.inputs + [a for steps in self.merge_steps for a in steps[1:]]
        return sum(int(a.nbytes) for a in arrays)


def merge_cores(cores: Sequence[Array]) -> tuple[Array, list[Array]]:
    """Merge consecutive TT-matrix cores into one, row and column modes kept apart.

    Parameters
    ----------
    cores : sequence of ndarray
        Cores ``(r_i, m_i, n_i, r_{i+1}), ..., (r_{j-1}, m_{j-1}, n_{j-1}, r_j)``.

    Returns
    -------
    merged : ndarray, shape (r_i, m_i...m_{j-1}, n_i...n_{j-1}, r_j)
    steps : list of ndarray
        The running merges (``steps[0]`` is ``cores[0]``, ``steps[-1]`` is ``merged``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTMatrix
    >>> A = TTMatrix([np.ones((1, 2, 3, 2)), np.ones((2, 4, 5, 1))])
    >>> merged, _ = merge_cores(A.cores)
    >>> merged.shape, bool(np.allclose(merged[0, :, :, 0], A.to_dense()))
    ((1, 8, 15, 1), True)
    """
    xp = get_array_module(*cores)
    steps = [cores[0]]
    for b in cores[1:]:
        a = steps[-1]
        r, m, n, _ = a.shape
        _, m2, n2, s = b.shape
        t = xp.tensordot(a, b, axes=([3], [0]))  # (r, m, n, m2, n2, s)
        steps.append(xp.ascontiguousarray(t.transpose(0, 1, 3, 2, 4, 5)).reshape(r, m * m2, n * n2, s))
    return steps[-1], steps


def merge_cores_vjp(cores: Sequence[Array], steps: Sequence[Array], grad: Array) -> list[Array]:
    """Gradients of the cores given the gradient of their merge (see :func:`merge_cores`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((2, 2, 2, 1))]
    >>> merged, steps = merge_cores(cores)
    >>> grads = merge_cores_vjp(cores, steps, np.ones_like(merged))
    >>> [g.shape for g in grads]
    [(1, 2, 3, 2), (2, 2, 2, 1)]
    """
    xp = get_array_module(grad, *cores)
    out: list[Array] = [None] * len(cores)
    g = grad
    for k in range(len(cores) - 1, 0, -1):
        a, b = steps[k - 1], cores[k]
        r, m, n, _ = a.shape
        _, m2, n2, s = b.shape
        gt = g.reshape(r, m, m2, n, n2, s).transpose(0, 1, 3, 2, 4, 5)
        out[k] = xp.tensordot(a, gt, axes=([0, 1, 2], [0, 1, 2]))            # (q, m2, n2, s)
        g = xp.tensordot(gt, b, axes=([3, 4, 5], [1, 2, 3]))                 # (r, m, n, q)
    out[0] = g
    return out


def _step_matrix(core: Array, direction: str) -> Array:
    """The ``(P, K)`` matrix of a (super-)core for a left or right step."""
    r, m, n, q = core.shape
    if direction == "left":
        return get_array_module(core).ascontiguousarray(core.transpose(1, 3, 0, 2)).reshape(m * q, r * n)
    return core.reshape(r * m, n * q)


def _core_from_step_matrix(grad: Array, shape: tuple[int, ...], direction: str) -> Array:
    r, m, n, q = shape
    if direction == "left":
        return grad.reshape(m, q, r, n).transpose(2, 0, 3, 1)
    return grad.reshape(r, m, n, q)


def _operands(plan: TTMatmatPlan, merged: Sequence[Array], batch: int,
              batch_first: bool = False) -> list[tuple[int, int, int]]:
    """``(L, K, R)`` of every step, in sweep order.

    The batch index is the slowest of ``L`` (``batch_first``: ``X`` is
    ``(B, N)`` row-major) or the fastest of ``R`` (``X`` is ``(N, B)``).
    """
    lb, rb = (batch, 1) if batch_first else (1, batch)
    shapes = [c.shape for c in merged]
    order = range(len(shapes)) if plan.direction == "left" else range(len(shapes) - 1, -1, -1)
    out = []
    for g in order:
        r, m, n, q = shapes[g]
        if plan.direction == "left":
            L = lb * int(np.prod([s[1] for s in shapes[:g]]))
            R = rb * int(np.prod([s[2] for s in shapes[g + 1:]]))
            out.append((L, r * n, R))
        else:
            L = lb * int(np.prod([s[2] for s in shapes[:g]]))
            R = rb * int(np.prod([s[1] for s in shapes[g + 1:]]))
            out.append((L, n * q, R))
    return out


#: Elements of the partial products :func:`step_vjp` sums per chunk of a stacked step.
STACK_CHUNK_ELEMENTS = 2**18


def step_forward(C: Array, Z: Array) -> Array:
    """``C @ Z[l]`` for every ``l``: ``(P, K)`` times ``(L, K, R)`` gives ``(L, P, R)``.

    One GEMM when ``L == 1`` or ``R == 1`` (then ``Z`` is ``(L, K)`` and the
    product is ``Z C^T``): a stack of matrix-vector products would run at
    memory speed.

    Examples
    --------
    >>> import numpy as np
    >>> C, Z = np.ones((2, 3)), np.ones((4, 3, 1))
    >>> step_forward(C, Z).shape
    (4, 2, 1)
    """
    xp = get_array_module(C, Z)
    L, K, R = Z.shape
    if R == 1 and L > 1:
        return xp.matmul(Z.reshape(L, K), C.T).reshape(L, C.shape[0], 1)
    return xp.matmul(C, Z)


def step_vjp(C: Array, Z: Array, G: Array, need_input: bool = True) -> tuple[Array, Array | None]:
    """Gradients of ``<G, step_forward(C, Z)>`` with respect to ``C`` and ``Z``.

    ``dC = sum_l G[l] Z[l]^T`` and ``dZ = C^T G[l]``; one GEMM each when
    ``L == 1`` or ``R == 1`` (the sum over ``l`` is then the GEMM's inner
    dimension), a stacked GEMM otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> C, Z, G = np.ones((2, 3)), np.ones((4, 3, 1)), np.ones((4, 2, 1))
    >>> dC, dZ = step_vjp(C, Z, G)
    >>> dC.shape, dZ.shape, float(dC[0, 0])
    ((2, 3), (4, 3, 1), 4.0)
    """
    xp = get_array_module(C, Z, G)
    L, K, R = Z.shape
    if R == 1:
        G2, Z2 = G.reshape(L, -1), Z.reshape(L, K)
        dC = xp.matmul(G2.T, Z2)
        return dC, (xp.matmul(G2, C).reshape(L, K, 1) if need_input else None)
    if L == 1:
        dC = xp.matmul(G[0], Z[0].T)
    else:
        # the stacked products summed over l in chunks whose (chunk, P, K) partials stay in
        # cache (~2 MiB): one (L, P, K) temporary is a write and a read of L P K elements more
        P, K = G.shape[1], Z.shape[1]
        chunk = max(1, STACK_CHUNK_ELEMENTS // (P * K))
        dC = xp.matmul(G[:chunk], Z[:chunk].transpose(0, 2, 1)).sum(axis=0)
        for s in range(chunk, L, chunk):
            dC += xp.matmul(G[s:s + chunk], Z[s:s + chunk].transpose(0, 2, 1)).sum(axis=0)
    # C^T laid out once (P K elements): the stacked GEMMs then read a plain row-major operand
    return dC, (xp.matmul(xp.ascontiguousarray(C.T), G) if need_input else None)


def ttm_matmat_forward(cores: Sequence[Array], X: Array,
                       plan: TTMatmatPlan | Implementation = "auto",
                       keep: bool = True, batch_first: bool = False) -> tuple[Array, TTMatmatTape | None]:
    """``Y = A X`` for the TT-matrix ``A`` with ``cores`` and a dense batch ``X``.

    Parameters
    ----------
    cores : sequence of ndarray
        Checked TT-matrix cores ``(r_k, m_k, n_k, r_{k+1})`` (as in :class:`TTMatrix`).
    X : ndarray, shape (N, B)
        Columns, ``N = prod n_k``; same array module and dtype family as the cores.
    plan : TTMatmatPlan or str
        A plan, or the ``implementation`` passed to :func:`plan_ttm_matmat`.
    keep : bool
        Keep the tape for :func:`ttm_matmat_vjp` (False: inference, nothing kept).
    batch_first : bool
        ``X`` is ``(B, N)`` (a batch of rows, as a layer receives it) and ``Y``
        is ``(B, M)``, i.e. ``Y = X A^T``. The same GEMMs run on the row-major
        data as it is: no transposed copy of ``X`` or ``Y`` (each a full pass
        at a fraction of the memory bandwidth).

    Returns
    -------
    Y : ndarray, shape (M, B), or (B, M) with ``batch_first``
    tape : TTMatmatTape or None

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTMatrix
    >>> A = TTMatrix.from_dense(np.arange(24.0).reshape(4, 6), (2, 2), (2, 3))
    >>> Y, tape = ttm_matmat_forward(A.cores, np.ones((6, 3)))
    >>> bool(np.allclose(Y, A.to_dense() @ np.ones((6, 3))))
    True
    """
    xp = get_array_module(X, *cores)
    N = int(np.prod([c.shape[2] for c in cores]))
    if X.ndim != 2 or X.shape[1 if batch_first else 0] != N:
        want = "(B, N)" if batch_first else "(N, B)"
        raise ValueError(f"X must have shape {want} with N = {N} (the product of the column modes), "
                         f"got {tuple(X.shape)}")
    B = int(X.shape[0 if batch_first else 1])
    dtype = np.result_type(X.dtype, *[c.dtype for c in cores])
    if not isinstance(plan, TTMatmatPlan):
        plan = plan_ttm_matmat([c.shape[1] for c in cores], [c.shape[2] for c in cores],
                               [1] + [c.shape[3] for c in cores], B, plan,
                               itemsize=np.dtype(dtype).itemsize)
    merged, steps = [], []
    for i, j in plan.groups:
        mc, st = merge_cores(cores[i:j]) if j - i > 1 else (cores[i], [cores[i]])
        merged.append(mc)
        steps.append(st)
    tape = TTMatmatTape(plan, list(cores), merged, steps, batch_first=batch_first) if keep else None
    order = range(len(merged)) if plan.direction == "left" else range(len(merged) - 1, -1, -1)
    Z = xp.ascontiguousarray(X, dtype=dtype)
    for g, (L, K, R) in zip(order, _operands(plan, merged, B, batch_first)):
        Z = Z.reshape(L, K, R)
        if tape is not None:
            tape.inputs.append(Z)
        Z = step_forward(_step_matrix(merged[g], plan.direction), Z)
    return (Z.reshape(B, -1) if batch_first else Z.reshape(-1, B)), tape


def ttm_matmat_vjp(tape: TTMatmatTape, grad_Y: Array,
                   need_input: bool = True) -> tuple[Array | None, list[Array]]:
    """Gradients of ``<grad_Y, A X>`` with respect to ``X`` and every core of ``A``.

    Parameters
    ----------
    tape : TTMatmatTape
        From :func:`ttm_matmat_forward` with ``keep=True``.
    grad_Y : ndarray, shape (M, B), or (B, M) if the forward had ``batch_first``
    need_input : bool
        Compute ``dX`` (False skips the first step's input GEMM, e.g. for a
        first layer).

    Returns
    -------
    grad_X : ndarray, shape (N, B) (``(B, N)`` with ``batch_first``), or None
    grad_cores : list of ndarray
        One per core, shaped like the core.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import TTMatrix
    >>> A = TTMatrix.from_dense(np.arange(24.0).reshape(4, 6), (2, 2), (2, 3))
    >>> X, G = np.ones((6, 3)), np.ones((4, 3))
    >>> Y, tape = ttm_matmat_forward(A.cores, X)
    >>> dX, dcores = ttm_matmat_vjp(tape, G)
    >>> bool(np.allclose(dX, A.to_dense().T @ G))
    True
    """
    plan = tape.plan
    xp = get_array_module(grad_Y, *tape.cores)
    first, last = tape.inputs[0], tape.inputs[-1]
    B = first.shape[0] * first.shape[1] * first.shape[2] // int(np.prod([c.shape[2] for c in tape.cores]))
    M = int(np.prod([c.shape[1] for c in tape.cores]))
    want = (B, M) if tape.batch_first else (M, B)
    if tuple(grad_Y.shape) != want:
        raise ValueError(f"grad_Y must have shape {want} (that of the forward output), "
                         f"got {tuple(grad_Y.shape)}")
    order = list(range(len(tape.merged)))
    if plan.direction == "right":
        order.reverse()
    grad_merged: list[Array] = [None] * len(order)
    G = xp.ascontiguousarray(grad_Y, dtype=last.dtype)
    for step in range(len(order) - 1, -1, -1):
        g, Z = order[step], tape.inputs[step]
        C = _step_matrix(tape.merged[g], plan.direction)
        G = G.reshape(Z.shape[0], C.shape[0], Z.shape[2])
        dC, dZ = step_vjp(C, Z, G, step > 0 or need_input)
        grad_merged[g] = _core_from_step_matrix(dC, tape.merged[g].shape, plan.direction)
        if dZ is not None:
            G = dZ
    grads: list[Array] = []
    for (i, j), gm, st in zip(plan.groups, grad_merged, tape.merge_steps):
        if j - i == 1:
            grads.append(xp.ascontiguousarray(gm))
        else:
            grads.extend(xp.ascontiguousarray(a) for a in merge_cores_vjp(tape.cores[i:j], st, gm))
    if not need_input:
        return None, grads
    return (G.reshape(B, -1) if tape.batch_first else G.reshape(-1, B)), grads
