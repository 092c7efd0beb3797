#!/usr/bin/env bash
# The whole test suite:
#   0. ruff (lint);
#   1. pytest serially (every test, including the nvcc compile of each .cu file);
#   2. the MPI tests (marker `mpi`) under mpiexec -n 2, 3 and 4, one thread per rank;
#   3. the Sphinx docs, warnings as errors.
# Extra arguments are passed to every pytest call (e.g. -x, -k name).
source "$(dirname "$0")/_venv.sh"
ensure_venv "test,docs"
cd "$ROOT"

echo "=== ruff (lint)"
python -m ruff check -q tensorpar kernels tests benchmarks examples docs

echo "=== pytest (serial)"
python -m pytest -q --doctest-modules tensorpar tests "$@"

for n in 2 3 4; do
    echo "=== pytest under mpiexec -n $n"
    # One thread per rank: 4 ranks already oversubscribe this 2-core machine.
    TENSORPAR_MPI_TEST=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        timeout 1200 mpiexec -n "$n" python -m pytest -q -m mpi -p no:cacheprovider "$@"
done

echo "=== sphinx (warnings are errors)"
rm -rf docs/_build docs/generated
python -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "docs built in docs/_build/html"
