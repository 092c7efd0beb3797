"""The record CP-ALS returns beside the CPTensor, and its progress line."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._typing import StopReason

__all__ = ["CPALSResult", "StopReason", "progress_line"]


@dataclass
class CPALSResult:
    """What happened in a CP-ALS run.

    Attributes
    ----------
    fits : list of float
        Fit ``1 - ||X - X_hat|| / ||X||`` after each iteration (index 0 is the
        first iteration), including iterations run before a resume.
    n_iter : int
        Iterations run in total (``len(fits)``).
    converged : bool
        True when the change of fit fell below ``tol``.
    stop_reason : {"tol", "max_iter", "callback"}
    wall_time : float
        Seconds, initialisation included (summed over resumed runs).
    init_time : float
        Seconds spent on the initialisation and the norm of ``X``.
    iter_times : list of float
        Seconds per iteration (sweep, solves and fit).
    norm_x : float
        ``||X||``.
    engine : str
        The resolved MTTKRP engine.
    nonnegative : bool
    resumed_from : int
        Iterations already done in the checkpoint this run resumed from (0
        for a fresh run).

    Examples
    --------
    >>> from tensorpar import cp_als, random_cp
    >>> X = random_cp((6, 5, 4), 2, seed=0).to_dense()
    >>> cp, res = cp_als(X, 2, seed=1, tol=1e-10, max_iter=300)
    >>> res.converged, res.n_iter == len(res.fits), round(res.fit, 6)
    (True, True, 1.0)
    >>> res.stop_reason, bool(res.errors[-1] < 1e-6)
    ('tol', True)
    """

    fits: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    stop_reason: StopReason = "max_iter"
    wall_time: float = 0.0
    init_time: float = 0.0
    iter_times: list[float] = field(default_factory=list)
    norm_x: float = 0.0
    engine: str = "numpy"
    nonnegative: bool = False
    resumed_from: int = 0

    @property
    def fit(self) -> float:
        """The last fit (NaN when no iteration ran)."""
        return self.fits[-1] if self.fits else float("nan")

    @property
    def errors(self) -> list[float]:
        """Relative errors ``||X - X_hat|| / ||X|| = 1 - fit`` per iteration."""
        return [1.0 - f for f in self.fits]


def progress_line(iteration: int, fit: float, change: float | None, seconds: float) -> str:
    """The one line ``verbose`` prints after each iteration (1-based ``iteration``).

    Examples
    --------
    >>> progress_line(3, 0.9871234, 1.5e-4, 0.0021)
    'cp_als iter    3  fit 0.987123400000  change  1.500e-04  time      2.10 ms'
    """
    delta = "-" if change is None else f"{change:.3e}"
    return (f"cp_als iter {iteration:4d}  fit {fit:.12f}  change {delta:>10}  "
            f"time {seconds * 1e3:9.2f} ms")
