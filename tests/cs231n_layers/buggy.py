"""Planted-bug variants of the pairs in ``layers.py``, in the same calling conventions.

Each variant is a pair ``<bug>_forward``, ``<bug>_backward``; the forward is the correct one (the bug is in
the backward), and the backward's docstring says which returned array is wrong and how. ``PAIRS`` lists
them: bug name -> (forward, backward, names of the wrong gradients), a name being the forward argument the
gradient belongs to ("w" for dw).
"""

import numpy as np

from . import layers as ok

# ---------------------------------------------------------------- affine

affine_dw_reshaped_forward = ok.affine_forward


def affine_dw_reshaped_backward(dout, cache):
    """Wrong: dw. The transpose of dout^T x2 (M, D) taken with reshape(D, M): the right shape, the
    elements in the wrong places (right only when D or M is 1). dx, db right."""
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dw = (dout.T @ x2).reshape(w.shape)
    return (dout @ w.T).reshape(x.shape), dw, dout.sum(axis=0)


affine_dw_last_sample_forward = ok.affine_forward


def affine_dw_last_sample_backward(dout, cache):
    """Wrong: dw. A loop over the batch that assigns instead of accumulating: dw = outer(x2[N-1], dout[N-1]),
    the terms of samples 0..N-2 missing (right only for N = 1). dx, db right."""
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dw = np.zeros_like(w)
    for n in range(x2.shape[0]):
        dw = np.outer(x2[n], dout[n])  # should be +=
    return (dout @ w.T).reshape(x.shape), dw, dout.sum(axis=0)


affine_db_keepdims_forward = ok.affine_forward


def affine_db_keepdims_backward(dout, cache):
    """Wrong: db, its shape. Summed with keepdims, db is (1, M) instead of b's (M,): the values are right
    and broadcast against (M,), so only a shape check sees it (a contract error, not a wrong value).
    dx, dw right."""
    dx, dw, _ = ok.affine_backward(dout, cache)
    return dx, dw, np.sum(dout, axis=0, keepdims=True)


# ---------------------------------------------------------------- relu

relu_mask_ge_forward = ok.relu_forward


def relu_mask_ge_backward(dout, cache):
    """Wrong: dx, at x == 0 exactly. The mask is x >= 0 instead of x > 0, so an exact zero passes dout
    on (the right-hand derivative) where the convention (and torch) gives 0. Everywhere else right."""
    x = cache
    return dout * (x >= 0)


# ---------------------------------------------------------------- convolution

conv_no_flip_forward = ok.conv_forward_naive


def conv_no_flip_backward(dout, cache):
    """Wrong: dx. dx is the full correlation of the (stride-dilated) dout with rot180(w); this one
    correlates with w as stored (the kernel flip forgotten), so each kernel acts mirrored. dw, db right."""
    x, w, _, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, dw, db = ok.conv_backward_naive(dout, cache)
    Hv, Wv = H + 2 * p - HH + 1, W + 2 * p - WW + 1  # the stride-1 'valid' grid
    dil = np.zeros((N, F, Hv, Wv), dtype=dout.dtype)
    dil[:, :, ::s, ::s] = dout
    full = np.pad(dil, ((0, 0), (0, 0), (HH - 1, HH - 1), (WW - 1, WW - 1)))
    kernel = w  # should be w[:, :, ::-1, ::-1]
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=np.result_type(dout, w))
    for i in range(H + 2 * p):
        for j in range(W + 2 * p):
            dxp[:, :, i, j] = np.einsum("nfab,fcab->nc", full[:, :, i:i + HH, j:j + WW], kernel)
    return dxp[:, :, p:p + H, p:p + W], dw, db


conv_pad_crop_forward = ok.conv_forward_naive


