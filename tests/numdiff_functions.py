"""Central differences of a scalar function of arrays perturbed in place: the baseline for function pairs
(cs231n style), several-output layers and stateful objects, which ``tests.numdiff`` (one layer, one output
y, a dict of arrays) does not fit.

Deliberately naive, as ``tests.numdiff``: one coordinate at a time, no grouping, no complex step.
"""

import numpy as np


def numeric_gradient(f, a, eps=1e-6):
    """d f() / d a by central differences, ``f`` a function of no arguments that reads ``a``.

    ``a`` (a float array) is perturbed in place one element at a time and put back; f must read it afresh
    on every call (a closure over the array, or an object holding it). Returns a float64 array of a's shape.
    """
    grad = np.zeros(a.shape, dtype=np.float64)
    flat = a.reshape(-1)
    if not np.shares_memory(flat, a):
        raise ValueError("numeric_gradient: `a` must be contiguous, so that its flat view perturbs it")
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = f()
        flat[k] = old - eps
        minus = f()
        flat[k] = old
        grad.reshape(-1)[k] = (plus - minus) / (2 * eps)
    return grad


def cotangent_loss(outputs, cotangents):
    """sum over outputs of sum(G * output): the loss whose gradient a backward given G computes."""
    return sum(float(np.sum(G * y)) for G, y in zip(cotangents, outputs, strict=True))
