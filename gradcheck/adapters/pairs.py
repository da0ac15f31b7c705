"""Function pairs in cs231n's calling conventions, as layers of the layer contract.

    out, cache = affine_forward(x, w, b)             dx, dw, db = affine_backward(dout, cache)
    out, cache = conv_forward_naive(x, w, b, conv_param)
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
                                                      ... = lstm_step_backward(dnext_h, dnext_c, cache)
    loss, dx = softmax_loss(x, y)                    (the gradient comes with the value: no backward)

``FunctionPair`` calls forward with the arrays by parameter name and the config entries by name (a fresh
deep copy per call: cs231n's batch norm writes its running means into bn_param, and the checker calls
forward many times, from several threads). Its array parameters are forward's parameters that are not in
config and have no default, in order; the differentiable ones (``inputs``) are those not in
``constants`` (integer arrays, labels y: see ``with_dtypes``). backward returns the gradients as a tuple
in the order of the inputs (one array when there is one input, a dict name -> gradient also does).

Several outputs: forward returns them before the cache, backward takes one cotangent per output before
the cache. Their number is backward's parameters less the cache; their names are those parameters without
the leading "d" (``dnext_h`` -> ``next_h``), or ``outputs=``. The pair then has an ``outputs`` tuple and
follows the several-outputs contract (gradcheck.engine.outputs): forward -> ((next_h, next_c), cache),
backward(dy=(dnext_h, dnext_c), cache).

``ValueAndGradient``: ``f(x, y) -> (loss, dx)``, a scalar loss and its gradient in one call. With the
checker's scalar cotangent G, L = G * loss and dL/dx = G * dx: forward keeps dx as its cache and
backward scales it.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from gradcheck.errors import LayerContractError


def _signature(fn, what):
    """forward's parameters that may be passed by name, in order; a ValueError for *args / **kwargs-only."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        fn_name = getattr(fn, "__name__", fn)
        raise ValueError(f"cannot read the parameters of {what} {fn_name!r}: {exc}") from None
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind == p.VAR_POSITIONAL for p in params)


def _call_text(fn, names) -> str:
    return f"{getattr(fn, '__name__', 'forward')}({', '.join(names)})"


class _Arrays:
    """What the pair and the value-and-gradient function share: the array parameters of `fn`, the config,
    the inputs and constants, and the mapping of backward's gradients to input names."""

    complex_safe = False

    def _setup(self, fn, config, constants, complex_safe):
        params, _ = _signature(fn, "forward")
        names = [p.name for p in params]
        config = dict(config or {})
        unknown = [k for k in config if k not in names]
        if unknown:
            raise ValueError(f"config {', '.join(repr(k) for k in unknown)} is not a parameter of "
                             f"{_call_text(fn, names)}")
        self.config = config
        self.arrays = tuple(p.name for p in params if p.name not in config and p.default is p.empty)
        constants = tuple(constants or ())
        wrong = [c for c in constants if c not in self.arrays]
        if wrong:
            raise ValueError(f"constants {', '.join(wrong)} are not array parameters of "
                             f"{_call_text(fn, names)} (array parameters: {', '.join(self.arrays)})")
        self.constants = tuple(a for a in self.arrays if a in constants)
        self.inputs = tuple(a for a in self.arrays if a not in constants)
        self.complex_safe = bool(complex_safe)

    def with_dtypes(self, dtypes) -> _Arrays:
        """This layer with every integer-typed array (labels y, indices) among its constants: the arrays
        a case or a check gives decide what is differentiable. dtypes: name -> dtype."""
        ints = {n for n, d in dtypes.items() if n in self.arrays and np.dtype(d).kind in "iub"}
        constants = tuple(a for a in self.arrays if a in ints or a in self.constants)
        if constants == self.constants:
            return self
        other = copy.copy(self)
        other.constants = constants
        other.inputs = tuple(a for a in self.arrays if a not in constants)
        return other

    def _call(self, fn, arrays):
        return fn(**arrays, **copy.deepcopy(self.config))

    def _named(self, grads, who) -> dict:
        """backward's gradients as {input name: gradient}."""
        if isinstance(grads, dict):
            return dict(grads)
        if len(self.inputs) == 1 and not isinstance(grads, tuple | list):
            return {self.inputs[0]: grads}
        if isinstance(grads, tuple | list):
            if len(grads) == len(self.inputs):
                return dict(zip(self.inputs, grads, strict=True))
            if len(grads) == len(self.arrays):  # one entry per array parameter, constants included
                return {a: g for a, g in zip(self.arrays, grads, strict=True) if a in self.inputs}
            got = f"{len(grads)} gradients"
        else:
            got = f"a {type(grads).__name__}"
        tuple_ = " (a tuple)" if len(self.inputs) > 1 else ""
        raise LayerContractError(
            f"{type(self).__name__}: {who} returned {got}; expected one per differentiable array parameter "
            f"of forward, in order: {', '.join(self.inputs)}{tuple_}")


