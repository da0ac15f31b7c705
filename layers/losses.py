"""Loss layers: the output is a 0-d array E, and backward takes dy = G, a 0-d array or float (1 for dE).

    SquaredError:         E = 1/2 sum (t - y)^2                 dy_in = G (y - t)          (Bouvrie, eq. 1)
    SoftmaxCrossEntropy:  E = -(1/N) sum_n log softmax(x_n)_{t_n}
                          dx = G (softmax(x) - onehot(t)) / N   (reduction="mean"; no 1/N for "sum")

The targets t are constants: forward takes them, backward returns no gradient for them.
"""

from __future__ import annotations

import numpy as np


class SquaredError:
    """Bouvrie's ``E = 1/2 sum (t - y)^2`` over every entry (batch included, not averaged).

    Shapes: y (any), t (same as y) -> E ().
    Backward: ``dy_in = G (y - t)``.
    cache: y - t. Complex-safe: polynomial.
    """

    inputs = ("y",)
    constants = ("t",)
    complex_safe = True

    def forward(self, y, t):
        if np.shape(t) != y.shape:
            raise ValueError(f"SquaredError: t must have the shape of y {y.shape}, got {np.shape(t)}")
        r = y - t
        return np.asarray(0.5 * np.sum(r * r)), r

    def backward(self, dy, cache):
        return {"y": dy * cache}


class SoftmaxCrossEntropy:
    """``E = -(1/N) sum_n log softmax(x_n)_{t_n}`` (reduction="mean") or without 1/N ("sum").

    Shapes: x (N, K) scores, t (N,) integer class labels in [0, K) -> E ().
    Backward: ``dx = G (p - onehot(t)) / N`` with p = softmax(x) (no /N for "sum").
    cache: (p, t).
    Complex-safe: the row shift that avoids overflow is the max of the REAL part, a constant for
    complex-step differencing, so log softmax stays analytic in x.
    """

    inputs = ("x",)
    constants = ("t",)
    complex_safe = True

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"SoftmaxCrossEntropy: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def forward(self, x, t):
        if x.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: x must have shape (N, K), got shape {x.shape}")
        N, K = x.shape
        t = np.asarray(t)
        if t.shape != (N,):
            raise ValueError(f"SoftmaxCrossEntropy: t must have shape ({N},), got {t.shape}")
        if not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"SoftmaxCrossEntropy: t must hold integer class labels, got dtype {t.dtype}")
        if N and (t.min() < 0 or t.max() >= K):
            raise ValueError(f"SoftmaxCrossEntropy: t must hold labels in [0, {K}), got {t.min()}..{t.max()}")
        z = x - x.real.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        logp = z - np.log(s)
        E = -logp[np.arange(N), t].sum()
        if self.reduction == "mean":
            E = E / N
        return np.asarray(E), (e / s, t)

    def backward(self, dy, cache):
        p, t = cache
        d = p.copy()
        d[np.arange(len(t)), t] -= 1
        if self.reduction == "mean":
            d /= len(t)
        return {"x": dy * d}
