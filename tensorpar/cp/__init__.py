"""CP (CANDECOMP/PARAFAC) decompositions.

* :mod:`~tensorpar.cp.tensor` -- the :class:`CPTensor` container and :func:`random_cp`;
* :mod:`~tensorpar.cp.init`, :mod:`~tensorpar.cp.update`, :mod:`~tensorpar.cp.fit` --
  the pieces of one ALS iteration (start, factor update, fit);
* :mod:`~tensorpar.cp.checkpoint` -- the solver state record and its ``.npz`` file;
* :mod:`~tensorpar.cp.result` -- the :class:`CPALSResult` record;
* :mod:`~tensorpar.cp.als` -- the serial driver :func:`cp_als`;
* :mod:`~tensorpar.cp.interop` -- conversion to and from TensorLy and pyttb.

The distributed driver (:func:`tensorpar.distributed.dist_cp_als`) runs the
same ALS loop with its reductions passed in.
"""

from __future__ import annotations

from .als import cp_als
from .result import CPALSResult
from .tensor import CPTensor, random_cp

__all__ = ["CPALSResult", "CPTensor", "cp_als", "random_cp"]