class FunctionPair(_Arrays):
    """forward(*arrays, *config) -> (out, cache) or (out_1, ..., out_n, cache); backward(dout, cache) or
    backward(dout_1, ..., dout_n, cache) -> the gradients of the inputs (see the module's docstring)."""

    def __init__(self, forward, backward, *, config=None, constants=(), outputs=None, complex_safe=False):
        self._setup(forward, config, constants, complex_safe)
        self._forward, self._backward = forward, backward
        if outputs is None:
            params, var = _signature(backward, "backward")
            if var or not params:
                raise ValueError(f"cannot tell the number of outputs from backward "
                                 f"{getattr(backward, '__name__', backward)!r}; give outputs=(names)")
            outputs = tuple(p.name[1:] if p.name.startswith("d") and len(p.name) > 1 else p.name
                            for p in params[:-1])
        outputs = tuple(outputs)
        if not outputs:
            raise ValueError("a pair needs at least one output before the cache")
        self.n_outputs = len(outputs)
        self.outputs = outputs if len(outputs) > 1 else None

    def forward(self, **arrays):
        result = self._call(self._forward, arrays)
        n = self.n_outputs
        if not isinstance(result, tuple | list) or len(result) != n + 1:
            got = (f"{len(result)} values" if isinstance(result, tuple | list)
                   else f"a {type(result).__name__}")
            want = "(out, cache)" if n == 1 else f"({', '.join(self.outputs)}, cache)"
            raise LayerContractError(f"{type(self).__name__}: {self._forward.__name__} returned {got}; "
                                     f"expected {want}")
        outs, cache = tuple(result[:n]), result[n]
        return (outs[0] if n == 1 else outs), cache

    def backward(self, dy, cache):
        douts = (dy,) if self.n_outputs == 1 else tuple(dy)
        return self._named(self._backward(*douts, cache), getattr(self._backward, "__name__", "backward"))


class ValueAndGradient(_Arrays):
    """f(*arrays, *config) -> (loss, dx) (or (loss, (dx, dw)), (loss, dx, dw), (loss, {name: grad})), the
    loss a scalar: one output, y = loss, and backward(G, cache) = G * the gradients f returned."""

    def __init__(self, fn, *, config=None, constants=(), complex_safe=False):
        self._setup(fn, config, constants, complex_safe)
        self._fn = fn
        self.outputs = None

    def forward(self, **arrays):
        result = self._call(self._fn, arrays)
        if not isinstance(result, tuple | list) or len(result) < 2:
            raise LayerContractError(f"{type(self).__name__}: {self._fn.__name__} must return (loss, grads), "
                                     f"a scalar loss and its gradient; got a {type(result).__name__}")
        value = np.asarray(result[0])
        if value.ndim != 0:
            raise LayerContractError(
                f"{type(self).__name__}: {self._fn.__name__} returned a value of shape {value.shape}; a "
                "function that returns its gradient with its value must return a scalar loss")
        grads = result[1] if len(result) == 2 else tuple(result[1:])
        return value, self._named(grads, self._fn.__name__)

    def backward(self, dy, cache):
        G = np.asarray(dy)
        return {k: G * np.asarray(g) for k, g in cache.items()}