def conv_pad_crop_backward(dout, cache):
    """Wrong: dx, when pad > 0. The gradient on the padded grid is cropped at its top-left corner,
    [:H, :W], instead of [p:p+H, p:p+W]: dx shifted by p rows and columns. dw, db right."""
    x, w, _, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    _, dw, db = ok.conv_backward_naive(dout, cache)
    dxp = np.zeros((x.shape[0], x.shape[1], H + 2 * p, W + 2 * p), dtype=np.result_type(dout, w))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += np.einsum("nf,fcab->ncab", dout[:, :, i, j], w)
    return dxp[:, :, :H, :W], dw, db  # should be [p:p + H, p:p + W]


# ---------------------------------------------------------------- max pooling

max_pool_ties_all_forward = ok.max_pool_forward_naive


def max_pool_ties_all_backward(dout, cache):
    """Wrong: dx, in windows with tied maxima. Every element equal to the window's maximum receives the
    full dout, so a window with k tied maxima passes on k dout: along a direction that moves the tied
    elements together (the max is then differentiable, with derivative dout) the gradient says k dout.
    Right in windows with one maximum."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += mask * dout[:, :, i, j][:, :, None, None]
    return dx


# ---------------------------------------------------------------- batch normalisation

batchnorm_no_mean_term_forward = ok.batchnorm_forward


def batchnorm_no_mean_term_backward(dout, cache):
    """Wrong: dx. The term that comes through the batch mean, -sum_n dxhat, is missing:
    dx = inv_std / N (N dxhat - xhat sum_n dxhat xhat) (right only where sum_n dout gamma = 0).
    dgamma, dbeta right."""
    _, xhat, gamma, inv_std = cache
    _, dgamma, dbeta = ok.batchnorm_backward(dout, cache)
    N = dout.shape[0]
    dxhat = dout * gamma
    dx = inv_std / N * (N * dxhat - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- recurrent steps

rnn_dWh_missing_forward = ok.rnn_step_forward


def rnn_dWh_missing_backward(dnext_h, cache):
    """Wrong: dWh. Initialised to zeros and never accumulated (the prev_h^T da product forgotten).
    dx, dprev_h, dWx, db right."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h * next_h)
    dWh = np.zeros_like(Wh)
    return da @ Wx.T, da @ Wh.T, x.T @ da, dWh, da.sum(axis=0)


lstm_forget_gate_forward = ok.lstm_step_forward


def lstm_forget_gate_backward(dnext_h, dnext_c, cache):
    """Wrong: dWx[:, H:2H], dWh[:, H:2H], db[H:2H], and dx, dprev_h through them. The forget-gate block
    of da lacks the sigmoid's derivative f (1 - f) (da_f = dc prev_c instead of dc prev_c f (1 - f)); the
    other gate columns and dprev_c = dc f are right."""
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.hstack([
        dc * g * i * (1 - i),
        dc * prev_c,  # should be dc * prev_c * f * (1 - f)
        dnext_h * tanh_c * o * (1 - o),
        dc * i * (1 - g * g),
    ])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


PAIRS = {
    "affine_dw_reshaped": (affine_dw_reshaped_forward, affine_dw_reshaped_backward, ("w",)),
    "affine_dw_last_sample": (affine_dw_last_sample_forward, affine_dw_last_sample_backward, ("w",)),
    "affine_db_keepdims": (affine_db_keepdims_forward, affine_db_keepdims_backward, ("b",)),
    "relu_mask_ge": (relu_mask_ge_forward, relu_mask_ge_backward, ("x",)),
    "conv_no_flip": (conv_no_flip_forward, conv_no_flip_backward, ("x",)),
    "conv_pad_crop": (conv_pad_crop_forward, conv_pad_crop_backward, ("x",)),
    "max_pool_ties_all": (max_pool_ties_all_forward, max_pool_ties_all_backward, ("x",)),
    "batchnorm_no_mean_term": (batchnorm_no_mean_term_forward, batchnorm_no_mean_term_backward, ("x",)),
    "rnn_dWh_missing": (rnn_dWh_missing_forward, rnn_dWh_missing_backward, ("Wh",)),
    "lstm_forget_gate": (lstm_forget_gate_forward, lstm_forget_gate_backward,
                         ("x", "prev_h", "Wx", "Wh", "b")),
}
