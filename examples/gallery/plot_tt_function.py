"""
TT compression of a function-generated tensor
=============================================

Samples of a smooth function on a tensor grid have low TT ranks. Here
:math:`f(x_1, \\dots, x_d) = 1 / (1 + x_1 + \\dots + x_d)` on a grid of
:math:`10^6` points (:math:`d = 6`, 10 points per mode) is compressed by
TT-SVD at several accuracies; we look at the rank profile, the singular
values at each bond and the error actually achieved.
"""

import matplotlib.pyplot as plt
import numpy as np

import tensorpar as tp
from tensorpar.plot import plot_singular_values, plot_tt_ranks

d, n = 6, 10
grid = np.linspace(0.0, 1.0, n)
X = 1.0 / (1.0 + sum(np.ix_(*[grid] * d)))  # the full tensor, 10^6 entries
print(X.shape, X.size)

# %%
# TT-SVD at several accuracies: ranks, storage and the error achieved.
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
for eps in (1e-2, 1e-5, 1e-8, 1e-11):
    tt = tp.tt_svd(X, eps=eps)
    err = np.linalg.norm(tt.to_dense() - X) / np.linalg.norm(X)
    params = sum(c.size for c in tt.cores)
    print(f"eps {eps:.0e}: ranks {tt.ranks}, {params} numbers "
          f"(x{X.size / params:.0f} smaller), error {err:.1e}")
    plot_tt_ranks(tt, ax=ax, label=f"eps = {eps:.0e}")
# keep one "largest possible" line in the legend
handles, labels = ax.get_legend_handles_labels()
keep = [i for i, lab in enumerate(labels) if lab != "largest possible" or i == 1]
ax.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize="small")

# %%
# The singular values at every bond decay exponentially; TT-SVD cuts each
# bond where the discarded tail falls below :math:`\varepsilon/\sqrt{d-1}`.
plot_singular_values(tp.tt_svd(X, eps=1e-14), eps=1e-8)

# %%
# The same tensor built without forming it, from the function itself.
tt = tp.tt_from_function(lambda *xs: 1.0 / (1.0 + sum(xs)), [grid] * d, eps=1e-8)
print("tt_from_function ranks:", tt.ranks)
plt.show()
