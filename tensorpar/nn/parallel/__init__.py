"""Parallel layouts of the :mod:`tensorpar.nn` layers under MPI.

Each layout is a serial layer plus named communication steps through
:mod:`tensorpar.distributed.comm`; 2-D layouts take a
:class:`~tensorpar.distributed.grid.ProcessGrid`. Nothing here imports
mpi4py.
"""

from __future__ import annotations

__all__: list[str] = []

# --- rotated (RTP), folded tensor+sequence (TSP) and 2-D SUMMA layouts (par2) ---
from .rotated import RotatedLinear  # noqa: E402

__all__ += ["RotatedLinear"]
from .summa import SummaLinear, summa_grid  # noqa: E402

__all__ += ["SummaLinear", "summa_grid"]
