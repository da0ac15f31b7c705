"""Planted bugs: correct layers with one classic mistake in backward, shared by the tests and docs/.

Each is exactly one deviation from the seed's formula, so a check must name that array (and index).
"""

import numpy as np

from layers import Conv2D, FullyConnected, MaxPool, Sigmoid, Subsampling
from layers.subsampling import up


class AveragedBias(FullyConnected):
    """db = mean over the batch instead of the sum (seed 002: bias_diff = c^T * Top_diff, a sum)."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["b"] = dy.mean(axis=0)
        return g


class OneWrongWeight(FullyConnected):
    """dW right but for one element, off by `by` (LeNet's 800 x 500 weights: one in 400,000)."""

    def __init__(self, index=(123, 45), by=1.0):
        self.index, self.by = index, by

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"][self.index] += self.by
        return g


class SigmoidWithoutOneMinusF(Sigmoid):
    """dx = dy f instead of dy f (1 - f)."""

    def backward(self, dy, cache):
        return {"x": dy * cache}


class SubsamplingWithoutBeta(Subsampling):
    """dx = up(delta) instead of beta * up(delta) (Bouvrie's residual through a subsampling layer)."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        n = self.size
        dx = np.zeros(cache[2])
        dx[:, :, : dy.shape[2] * n, : dy.shape[3] * n] = up(dy, n)
        g["x"] = dx
        return g


class KernelNotRotated(Conv2D):
    """Bouvrie's dk = rot180(conv2(x, rot180(delta), 'valid')) with the outer rot180 forgotten."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["k"] = g["k"][..., ::-1, ::-1].copy()
        return g


class MaxPoolFullDyToEveryTie(MaxPool):
    """The full dy to every element equal to its block's maximum (not to the first only): with k tied
    maxima the block's gradient sums to k dy where dy is right. Each tied element alone is a valid
    subgradient value (a kink), so only the direction that raises all of them together shows it."""

    def forward(self, x):
        y, (arg, shape) = super().forward(x)
        return y, (arg, shape, np.array(x), y)

    def backward(self, dy, cache):
        _, shape, x, y = cache
        n = self.size
        crop = x[:, :, : y.shape[2] * n, : y.shape[3] * n]
        tied = crop == up(y, n)
        dx = np.zeros(shape, dtype=dy.dtype)
        dx[:, :, : y.shape[2] * n, : y.shape[3] * n] = tied * up(dy, n)
        return {"x": dx}


class TanhFC:
    """y = tanh(x W + b): x (N, D), W (D, F), b (F,) -> y (N, F), right gradients, declared not complex-safe
    (a layer written with real-only NumPy, say), so the checker cannot use complex step on it."""

    inputs = ("x", "W", "b")
    complex_safe = False

    def forward(self, x, W, b):
        y = np.tanh(x.reshape(x.shape[0], -1) @ W + b)
        return y, (x, W, y)

    def backward(self, dy, cache):
        x, W, y = cache
        d = dy * (1 - y * y)
        return {"x": (d @ W.T).reshape(x.shape), "W": x.reshape(x.shape[0], -1).T @ d, "b": d.sum(axis=0)}

    def structure(self, name, shapes):
        """As FullyConnected: x[n] -> y[n, :], W[:, j] and b[j] -> y[:, j]."""
        return {"x": (0,) + (None,) * (len(shapes["x"]) - 1), "W": (None, 1), "b": (1,)}[name]


class ScaledElement:
    """Wraps a layer: backward right but for one element of one array's gradient, multiplied by (1 + r)
    (a relative error r on that element, whatever the cotangent). forward, structure, complex_safe: the
    wrapped layer's."""

    def __init__(self, layer, array="W", index=(0, 0), r=1e-10):
        self.layer, self.array, self.index, self.r = layer, array, tuple(index), float(r)
        self.inputs = layer.inputs
        self.constants = getattr(layer, "constants", ())
        self.complex_safe = getattr(layer, "complex_safe", False)

    def forward(self, **arrays):
        return self.layer.forward(**arrays)

    def backward(self, dy, cache):
        g = dict(self.layer.backward(dy, cache))
        g[self.array] = np.array(g[self.array], copy=True)
        g[self.array][self.index] *= 1 + self.r
        return g

    def structure(self, name, shapes):
        declare = getattr(self.layer, "structure", None)
        return None if declare is None else declare(name, shapes)
