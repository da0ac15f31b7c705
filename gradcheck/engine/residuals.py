"""Bouvrie's residuals of a Sequential, as gradients of the tail of the stack.

For a layer `name` of a Sequential with output u = head(name)(x, ...), the full stack's backward returns
``"<name>.delta"`` = dE/du (with E = sum(G * y), the same G). The tail after `name` is itself a layer with
data input "x" = u, so dE/du is checked like any input gradient: numerically, as d/du of
sum(G * tail(name).forward(x=u, <tail parameters>)[0]), against the backward's delta.
"""

from __future__ import annotations

import numpy as np

from gradcheck.errors import LayerContractError


def residual_problem(layer, arrays, grads, name):
    """(tail, tail_arrays, delta) for the residual of layer `name` of the Sequential `layer`.

    tail_arrays holds u (the head's output, in the arrays' dtype) as "x" and the tail's own parameters
    and constants, taken from `arrays` by their "<layer>.<input>" names.
    """
    kind = type(layer).__name__
    if not (hasattr(layer, "head") and hasattr(layer, "tail")):
        raise LayerContractError(f"{kind}: residuals={name!r} needs a Sequential (head/tail), got {kind}")
    key = f"{name}.delta"
    if key not in grads:
        raise LayerContractError(
            f"{kind}: backward returned no residual {key!r} (keys: {', '.join(sorted(grads))})")
    head, tail = layer.head(name), layer.tail(name)
    u = np.asarray(head.forward(**{k: arrays[k] for k in (*head.inputs, *getattr(head, "constants", ()))})[0])
    tail_arrays = {k: arrays[k] for k in (*tail.inputs[1:], *getattr(tail, "constants", ()))}
    tail_arrays[tail.inputs[0]] = u
    delta = np.asarray(grads[key])
    if delta.shape != u.shape:
        raise LayerContractError(
            f"{kind}: residual {key!r} has shape {delta.shape}, "
            f"but the output of {name!r} has shape {u.shape}")
    return tail, tail_arrays, delta
