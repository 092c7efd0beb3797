"""CP (CANDECOMP/PARAFAC) decompositions.

* :mod:`~tensorpar.cp.tensor` -- the :class:`CPTensor` container and :func:`random_cp`;
* :mod:`~tensorpar.cp.init`, :mod:`~tensorpar.cp.update`, :mod:`~tensorpar.cp.fit` --
  the pieces of one ALS iteration (start, factor update, fit);
* :mod:`~tensorpar.cp.state` -- the solver state record and the option checks;
* :mod:`~tensorpar.cp.checkpoint` -- the state's ``.npz`` file;
* :mod:`~tensorpar.cp.result` -- the :class:`CPALSResult` record;
* :mod:`~tensorpar.cp.loop` -- the ALS loop shared by both drivers;
* :mod:`~tensorpar.cp.als` -- the serial driver :func:`cp_als`;
* :mod:`~tensorpar.cp.rand`, :mod:`~tensorpar.cp.sampling` -- randomized CP-ALS :func:`cp_rand`;
* :mod:`~tensorpar.cp.interop` -- conversion to and from TensorLy and pyttb.

The distributed driver (:func:`tensorpar.distributed.dist_cp_als`) runs the
same ALS loop (:func:`tensorpar.cp.loop.run_als`) with its reductions,
its rank-0 save and its collective stop decision passed in.
"""

from __future__ import annotations

from .als import cp_als
from .rand import cp_rand
from .result import CPALSResult
from .tensor import CPTensor, random_cp

__all__ = ["CPALSResult", "CPTensor", "cp_als", "cp_rand", "random_cp"]
