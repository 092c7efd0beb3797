#!/usr/bin/env bash
# The main job: decompose a small synthetic low-rank tensor with CP and TT on
# 2 MPI processes, printing the fit as it goes. Extra arguments go to the demo.
source "$(dirname "$0")/_venv.sh"
ensure_venv "mpi"
cd "$ROOT"
NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    mpiexec -n 2 python examples/demo.py "$@"
