"""Stateful layer objects, in the style of popular NumPy libraries, as layers of the layer contract.

    layer = Dense(W, b)
    y = layer.forward(X)            keeps X on the object
    dX = layer.backward(dLdy)       returns dX, leaves dW, db on the object

``Stateful`` makes such an object a function of its arrays: each forward works on its own copy of the
object with the parameters replaced by the arrays the checker passes (the checker perturbs them, and
calls forward from several threads at once), and that copy is the cache backward runs on::

    forward(X, W, b):   obj' = deep copy of obj with obj'.W = W, obj'.b = b;  y = obj'.forward(X)
    backward(G, obj'):  dX = obj'.backward(G);  {"X": dX, "W": obj'.dW, "b": obj'.db}

Nothing is written into the object given (running statistics a training forward updates stay in the
copy). The parameter arrays themselves are not copied: the copy refers to the checker's arrays.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from gradcheck.errors import LayerContractError


def _input_name(obj) -> str:
    try:
        params = [p for p in inspect.signature(obj.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[0].name if params else "X"


class Stateful:
    """The layer contract around a stateful object (see the module's docstring).

    obj: has forward(X) -> y and backward(dLdy) -> dX. params: array name -> attribute of obj holding it;
    grads: array name -> attribute holding its gradient after backward (default "d" + the attribute).
    input: the name of forward's argument (default: its parameter's name, e.g. "X"). complex_safe: the
    object's forward is analytic (complex-step differences apply).
    """

    def __init__(self, obj, params=(), grads=None, input=None, complex_safe=False):
        if not (callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))):
            raise ValueError(f"{type(obj).__name__}: a stateful layer needs forward(X) and backward(dLdy)")
        params = dict(params) if isinstance(params, dict) else {p: p for p in params}
        missing = [a for a in params.values() if not hasattr(obj, a)]
        if missing:
            raise ValueError(f"{type(obj).__name__} has no attribute {', '.join(missing)} (params)")
        grads = {k: "d" + a for k, a in params.items()} if grads is None else dict(grads)
        if set(grads) != set(params):
            raise ValueError(f"grads must name the gradient attribute of each of {', '.join(params)}; "
                             f"got {', '.join(grads) or 'none'}")
        self.obj, self.params, self.grads = obj, params, grads
        self.input = input or _input_name(obj)
        self.inputs = (self.input, *params)
        self.complex_safe = bool(complex_safe)

    def arrays(self, X) -> dict[str, np.ndarray]:
        """The arrays to check at input X: X and the object's current parameters."""
        return {self.input: X, **{k: getattr(self.obj, a) for k, a in self.params.items()}}

    def _copy(self, arrays):
        memo = {id(getattr(self.obj, a)): arrays[k] for k, a in self.params.items()}
        clone = copy.deepcopy(self.obj, memo)  # the parameter arrays are the checker's, not copies
        for k, a in self.params.items():
            setattr(clone, a, arrays[k])
        return clone

    def forward(self, **arrays):
        clone = self._copy(arrays)
        return clone.forward(arrays[self.input]), clone

    def backward(self, dy, cache):
        clone = cache
        grads = {self.input: clone.backward(dy)}
        for k, attr in self.grads.items():
            if not hasattr(clone, attr) or getattr(clone, attr) is None:
                raise LayerContractError(f"{type(self).__name__}: after backward the object has no "
                                         f"{attr!r} (the gradient of {k}, grads={self.grads})")
            grads[k] = getattr(clone, attr)
        return grads


def stateful(obj, params=(), grads=None, input=None, complex_safe=False) -> Stateful:
    """``gradcheck.stateful(Dense(W, b), params=("W", "b"))``: a layer gradcheck.check can check, with
    arrays ``layer.arrays(X)``. params: names (attribute = array name) or a dict array name -> attribute;
    grads: array name -> gradient attribute (default "d" + attribute: dW, db)."""
    cls = type(type(obj).__name__, (Stateful,), {"__module__": Stateful.__module__})
    return cls(obj, params, grads, input, complex_safe)
