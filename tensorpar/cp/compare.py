"""Daily helpers around a CP model: order, signs, matching and error.

The names follow what TensorLy and pyttb users know:

* :func:`cp_sort_components` -- pyttb's ``ktensor.arrange()``;
* :func:`cp_fix_signs` -- pyttb's ``ktensor.fixsigns()`` (``method="largest"``) and
  TensorLy's ``cp_flip_sign`` (``method="mean"``);
* :func:`factor_match_score` -- pyttb's ``ktensor.score`` (ranks may differ), with the
  permutation;
* :func:`cp_relative_error`, :func:`cp_model_fit` -- ``||X - X_hat|| / ||X||`` and
  ``1 -`` that, what both peers compute by hand from the full tensor.

Every function accepts a :class:`~tensorpar.CPTensor`, a TensorLy CP tensor
or ``(weights, factors)`` pair, or a pyttb ``ktensor`` (see :func:`as_cp`),
and returns new objects (the input is never modified).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._backend import get_array_module, to_numpy
from .._validation import as_float_array, check_mode
from .tensor import CPTensor

__all__ = ["as_cp", "cp_sort_components", "cp_fix_signs", "factor_match_score",
           "cp_relative_error", "cp_model_fit"]

#: Entries of ``X`` per block in :func:`cp_relative_error` (bounds the float64 copy).
BLOCK_ENTRIES = 1 << 21


def as_cp(model: Any, name: str = "model") -> CPTensor:
    """A :class:`~tensorpar.CPTensor` from any CP container users pass around.

    Parameters
    ----------
    model : CPTensor, tensorly CPTensor, ``(weights, factors)`` pair or pyttb.ktensor
    name : str
        Argument name used in the error message.

    Returns
    -------
    CPTensor
        ``model`` itself when it is already a CPTensor.

    Examples
    --------
    >>> import numpy as np
    >>> cp = as_cp((np.array([2.0]), [np.ones((2, 1)), np.ones((3, 1))]))
    >>> cp.shape, cp.rank
    ((2, 3), 1)
    """
    if isinstance(model, CPTensor):
        return model
    if hasattr(model, "factor_matrices") and hasattr(model, "weights"):
        return CPTensor.from_pyttb(model)
    try:
        return CPTensor.from_tensorly(model)
    except TypeError:
        raise TypeError(f"{name} must be a CPTensor, a tensorly CPTensor, a (weights, factors) "
                        f"pair or a pyttb.ktensor, got {type(model).__name__}") from None


def _positive_normalized(cp: CPTensor) -> CPTensor:
    """Unit-norm columns and weights ``>= 0`` (negative signs moved into mode 0), as pyttb."""
    out = cp.normalize()
    xp = get_array_module(out.weights)
    signs = xp.where(out.weights < 0, -1.0, 1.0).astype(out.weights.dtype)
    factors = [f.copy() for f in out.factors]
    factors[0] = factors[0] * signs[None, :]
    return CPTensor(factors, out.weights * signs)


def cp_sort_components(model: Any) -> CPTensor:
    """Normalise and order the components by decreasing weight (pyttb's ``arrange()``).

    The factor columns get unit 2-norm, the norms go into the weights, a
    negative weight is made positive by flipping the sign of the mode-0
    column, and the components are sorted by decreasing weight (ties keep
    their order).

    Parameters
    ----------
    model : CPTensor or anything :func:`as_cp` accepts

    Returns
    -------
    CPTensor
        The same tensor, components reordered.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import CPTensor, cp_sort_components
    >>> cp = CPTensor([np.eye(2), np.eye(2)], weights=np.array([1.0, -3.0]))
    >>> s = cp_sort_components(cp)
    >>> s.weights
    array([3., 1.])
    >>> np.allclose(s.to_dense(), cp.to_dense())
    True
    """
    cp = _positive_normalized(as_cp(model))
    order = np.argsort(-to_numpy(cp.weights), kind="stable")
    xp = get_array_module(cp.weights)
    idx = xp.asarray(order)
    return CPTensor([f[:, idx] for f in cp.factors], cp.weights[idx])


def cp_fix_signs(model: Any, method: Literal["largest", "mean"] = "largest",
                 mode: int = 0) -> CPTensor:
    """Fix the sign ambiguity of a CP model without changing the tensor.

    Parameters
    ----------
    model : CPTensor or anything :func:`as_cp` accepts
    method : {"largest", "mean"}
        ``"largest"`` (pyttb's ``fixsigns()``): in each component, make the
        largest-magnitude entry of each factor column positive, flipping the
        columns in pairs so that the component is unchanged (with an odd
        number of negative peaks the last one keeps its sign).
        ``"mean"`` (TensorLy's ``cp_flip_sign``): make the mean of every
        column positive in all modes except ``mode``, which absorbs the
        signs, and make the weights non-negative the same way.
    mode : int
        The mode that receives the signs for ``method="mean"``.

    Returns
    -------
    CPTensor
        The same tensor with sign-fixed factors.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import CPTensor, cp_fix_signs
    >>> cp = CPTensor([-np.ones((2, 1)), -np.ones((3, 1))])
    >>> fixed = cp_fix_signs(cp)
    >>> fixed.factors[0].ravel(), fixed.factors[1].ravel()
    (array([1., 1.]), array([1., 1., 1.]))
    """
    cp = as_cp(model)
    factors = [f.copy() for f in cp.factors]
    weights = cp.weights.copy()
    if method == "largest":
        _fix_largest(factors)
    elif method == "mean":
        mode = check_mode(mode, cp.ndim)
        weights = _flip_mean(factors, weights, mode)
    else:
        raise ValueError(f"method must be 'largest' or 'mean', got {method!r}")
    return CPTensor(factors, weights)


def _fix_largest(factors: list[Any]) -> None:
    """pyttb's rule, in place: per component flip an even number of negative-peak columns."""
    xp = get_array_module(*factors)
    N, R = len(factors), int(factors[0].shape[1])
    peak_signs = np.empty((N, R))
    for n, f in enumerate(factors):
        idx = xp.argmax(xp.abs(f), axis=0)
        peak_signs[n] = to_numpy(xp.sign(f[idx, xp.arange(R)]))
    for r in range(R):
        negative = np.flatnonzero(peak_signs[:, r] == -1)
        for n in negative[: 2 * (len(negative) // 2)]:
            factors[n][:, r] = -factors[n][:, r]


def _flip_mean(factors: list[Any], weights: Any, mode: int) -> Any:
    """TensorLy's rule, in place on ``factors``; returns the new weights."""
    xp = get_array_module(*factors)
    for n, f in enumerate(factors):
        if n == mode:
            continue
        # a zero mean keeps its sign (TensorLy's sign(0) = 0 would zero the column)
        signs = xp.where(xp.mean(f, axis=0) < 0, -1.0, 1.0).astype(f.dtype)
        factors[n] = f * signs[None, :]
        factors[mode] = factors[mode] * signs[None, :]
    wsigns = xp.where(weights < 0, -1.0, 1.0).astype(weights.dtype)
    factors[mode] = factors[mode] * wsigns[None, :]
    return weights * wsigns


def _score_matrix(a: CPTensor, b: CPTensor, weight_penalty: bool) -> np.ndarray:
    """Congruence of every component pair, ``(R_a, R_b)``, as pyttb's ``score``."""
    score = np.ones((a.rank, b.rank))
    for fa, fb in zip(a.factors, b.factors):
        score *= np.abs(to_numpy(fa.conj().T @ fb))
    if weight_penalty:
        wa, wb = np.abs(to_numpy(a.weights)), np.abs(to_numpy(b.weights))
        top = np.maximum(wa[:, None], wb[None, :])
        penalty = 1.0 - np.abs(wa[:, None] - wb[None, :]) / np.where(top == 0, 1.0, top)
        score *= penalty  # two zero weights match (penalty 1), as in pyttb
    return score


def factor_match_score(reference: Any, estimate: Any, *, weight_penalty: bool = True,
                       greedy: bool = False, return_permutation: bool = False
                       ) -> float | tuple[float, np.ndarray]:
    """Factor match score (FMS) of ``estimate`` against ``reference``, ranks may differ.

    As pyttb's ``score``: both models are normalised, the score of a pair of
    components is the product over modes of the absolute cosines of their
    columns, times ``1 - |w_a - w_b| / max(|w_a|, |w_b|)`` when
    ``weight_penalty``; every component of the model with fewer components
    is matched to a distinct component of the other, and the score is the
    mean over the matched pairs (the extra components of the larger model
    are ignored). ``CPTensor.factor_match_score`` is this function for
    equal ranks.

    Parameters
    ----------
    reference, estimate : CPTensor or anything :func:`as_cp` accepts
        Models of the same shape.
    weight_penalty : bool
    greedy : bool
        False: the best matching (Hungarian algorithm,
        :func:`scipy.optimize.linear_sum_assignment`); True: pyttb's greedy
        matching (repeatedly take the best remaining pair), which gives
        pyttb's numbers exactly.
    return_permutation : bool
        Also return the matching.

    Returns
    -------
    score : float in [0, 1]
    permutation : ndarray of int, only when ``return_permutation``
        Length ``max(R_ref, R_est)``; ``estimate`` component
        ``permutation[r]`` matches ``reference`` component ``r`` when
        ``R_est >= R_ref`` (so ``estimate.factors[n][:, permutation]`` lines
        up with the reference; unmatched ones come last, in order), and
        reference component ``permutation[r]`` matches estimate component
        ``r`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import CPTensor, factor_match_score, random_cp
    >>> ref = random_cp((5, 4, 3), 2, seed=0)
    >>> est = CPTensor([f[:, ::-1] * 2 for f in ref.factors], ref.weights[::-1] / 8)
    >>> score, perm = factor_match_score(ref, est, return_permutation=True)
    >>> round(score, 12), perm
    (1.0, array([1, 0]))
    """
    from scipy.optimize import linear_sum_assignment

    ref, est = as_cp(reference, "reference"), as_cp(estimate, "estimate")
    if ref.shape != est.shape:
        raise ValueError(f"estimate has shape {est.shape}, reference has shape {ref.shape}")
    swap = est.rank < ref.rank
    big, small = (ref, est) if swap else (est, ref)
    # rows: components of the larger model; columns: the smaller model's, each matched once
    score = _score_matrix(_positive_normalized(big), _positive_normalized(small), weight_penalty)
    if greedy:
        rows, cols = _greedy_match(score)
    else:
        rows, cols = linear_sum_assignment(-score)
    total = float(score[rows, cols].sum()) / small.rank
    if not return_permutation:
        return total
    perm = np.empty(big.rank, dtype=np.int64)
    perm[cols] = rows
    perm[small.rank:] = np.setdiff1d(np.arange(big.rank), rows)
    return total, perm


def _greedy_match(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pyttb's greedy matching: take the best remaining pair until the columns run out."""
    work = score.copy()
    rows, cols = [], []
    for _ in range(score.shape[1]):
        i, j = np.unravel_index(int(np.argmax(work)), work.shape)
        rows.append(int(i))
        cols.append(int(j))
        work[i, :] = -np.inf
        work[:, j] = -np.inf
    return np.asarray(rows), np.asarray(cols)


def cp_relative_error(model: Any, X: Any) -> float:
    """``||X - X_hat|| / ||X||`` of a CP model against a dense tensor, in float64.

    The residual is formed block by block along mode 0 (at most
    :data:`BLOCK_ENTRIES` entries at a time, so a memory-mapped ``X`` is
    read once and never copied whole) and accumulated in float64 whatever
    the dtype of ``X`` and the model. Unlike the inner-product formula the
    ALS driver uses, this does not lose digits when the fit is close to 1.

    Parameters
    ----------
    model : CPTensor or anything :func:`as_cp` accepts
    X : ndarray, shape ``model.shape``
        numpy (or memmap) or cupy.

    Returns
    -------
    float
        The relative error; the absolute one ``||X - X_hat||`` when ``X`` is
        all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpar import cp_relative_error, random_cp
    >>> cp = random_cp((4, 3, 2), 2, seed=0)
    >>> X = cp.to_dense()
    >>> cp_relative_error(cp, X) < 1e-14
    True
    >>> round(cp_relative_error(cp, 2 * X), 12)
    0.5
    """
    cp = as_cp(model)
    X = as_float_array(X, "X", min_ndim=1)
    if tuple(X.shape) != cp.shape:
        raise ValueError(f"X has shape {tuple(X.shape)}, the model has shape {cp.shape}")
    xp = get_array_module(X)
    weights = xp.asarray(cp.weights).astype(np.complex128 if np.iscomplexobj(cp.weights)
                                            else np.float64)
    factors = [xp.asarray(f) for f in cp.factors]
    per_row = max(1, int(np.prod(cp.shape[1:])))
    step = max(1, BLOCK_ENTRIES // per_row)
    res_sq = norm_sq = 0.0
    for start in range(0, cp.shape[0], step):
        stop = min(start + step, cp.shape[0])
        block = CPTensor([factors[0][start:stop].astype(weights.dtype)]
                         + [f.astype(weights.dtype) for f in factors[1:]], weights)
        x = xp.asarray(X[start:stop]).astype(weights.dtype if X.dtype.kind == "f"
                                              else np.complex128)
        res_sq += float(xp.sum(xp.abs(x - block.to_dense()) ** 2))
        norm_sq += float(xp.sum(xp.abs(x) ** 2))
    residual = float(np.sqrt(res_sq))
    return residual / float(np.sqrt(norm_sq)) if norm_sq > 0 else residual


def cp_model_fit(model: Any, X: Any) -> float:
    """The fit ``1 - ||X - X_hat|| / ||X||`` (as ``CPALSResult.fit``), from :func:`cp_relative_error`.

    Examples
    --------
    >>> from tensorpar import cp_als, cp_model_fit, random_cp
    >>> X = random_cp((6, 5, 4), 2, seed=0).to_dense()
    >>> cp, res = cp_als(X, 2, seed=1, tol=1e-12, max_iter=200)
    >>> abs(cp_model_fit(cp, X) - res.fit) < 1e-6
    True
    """
    return 1.0 - cp_relative_error(model, X)
