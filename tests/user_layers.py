"""A user's own layers, as a user writes them: plain NumPy, the layer contract, and no `structure`.

The checker infers their structure from their forwards (gradcheck.inference); tests/test_inference.py and
benchmarks/test_inference.py check that it groups them and that the verdicts are those of one coordinate
per forward. None of them imports gradcheck or layers.

    Im2colConv     x (N, C, H, W), k (F, C, kh, kw), b (F,): cs231n-style im2col correlation, stride, pad
    WhereMaxPool   x (N, C, H, W) -> 2x2 max, written with np.where (hides a NaN in its first argument)
    BatchNorm      x (N, C, H, W), gamma (C,), beta (C,): per channel over the batch and the map
    Swish          x (any) -> x * sigmoid(x), element-wise
    Dense          x (N, D), W (D, F), b (F,): y = x W + b
    SparseMask     x (N, D), W (D, F): y = x (M * W), M a fixed random mask inside a band (irregular)
    GlobalScale    x (N, C, H, W): 2x2 mean pooling scaled by 1 + tanh(x[g]) / 2: one coordinate, g,
                   touches the whole output, every other one its own window
"""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


class Im2colConv:
    """Cross-correlation by im2col (cs231n's index arrays), y[n, f] = sum_c xcorr(pad(x[n, c]), k[f, c])
    + b[f] taken every `stride` positions. Not declared complex-safe (users seldom say so): central
    differences."""

    inputs = ("x", "k", "b")

    def __init__(self, stride=1, pad=0):
        self.stride, self.pad = int(stride), int(pad)

    def _indices(self, C, H, W, kh, kw):
        s, p = self.stride, self.pad
        Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
        i0 = np.tile(np.repeat(np.arange(kh), kw), C)
        j0 = np.tile(np.arange(kw), kh * C)
        i1 = s * np.repeat(np.arange(Ho), Wo)
        j1 = s * np.tile(np.arange(Wo), Ho)
        rows = i0[:, None] + i1[None, :]  # (C kh kw, Ho Wo)
        cols = j0[:, None] + j1[None, :]
        chans = np.repeat(np.arange(C), kh * kw)[:, None]
        return chans, rows, cols, Ho, Wo

    def forward(self, x, k, b):
        N, C, H, W = x.shape
        F, _, kh, kw = k.shape
        p = self.pad
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        chans, rows, cols, Ho, Wo = self._indices(C, H, W, kh, kw)
        X = xp[:, chans, rows, cols]  # (N, C kh kw, Ho Wo)
        y = k.reshape(F, -1) @ X + b[None, :, None]  # (F, C kh kw) @ (N, C kh kw, Ho Wo)
        return y.reshape(N, F, Ho, Wo), (x.shape, X, k)

    def backward(self, dy, cache):
        x_shape, X, k = cache
        N, C, H, W = x_shape
        F, _, kh, kw = k.shape
        p = self.pad
        d = dy.reshape(N, F, -1)
        dk = np.tensordot(d, X, axes=([0, 2], [0, 2])).reshape(k.shape)
        db = d.sum(axis=(0, 2))
        dX = k.reshape(F, -1).T @ d  # (N, C kh kw, Ho Wo)
        chans, rows, cols, _, _ = self._indices(C, H, W, kh, kw)
        dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
        np.add.at(dxp, (slice(None), chans, rows, cols), dX)
        return {"x": dxp[:, :, p:p + H, p:p + W], "k": dk, "b": db}


class WhereMaxPool:
    """2x2 max pooling (stride 2, H and W even) as a chain of np.where: a NaN in the first argument of a
    comparison is dropped, not propagated, so NaN probes alone would miss part of a window."""

    inputs = ("x",)

    @staticmethod
    def _corners(x):
        return x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]

    def forward(self, x):
        corners = self._corners(x)
        m, arg = corners[0], np.zeros(corners[0].shape, dtype=np.int64)
        for t, c in enumerate(corners[1:], 1):
            take = c > m
            m, arg = np.where(take, c, m), np.where(take, t, arg)
        return m, (x.shape, arg)

    def backward(self, dy, cache):
        shape, arg = cache
        dx = np.zeros(shape, dtype=dy.dtype)
        for t, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            dx[:, :, a::2, b::2] = np.where(arg == t, dy, 0)
        return {"x": dx}


