"""Distributed tensor trains: every core split along its mode index over the ranks.

* :mod:`~tensorpar.distributed.tt.tensor` -- the container :class:`DistTTTensor`
  (its layout and local checks in :mod:`~tensorpar.distributed.tt.layout`);
* :mod:`~tensorpar.distributed.tt.arith` -- the arithmetic that sends no data
  (sums, scaling, Hadamard products);
* :mod:`~tensorpar.distributed.tt.checks` -- the checks of DistTTTensor operands
  that every entry point agrees on before sending data;
* :mod:`~tensorpar.distributed.tt.dot` -- dot products and norms (one
  allreduce per core);
* :mod:`~tensorpar.distributed.tt.rounding` -- TSQR orthogonalization and the
  three roundings (the serial Gram and randomized code with reductions passed in);
* :mod:`~tensorpar.distributed.tt.matvec` -- TT-matrix times a distributed TT;
* :mod:`~tensorpar.distributed.tt.svd` -- parallel TT-SVD of a :class:`DistTensor`.
"""

from __future__ import annotations

from ..tsqr import tsqr
from .arith import dist_tt_add, dist_tt_hadamard, dist_tt_scale, dist_tt_sub
from .dot import dist_tt_dot, dist_tt_log_norm, dist_tt_norm
from .matvec import dist_ttm_matvec
from .rounding import dist_tt_orthogonalize, dist_tt_round
from .svd import dist_tt_svd
from .tensor import DistTTTensor

__all__ = ["DistTTTensor", "dist_tt_add", "dist_tt_dot", "dist_tt_hadamard", "dist_tt_log_norm",
           "dist_tt_norm", "dist_tt_orthogonalize", "dist_tt_round", "dist_tt_scale",
           "dist_tt_sub", "dist_ttm_matvec", "dist_tt_svd", "tsqr"]