def _renamed(cls, name):
    """cls under the pair's own name (every message the checker writes names type(layer).__name__)."""
    return type(name, (cls,), {"__module__": cls.__module__})


def pair_name(forward) -> str:
    """affine_forward -> "affine", conv_forward_naive -> "conv_naive", softmax_loss -> "softmax_loss"."""
    name = getattr(forward, "__name__", "pair")
    return name.replace("_forward", "").replace("forward_", "") or name


def pair(forward, backward=None, *, config=None, constants=(), outputs=None, complex_safe=False, name=None):
    """A layer of the layer contract from a cs231n-style function pair, or from one function that returns
    its gradient with its value (backward None: ``softmax_loss(x, y) -> (loss, dx)``).

    config: keyword arguments passed to forward on every call (a fresh deep copy each time), e.g.
    ``{"conv_param": {"stride": 1, "pad": 1}}``. constants: array parameters that are not differentiable
    (labels); gradcheck.check also makes every integer array a constant. outputs: names of several outputs
    (default: from backward's parameters). complex_safe: forward is analytic (complex step applies).
    name: used in messages (default: forward's name without "_forward").
    """
    name = name or pair_name(forward)
    if backward is None:
        return _renamed(ValueAndGradient, name)(forward, config=config, constants=constants,
                                                complex_safe=complex_safe)
    return _renamed(FunctionPair, name)(forward, backward, config=config, constants=constants,
                                        outputs=outputs, complex_safe=complex_safe)


class PairSpec:
    """What a case's ``layer: "module:name"`` names when it is not a class: called with the case's config,
    it builds the pair (so the catalogue builds it as it builds a class, ``cls(**config)``)."""

    def __init__(self, name, forward, backward=None):
        self.__name__ = name
        self.forward, self.backward = forward, backward

    def __call__(self, **config):
        return pair(self.forward, self.backward, config=config, name=self.__name__)

    def __repr__(self) -> str:
        how = "a function pair" if self.backward is not None else "a function returning (loss, grads)"
        return f"<{self.__name__}: {how}>"


def find(module, attr: str) -> PairSpec | str:
    """The PairSpec `attr` names in `module`, or a sentence saying why there is none.

        attr with attr_forward and attr_backward in the module        a pair ("affine")
        attr naming a function whose name holds "forward"              a pair with the name's "backward"
                                                                       ("conv_forward_naive")
        attr naming any other function                                 (loss, grads) in one call
    """
    mod = module.__name__
    fwd, bwd = getattr(module, f"{attr}_forward", None), getattr(module, f"{attr}_backward", None)
    if callable(fwd) and callable(bwd):
        return PairSpec(attr, fwd, bwd)
    obj = getattr(module, attr, None)
    if obj is None:
        half = f"{attr}_forward" if callable(fwd) else f"{attr}_backward" if callable(bwd) else None
        if half is not None:
            other = f"{attr}_backward" if half.endswith("forward") else f"{attr}_forward"
            return f"module '{mod}' has {half} but no {other}"
        return (f"module '{mod}' has no attribute '{attr}' (nor a function pair {attr}_forward / "
                f"{attr}_backward)")
    if not callable(obj):
        return f"'{mod}:{attr}' is neither a class nor a function"
    if "forward" in attr:
        back = attr.replace("forward", "backward")
        partner = getattr(module, back, None)
        if not callable(partner):
            return f"module '{mod}' has {attr} but no {back} to pair it with"
        return PairSpec(pair_name(obj), obj, partner)
    return PairSpec(attr, obj)
