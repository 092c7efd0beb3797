"""The CP-ALS state record and the checks every CP-ALS driver runs on its options.

:class:`CPALSState` is everything the next iteration reads; the serial
driver (:func:`tensorpar.cp_als`) holds the full factors in it, the
distributed one (:func:`tensorpar.distributed.dist_cp_als`) the rows its
rank owns. :func:`check_als_options` validates the scalar options of both
drivers (the distributed one then agrees on the returned record across
ranks) and :func:`check_resumed` decides whether a loaded checkpoint
belongs to the problem at hand.

**Scale.** The loop works in a frame scaled by the power of two ``2^-e``
with ``e = frexp(||X||)[1]`` (so ``||X|| 2^-e`` lies in ``[0.5, 1)``):
the MTTKRP output is multiplied by ``2^-e`` and the weights are held in that
frame. Multiplying by a power of two is exact in floating point, so the
iterates are those of the unscaled algorithm wherever that one neither
overflows nor underflows, and the results for ``c X`` are ``c`` times the
results for ``X`` for any representable ``c`` (the Grams of data around
``1e-170`` would otherwise underflow to zero).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import get_array_module
from .._typing import Array
from .._validation import check_positive_int
from .variant import ALSVariant, check_variant

__all__ = ["CPALSState", "ALSOptions", "check_als_options", "check_resumed", "check_seed",
           "check_bool", "check_checkpoint_path", "scale_exponent", "ldexp_array"]


@dataclass
class CPALSState:
    """The CP-ALS iterate between two iterations.

    Examples
    --------
    >>> import numpy as np
    >>> s = CPALSState([np.ones((2, 1))], np.array([0.75]), [np.ones((1, 1))], scale_exp=3)
    >>> s.model_weights(), s.shape, s.rank
    (array([6.]), (2,), 1)

    Attributes
    ----------
    factors : list of ndarray, each (I_n, R)
        Factors with unit-norm (or zero) columns (a distributed driver holds
        the rows its rank owns).
    weights : ndarray, shape (R,)
        Weights in the scaled frame: the model's weights are
        ``weights * 2**scale_exp``.
    grams : list of ndarray, each (R, R)
        ``grams[n]`` is the Gram of the full ``factors[n]`` as the algorithm holds it.
    fits : list of float
        Fit after each iteration done so far.
    iter_times : list of float
        Seconds per iteration.
    norm_x : float
        ``||X||`` (unscaled).
    nonnegative : bool
    init_time : float
        Seconds of the initialisation.
    elapsed : float
        Wall seconds spent so far (all runs).
    scale_exp : int
        ``e`` of the scaled frame (module docstring); 0 in a loaded checkpoint,
        whose weights are unscaled.
    samples : list of float
        Fingerprint of ``X``: its entries at :func:`tensorpar.dense.sample_indices`
        (stored in the checkpoint, compared on resume).
    variant : ALSVariant
        The CP-ALS variant (:mod:`tensorpar.cp.variant`).
    col_scales : list of ndarray, each (R,)
        With ``variant.tracks_scales``: the column norms of each factor as
        TensorLy holds them (weights 1), in the scaled frame, so that their
        product is ``weights`` (:mod:`tensorpar.cp.scales`); else empty.
    ls_pow, ls_fail : float, int
        The extrapolation's state (:mod:`tensorpar.cp.accel`).
    """

    factors: list[Array]
    weights: Array
    grams: list[Array]
    fits: list[float] = field(default_factory=list)
    iter_times: list[float] = field(default_factory=list)
    norm_x: float = 0.0
    nonnegative: bool = False
    init_time: float = 0.0
    elapsed: float = 0.0
    scale_exp: int = 0
    samples: list[float] = field(default_factory=list)
    variant: ALSVariant = field(default_factory=ALSVariant)
    col_scales: list[Array] = field(default_factory=list)
    ls_pow: float = 2.0
    ls_fail: int = 0

    @property
    def iteration(self) -> int:
        """Iterations done."""
        return len(self.fits)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(f.shape[0]) for f in self.factors)

    @property
    def rank(self) -> int:
        return int(self.weights.shape[0])

    def model_weights(self) -> Array:
        """The weights of the model, ``weights * 2**scale_exp`` (exact).

        Examples
        --------
        >>> CPALSState([np.ones((2, 1))], np.array([0.75]), [np.ones((1, 1))],
        ...            scale_exp=-1).model_weights()
        array([0.375])
        """
        if self.scale_exp == 0:
            return self.weights
        return ldexp_array(self.weights, self.scale_exp)

    def rescale(self, scale_exp: int) -> None:
        """Move the weights into the frame of ``scale_exp`` (exact; see the module docstring).

        Examples
        --------
        >>> s = CPALSState([np.ones((2, 1))], np.array([0.75]), [np.ones((1, 1))], scale_exp=3)
        >>> s.rescale(1)
        >>> s.weights, s.scale_exp, s.model_weights()
        (array([3.]), 1, array([6.]))
        """
        if scale_exp != self.scale_exp:
            self.weights = ldexp_array(self.weights, self.scale_exp - scale_exp)
            # Each factor takes the N-th root of the change (not exact; the ridge needs
            # every factor scaled alike, see tensorpar.cp.scales).
            step = 2.0 ** ((self.scale_exp - scale_exp) / max(len(self.col_scales), 1))
            self.col_scales = [s * step for s in self.col_scales]
            self.scale_exp = scale_exp


def ldexp_array(x: Array, e: int) -> Array:
    """``x * 2**e`` in ``x``'s dtype (numpy or cupy), exact barring overflow and underflow.

    Examples
    --------
    >>> import numpy as np
    >>> ldexp_array(np.array([3.0], dtype=np.float32), -2)
    array([0.75], dtype=float32)
    """
    xp = get_array_module(x)
    return xp.ldexp(x, xp.asarray(e, dtype=np.int32)).astype(x.dtype, copy=False)


def scale_exponent(norm_x: float) -> int:
    """``e`` with ``norm_x * 2**-e`` in ``[0.5, 1)`` (0 for a zero norm).

    Examples
    --------
    >>> scale_exponent(1e-170), scale_exponent(3.0), scale_exponent(0.0)
    (-564, 2, 0)
    """
    return int(math.frexp(norm_x)[1]) if norm_x > 0 else 0


@dataclass(frozen=True)
class ALSOptions:
    """The validated scalar options of a CP-ALS run (compared across ranks when distributed).

    Examples
    --------
    >>> sorted(check_als_options(2).as_dict())[:3]
    ['checkpoint', 'checkpoint_every', 'max_iter']
    """

    rank: int
    max_iter: int
    tol: float
    nonnegative: bool
    verbose: bool
    checkpoint: str | None
    checkpoint_every: int
    resume: str | None
    variant: ALSVariant = ALSVariant()

    def as_dict(self) -> dict[str, Any]:
        """``{option name: value}`` for :func:`tensorpar.distributed.comm.agree`.

        Examples
        --------
        >>> opts = check_als_options(3, max_iter=50)
        >>> d = opts.as_dict()
        >>> d["rank"], d["max_iter"]
        (3, 50)
        """
        return dict(self.__dict__)


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a bool; a TypeError unless it is a bool (``numpy.bool_`` too).

    Examples
    --------
    >>> check_bool(True, "nonnegative")
    True
    >>> check_bool("no", "nonnegative")
    Traceback (most recent call last):
    ...
    TypeError: nonnegative must be a bool, got str
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_seed(seed: Any) -> np.random.Generator:
    """A Generator from ``seed``: None, an int >= 0, a SeedSequence or a Generator.

    Examples
    --------
    >>> bool(check_seed(3).integers(10) == check_seed(3).integers(10))
    True
    >>> check_seed("abc")
    Traceback (most recent call last):
    ...
    TypeError: seed must be None, an int, a numpy SeedSequence or Generator, got str
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence) or (
            isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if isinstance(seed, (int, np.integer)) and seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError("seed must be None, an int, a numpy SeedSequence or Generator, "
                    f"got {type(seed).__name__}")


def _check_path(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or path == "":
        raise TypeError(f"{name} must be a non-empty text path, got {value!r}")
    return path


def check_checkpoint_path(path: str) -> None:
    """Raise a ValueError unless a checkpoint can be written at ``path`` (before any work).

    Examples
    --------
    >>> check_checkpoint_path("/no/such/dir/run.npz")
    Traceback (most recent call last):
    ...
    ValueError: checkpoint='/no/such/dir/run.npz': directory '/no/such/dir' does not exist
    """
    if os.path.isdir(path):
        raise ValueError(f"checkpoint={path!r} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"checkpoint={path!r}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"checkpoint={path!r}: directory {parent!r} is not writable")


def check_als_options(rank: Any, *, max_iter: Any = 100, tol: Any = 1e-8,
                      nonnegative: Any = False, callback: Any = None, verbose: Any = False,
                      checkpoint: Any = None, checkpoint_every: Any = 10,
                      resume: Any = None, check_checkpoint: bool = True,
                      ndim: int | None = None, **variant: Any) -> ALSOptions:
    """Validate the scalar options shared by serial and distributed CP-ALS.

    Raises a ValueError/TypeError naming the offending option. The checkpoint
    path is checked here (its directory exists, it is not a directory) so that
    a bad path fails before the first iteration; ``check_checkpoint=False``
    skips that (the distributed driver checks it on the rank that writes).
    With ``ndim`` (the order of ``X``) the variant options are checked too
    (``variant`` are the keyword arguments of
    :func:`~tensorpar.cp.variant.check_variant`, ``nonnegative`` among them:
    a bool or a sequence of modes); without it ``nonnegative`` must be a bool.

    Examples
    --------
    >>> check_als_options(3, max_iter=10).rank
    3
    >>> check_als_options(3, tol=-1)
    Traceback (most recent call last):
    ...
    ValueError: tol must be a number >= 0, got -1
    """
    rank = check_positive_int(rank, "rank")
    max_iter = check_positive_int(max_iter, "max_iter", minimum=0)
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)) \
            or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    if ndim is None:
        all_nn = check_bool(nonnegative, "nonnegative")
        var = check_variant(1, **variant)  # the modes of `nonnegative` are unknown here
    else:
        var = check_variant(ndim, nonnegative=nonnegative, **variant)
        all_nn = len(var.nonnegative_modes) == ndim
    verbose = check_bool(verbose, "verbose")
    ckpt = _check_path(checkpoint, "checkpoint")
    if ckpt is not None and check_checkpoint:
        check_checkpoint_path(ckpt)
    return ALSOptions(rank=rank, max_iter=max_iter, tol=float(tol), nonnegative=all_nn,
                      verbose=verbose, checkpoint=ckpt, checkpoint_every=checkpoint_every,
                      resume=_check_path(resume, "resume"), variant=var)


