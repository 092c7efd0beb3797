"""Named communication steps of the tensor- and sequence-parallel layouts (Megatron's ``mappings``).

A parallel layer is a plain :mod:`tensorpar.nn` layer holding a shard of the
weights plus one of these steps, so the layout reads off the forward pass.
Each step is a forward function and its backward (the adjoint map), side by
side, and a parameter-free :class:`Mapping` module that pairs them:

===================================  ========================  ========================
step                                 forward                   backward
===================================  ========================  ========================
``copy_to_tensor_parallel``          identity                  all-reduce
``reduce_from_tensor_parallel``      all-reduce                identity
``scatter_to_tensor_parallel``       keep my slice, last axis  all-gather, last axis
``gather_from_tensor_parallel``      all-gather, last axis     keep my slice
``scatter_to_sequence_parallel``     keep my slice, ``seq``    all-gather, ``seq``
``gather_from_sequence_parallel``    all-gather, ``seq``       reduce-scatter, ``seq``
``reduce_scatter_to_sequence_...``   reduce-scatter, ``seq``   all-gather, ``seq``
===================================  ========================  ========================

``seq`` is the sequence axis, axis 1 of batch-first ``(B, S, E)``
activations (``seq_axis`` to change). Splits are into ``P`` equal blocks in
rank order; a size that ``P`` does not divide raises a ValueError on every
rank (there is no padding).

Counted bytes per call (:func:`tensorpar.distributed.comm.count_traffic`),
for an activation of ``n`` elements of ``w`` bytes: an all-reduce ``n w``;
a reduce-scatter ``n w`` (its whole input); an all-gather ``n w`` (its whole
output). Megatron-SP's claim that an all-reduce costs as much as a
reduce-scatter plus an all-gather refers to the wire bytes of ring
algorithms, ``2 (P-1)/P n w`` either way.

Agreement: the functions here are collective. With ``check=True`` (the
default) a call first validates its input locally and agrees on the
array's shape and dtype across ranks (:func:`~tensorpar.nn.parallel.agreement.agree_on`,
re-exported here), so bad input on one rank raises on every rank instead of
hanging; parallel layers make that check once per forward and per backward
and then call the steps with ``check=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._typing import Array
from ...distributed import comm as C
from ..checks import check_float
from ..module import Module
from .agreement import agree_on, agreed_build, check_serial, split_size

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

__all__ = [
    "Mapping", "agree_on", "agreed_build", "check_serial", "copy_to_tensor_parallel",
    "copy_to_tensor_parallel_backward",
    "gather_from_sequence_parallel", "gather_from_sequence_parallel_backward",
    "gather_from_tensor_parallel", "gather_from_tensor_parallel_backward", "local_slice",
    "reduce_from_tensor_parallel", "reduce_from_tensor_parallel_backward",
    "reduce_scatter_to_sequence_parallel", "reduce_scatter_to_sequence_parallel_backward",
    "scatter_to_sequence_parallel", "scatter_to_sequence_parallel_backward",
    "scatter_to_tensor_parallel", "scatter_to_tensor_parallel_backward", "split_size",
]

def local_slice(x: Array, comm: MPI.Comm | None, axis: int) -> Array:
    """This rank's block of ``x`` along ``axis`` (``P`` equal blocks in rank order; a copy).

    Examples
    --------
    >>> import numpy as np
    >>> local_slice(np.arange(6.0), None, 0)     # one rank keeps everything
    array([0., 1., 2., 3., 4., 5.])
    """
    comm = C.resolve_comm(comm)
    size, rank = comm.Get_size(), comm.Get_rank()
    m = split_size(x.shape[axis], size, f"size of axis {axis % x.ndim}")
    index = [slice(None)] * x.ndim
    index[axis] = slice(rank * m, (rank + 1) * m)
    return x[tuple(index)].copy()


def _check(comm: MPI.Comm | None, x: Any, axis: int | None, check: bool) -> None:
    if not check:
        return
    size = C.resolve_comm(comm).Get_size()

    def validate() -> None:
        check_float(x, "x")
        if axis is not None:
            if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
                raise ValueError(f"x of shape {tuple(x.shape)} has no axis {axis}")
            split_size(x.shape[axis], size, f"size of axis {axis % x.ndim}")

    agree_on(comm, {"shape": tuple(getattr(x, "shape", ())), "dtype": str(getattr(x, "dtype", ""))},
             validate)


def _gather(comm: MPI.Comm | None, x: Array, axis: int) -> Array:
    size = C.resolve_comm(comm).Get_size()
    return C.allgatherv(comm, x, counts=[x.shape[axis]] * size, axis=axis)


# --- tensor-parallel region (split features, the last axis) ------------------------------
def copy_to_tensor_parallel(x: Array, comm: MPI.Comm | None = None, *, check: bool = True) -> Array:
    """Forward: identity (every rank holds the whole input of a column-parallel layer).

    Examples
    --------
    >>> import numpy as np
    >>> copy_to_tensor_parallel(np.ones(2))
    array([1., 1.])

    Under ``mpiexec -n 2 python script.py`` both ranks also return
    ``array([1., 1.])``; the backward (:func:`copy_to_tensor_parallel_backward`)
    all-reduces, so each rank's input gradient is the sum over both ranks.
    """
    _check(comm, x, None, check)
    return x


def copy_to_tensor_parallel_backward(g: Array, comm: MPI.Comm | None = None, *, check: bool = True) -> Array:
    """Backward of :func:`copy_to_tensor_parallel`: sum the ranks' partial input gradients.

    Examples
    --------
    >>> import numpy as np
    >>> copy_to_tensor_parallel_backward(np.ones(2))
    array([1., 1.])
    """
    _check(comm, g, None, check)
    return C.allreduce(comm, g)


def reduce_from_tensor_parallel(x: Array, comm: MPI.Comm | None = None, *, check: bool = True) -> Array:
    """Forward: all-reduce the partial sums of a row-parallel layer.

    Examples
    --------
    >>> import numpy as np
    >>> reduce_from_tensor_parallel(np.ones(2))
    array([1., 1.])

    Under ``mpiexec -n 2 python script.py`` both ranks return
    ``array([2., 2.])``, the sum of the two ranks' partial outputs.
    """
    _check(comm, x, None, check)
    return C.allreduce(comm, x)


def reduce_from_tensor_parallel_backward(g: Array, comm: MPI.Comm | None = None, *,
                                         check: bool = True) -> Array:
    """Backward of :func:`reduce_from_tensor_parallel`: identity.

    Examples
    --------
    >>> import numpy as np
    >>> reduce_from_tensor_parallel_backward(np.ones(2))
    array([1., 1.])
    """
    _check(comm, g, None, check)
    return g


def scatter_to_tensor_parallel(x: Array, comm: MPI.Comm | None = None, *, check: bool = True) -> Array:
    """Forward: keep this rank's block of the last axis (no message).

    Examples
    --------
    >>> import numpy as np
    >>> scatter_to_tensor_parallel(np.ones((1, 2))).shape
    (1, 2)

    Under ``mpiexec -n 2 python script.py`` each rank keeps one of the two
    columns: shape ``(1, 1)``.
    """
    _check(comm, x, -1, check)
    return local_slice(x, comm, -1)


def scatter_to_tensor_parallel_backward(g: Array, comm: MPI.Comm | None = None, *,
                                        check: bool = True) -> Array:
    """Backward of :func:`scatter_to_tensor_parallel`: all-gather the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> scatter_to_tensor_parallel_backward(np.ones((1, 2))).shape
    (1, 2)
    """
    if check:
        agree_on(comm, {"shape": tuple(g.shape), "dtype": str(g.dtype)}, lambda: check_float(g, "g"))
    return _gather(comm, g, -1)


def gather_from_tensor_parallel(x: Array, comm: MPI.Comm | None = None, *, check: bool = True) -> Array:
    """Forward: all-gather the last axis (a column-parallel layer's full output).

    Examples
    --------
    >>> import numpy as np
    >>> gather_from_tensor_parallel(np.ones((1, 2))).shape
    (1, 2)

    Under ``mpiexec -n 2 python script.py`` each rank contributes its
    ``(1, 2)`` block and gets the ``(1, 4)`` concatenation in rank order.
    """
    if check:
        agree_on(comm, {"shape": tuple(x.shape), "dtype": str(x.dtype)}, lambda: check_float(x, "x"))
    return _gather(comm, x, -1)


def gather_from_tensor_parallel_backward(g: Array, comm: MPI.Comm | None = None, *,
                                         check: bool = True) -> Array:
    """Backward of :func:`gather_from_tensor_parallel`: keep this rank's block of the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> gather_from_tensor_parallel_backward(np.ones((1, 2))).shape
    (1, 2)
    """
    _check(comm, g, -1, check)
    return local_slice(g, comm, -1)


# --- sequence-parallel region (split tokens, the sequence axis) ---------------------------
def scatter_to_sequence_parallel(x: Array, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                                 check: bool = True) -> Array:
    """Forward: keep this rank's block of the sequence axis (no message).

    Examples
    --------
    >>> import numpy as np
    >>> scatter_to_sequence_parallel(np.ones((2, 4, 3))).shape
    (2, 4, 3)

    Under ``mpiexec -n 2 python script.py`` each rank keeps 2 of the 4
    positions of the sequence axis: shape ``(2, 2, 3)``.
    """
    _check(comm, x, seq_axis, check)
    return local_slice(x, comm, seq_axis)


def scatter_to_sequence_parallel_backward(g: Array, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                                          check: bool = True) -> Array:
    """Backward of :func:`scatter_to_sequence_parallel`: all-gather the sequence axis.

    Examples
    --------
    >>> import numpy as np
    >>> scatter_to_sequence_parallel_backward(np.ones((2, 4, 3))).shape
    (2, 4, 3)
    """
    if check:
        agree_on(comm, {"shape": tuple(g.shape), "dtype": str(g.dtype)}, lambda: check_float(g, "g"))
    return _gather(comm, g, seq_axis)


def gather_from_sequence_parallel(x: Array, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                                  check: bool = True) -> Array:
    """Forward: all-gather the sequence axis (the input of a column-parallel layer under SP).

    Examples
    --------
    >>> import numpy as np
    >>> gather_from_sequence_parallel(np.ones((2, 4, 3))).shape
    (2, 4, 3)

    Under ``mpiexec -n 2 python script.py`` each rank passes its 4
    positions and gets all 8: shape ``(2, 8, 3)``.
    """
    if check:
        agree_on(comm, {"shape": tuple(x.shape), "dtype": str(x.dtype)}, lambda: check_float(x, "x"))
    return _gather(comm, x, seq_axis)


def gather_from_sequence_parallel_backward(g: Array, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                                           check: bool = True) -> Array:
    """Backward of :func:`gather_from_sequence_parallel`: reduce-scatter the sequence axis.

    The ranks' input gradients are partial sums (each rank's weight shard
    contributes), so the adjoint of the all-gather sums them and keeps this
    rank's tokens.

    Examples
    --------
    >>> import numpy as np
    >>> gather_from_sequence_parallel_backward(np.ones((2, 4, 3))).shape
    (2, 4, 3)
    """
    _check(comm, g, seq_axis, check)
    return C.reduce_scatter_block(comm, g, axis=seq_axis)


def reduce_scatter_to_sequence_parallel(x: Array, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                                        check: bool = True) -> Array:
    """Forward: reduce-scatter the sequence axis (the output of a row-parallel layer under SP).

    Examples
    --------
    >>> import numpy as np
    >>> reduce_scatter_to_sequence_parallel(np.ones((2, 4, 3))).shape
    (2, 4, 3)

    Under ``mpiexec -n 2 python script.py`` each rank gets its 2 of the 4
    positions of the sum over both ranks: shape ``(2, 2, 3)``, entries ``2.0``.
    """
    _check(comm, x, seq_axis, check)
    return C.reduce_scatter_block(comm, x, axis=seq_axis)


def reduce_scatter_to_sequence_parallel_backward(g: Array, comm: MPI.Comm | None = None, *,
                                                 seq_axis: int = 1, check: bool = True) -> Array:
    """Backward of :func:`reduce_scatter_to_sequence_parallel`: all-gather the sequence axis.

    Examples
    --------
    >>> import numpy as np
    >>> reduce_scatter_to_sequence_parallel_backward(np.ones((2, 4, 3))).shape
    (2, 4, 3)
    """
    if check:
        agree_on(comm, {"shape": tuple(g.shape), "dtype": str(g.dtype)}, lambda: check_float(g, "g"))
    return _gather(comm, g, seq_axis)


_STEPS: dict[str, tuple[Callable[..., Array], Callable[..., Array], bool]] = {
    "copy_to_tensor_parallel": (copy_to_tensor_parallel, copy_to_tensor_parallel_backward, False),
    "reduce_from_tensor_parallel": (reduce_from_tensor_parallel,
                                    reduce_from_tensor_parallel_backward, False),
    "scatter_to_tensor_parallel": (scatter_to_tensor_parallel,
                                   scatter_to_tensor_parallel_backward, False),
    "gather_from_tensor_parallel": (gather_from_tensor_parallel,
                                    gather_from_tensor_parallel_backward, False),
    "scatter_to_sequence_parallel": (scatter_to_sequence_parallel,
                                     scatter_to_sequence_parallel_backward, True),
    "gather_from_sequence_parallel": (gather_from_sequence_parallel,
                                      gather_from_sequence_parallel_backward, True),
    "reduce_scatter_to_sequence_parallel": (reduce_scatter_to_sequence_parallel,
                                            reduce_scatter_to_sequence_parallel_backward, True),
    "identity": (lambda x, comm, check=True: x, lambda g, comm, check=True: g, False),
}


class Mapping(Module):
    """One named communication step as a parameter-free module (``forward`` / ``backward``).

    Parameters
    ----------
    step : str
        A name from the table in the module docstring, or ``"identity"``.
    comm : mpi4py communicator, optional
        The tensor-parallel group (default ``COMM_WORLD``).
    seq_axis : int
        Sequence axis of the sequence-parallel steps.
    check : bool
        Agree on the input's shape across ranks on every call (see the module
        docstring); layers that agreed already pass False.

    Examples
    --------
    >>> import numpy as np
    >>> m = Mapping("reduce_from_tensor_parallel")
    >>> m(np.ones(2)), m.backward(np.ones(2))
    (array([1., 1.]), array([1., 1.]))

    Under ``mpiexec -n 2 python script.py`` the forward returns
    ``array([2., 2.])`` on both ranks (an all-reduce) and the backward is
    still the identity.
    """

    def __init__(self, step: str, comm: MPI.Comm | None = None, *, seq_axis: int = 1,
                 check: bool = True) -> None:
        super().__init__()
        if step not in _STEPS:
            raise ValueError(f"step must be one of {sorted(_STEPS)}, got {step!r}")
        self.step, self.comm, self.seq_axis, self.check = step, comm, seq_axis, check

    def _kw(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"check": self.check}
        if _STEPS[self.step][2]:
            kw["seq_axis"] = self.seq_axis
        return kw

    def forward(self, x: Array) -> Array:
        return _STEPS[self.step][0](x, self.comm, **self._kw())

    def backward(self, grad_out: Array) -> Array:
        return _STEPS[self.step][1](grad_out, self.comm, **self._kw())

    def __repr__(self) -> str:
        return f"Mapping({self.step!r})"
