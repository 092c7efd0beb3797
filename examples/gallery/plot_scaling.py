"""
Strong scaling of the distributed algorithms
============================================

The MPI benchmarks of a source checkout (``benchmarks/cp_mpi.py`` and
``benchmarks/tt_mpi.py``) record their timings in
``benchmarks/results/*.json``; :func:`tensorpar.plot.plot_scaling` draws
time and speed-up against the number of processes. The records shown here
were measured on a shared two-core machine, so they stop at two processes;
run the benchmarks on your cluster and plot your own files the same way.
"""

from pathlib import Path

import matplotlib.pyplot as plt

from tensorpar.plot import load_scaling, plot_scaling


def results_folder():
    """benchmarks/results of the source tree this example lives in."""
    here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "benchmarks" / "results").is_dir():
            return folder / "benchmarks" / "results"
    raise FileNotFoundError("run this example from a tensorpar source checkout")


results = results_folder()

# %%
# Distributed CP-ALS: time per iteration of a 300 x 300 x 300 tensor, rank 16.
print(load_scaling(results / "cp_mpi.json"))
plot_scaling(results / "cp_mpi.json", title="distributed CP-ALS (300^3, R = 16)")

# %%
# Distributed tensor trains: rounding (flat and binomial TSQR) and dot
# products of a train with d = 20, n = 4096, r = 32.
plot_scaling(results / "tt_mpi.json", title="distributed TT (d = 20, n = 4096, r = 32)")
plt.show()
