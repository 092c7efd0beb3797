"""The module model of :mod:`tensorpar.nn`: parameters, modules, explicit backward.

There is no autograd. Every layer is a :class:`Module` with two methods:

``forward(x)``
    computes the output and keeps, in ``self.cache``, what its backward
    needs (inputs, activations, partial contractions);
``backward(grad_out)``
    takes the gradient of the loss with respect to the output, returns the
    gradient with respect to the input and **adds** the parameter gradients
    into each :class:`Parameter`'s ``grad`` (so gradients of several calls
    accumulate until :meth:`Module.zero_grad`).

Parameters and sub-modules are registered by assignment, in order, as in
PyTorch, so :meth:`Module.named_parameters` and :meth:`Module.state_dict`
use PyTorch's dotted names (``"0.weight"``, ``"layers.1.bias"``). Arrays may
be numpy or cupy; the array module is read off the data, never global.
:class:`~tensorpar.nn.containers.Sequential` lives in
:mod:`tensorpar.nn.containers`, the ``.npz`` files of :func:`~tensorpar.nn.state.save_state`
and :func:`~tensorpar.nn.state.load_state` in :mod:`tensorpar.nn.state`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._backend import get_array_module, to_numpy
from .._typing import Array

__all__ = ["Module", "Parameter"]


class Parameter:
    """A trainable array and the gradient accumulated for it.

    Parameters
    ----------
    data : ndarray
        The value (numpy or cupy, float32 or float64). It is kept, not copied.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.ones((2, 3)))
    >>> p.shape, float(p.grad.sum())
    ((2, 3), 0.0)
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: Array) -> None:
        if not hasattr(data, "dtype") or data.dtype.kind not in "fc":
            raise TypeError(f"data must be a floating-point array, got {type(data).__name__}")
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer.

    Subclasses call ``super().__init__()`` first, assign :class:`Parameter`
    and :class:`Module` attributes (registered in order) and implement
    :meth:`forward` and :meth:`backward`. ``self.cache`` holds what backward
    needs; :meth:`saved_bytes` reports its size (the memory a layer keeps
    between forward and backward).

    Examples
    --------
    >>> import numpy as np
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.alpha = Parameter(np.array([2.0]))
    ...     def forward(self, x):
    ...         self.cache = {"x": x}
    ...         return self.alpha.data * x
    ...     def backward(self, g):
    ...         self.alpha.grad += (g * self.cache["x"]).sum(keepdims=True).reshape(1)
    ...         return self.alpha.data * g
    >>> m = Scale()
    >>> y = m(np.arange(3.0))
    >>> m.backward(np.ones(3))
    array([2., 2., 2.])
    >>> [(name, p.grad) for name, p in m.named_parameters()]
    [('alpha', array([3.]))]
    """

    _parameters: dict[str, Parameter]
    _modules: dict[str, Module]
    _flat: set[str]
    training: bool
    cache: dict[str, Any]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_flat", set())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning {name!r}")
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        params.pop(name, None)
        modules.pop(name, None)
        self.__dict__["_flat"].discard(name)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    def register_module(self, name: str, module: Module, *, flat: bool = False) -> None:
        """Register ``module`` as the sub-module ``name`` (same as assignment).

        With ``flat=True`` its parameters are named ``name_param`` instead of
        ``name.param``: PyTorch's ``MultiheadAttention`` keeps its input
        projection as the flat parameters ``in_proj_weight`` and
        ``in_proj_bias``, and this is how a :class:`Linear` sub-module carries
        those names. The module still takes part in :meth:`train`,
        :meth:`zero_grad` and :meth:`saved_bytes`.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> m = Module()
        >>> m.register_module("in_proj", Linear(2, 6, seed=0), flat=True)
        >>> [name for name, _ in m.named_parameters()]
        ['in_proj_weight', 'in_proj_bias']
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be an identifier, got {name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"module must be a Module, got {type(module).__name__}")
        setattr(self, name, module)
        if flat:
            self._flat.add(name)

    # --- computation -----------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; keep what :meth:`backward` needs in ``self.cache``.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(4, 3, seed=0)
        >>> lin.forward(np.ones((2, 4))).shape, bool(lin.cache)   # cache filled for backward
        ((2, 3), True)
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_out: Array) -> Any:
        """Return the input gradient and accumulate the parameter gradients.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(4, 3, seed=0)
        >>> y = lin(np.ones((2, 4)))
        >>> lin.backward(np.ones((2, 3))).shape, float(lin.bias.grad.sum())   # 2 rows x 3
        ((2, 4), 6.0)
        """
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- traversal -------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for this module and every sub-module, depth first.

        Examples
        --------
        >>> from tensorpar.nn import Linear, ReLU, Sequential
        >>> net = Sequential(Linear(4, 3, seed=0), ReLU())
        >>> [(name, type(m).__name__) for name, m in net.named_modules()]
        [('', 'Sequential'), ('0', 'Linear'), ('1', 'ReLU')]
        """
        yield prefix, self
        for name, mod in self._modules.items():
            yield from mod.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in registration order.

        Examples
        --------
        >>> from tensorpar.nn import Linear, ReLU, Sequential
        >>> [type(m).__name__ for m in Sequential(Linear(4, 3, seed=0), ReLU()).children()]
        ['Linear', 'ReLU']
        """
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)`` in registration order (PyTorch's names).

        Examples
        --------
        >>> from tensorpar.nn import Linear, Sequential
        >>> [(n, p.shape) for n, p in Sequential(Linear(4, 3, seed=0)).named_parameters()]
        [('0.weight', (3, 4)), ('0.bias', (3,))]
        """
        for name, p in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), p
        for mod_name, mod in self._modules.items():
            if mod_name in self._flat:
                for sub, p in mod.named_parameters():
                    yield (f"{prefix}.{mod_name}_{sub}" if prefix else f"{mod_name}_{sub}"), p
            else:
                yield from mod.named_parameters(f"{prefix}.{mod_name}" if prefix else mod_name)

    def parameters(self) -> list[Parameter]:
        """Every parameter once, in the order of :meth:`named_parameters`.

        A parameter shared by two sub-modules (tied weights) is listed once, so
        an optimizer updates it once with the gradients both accumulated;
        :meth:`named_parameters` and :meth:`state_dict` list it under each name,
        as PyTorch's ``state_dict`` does.

        Examples
        --------
        >>> from tensorpar.nn import Linear, Sequential
        >>> lin = Linear(4, 3, seed=0)
        >>> tied = Sequential(lin, lin)   # the same layer twice
        >>> len(list(tied.named_parameters())), len(tied.parameters())
        (4, 2)
        """
        seen: set[int] = set()
        out = []
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def num_parameters(self) -> int:
        """Number of trainable scalars.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> Linear(4, 3, seed=0).num_parameters()   # 4 * 3 weights + 3 biases
        15
        """
        return sum(p.size for p in self.parameters())

    def parameter_bytes(self) -> int:
        """Bytes of the parameter values (the gradients take as many again).

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> Linear(4, 3, seed=0).parameter_bytes()  # (12 + 3) float64
        120
        """
        return sum(int(p.data.nbytes) for p in self.parameters())

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero (in place).

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(4, 3, seed=0)
        >>> _ = lin(np.ones((2, 4))); _ = lin.backward(np.ones((2, 3)))
        >>> lin.zero_grad()
        >>> float(abs(lin.weight.grad).sum())
        0.0
        """
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its sub-modules to training (or evaluation) mode.

        Examples
        --------
        >>> from tensorpar.nn import Dropout, Sequential
        >>> net = Sequential(Dropout(0.5, seed=0)).train(False)
        >>> net.training, net[0].training
        (False, False)
        """
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool, got {type(mode).__name__}")
        for _, mod in self.named_modules():
            object.__setattr__(mod, "training", mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (dropout off); same as ``train(False)``.

        Examples
        --------
        >>> from tensorpar.nn import Dropout
        >>> drop = Dropout(0.5, seed=0).eval()
        >>> bool((drop(np.ones(8)) == 1).all())
        True
        """
        return self.train(False)

    def saved_bytes(self) -> int:
        """Bytes of the arrays this module and its sub-modules keep for backward.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> lin = Linear(4, 3, seed=0)
        >>> _ = lin(np.ones((2, 4)))
        >>> lin.saved_bytes()   # the (2, 4) float64 input
        64
        """
        total = 0
        for _, mod in self.named_modules():
            for v in mod.cache.values():
                items = v if isinstance(v, (list, tuple)) else [v]
                total += sum(int(a.nbytes) for a in items if hasattr(a, "nbytes"))
        return total

    # --- state -----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter, keyed by PyTorch-style dotted names.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> {k: v.shape for k, v in Linear(4, 3, seed=0).state_dict().items()}
        {'weight': (3, 4), 'bias': (3,)}
        """
        return {name: np.array(to_numpy(p.data)) for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters, checking names and shapes.

        Parameters
        ----------
        state : dict of str to array
            As returned by :meth:`state_dict` (or exported from PyTorch with
            ``{k: v.numpy() for k, v in model.state_dict().items()}``).
        strict : bool
            When True, missing and unexpected keys raise a ValueError.

        Examples
        --------
        >>> from tensorpar.nn import Linear
        >>> a, b = Linear(4, 3, seed=0), Linear(4, 3, seed=1)
        >>> b.load_state_dict(a.state_dict())
        >>> bool(np.array_equal(a.weight.data, b.weight.data))
        True
        >>> b.load_state_dict({"weight": a.weight.data})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: state does not match the module: missing keys ['bias'], ...
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise ValueError(f"state does not match the module: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for name, p in params.items():
            if name not in state:
                continue
            value = np.asarray(to_numpy(state[name]))
            if tuple(value.shape) != p.shape:
                raise ValueError(f"state[{name!r}] has shape {tuple(value.shape)}, "
                                 f"the parameter has shape {p.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state[{name!r}] contains NaN or inf")
            xp = get_array_module(p.data)
            p.data[...] = xp.asarray(value, dtype=p.data.dtype)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={type(m).__name__}" for n, m in self._modules.items())
        return f"{type(self).__name__}({inner})"
