"""
CP of a hyperspectral-like cube
===============================

A hyperspectral image is a cube: two spatial modes and one spectral mode.
When a scene is made of a few materials, each pixel's spectrum is a mixture
of the materials' spectra, and the cube is close to a nonnegative CP tensor
whose components are (abundance map along x) x (along y) x (spectrum).

We generate such a cube from three materials with smooth spectra and
separable abundances, add noise, and recover the materials with
nonnegative CP-ALS.
"""

import matplotlib.pyplot as plt
import numpy as np

import tensorpar as tp
from tensorpar.plot import plot_convergence, plot_factors

rng = np.random.default_rng(0)
nx, ny, nb = 48, 40, 64
x, y = np.linspace(0, 1, nx), np.linspace(0, 1, ny)
wavelength = np.linspace(400, 1000, nb)  # nm


def bump(t, centre, width):
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


# ground truth: abundances along x and y, and spectra (all nonnegative)
Ax = np.stack([bump(x, 0.25, 0.12), bump(x, 0.7, 0.15), 0.3 + 0.7 * x], axis=1)
Ay = np.stack([bump(y, 0.3, 0.2), bump(y, 0.65, 0.1), 1.0 - 0.6 * y], axis=1)
S = np.stack([bump(wavelength, 550, 40) + 0.3 * bump(wavelength, 800, 80),  # "vegetation"
              bump(wavelength, 650, 120),                                   # "soil"
              0.4 + 0.2 * np.cos(wavelength / 90.0)], axis=1)               # "water"
truth = tp.CPTensor([Ax, Ay, S])
X = truth.to_dense()
X += 0.02 * np.abs(X).max() * rng.standard_normal(X.shape)
print(f"cube {X.shape}, noise at {tp.cp_relative_error(truth, X):.3f} relative error")

# %%
# Nonnegative CP-ALS with three components.
cp, result = tp.cp_als(X, 3, nonnegative=True, seed=1, tol=1e-10, max_iter=300)
print(f"{result.n_iter} iterations, fit {result.fit:.4f} ({result.stop_reason})")
print(f"relative error against the noisy cube: {tp.cp_relative_error(cp, X):.4f}")
print(f"factor match score against the truth: {tp.factor_match_score(truth, cp):.3f}")

# %%
# The recovered spectra against the true ones, matched and scaled.
score, perm = tp.factor_match_score(truth, cp, return_permutation=True)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for r, name in enumerate(["vegetation", "soil", "water"]):
    true = S[:, r] / np.linalg.norm(S[:, r])
    found = cp.factors[2][:, perm[r]]
    ax.plot(wavelength, true, color=f"C{r}", label=f"{name} (true)")
    ax.plot(wavelength, found, color=f"C{r}", linestyle="--", label=f"{name} (CP)")
ax.set_xlabel("wavelength (nm)")
ax.set_ylabel("normalised reflectance")
ax.legend(fontsize="small", ncol=2)
ax.set_title("spectra recovered by nonnegative CP")

# %%
# All factors, one panel per mode (sorted by weight, signs fixed), and the
# convergence of the run.
plot_factors(cp, mode_names=["x", "y", "wavelength band"])
plot_convergence(result)
plt.show()
