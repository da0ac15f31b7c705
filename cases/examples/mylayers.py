"""A user's own layers, next to their case files (cases/examples/*.yaml): plain NumPy, nothing from gradcheck.

    Swish:             y = x sigmoid(beta x), beta (D,) per feature; declares no structure
    NormAndDirection:  two outputs, r = |x_n| (N,) and u = x_n / r_n (N, D)
    ChannelScale:      channels-last maps x (N, H, W, C): y = gamma x + beta, gamma, beta (C,)
"""

import numpy as np


class Swish:
    """y = x s, s = sigmoid(beta x): x (N, D), beta (D,) -> y (N, D).

    dx = dy (s + beta x s (1 - s)), dbeta = sum_n dy x^2 s (1 - s). No ``structure``: every coordinate
    is perturbed on its own (one forward pair each), which is always right.
    """

    inputs = ("x", "beta")
    complex_safe = True

    def forward(self, x, beta):
        s = 1 / (1 + np.exp(-beta * x))
        return x * s, (x, beta, s)

    def backward(self, dy, cache):
        x, beta, s = cache
        ds = s * (1 - s)
        return {"x": dy * (s + beta * x * ds), "beta": np.sum(dy * x * x * ds, axis=0)}


class NormAndDirection:
    """x (N, D) -> r (N,) = |x_n|, u (N, D) = x_n / r_n: a layer with two outputs of different shapes.

    With cotangents dr, du: dx = dr u + (du - u <u, du>) / r, row by row.
    """

    outputs = ("r", "u")
    inputs = ("x",)
    complex_safe = True

    def forward(self, x):
        r = np.sqrt(np.sum(x * x, axis=1))
        return (r, x / r[:, None]), (x, r)

    def backward(self, dy, cache):
        dr, du = dy  # one cotangent per output, in `outputs` order
        x, r = cache
        u = x / r[:, None]
        return {"x": dr[:, None] * u + (du - u * np.sum(u * du, axis=1, keepdims=True)) / r[:, None]}

    def structure(self, name, shapes, output):
        """Row n of x reaches row n of r and of u only."""
        return (0, None)


class ChannelScale:
    """Channels-last maps x (N, H, W, C) -> y = gamma x + beta, gamma, beta (C,) broadcast over N, H, W.

    dx = dy gamma, dgamma = sum_{n,h,w} dy x, dbeta = sum_{n,h,w} dy.
    """

    inputs = ("x", "gamma", "beta")
    complex_safe = True

    def forward(self, x, gamma, beta):
        return gamma * x + beta, (x, gamma)

    def backward(self, dy, cache):
        x, gamma = cache
        return {"x": dy * gamma, "gamma": np.sum(dy * x, axis=(0, 1, 2)), "beta": np.sum(dy, axis=(0, 1, 2))}

    def structure(self, name, shapes):
        """x is element-wise; gamma[c] and beta[c] reach channel c (the last axis) of every map."""
        return (0, 1, 2, 3) if name == "x" else (3,)
