"""Type aliases used across tensorpar (one definition each).

Arrays are typed as :data:`Array`: a numpy or cupy ``ndarray``. cupy is an
optional dependency without type stubs, so the alias is ``Any`` for the
type checker; it documents intent at every signature.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

#: A numpy or cupy ndarray.
Array: TypeAlias = Any
#: An MPI communicator (``mpi4py.MPI.Comm``) or None for ``COMM_WORLD``.
Comm: TypeAlias = Any

#: Kernel family: see :doc:`/engines`.
Engine = Literal["auto", "numpy", "numba", "cupy"]
#: Engines a registry entry can name ("auto" is resolved before lookup).
ConcreteEngine = Literal["numpy", "numba", "cupy"]
#: Sweep direction of TT orthogonalisation and rounding.
Direction = Literal["left", "right"]
#: TT rounding algorithm.
RoundMethod = Literal["qr", "gram", "randomized"]
#: TT norm algorithm.
NormMethod = Literal["gram", "qr"]
#: Position of a core in a train (first, middle, last, or the only one).
Position = Literal["first", "middle", "last", "only"]
#: CP-ALS start.
InitMethod = Literal["random", "random_uniform", "svd"]
#: Why CP-ALS stopped.
StopReason = Literal["tol", "max_iter", "callback"]
#: MPI reduction.
ReduceOp = Literal["sum", "prod", "max", "min", "land", "lor"]
#: Reduction tree of TSQR.
Tree = Literal["flat", "binomial"]
