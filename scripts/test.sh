#!/usr/bin/env bash
# The whole test suite:
#   0. ruff (lint) and mypy --strict on tensorpar/;
#   1. pytest serially (every test, including the nvcc compile of each .cu file);
#   2. the MPI tests (marker `mpi`) under mpiexec -n 2, 3 and 4, one thread per rank;
#   3. the Sphinx docs, warnings as errors, built from a wheel installed outside
#      the source tree (so they document what users install), gallery included.
# Extra arguments are passed to every pytest call (e.g. -x, -k name).
source "$(dirname "$0")/_venv.sh"
ensure_venv "test,docs"
cd "$ROOT"

echo "=== ruff (lint)"
python -m ruff check -q tensorpar kernels tests benchmarks examples docs

echo "=== mypy --strict (configuration in pyproject.toml)"
python -m mypy

echo "=== pytest (serial)"
python -m pytest -q --doctest-modules tensorpar tests "$@"

for n in 2 3 4; do
    echo "=== pytest under mpiexec -n $n"
    # One thread per rank: 4 ranks already oversubscribe this 2-core machine.
    TENSORPAR_MPI_TEST=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        timeout 1200 mpiexec -n "$n" python -m pytest -q -m mpi -p no:cacheprovider "$@"
done

echo "=== sphinx from the installed wheel (warnings are errors)"
rm -rf docs/_build docs/generated
DOCS_TMP="$(mktemp -d)"
trap 'rm -rf "$DOCS_TMP"' EXIT
python -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$DOCS_TMP/wheel" "$ROOT"
python -m pip install -q --disable-pip-version-check --no-deps --target "$DOCS_TMP/site" \
    "$DOCS_TMP"/wheel/*.whl
# Run from docs/ so that the source tree is not on sys.path: tensorpar comes from the wheel.
(cd docs && PYTHONPATH="$DOCS_TMP/site" MPLBACKEND=Agg NUMBA_NUM_THREADS=1 \
    python -m sphinx -W --keep-going -q -b html . _build/html)
python scripts/check_docs.py docs/_build/html
# every object of the API reference has an Examples section
python scripts/doc_examples.py --quiet
echo "docs built in docs/_build/html"
