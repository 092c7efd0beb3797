"""Neural-network layers built on tensorpar's primitives, with hand-written backward passes.

Every layer is a :class:`Module`: ``forward`` keeps what ``backward`` needs,
``backward(grad_out)`` returns the input gradient and accumulates parameter
gradients. Weights of compressed layers are TT-matrices and CP factors, and
the products go through :mod:`tensorpar.tt`. Parallel layouts live in
:mod:`tensorpar.nn.parallel`.
"""

from __future__ import annotations

from .module import Module, Parameter, Sequential, load_state, save_state

__all__ = ["Module", "Parameter", "Sequential", "load_state", "save_state"]
