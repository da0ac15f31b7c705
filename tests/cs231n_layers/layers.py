"""Forward/backward function pairs in cs231n's calling conventions, written from the math.

A plain NumPy module (nothing from gradcheck): each ``*_forward`` returns its output and a cache, each
``*_backward`` takes the upstream gradient ``dout`` (same shape as the output) and that cache, and returns
the gradients as a tuple in the order of the forward's differentiable arguments. Losses return
``(loss, dx)`` in one call. Arrays are batch-first, images ``(N, C, H, W)``; ``*_param`` dicts carry the
hyper-parameters. All correct; ``buggy.py`` holds planted-bug variants.

    affine:     out = x2 w + b, x2 = x reshaped to (N, D)
                dx = (dout w^T).reshape(x.shape), dw = x2^T dout, db = sum_n dout
    relu:       out = max(x, 0), dx = dout [x > 0]          (0 at x = 0, as torch)
    conv:       out[n, f] = sum_c xcorr(pad(x)[n, c], w[f, c])[::s, ::s] + b[f]
                dw[f, c, i, j] = sum_{n, p, q} dout[n, f, p, q] pad(x)[n, c, p s + i, q s + j]
                dx = crop(sum_f dout[n, f, p, q] w[f] scattered at (p s, q s) onto pad(x)'s grid)
                db = sum_{n, p, q} dout
    max pool:   out = max over each window; the window's dout goes to its first maximum (row-major)
    batchnorm:  xhat = (x - mu) / sqrt(var + eps), out = gamma xhat + beta   (biased var, over the batch)
                dx = (1/N) / sqrt(var + eps) (N dxhat - sum_n dxhat - xhat sum_n dxhat xhat),
                dxhat = dout gamma
    rnn step:   next_h = tanh(x Wx + prev_h Wh + b); da = dnext_h (1 - next_h^2)
    lstm step:  a = x Wx + prev_h Wh + b, gates i, f, o, g; next_c = f prev_c + i g, next_h = o tanh(next_c)
    softmax:    loss = -mean_n log softmax(x)[n, y_n], dx = (softmax(x) - onehot(y)) / N
    svm:        loss = mean_n sum_{j != y_n} max(0, x[n, j] - x[n, y_n] + 1), dx from the positive margins
"""

import numpy as np


def _sigmoid(a):
    """Logistic function without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------- affine and relu

def affine_forward(x, w, b):
    """out = x2 w + b for x (N, d1, ..., dk) flattened to x2 (N, D), D = d1 ... dk; w (D, M), b (M,).

    Returns (out (N, M), cache = (x, w, b)).
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """dout (N, M) -> (dx (N, d1, ..., dk), dw (D, M), db (M,))."""
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(x, 0), any shape. Returns (out, cache = x)."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the derivative at 0 taken as 0)."""
    x = cache
    return dout * (x > 0)


# ---------------------------------------------------------------- convolution

def _conv_out_size(size, k, stride, pad, what):
    span = size + 2 * pad - k
    if span < 0 or span % stride:
        raise ValueError(f"conv: {what}: (size {size} + 2*pad {pad} - kernel {k}) is not a multiple of "
                         f"stride {stride}")
    return 1 + span // stride


def conv_forward_naive(x, w, b, conv_param):
    """Cross-correlation (what torch calls convolution) with zero padding and stride, as loops.

    x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param = {"stride": s, "pad": p}
    out (N, F, H', W'), H' = 1 + (H + 2p - HH) / s, W' = 1 + (W + 2p - WW) / s (must divide exactly).
    cache = (x, w, b, conv_param).
    """
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = _conv_out_size(H, HH, s, p, "height")
    Wo = _conv_out_size(W, WW, s, p, "width")
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * s:i * s + HH, j * s:j * s + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """dout (N, F, H', W') -> (dx (N, C, H, W), dw (F, C, HH, WW), db (F,)).

    Each output element spreads dout[n, f, i, j] * w[f] back onto its window of the padded input (the
    transpose of the forward's gather), and collects dout[n, f, i, j] * window into dw[f]; the padding's
    rows and columns are then cropped from dx.
    """
    x, w, _, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, w))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    d = dout[n, f, i, j]
                    dxp[n, :, i * s:i * s + HH, j * s:j * s + WW] += d * w[f]
                    dw[f] += d * xp[n, :, i * s:i * s + HH, j * s:j * s + WW]
    dx = dxp[:, :, p:p + H, p:p + W]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


# ---------------------------------------------------------------- max pooling

