"""Distributed tensor trains: every core split along its mode index over the ranks.

* :mod:`~tensorpar.distributed.tt.tensor` -- :class:`DistTTTensor`, message-free
  arithmetic, dot products and norms (one allreduce per core);
* :mod:`~tensorpar.distributed.tt.svd` -- parallel TT-SVD of a :class:`DistTensor`.
"""
