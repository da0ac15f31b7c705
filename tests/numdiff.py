"""Plain central differences, one coordinate at a time: the independent baseline the layer tests use.

Deliberately naive (no grouping, no complex step) so it shares no code with ``gradcheck``.
"""

import numpy as np


def numeric_vjp(layer, arrays, G, name, eps=1e-6):
    """d/d arrays[name] of sum(G * layer.forward(**arrays)[0]) by central differences.

    Truncation error ~ eps^2 * f''' and rounding ~ 1e-16 * |L| / eps: about 1e-9 relative at eps=1e-6.
    """
    a = {k: np.array(v, copy=True) for k, v in arrays.items()}
    target = a[name]
    grad = np.zeros(target.shape, dtype=np.float64)
    flat = target.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(G * layer.forward(**a)[0])
        flat[i] = old - eps
        minus = np.sum(G * layer.forward(**a)[0])
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def assert_backward_matches(layer, arrays, seed=0, eps=1e-6, rtol=1e-6, atol=1e-8):
    """Compare layer.backward against numeric_vjp for every input of the layer."""
    rng = np.random.default_rng(seed)
    y, cache = layer.forward(**arrays)
    G = rng.standard_normal(np.shape(y))
    grads = layer.backward(G, cache)
    for name in layer.inputs:
        num = numeric_vjp(layer, arrays, G, name, eps)
        np.testing.assert_allclose(grads[name], num, rtol=rtol, atol=atol, err_msg=f"d{name}")
