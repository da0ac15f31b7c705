"""A fully connected layer written as a global convolution (seed 000, seed 001: VGG-16).

Seed 001: on VGG-16 the last conv output is 7x7x512, and the FC layer to 4096 units "can be done by a
global convolution with a 7x7x512x4096 kernel": 4096 filters of 512 maps of 7x7. The next FC layer,
4096 -> 4096, is 4096 filters of 4096 1x1 kernels. Each output unit is one filter's inner product
with the whole input, which is what FullyConnected computes::

    y[n, j, 0, 0] = sum_{c,u,v} x[n, c, u, v] k[j, c, u, v] + b[j]  =  (x_flat W + 1 b)[n, j]

with W = conv_to_fc(k), the kernel flattened in the C, H, W order in which FullyConnected flattens
x (N, C, H, W) to (N, C*H*W). On an input larger than the kernel, the same layer slides and returns
a spatial map of scores (seed 000's FCN heat map): entry (u, v) is the FC layer applied to the
window x[:, :, u:u+kh, v:v+kw].

Forward and backward are Conv2D's (correlation, stride 1, pad 0); nothing is re-implemented here.
"""

from __future__ import annotations

from layers.conv import Conv2D


def fc_to_conv(W, C, kh, kw):
    """FC weights W (C*kh*kw, F) -> global-conv kernel k (F, C, kh, kw); k[j] is column j of W unflattened.

    Row index of W is c*kh*kw + u*kw + v (C, H, W order), as FullyConnected flattens x.
    Returns a view of W when numpy can (no copy of a 0.8 GB VGG kernel). Inverse: conv_to_fc.
    """
    if W.ndim != 2 or W.shape[0] != C * kh * kw:
        raise ValueError(f"fc_to_conv: W must have shape (C*kh*kw, F) = ({C * kh * kw}, F), got {W.shape}")
    return W.T.reshape(W.shape[1], C, kh, kw)


def conv_to_fc(k):
    """Global-conv kernel k (F, C, kh, kw) -> FC weights W (C*kh*kw, F). Inverse of fc_to_conv.

    Returns a view of k when numpy can.
    """
    if k.ndim != 4:
        raise ValueError(f"conv_to_fc: k must have shape (F, C, kh, kw), got {k.shape}")
    return k.reshape(k.shape[0], -1).T


class FullyConnectedAsConv:
    """FullyConnected as a global convolution: Conv2D(mode="correlation", stride=1, pad=0).

    Shapes:
        x: (N, C, H, W)          H >= kh, W >= kw
        k: (F, C, kh, kw)        = fc_to_conv(W, C, kh, kw)
        b: (F,)
        y: (N, F, H - kh + 1, W - kw + 1): (N, F, 1, 1) when x is exactly the kernel size
    Parameters: F*C*kh*kw + F, the same as FullyConnected(C*kh*kw -> F)
    (seed 001: 7*7*512*4096 + 4096 = 102,760,448 + 4096).

    Backward is Conv2D's: dk_j = xcorr2(x, delta_j, 'valid'), dx = sum_j conv2(delta_j, k_j, 'full'),
    db_j = sum(delta_j); at 1x1 output these are seed 002's dW = x^T dy, dx = dy W^T, db = 1^T dy.
    cache: Conv2D's cache.
    Complex-safe, as Conv2D.
    """

    inputs = ("x", "k", "b")
    complex_safe = True

    def __init__(self, impl="fast"):
        self.conv = Conv2D(stride=1, pad=0, mode="correlation", impl=impl)

    def forward(self, x, k, b):
        try:
            return self.conv.forward(x=x, k=k, b=b)
        except ValueError as err:
            raise ValueError(str(err).replace("Conv2D:", "FullyConnectedAsConv:", 1)) from None

    def backward(self, dy, cache):
        return self.conv.backward(dy, cache)

    def structure(self, name, shapes):
        """Conv2D's declaration (gradcheck.structure): x windows of kh x kw, k[j] and b[j] -> y[:, j].

        At 1x1 output this groups like FullyConnected: C*kh*kw groups for x and for k, one for b.
        """
        return self.conv.structure(name, shapes)
