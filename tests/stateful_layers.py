"""Stateful layer objects in the style of popular NumPy libraries: parameters held by the object, forward
keeping what backward needs on ``self``, backward storing the parameter gradients on ``self`` and returning
the input gradient.

    layer = Dense(W, b)
    y = layer.forward(X)           # keeps self.X
    dX = layer.backward(dLdy)      # sets self.dW, self.db

This is not the layer contract of ``layers/`` (stateless, ``forward(**arrays) -> (y, cache)``,
``backward(dy, cache) -> {name: gradient}``); it is the other convention a gradient check meets in the
field. backward uses the state of the last forward, so forward, backward must alternate.
Plain NumPy, nothing from gradcheck.

    Dense:      y = X W + b                           dX = dLdy W^T, dW = X^T dLdy, db = sum_n dLdy
    Conv2D:     y[n, f] = sum_c xcorr(pad(X)[n, c], W[f, c])[::s, ::s] + b[f]   (torch's convolution)
                dW[f, c, i, j] = sum_{n, p, q} dLdy[n, f, p, q] pad(X)[n, c, p s + i, q s + j]
                dX = crop(sum_{i, j} W[:, :, i, j]^T dLdy added at offset (i, j), every s-th position)
                db = sum_{n, p, q} dLdy
    BatchNorm:  training: xhat = (X - mu) / sqrt(var + eps) over the batch (and H, W for 4-D X),
                y = gamma xhat + beta, running stats updated; dX = inv_std / m (m dxhat - sum dxhat -
                xhat sum(dxhat xhat)), dxhat = dLdy gamma, m the number of values per feature.
                inference: the running stats take the place of mu and var, dX = dLdy gamma inv_std.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Dense:
    """A fully connected layer: X (N, D) -> y (N, M) with W (D, M), b (M,) held by the object.

    State: X (from the last forward); dW (D, M), db (M,) (from the last backward).
    """

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.X = self.dW = self.db = None

    def forward(self, X):
        self.X = X
        return X @ self.W + self.b

    def backward(self, dLdy):
        self.dW = self.X.T @ dLdy
        self.db = dLdy.sum(axis=0)
        return dLdy @ self.W.T


class Conv2D:
    """2-D cross-correlation with zero padding and stride: X (N, C, H, W) -> y (N, F, Ho, Wo).

    W (F, C, kh, kw), b (F,); Ho = (H + 2 pad - kh) // stride + 1, likewise Wo (the remainder dropped).
    State: Xp, X padded (from the last forward) and X's shape; dW, db (from the last backward).
    """

    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.Xp = self.X_shape = self.dW = self.db = None

    def _windows(self, Xp):
        """(N, C, Ho, Wo, kh, kw) view of the kh x kw windows every `stride` positions."""
        kh, kw = self.W.shape[2:]
        return sliding_window_view(Xp, (kh, kw), axis=(2, 3))[:, :, ::self.stride, ::self.stride]

    def forward(self, X):
        p = self.pad
        self.X_shape = X.shape
        self.Xp = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))
        y = np.einsum("nchwij,fcij->nfhw", self._windows(self.Xp), self.W, optimize=True)
        return y + self.b[None, :, None, None]

    def backward(self, dLdy):
        s, p = self.stride, self.pad
        kh, kw = self.W.shape[2:]
        Ho, Wo = dLdy.shape[2:]
        self.dW = np.einsum("nchwij,nfhw->fcij", self._windows(self.Xp), dLdy, optimize=True)
        self.db = dLdy.sum(axis=(0, 2, 3))
        dXp = np.zeros(self.Xp.shape, dtype=np.result_type(dLdy, self.W))
        for i in range(kh):
            for j in range(kw):
                dXp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += np.einsum(
                    "nfhw,fc->nchw", dLdy, self.W[:, :, i, j])
        H, W = self.X_shape[2:]
        return dXp[:, :, p:p + H, p:p + W]


class BatchNorm:
    """Batch normalisation per feature: X (N, D), or (N, C, H, W) normalised per channel over N, H, W.

    gamma, beta (D,) or (C,). ``training`` (default True) selects the batch statistics, which also update
    running_mean and running_var (initially 0 and 1) as
    ``running = momentum running + (1 - momentum) batch`` with the biased batch variance; with
    ``training = False`` the running statistics are used and left alone.
    State: running_mean, running_var; xhat, inv_std, training mode of the last forward; dgamma, dbeta.
    """

    def __init__(self, gamma, beta, momentum=0.9, eps=1e-5):
        self.gamma, self.beta, self.momentum, self.eps = gamma, beta, momentum, eps
        self.running_mean = np.zeros_like(gamma)
        self.running_var = np.ones_like(gamma)
        self.training = True
        self.xhat = self.inv_std = self.dgamma = self.dbeta = None
        self._trained = None

    @staticmethod
    def _axes(X):
        return (0,) + tuple(range(2, X.ndim))

    def _bcast(self, v, X):
        return v.reshape((1, -1) + (1,) * (X.ndim - 2))

    def forward(self, X):
        axes = self._axes(X)
        if self.training:
            mu, var = X.mean(axis=axes), X.var(axis=axes)
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mu
            self.running_var = m * self.running_var + (1 - m) * var
        else:
            mu, var = self.running_mean, self.running_var
        self._trained = self.training
        self.inv_std = self._bcast(1 / np.sqrt(var + self.eps), X)
        self.xhat = (X - self._bcast(mu, X)) * self.inv_std
        return self._bcast(self.gamma, self.xhat) * self.xhat + self._bcast(self.beta, X)

    def backward(self, dLdy):
        axes = self._axes(dLdy)
        xhat = self.xhat
        self.dgamma = (dLdy * xhat).sum(axis=axes)
        self.dbeta = dLdy.sum(axis=axes)
        dxhat = dLdy * self._bcast(self.gamma, dLdy)
        if not self._trained:
            return dxhat * self.inv_std
        m = dLdy.size // dLdy.shape[1]
        return self.inv_std / m * (m * dxhat - dxhat.sum(axis=axes, keepdims=True)
                                   - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))
