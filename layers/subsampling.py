"""Subsampling and pooling over non-overlapping n x n blocks (seed 004, Bouvrie's down() and up()).

Bouvrie's subsampling layer, map by map::

    u = beta * down(x) + b                    (x_j^l = f(beta_j^l down(x_j^{l-1}) + b_j^l), before f)

Backward, with delta = dE/du the residual of the subsampling map::

    dx    = beta * up(delta)                  (the conv layer's residual, before the o f'(u) factor)
    dbeta = sum(delta o down(x))              (seed 004: d11*(1+2+3+4) + d12*(5+..+8) + ...)
    db    = sum(delta)                        (over the batch and every position)

``down`` sums each block; ``up`` is its adjoint, the Kronecker product with an n x n block of ones:
<down(x), d> = <x, up(d)>. A height or width not divisible by n drops the trailing rows / columns
(floor, as torch's pooling does); those entries never reach the output, so their gradient is zero.
"""

from __future__ import annotations

import numpy as np


def _check_size(layer, n):
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{layer}: size must be a positive integer, got {n!r}")
    return int(n)


def _check_map(layer, name, x, n):
    if x.ndim != 4:
        raise ValueError(f"{layer}: {name} must have shape (N, C, H, W), got shape {x.shape}")
    if x.shape[2] < n or x.shape[3] < n:
        raise ValueError(
            f"{layer}: {name} maps must be at least {n}x{n} for size={n}, got {x.shape[2]}x{x.shape[3]}"
        )


def _blocks(x, n):
    """View x[..., :Ho*n, :Wo*n] as (..., Ho, n, Wo, n), Ho = H // n, Wo = W // n."""
    Ho, Wo = x.shape[-2] // n, x.shape[-1] // n
    return x[..., : Ho * n, : Wo * n].reshape(*x.shape[:-2], Ho, n, Wo, n)


def _pad_to(g, shape):
    """Zero-extend g over its last two axes to `shape` (the rows / columns down() dropped)."""
    if g.shape == tuple(shape):
        return g
    out = np.zeros(shape, dtype=g.dtype)
    out[..., : g.shape[-2], : g.shape[-1]] = g
    return out


def down(x, n):
    """Sum of each non-overlapping n x n block over the last two axes.

    x: (..., H, W) -> (..., H // n, W // n); the last H % n rows and W % n columns are dropped.
    """
    return _blocks(x, n).sum(axis=(-3, -1))


def up(d, n):
    """kron(d, ones(n, n)) over the last two axes: (..., h, w) -> (..., h*n, w*n), dtype kept.

    The adjoint of down on the part of x that down() reads: <down(x), d> = <x, up(d)>.
    """
    return np.repeat(np.repeat(d, n, axis=-2), n, axis=-1)


class Subsampling:
    """Bouvrie's trainable subsampling: ``u = beta * down(x) + b``, one (beta, b) per map.

    Shapes:
        x:    (N, C, H, W)
        beta: (C,)
        b:    (C,)
        u:    (N, C, H // n, W // n)
    Parameters: 2C.

    cache: (down(x), beta, x.shape).
    Complex-safe: the forward is linear in x and in (beta, b).
    """

    inputs = ("x", "beta", "b")
    complex_safe = True

    def __init__(self, size=2):
        self.size = _check_size("Subsampling", size)

    def forward(self, x, beta, b):
        _check_map("Subsampling", "x", x, self.size)
        C = x.shape[1]
        if beta.shape != (C,):
            raise ValueError(f"Subsampling: beta must have shape ({C},), got {beta.shape}")
        if b.shape != (C,):
            raise ValueError(f"Subsampling: b must have shape ({C},), got {b.shape}")
        down_x = down(x, self.size)
        u = beta[:, None, None] * down_x + b[:, None, None]
        return u, (down_x, beta, x.shape)

    def backward(self, dy, cache):
        down_x, beta, x_shape = cache
        dx = _pad_to(beta[:, None, None] * up(dy, self.size), x_shape)
        dbeta = (dy * down_x).sum(axis=(0, 2, 3))
        db = dy.sum(axis=(0, 2, 3))
        return {"x": dx, "beta": dbeta, "b": db}

    def structure(self, name, shapes):
        """x[n, c, i, j] touches only u[n, c, i // size, j // size]: a window of size rows, stride size
        (gradcheck.structure's declaration; the dropped trailing rows touch nothing).
        beta[c] and b[c] touch u[:, c]."""
        n = self.size
        return {"x": (0, 1, (2, n, 0, n), (3, n, 0, n)), "beta": (1,), "b": (1,)}.get(name)


class MeanPool:
    """Average pooling over n x n blocks: ``y = down(x) / n^2``.

    Shapes: x (N, C, H, W) -> y (N, C, H // n, W // n).
    Backward: ``dx = up(dy) / n^2`` (zero on the dropped rows / columns).
    cache: x.shape. Complex-safe: linear.
    """

    inputs = ("x",)
    complex_safe = True

    def __init__(self, size=2):
        self.size = _check_size("MeanPool", size)

    def forward(self, x):
        _check_map("MeanPool", "x", x, self.size)
        return down(x, self.size) / self.size**2, x.shape

    def backward(self, dy, cache):
        return {"x": _pad_to(up(dy, self.size) / self.size**2, cache)}

    def structure(self, name, shapes):
        """x[n, c, i, j] touches only y[n, c, i // size, j // size]: a window of size rows, stride size
        (gradcheck.structure's declaration; the dropped trailing rows touch nothing)."""
        n = self.size
        return (0, 1, (2, n, 0, n), (3, n, 0, n))


class MaxPool:
    """Max pooling over n x n blocks: ``y = max of each block``.

    Shapes: x (N, C, H, W) -> y (N, C, H // n, W // n).
    Backward: dy goes to the position of the block's maximum, zero elsewhere (and on the dropped
    rows / columns). Ties: the whole of dy goes to the FIRST maximum in row-major order within the
    block (as torch's max_pool2d does). A tie is a kink: the one-sided derivatives differ, so a
    gradient checker reports it as a non-differentiable point, not as a wrong gradient.

    cache: (argmax within each block as a flat index 0..n*n-1, shape (N, C, H//n, W//n); x.shape).
    Not complex-safe: max is not analytic.
    """

    inputs = ("x",)
    complex_safe = False

    def __init__(self, size=2):
        self.size = _check_size("MaxPool", size)

    def forward(self, x):
        _check_map("MaxPool", "x", x, self.size)
        n = self.size
        blocks = _blocks(x, n)  # (N, C, Ho, n, Wo, n)
        N, C, Ho, _, Wo, _ = blocks.shape
        flat = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, n * n)
        arg = flat.argmax(axis=-1)  # first maximum in row-major order
        y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        return y, (arg, x.shape)

    def backward(self, dy, cache):
        arg, x_shape = cache
        n = self.size
        N, C, Ho, Wo = arg.shape
        flat = np.zeros((N, C, Ho, Wo, n * n), dtype=dy.dtype)
        np.put_along_axis(flat, arg[..., None], dy[..., None], axis=-1)
        g = flat.reshape(N, C, Ho, Wo, n, n).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho * n, Wo * n)
        return {"x": _pad_to(g, x_shape)}

    def structure(self, name, shapes):
        """x[n, c, i, j] touches only y[n, c, i // size, j // size]: a window of size rows, stride size
        (gradcheck.structure's declaration; the dropped trailing rows touch nothing)."""
        n = self.size
        return (0, 1, (2, n, 0, n), (3, n, 0, n))
