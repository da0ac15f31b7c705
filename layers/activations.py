"""Element-wise activations f with their derivatives written through the output y = f(x) (Bouvrie's f'(u)).

    Sigmoid:  y = 1 / (1 + exp(-x))     dx = dy o y o (1 - y)
    Tanh:     y = tanh(x)               dx = dy o (1 - y^2)
    ReLU:     y = max(x, 0)             dx = dy o [x > 0]

Any shape; the output has the input's shape and dtype. The cache is the output y (f'(u) is a function
of y for all three), which is what seed 004's residual delta^l = beta^{l+1} (f'(u^l) o up(delta^{l+1})) uses.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class Sigmoid:
    """``y = 1 / (1 + exp(-x))``, ``dx = dy o y o (1 - y)``.

    Shapes: x (any) -> y (same). cache: y.
    Real dtypes use scipy.special.expit (no overflow warning for large |x|, dtype kept);
    complex inputs use 1 / (1 + exp(-x)), which is analytic: complex-safe.
    """

    inputs = ("x",)
    complex_safe = True

    def forward(self, x):
        y = 1 / (1 + np.exp(-x)) if np.iscomplexobj(x) else expit(x)
        return y, y

    def backward(self, dy, cache):
        y = cache
        return {"x": dy * y * (1 - y)}

    def structure(self, name, shapes):
        """Element-wise: x[i] touches only y[i] (identity on every axis; gradcheck.structure)."""
        return tuple(range(len(shapes["x"])))


class Tanh:
    """``y = tanh(x)``, ``dx = dy o (1 - y^2)``.

    Shapes: x (any) -> y (same). cache: y. Complex-safe: tanh is analytic.
    """

    inputs = ("x",)
    complex_safe = True

    def forward(self, x):
        y = np.tanh(x)
        return y, y

    def backward(self, dy, cache):
        y = cache
        return {"x": dy * (1 - y * y)}

    def structure(self, name, shapes):
        """Element-wise: x[i] touches only y[i] (identity on every axis; gradcheck.structure)."""
        return tuple(range(len(shapes["x"])))


class ReLU:
    """``y = max(x, 0)``, ``dx = dy o [x > 0]``.

    The derivative at x = 0 is taken as 0 (as torch does); x = 0 is a kink, which a gradient
    checker reports as a non-differentiable point.
    Shapes: x (any) -> y (same). cache: y (y > 0 exactly where x > 0).
    Not complex-safe: max is not analytic.
    """

    inputs = ("x",)
    complex_safe = False

    def forward(self, x):
        y = np.where(x > 0, x, 0)  # a Python 0 keeps x.dtype
        return y, y

    def backward(self, dy, cache):
        y = cache
        return {"x": dy * (y > 0)}

    def structure(self, name, shapes):
        """Element-wise: x[i] touches only y[i] (identity on every axis; gradcheck.structure)."""
        return tuple(range(len(shapes["x"])))
