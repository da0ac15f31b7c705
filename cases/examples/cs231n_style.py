"""Function pairs in cs231n's conventions, as a course assignment's layers.py has them: plain NumPy,
nothing from gradcheck. Each ``*_forward`` returns its output(s) and a cache, each ``*_backward`` takes
the upstream gradient(s) and the cache and returns the gradients in the order of forward's arrays.

    affine:      out = x2 w + b (x2: x reshaped to (N, D)); dx, dw = x2^T dout, db = sum_n dout
    conv naive:  cross-correlation with zero padding and stride, as loops (conv_param: stride, pad)
    lstm step:   next_c = f prev_c + i g, next_h = o tanh(next_c): two outputs before the cache
    softmax:     loss = -mean_n log softmax(x)[n, y_n], dx = (softmax(x) - onehot(y)) / N
"""

import numpy as np


def affine_forward(x, w, b):
    """x (N, d1, ..., dk), w (D, M), b (M,) -> out (N, M)."""
    return x.reshape(x.shape[0], -1) @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, Ho, Wo), Ho = 1 + (H + 2p - HH) / s."""
    s, p = conv_param["stride"], conv_param["pad"]
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", window, w) + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache):
    """dx: each dout[n, f, i, j] w[f] spread back onto its window; dw: dout times the windows."""
    x, w, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            d = dout[:, :, i, j]
            dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += np.einsum("nf,fchw->nchw", d, w)
            dw += np.einsum("nf,nchw->fchw", d, xp[:, :, i * s:i * s + HH, j * s:j * s + WW])
    return dxp[:, :, p:p + H, p:p + W], dw, dout.sum(axis=(0, 2, 3))


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """a = x Wx + prev_h Wh + b, gates i, f, o, g (H columns each) -> next_h, next_c (N, H), cache."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, np.tanh(next_c))


def lstm_step_backward(dnext_h, dnext_c, cache):
    """-> dx, dprev_h, dprev_c, dWx, dWh, db; next_c reaches the loss directly and through next_h."""
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc = cache
    dc = dnext_c + dnext_h * o * (1 - tc * tc)
    da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o),
                    dc * i * (1 - g * g)])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def softmax_loss(x, y):
    """Scores x (N, K), integer labels y (N,) -> (loss, dx): the gradient comes with the value."""
    shifted = x - x.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    N = x.shape[0]
    loss = -np.log(p[np.arange(N), y]).mean()
    p[np.arange(N), y] -= 1
    return loss, p / N
