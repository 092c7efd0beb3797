"""
CP-ALS convergence
==================

The :class:`~tensorpar.CPALSResult` that :func:`~tensorpar.cp_als` returns
keeps the fit of every iteration. Here we compare the convergence of
random and SVD initialisations and of several ranks on a noisy rank-4
tensor, save one run to disk and read it back.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import tensorpar as tp
from tensorpar.plot import plot_convergence

rng = np.random.default_rng(0)
truth = tp.random_cp((40, 35, 30), 4, seed=0)
X = truth.to_dense()
X += 0.05 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(X.shape)

# %%
# Random against SVD initialisation at the true rank.
runs, labels = [], []
for init in ("random", "svd"):
    cp, res = tp.cp_als(X, 4, init=init, seed=1, tol=1e-10, max_iter=150)
    runs.append(res)
    labels.append(f"init={init}: {res.n_iter} iterations")
    print(labels[-1], f"fit {res.fit:.6f}, FMS {tp.factor_match_score(truth, cp):.4f}")
plot_convergence(runs, labels=labels)

# %%
# Several ranks: the error stalls at the noise level from rank 4 on.
results = {R: tp.cp_als(X, R, seed=2, tol=1e-9, max_iter=200)[1] for R in (2, 3, 4, 6)}
fig = plot_convergence(list(results.values()), labels=[f"R = {R}" for R in results])

# %%
# A run saved and reloaded: the record comes back with its whole history.
with tempfile.TemporaryDirectory() as folder:
    path = tp.save(os.path.join(folder, "run.npz"), tp.cp_als(X, 4, seed=1, max_iter=50))
    cp, res = tp.load(path)
print(type(cp).__name__, cp.rank, len(res.fits), f"{res.fit:.6f}")
plt.show()
