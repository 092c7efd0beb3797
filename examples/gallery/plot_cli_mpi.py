"""
The command line, serially and under mpiexec
============================================

``tensorpar cp`` decomposes a ``.npy`` file; under ``mpiexec -n 2`` every
process reads only its block of the file and the distributed CP-ALS runs.
This example runs both (as subprocesses, exactly as you would in a shell),
reloads the two saved results and plots their convergence: from the same
seed they coincide.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import tensorpar as tp
from tensorpar.plot import plot_convergence

folder = tempfile.mkdtemp()
X = tp.random_cp((30, 25, 20), 3, seed=0).to_dense()
X += 0.05 * np.random.default_rng(0).standard_normal(X.shape)
np.save(os.path.join(folder, "my_tensor.npy"), X)

# Launcher variables of an enclosing MPI job would confuse the child job.
env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
env.update(NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
cli = [sys.executable, "-m", "tensorpar"]
common = ["cp", "my_tensor.npy", "--rank", "3", "--seed", "0", "--tol", "0", "--max-iter", "30",
          "--progress-every", "10"]

# %%
# Serially (the command is ``tensorpar cp my_tensor.npy --rank 3 ...``):
res = subprocess.run([*cli, *common, "--out", "serial.npz"], cwd=folder, env=env,
                     capture_output=True, text=True, timeout=300)
print(res.stderr)

# %%
# Under ``mpiexec -n 2`` (skipped when no MPI is installed):
mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
runs = {"serial": os.path.join(folder, "serial.npz")}
if mpiexec is not None:
    res = subprocess.run([mpiexec, "-n", "2", *cli, *common, "--out", "mpi.npz"], cwd=folder,
                         env=env, capture_output=True, text=True, timeout=300)
    print(res.stderr)
    runs["mpiexec -n 2"] = os.path.join(folder, "mpi.npz")

# %%
# Both results, reloaded in Python:
loaded = {name: tp.load(path) for name, path in runs.items()}
for name, (_cp, result) in loaded.items():
    print(f"{name}: fit {result.fit:.12f} after {result.n_iter} iterations")
plot_convergence([r for _, r in loaded.values()], labels=list(loaded))
shutil.rmtree(folder)
plt.show()