class BatchNorm:
    """Batch normalisation per channel c over (n, h, w): y = gamma (x - mean) / sqrt(var + eps) + beta.
    Every x[n, c, h, w] reaches every output of channel c (the mean and variance couple them)."""

    inputs = ("x", "gamma", "beta")
    complex_safe = True

    def __init__(self, eps=1e-5):
        self.eps = eps

    def forward(self, x, gamma, beta):
        mu = x.mean(axis=(0, 2, 3), keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=(0, 2, 3), keepdims=True)
        inv = 1 / np.sqrt(var + self.eps)
        xhat = xc * inv
        y = gamma[None, :, None, None] * xhat + beta[None, :, None, None]
        return y, (xhat, inv, gamma)

    def backward(self, dy, cache):
        xhat, inv, gamma = cache
        m = dy.shape[0] * dy.shape[2] * dy.shape[3]
        dgamma = (dy * xhat).sum(axis=(0, 2, 3))
        dbeta = dy.sum(axis=(0, 2, 3))
        dxhat = dy * gamma[None, :, None, None]
        dx = inv / m * (m * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True))
        return {"x": dx, "gamma": dgamma, "beta": dbeta}


class Swish:
    """y = x * sigmoid(x), element-wise, any shape."""

    inputs = ("x",)
    complex_safe = True

    def forward(self, x):
        s = _sigmoid(x)
        return x * s, (x, s)

    def backward(self, dy, cache):
        x, s = cache
        return {"x": dy * (s + x * s * (1 - s))}


class Dense:
    """y = x W + b: x (N, D), W (D, F), b (F,)."""

    inputs = ("x", "W", "b")
    complex_safe = True

    def forward(self, x, W, b):
        return x @ W + b, (x, W)

    def backward(self, dy, cache):
        x, W = cache
        return {"x": dy @ W.T, "W": x.T @ dy, "b": dy.sum(axis=0)}


class SparseMask:
    """y = x (M * W): M (D, F) a fixed random mask kept only within |d - f| <= band, so x[n, d] reaches
    an irregular subset of y[n, d - band .. d + band] (D == F gives a ragged band)."""

    inputs = ("x", "W")
    complex_safe = True

    def __init__(self, D, F, band=3, density=0.5, seed=0):
        rng = np.random.default_rng(seed)
        d, f = np.arange(D)[:, None], np.arange(F)[None, :]
        self.M = ((np.abs(d - f) <= band) & (rng.random((D, F)) < density)).astype(np.float64)

    def forward(self, x, W):
        MW = self.M * W
        return x @ MW, (x, MW)

    def backward(self, dy, cache):
        x, MW = cache
        return {"x": dy @ MW.T, "W": self.M * (x.T @ dy)}


class GlobalScale:
    """y = meanpool2x2(x) * (1 + tanh(x[g]) / 2), H and W even; g = the middle coordinate by default.
    x[g] touches every output, every other x[n, c, i, j] only y[n, c, i // 2, j // 2]."""

    inputs = ("x",)
    complex_safe = True

    def __init__(self, g=None):
        self.g = None if g is None else tuple(g)

    def _g(self, shape):
        return self.g if self.g is not None else tuple(n // 2 for n in shape)

    def forward(self, x):
        N, C, H, W = x.shape
        pooled = x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5))
        t = np.tanh(x[self._g(x.shape)])
        return pooled * (1 + t / 2), (x.shape, pooled, t)

    def backward(self, dy, cache):
        shape, pooled, t = cache
        scale = 1 + t / 2
        dx = np.repeat(np.repeat(dy * scale / 4, 2, axis=2), 2, axis=3)
        dx[self._g(shape)] += np.sum(dy * pooled) * (1 - t * t) / 2
        return {"x": dx}
