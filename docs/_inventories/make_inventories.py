"""Write the small intersphinx inventories the docs link against.

The docs build runs offline, so instead of downloading each project's
``objects.inv`` we list the few objects our docstrings reference. Run this
script after adding a cross-reference to a new external object.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> list of (object, domain:role, relative uri)
OBJECTS = {
    "python": [
        ("int", "py:class", "library/functions.html#int"),
        ("float", "py:class", "library/functions.html#float"),
        ("str", "py:class", "library/stdtypes.html#str"),
        ("bool", "py:class", "library/functions.html#bool"),
        ("list", "py:class", "library/stdtypes.html#list"),
        ("tuple", "py:class", "library/stdtypes.html#tuple"),
        ("dict", "py:class", "library/stdtypes.html#dict"),
        ("callable", "py:function", "library/functions.html#callable"),
        ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path"),
    ],
    "numpy": [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
        ("numpy.random.Generator", "py:class",
         "reference/random/generator.html#numpy.random.Generator"),
        ("numpy.einsum", "py:function", "reference/generated/numpy.einsum.html#numpy.einsum"),
        ("numpy.load", "py:function", "reference/generated/numpy.load.html#numpy.load"),
        ("numpy.savez", "py:function", "reference/generated/numpy.savez.html#numpy.savez"),
        ("numpy.memmap", "py:class", "reference/generated/numpy.memmap.html#numpy.memmap"),
    ],
    "scipy": [
        ("scipy.optimize.linear_sum_assignment", "py:function",
         "reference/generated/scipy.optimize.linear_sum_assignment.html"
         "#scipy.optimize.linear_sum_assignment"),
        ("scipy.optimize.nnls", "py:function",
         "reference/generated/scipy.optimize.nnls.html#scipy.optimize.nnls"),
        ("scipy.linalg.svd", "py:function",
         "reference/generated/scipy.linalg.svd.html#scipy.linalg.svd"),
        ("scipy.linalg.qr", "py:function",
         "reference/generated/scipy.linalg.qr.html#scipy.linalg.qr"),
    ],
    "mpi4py": [
        ("mpi4py.MPI.Comm", "py:class", "reference/mpi4py.MPI.Comm.html#mpi4py.MPI.Comm"),
        ("mpi4py.MPI.Intracomm", "py:class",
         "reference/mpi4py.MPI.Intracomm.html#mpi4py.MPI.Intracomm"),
        ("mpi4py.MPI.Cartcomm", "py:class",
         "reference/mpi4py.MPI.Cartcomm.html#mpi4py.MPI.Cartcomm"),
        ("mpi4py.MPI.COMM_WORLD", "py:data",
         "reference/mpi4py.MPI.COMM_WORLD.html#mpi4py.MPI.COMM_WORLD"),
    ],
    "numba": [
        ("numba.njit", "py:function", "reference/jit-compilation.html#numba.njit"),
        ("numba.prange", "py:function", "reference/jit-compilation.html#numba.prange"),
    ],
    "cupy": [
        ("cupy.ndarray", "py:class", "reference/generated/cupy.ndarray.html#cupy.ndarray"),
        ("cupy.RawModule", "py:class", "reference/generated/cupy.RawModule.html#cupy.RawModule"),
    ],
}


def write(name: str, entries: list[tuple[str, str, str]]) -> None:
    header = (f"# Sphinx inventory version 2\n# Project: {name}\n# Version: \n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    body = "".join(f"{obj} {role} 1 {uri} -\n" for obj, role, uri in entries).encode()
    (HERE / f"{name}.inv").write_bytes(header + zlib.compress(body))


if __name__ == "__main__":
    for project_name, objs in OBJECTS.items():
        write(project_name, objs)