def check_resumed(state: CPALSState, shape: tuple[int, ...], dtype: Any, options: ALSOptions,
                  norm_x: float | None = None, samples: list[float] | None = None) -> None:
    """Raise a ValueError unless a loaded checkpoint belongs to this problem.

    Shape, rank, ``nonnegative`` and dtype are compared first (no data
    needed); with ``norm_x`` and ``samples`` (the fingerprint of ``X``,
    :func:`tensorpar.cp.als.sample_entries`) the tensor itself is compared:
    the norm to ``1e-12`` relative, the sampled entries exactly (a version-1
    checkpoint has no samples; only its norm is compared).

    Examples
    --------
    >>> import numpy as np
    >>> state = CPALSState([np.ones((2, 1)), np.ones((3, 1))], np.ones(1), [np.ones((1, 1))] * 2)
    >>> check_resumed(state, (2, 3), np.float64, check_als_options(1, resume="s.npz"))
    >>> check_resumed(state, (2, 3), np.float64, check_als_options(2, resume="s.npz"))
    Traceback (most recent call last):
    ...
    ValueError: resume='s.npz' holds a rank-1 model, rank=2 was asked for
    """
    where = f"resume={options.resume!r}"
    if state.shape != tuple(shape):
        raise ValueError(f"{where} holds factors for shape {state.shape}, X has shape "
                         f"{tuple(shape)}")
    if state.rank != options.rank:
        raise ValueError(f"{where} holds a rank-{state.rank} model, rank={options.rank} "
                         "was asked for")
    if state.nonnegative != options.nonnegative:
        raise ValueError(f"{where} was written with nonnegative={state.nonnegative}")
    want = options.variant
    if options.nonnegative and not want.nonnegative_modes:  # options made without ndim
        want = dataclasses.replace(want, nonnegative_modes=tuple(range(len(shape))))
    if state.variant != want:
        theirs, ours = state.variant.as_dict(), want.as_dict()
        diff = ", ".join(f"{k}={theirs[k]!r} (asked {ours[k]!r})" for k in theirs
                         if theirs[k] != ours[k])
        raise ValueError(f"{where} was written with other options: {diff}")
    if state.factors[0].dtype != dtype:
        raise ValueError(f"{where} holds {state.factors[0].dtype} factors, X is {dtype}")
    if norm_x is not None and abs(state.norm_x - norm_x) > 1e-12 * max(norm_x, 1e-300):
        raise ValueError(f"{where} was written for a different tensor (||X|| = "
                         f"{state.norm_x!r}, this X has {norm_x!r})")
    if samples is not None and state.samples and list(state.samples) != list(samples):
        raise ValueError(f"{where} was written for a different tensor (same norm, but the "
                         "sampled entries differ)")