def max_pool_forward_naive(x, pool_param):
    """Max over (pool_height, pool_width) windows every `stride` positions.

    x (N, C, H, W), pool_param = {"pool_height": ph, "pool_width": pw, "stride": s}
    out (N, C, H', W'), H' = 1 + (H - ph) // s, W' = 1 + (W - pw) // s. cache = (x, pool_param).
    """
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """dx: each window's dout added at the window's first maximum in row-major order (argmax), as torch;
    overlapping windows (stride < pool size) accumulate."""
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, _, _ = x.shape
    _, _, Ho, Wo = dout.shape
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * s:i * s + ph, j * s:j * s + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)  # first maximum
            dx[n_idx, c_idx, i * s + k // pw, j * s + k % pw] += dout[:, :, i, j]
    return dx


# ---------------------------------------------------------------- batch normalisation

def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation over the batch axis of x (N, D); gamma, beta (D,).

    bn_param: {"mode": "train" | "test", "eps": 1e-5, "momentum": 0.9, and after the first train call
    "running_mean", "running_var" (D,)}. In train mode, with the batch mean mu and biased variance var:

        out = gamma (x - mu) / sqrt(var + eps) + beta
        running_mean = momentum running_mean + (1 - momentum) mu       (written into bn_param)
        running_var  = momentum running_var  + (1 - momentum) var      (the biased var; zeros at first)

    In test mode the running statistics take the place of mu and var (nothing is written).
    Returns (out (N, D), cache).
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        inv_std = 1 / np.sqrt(var + eps)
        xhat = (x - mu) * inv_std
        out = gamma * xhat + beta
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
        return out, ("train", xhat, gamma, inv_std)
    if mode == "test":
        inv_std = 1 / np.sqrt(running_var + eps)
        xhat = (x - running_mean) * inv_std
        return gamma * xhat + beta, ("test", xhat, gamma, inv_std)
    raise ValueError(f"batchnorm: mode must be 'train' or 'test', got {mode!r}")


def batchnorm_backward(dout, cache):
    """dout (N, D) -> (dx (N, D), dgamma (D,), dbeta (D,)).

    train: dx = inv_std / N (N dxhat - sum_n dxhat - xhat sum_n (dxhat xhat)), dxhat = dout gamma (mu and
    var depend on every sample: the second and third terms); test: dx = dout gamma inv_std (constants).
    dgamma = sum_n dout xhat, dbeta = sum_n dout in both modes.
    """
    mode, xhat, gamma, inv_std = cache
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dxhat = dout * gamma
    if mode == "test":
        return dxhat * inv_std, dgamma, dbeta
    N = dout.shape[0]
    dx = inv_std / N * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation per channel of x (N, C, H, W) over N, H and W; gamma, beta (C,).

    The (N, C, H, W) array is laid out as (N H W, C) and handed to batchnorm_forward (bn_param as there).
    """
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    """dout (N, C, H, W) -> (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    N, C, H, W = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


# ---------------------------------------------------------------- recurrent steps

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b): x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,).

    Returns (next_h (N, H), cache = (x, prev_h, Wx, Wh, next_h)).
    """
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """da = dnext_h (1 - next_h^2); dx = da Wx^T, dprev_h = da Wh^T, dWx = x^T da, dWh = prev_h^T da,
    db = sum_n da. Returns (dx, dprev_h, dWx, dWh, db)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h * next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step: x (N, D), prev_h, prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).

    a = x Wx + prev_h Wh + b, split along its columns into i, f, o, g (H each):
    i, f, o = sigmoid of theirs, g = tanh; next_c = f prev_c + i g; next_h = o tanh(next_c).
    Returns (next_h (N, H), next_c (N, H), cache).
    """
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Returns (dx, dprev_h, dprev_c, dWx, dWh, db).

    next_c reaches the loss directly and through next_h: dc = dnext_c + dnext_h o (1 - tanh(next_c)^2),
    a local array (dnext_c itself is not updated). Then di = dc g, df = dc prev_c, do = dnext_h tanh(next_c),
    dg = dc i, dprev_c = dc f, and da (N, 4H) stacks them through each gate's derivative.
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.hstack([
        dc * g * i * (1 - i),
        dc * prev_c * f * (1 - f),
        dnext_h * tanh_c * o * (1 - o),
        dc * i * (1 - g * g),
    ])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ---------------------------------------------------------------- losses

def softmax_loss(x, y):
    """Mean cross-entropy of the softmax of scores x (N, K) against integer labels y (N,).

    Returns (loss, dx), dx = (softmax(x) - onehot(y)) / N.
    """
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(N), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(N), y] -= 1
    return loss, dx / N


def svm_loss(x, y):
    """Multiclass hinge loss with margin 1, mean over the batch: scores x (N, K), integer labels y (N,).

    margins[n, j] = max(0, x[n, j] - x[n, y_n] + 1) for j != y_n (0 at j = y_n); loss = sum(margins) / N.
    dx[n, j] = [margins[n, j] > 0] / N for j != y_n, dx[n, y_n] = -(number of positive margins of n) / N.
    """
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    dx = (margins > 0).astype(x.dtype)
    dx[rows, y] = -dx.sum(axis=1)
    return loss, dx / N
