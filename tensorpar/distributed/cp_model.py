"""The distributed CP iterate: factor blocks and owned rows of one rank.

:func:`tensorpar.distributed.cp.dist_cp_als` runs the serial loop on a
:class:`DistCPModel`; its hooks keep ``blocks`` and the owned-row views in
``state.factors`` in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._typing import Array
from ..cp.state import CPALSState
from ..cp.tensor import CPTensor
from .dist_tensor import DistTensor
from .mttkrp import allgather_factor, factor_blocks, owned_rows

__all__ = ["DistCPModel"]


@dataclass
class DistCPModel:
    """The distributed CP iterate as one rank holds it.

    Attributes
    ----------
    X : DistTensor
        The tensor being decomposed (its grid defines the layout).
    blocks : list of ndarray, each (``|J_n(p_n)|``, R)
        Factor rows ``J_n(p_n)`` of every mode (unit-norm columns globally).
    state : CPALSState
        The shared state record; ``state.factors[n]`` holds the rows this rank
        owns (:func:`~tensorpar.distributed.mttkrp.owned_rows`), views of
        ``blocks``; Grams and weights are replicated.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import random_cp
    >>> from tensorpar.distributed import dist_cp_als
    >>> X = DistTensor.scatter(random_cp((6, 5, 4), 2, seed=0).to_dense())
    >>> seen = []
    >>> _ = dist_cp_als(X, 2, seed=1, max_iter=2, engine="numpy",
    ...                 callback=lambda it, model, fit: seen.append(model.gather().shape))
    >>> seen
    [(6, 5, 4), (6, 5, 4)]

    The same lines run under ``mpiexec -n 2 python script.py``: each rank
    then holds half of the tensor (grid ``(2, 1, 1)``) and its owned factor
    rows, and ``model.gather()`` is a collective that every rank must call.
    """

    X: DistTensor
    blocks: list[Array]
    state: CPALSState

    @classmethod
    def from_full(cls, X: DistTensor, state: CPALSState) -> DistCPModel:
        """Distribute a state holding full factors (every rank holds the same).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar import random_cp
        >>> cp = random_cp((6, 5, 4), 2, seed=0)
        >>> X = DistTensor.scatter(cp.to_dense())
        >>> state = CPALSState(list(cp.factors), cp.weights, [A.T @ A for A in cp.factors])
        >>> model = DistCPModel.from_full(X, state)
        >>> [A.shape for A in model.state.factors]   # one process owns every row
        [(6, 2), (5, 2), (4, 2)]

        Under ``mpiexec -n 2 python script.py`` the grid is ``(2, 1, 1)``: rank 0
        owns the rows ``[(3, 2), (3, 2), (2, 2)]`` and rank 1
        ``[(3, 2), (2, 2), (2, 2)]``, while ``model.blocks`` holds the factor
        blocks of the rank's tensor block (``(3, 2), (5, 2), (4, 2)``).
        """
        model = cls(X, factor_blocks(X, state.factors), state)
        model.refresh_owned()
        return model

    def refresh_owned(self) -> None:
        """Point ``state.factors`` at the owned rows of ``blocks`` (views).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar import random_cp
        >>> cp = random_cp((6, 5, 4), 2, seed=0)
        >>> state = CPALSState(list(cp.factors), cp.weights, [A.T @ A for A in cp.factors])
        >>> model = DistCPModel.from_full(DistTensor.scatter(cp.to_dense()), state)
        >>> model.blocks[0] = 2 * model.blocks[0]   # a new block, e.g. after a sweep
        >>> model.refresh_owned()
        >>> bool(np.shares_memory(model.state.factors[0], model.blocks[0]))
        True

        Under ``mpiexec -n 2`` each rank's views cover only the rows it owns
        (:func:`~tensorpar.distributed.mttkrp.owned_rows`); no data moves.
        """
        for n, (b0, _) in enumerate(self.X.bounds):
            a, b = owned_rows(self.X, n)
            self.state.factors[n] = self.blocks[n][a - b0:b - b0]

    def gather(self) -> CPTensor:
        """The full model on every rank (collective: one ``Allgatherv`` per mode).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpar import random_cp
        >>> cp = random_cp((6, 5, 4), 2, seed=0)
        >>> state = CPALSState(list(cp.factors), cp.weights, [A.T @ A for A in cp.factors])
        >>> model = DistCPModel.from_full(DistTensor.scatter(cp.to_dense()), state)
        >>> bool(np.allclose(model.gather().to_dense(), cp.to_dense()))
        True

        Under ``mpiexec -n 2`` every rank must call it and every rank gets
        the same full :class:`~tensorpar.CPTensor`.
        """
        full = [allgather_factor(self.X, A, n) for n, A in enumerate(self.state.factors)]
        return CPTensor(full, self.state.model_weights().copy())

    def full_state(self) -> CPALSState:
        """The state record with the full factors (collective), e.g. for the checkpoint.

        Examples
        --------
        >>> from tensorpar import random_cp
        >>> cp = random_cp((6, 5, 4), 2, seed=0)
        >>> state = CPALSState(list(cp.factors), cp.weights, [A.T @ A for A in cp.factors])
        >>> model = DistCPModel.from_full(DistTensor.scatter(cp.to_dense()), state)
        >>> [A.shape for A in model.full_state().factors]
        [(6, 2), (5, 2), (4, 2)]

        Under ``mpiexec -n 2`` each rank's ``model.state.factors`` holds only
        its owned rows, but ``full_state()`` returns all rows on every rank.
        """
        full = [allgather_factor(self.X, A, n) for n, A in enumerate(self.state.factors)]
        return dataclasses.replace(self.state, factors=full)
