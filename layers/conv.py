"""The convolution layer of Bouvrie's "Notes on Convolutional Neural Networks" (seed 004), with the
stride and zero padding of seed 003.

Forward, for output map j of sample n (Bouvrie's x_j^l = sum_{i in M_j} x_i^{l-1} * k_ij + b_j, before
the non-linearity, which is a separate layer here)::

    y_j = sum_{i in M_j} conv2(pad(x_i), k_ij, 'valid')[::s, ::s] + b_j        (mode="convolution")
    y_j = sum_{i in M_j} xcorr2(pad(x_i), k_ij, 'valid')[::s, ::s] + b_j       (mode="correlation")

conv2 is MATLAB's conv2 / scipy.signal.convolve2d (the kernel is rotated 180 degrees before it slides),
xcorr2 slides the kernel as stored (scipy.signal.correlate2d without its complex conjugation): what
torch and Caffe call convolution. So conv2(x, k) = xcorr2(x, rot180(k)). M_j is the connection table
(all inputs when it is None).

Output size (seed 003: (W - F + 2P) / S + 1, the remainder dropped as torch and Caffe do)::

    Ho = floor((H + 2 ph - kh) / sh) + 1,   Wo = floor((W + 2 pw - kw) / sw) + 1

Backward (Bouvrie, section 3.3, generalised): delta_j = dE/dy_j is first dilated, ``dil(delta_j)``: put
back on the stride-1 'valid' grid of size (H + 2 ph - kh + 1, W + 2 pw - kw + 1), every s-th position,
zeros in between and in the floor remainder. Then, summing over the batch::

    convolution:  dk_ij = rot180(conv2(pad(x_i), rot180(dil(delta_j)), 'valid'))
                  dx_i  = crop(sum_{j: i in M_j} conv2(dil(delta_j), rot180(k_ij), 'full'))
    correlation:  dk_ij = xcorr2(pad(x_i), dil(delta_j), 'valid')
                  dx_i  = crop(sum_{j: i in M_j} conv2(dil(delta_j), k_ij, 'full'))
    both:         db_j  = sum_{u,v} (delta_j)_{uv}

crop() removes the ph, pw rows and columns the padding added. dk_ij = 0 when i is not in M_j.

Two implementations, which the tests hold equal: impl="literal" is the formulas above, one
scipy.signal call per (n, j, i); impl="fast" (default) is im2col: the (kh, kw) windows of the padded
input copied once into a (C kh kw, N Ho Wo) matrix, one matrix product for y and one for dk, and dx put
back one kernel row at a time: K[:, :, p, :]^T delta added onto kw strided slices (col2im without a
temporary of im2col's size: each fresh 10 MB temporary costs its page faults).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

MODES = ("correlation", "convolution")
IMPLS = ("fast", "literal")


def rot180(a):
    """``a`` rotated by 180 degrees in its last two axes (Bouvrie's rot180: flip both spatial axes)."""
    return a[..., ::-1, ::-1]


def conv2(a, w, mode):
    """MATLAB's conv2(a, w, mode) on 2-D arrays: w is rotated 180 degrees, then slid over a."""
    return signal.convolve2d(a, w, mode=mode)


def xcorr2(a, w, mode):
    """Cross-correlation: w slid over a as stored, ``xcorr2(a, w) = conv2(a, rot180(w))``.

    Not scipy.signal.correlate2d, which conjugates w: that is not analytic, so complex-step
    differencing through it would be wrong.
    """
    return signal.convolve2d(a, rot180(w), mode=mode)


def output_size(n, k, stride=1, pad=0):
    """Output length along one axis: floor((n + 2 pad - k) / stride) + 1 (seed 003's (W - F + 2P)/S + 1).

    A stride that does not divide n + 2 pad - k drops the remainder. ValueError when the kernel is
    larger than the padded input.
    """
    if n + 2 * pad < k:
        raise ValueError(f"output_size: kernel size {k} is larger than the padded input {n} + 2*{pad}")
    return (n + 2 * pad - k) // stride + 1


def _pair(value, name, minimum):
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < minimum for v in pair):
        raise ValueError(f"Conv2D: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Conv2D:
    """Bouvrie's convolution layer with stride, zero padding and a connection table.

    Shapes:
        x: (N, C, H, W)          C input maps x_i
        k: (F, C, kh, kw)        k[j, i] is Bouvrie's kernel k_ij from input map i to output map j
        b: (F,)                  one bias b_j per output map
        y: (N, F, Ho, Wo)        Ho = floor((H + 2 ph - kh) / sh) + 1, likewise Wo
    Parameters: F*C*kh*kw + F (seed 003: ten 5x5 filters on 32x32x3 have 5*5*3*10 + 10 = 760).

    Arguments:
        stride: s, or (sh, sw).
        pad: zeros added on each side, p or (ph, pw).
        mode: "correlation" (torch, Caffe: the kernel slides as stored) or "convolution" (Bouvrie,
            MATLAB conv2 'valid': the kernel is rotated 180 degrees first). The two differ only by
            rot180(k); see the module docstring for both forward and backward formulas.
        connections: None (every input map feeds every output map) or a boolean (F, C) array, Bouvrie's
            M_j: connections[j, i] says input map i feeds output map j. Kernel slices k[j, i] of
            unconnected pairs do not act in forward and get gradient 0.
        impl: "fast" (im2col + one matrix product per pass) or "literal" (scipy.signal per map pair).

    cache: (x.shape, xp, K, cols, k dtype) where xp is the zero-padded x, K the kernel as it slides in
    correlation form (rot180(k) in convolution mode) with unconnected slices zeroed, and cols the
    (C kh kw, N Ho Wo) im2col matrix (None for impl="literal").
    Complex-safe: the forward is linear in x and in k, so complex-step differentiation applies.
    """

    inputs = ("x", "k", "b")
    complex_safe = True

    def __init__(self, stride=1, pad=0, mode="correlation", connections=None, impl="fast"):
        if mode not in MODES:
            raise ValueError(f"Conv2D: mode must be one of {MODES}, got {mode!r}")
        if impl not in IMPLS:
            raise ValueError(f"Conv2D: impl must be one of {IMPLS}, got {impl!r}")
        self.stride = _pair(stride, "stride", 1)
        self.pad = _pair(pad, "pad", 0)
        self.mode = mode
        self.impl = impl
        if connections is not None:
            connections = np.array(connections)
            if connections.dtype != bool or connections.ndim != 2:
                raise ValueError(
                    f"Conv2D: connections must be a boolean (F, C) array, got {connections.dtype} "
                    f"with shape {connections.shape}"
                )
        self.connections = connections

    # -- shapes ---------------------------------------------------------------------------------

    def _check(self, x, k, b):
        if x.ndim != 4:
            raise ValueError(f"Conv2D: x must have shape (N, C, H, W), got {x.shape}")
        if k.ndim != 4:
            raise ValueError(f"Conv2D: k must have shape (F, C, kh, kw), got {k.shape}")
        F, C, kh, kw = k.shape
        if x.shape[1] != C:
            raise ValueError(f"Conv2D: x has {x.shape[1]} channels (shape {x.shape}) but k expects {C} "
                             f"(shape {k.shape})")
        if b.shape != (F,):
            raise ValueError(f"Conv2D: b must have shape ({F},), got {b.shape}")
        if self.connections is not None and self.connections.shape != (F, C):
            raise ValueError(f"Conv2D: connections must have shape (F, C) = ({F}, {C}), "
                             f"got {self.connections.shape}")
        (ph, pw), H, W = self.pad, x.shape[2], x.shape[3]
        if H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"Conv2D: kernel {kh}x{kw} is larger than the padded input "
                             f"{H + 2 * ph}x{W + 2 * pw} (x {x.shape}, pad {self.pad})")

    def output_shape(self, x_shape, k_shape):
        """(N, F, Ho, Wo) for x of shape x_shape and k of shape k_shape."""
        (sh, sw), (ph, pw) = self.stride, self.pad
        return (x_shape[0], k_shape[0], output_size(x_shape[2], k_shape[2], sh, ph),
                output_size(x_shape[3], k_shape[3], sw, pw))

    def _sliding_kernel(self, k):
        """The kernel as it slides over x (correlation form), unconnected slices zeroed."""
        K = rot180(k) if self.mode == "convolution" else k
        if self.connections is not None:
            K = K * self.connections[:, :, None, None]
        return K

    # -- forward / backward ----------------------------------------------------------------------

    def forward(self, x, k, b):
        self._check(x, k, b)
        (ph, pw) = self.pad
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        K = self._sliding_kernel(k)
        if self.impl == "fast":
            y, cols = self._forward_fast(xp, K, b)
        else:
            y, cols = self._forward_literal(xp, k, b), None
        return y, (x.shape, xp, K, cols, k.dtype)

    def backward(self, dy, cache):
        x_shape, xp, K, cols, k_dtype = cache
        if self.impl == "fast":
            dxp, dK = self._backward_fast(dy, xp, K, cols)
            dk = rot180(dK) if self.mode == "convolution" else dK
            if self.connections is not None:
                dk = dk * self.connections[:, :, None, None]
        else:
            dxp, dk = self._backward_literal(dy, xp, K)
        (ph, pw), (H, W) = self.pad, x_shape[2:]
        dx = dxp[:, :, ph:ph + H, pw:pw + W]
        db = dy.sum(axis=(0, 2, 3))
        return {"x": np.ascontiguousarray(dx), "k": np.ascontiguousarray(dk), "b": db}

    def structure(self, name, shapes):
        """Which output slice each input coordinate touches (gradcheck.structure's declaration).

        x[n, c, i, j] -> y[n, :, o, q] with o sh - ph <= i <= o sh - ph + kh - 1 (likewise q, j);
        k[f] -> y[:, f]; b[f] -> y[:, f]. A connection table only shrinks these footprints.
        """
        (sh, sw), (ph, pw) = self.stride, self.pad
        _, _, kh, kw = shapes["k"]
        x = (0, None, (2, sh, -ph, kh), (3, sw, -pw, kw))
        return {"x": x, "k": (1, None, None, None), "b": (1,)}.get(name)

    # -- impl="fast": im2col / col2im -------------------------------------------------------------

    def _forward_fast(self, xp, K, b):
        N, C = xp.shape[:2]
        F, _, kh, kw = K.shape
        sh, sw = self.stride
        # windows[n, c, u, v, p, q] = xp[n, c, u*sh + p, v*sw + q]
        windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        Ho, Wo = windows.shape[2:4]
        # im2col: row (c, p, q), column (n, u, v); the one copy of the input the fast path makes
        cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * Ho * Wo)
        y = K.reshape(F, -1) @ cols                              # (F, N Ho Wo)
        if np.result_type(y, b) == y.dtype:
            y += b.reshape(F, 1)
        else:
            y = y + b.reshape(F, 1)                              # complex b on a real product
        y = np.ascontiguousarray(y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3))
        return y, cols

    def _backward_fast(self, dy, xp, K, cols):
        N, C, Hp, Wp = xp.shape
        F, _, kh, kw = K.shape
        Ho, Wo = dy.shape[2:]
        sh, sw = self.stride
        delta = dy.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo)
        dK = (delta @ cols.T).reshape(F, C, kh, kw)              # sum over n, u, v of delta * window
        # col2im one kernel row p at a time (no (C kh kw, N Ho Wo) temporary: a fresh 10 MB array costs
        # its page faults): taps (p, q) send delta back to xp[..., p::sh, q::sw] through K[:, :, p, q]^T
        dtype = np.result_type(delta, K)
        dxp = np.zeros((C, N, Hp, Wp), dtype=dtype)
        rows = np.empty((C, kw, N * Ho * Wo), dtype=dtype)
        for p in range(kh):
            np.matmul(K[:, :, p, :].reshape(F, C * kw).T, delta, out=rows.reshape(C * kw, -1))
            taps = rows.reshape(C, kw, N, Ho, Wo)
            for q in range(kw):
                dxp[:, :, p:p + sh * Ho:sh, q:q + sw * Wo:sw] += taps[:, q]
        return dxp.transpose(1, 0, 2, 3), dK

    # -- impl="literal": Bouvrie's formulas, one scipy.signal call per map pair --------------------

    def _pairs(self, F, C):
        """(j, i) for every i in M_j."""
        return [(j, i) for j in range(F) for i in range(C)
                if self.connections is None or self.connections[j, i]]

    def _forward_literal(self, xp, k, b):
        N, C = xp.shape[:2]
        F, _, kh, kw = k.shape
        sh, sw = self.stride
        slide = conv2 if self.mode == "convolution" else xcorr2
        Ho1, Wo1 = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1   # stride-1 'valid' size
        dtype = np.result_type(xp, k, b)
        y = np.zeros((N, F, Ho1, Wo1), dtype=dtype)
        for n in range(N):
            for j, i in self._pairs(F, C):
                y[n, j] += slide(xp[n, i], k[j, i], "valid")
        y = y[:, :, ::sh, ::sw] + b.reshape(1, F, 1, 1)
        return np.ascontiguousarray(y)

    def _dilate(self, dy, shape):
        """dil(delta): delta on the stride-1 'valid' grid, zeros between strides and in the remainder."""
        sh, sw = self.stride
        d = np.zeros(dy.shape[:2] + shape, dtype=dy.dtype)
        d[:, :, ::sh, ::sw] = dy
        return d

    def _backward_literal(self, dy, xp, K):
        N, C, Hp, Wp = xp.shape
        F, _, kh, kw = K.shape
        k = rot180(K) if self.mode == "convolution" else K   # the layer's own k (masked)
        delta = self._dilate(dy, (Hp - kh + 1, Wp - kw + 1))
        dxp = np.zeros(xp.shape, dtype=np.result_type(dy, k))
        dk = np.zeros(k.shape, dtype=np.result_type(dy, xp))
        for n in range(N):
            for j, i in self._pairs(F, C):
                if self.mode == "convolution":
                    dk[j, i] += rot180(conv2(xp[n, i], rot180(delta[n, j]), "valid"))
                    dxp[n, i] += conv2(delta[n, j], rot180(k[j, i]), "full")
                else:
                    dk[j, i] += xcorr2(xp[n, i], delta[n, j], "valid")
                    dxp[n, i] += conv2(delta[n, j], k[j, i], "full")
        return dxp, dk
