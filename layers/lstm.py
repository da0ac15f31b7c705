"""One step of a long short-term memory cell, a layer with two outputs (the hidden state h and the cell c).

Forward, the gates stacked in the order i, f, o, g along the last axis of the pre-activation a::

    a = x Wx + h_prev Wh + 1 b                       (N, 4H)
    i = sigmoid(a[:, 0H:1H])     input gate
    f = sigmoid(a[:, 1H:2H])     forget gate
    o = sigmoid(a[:, 2H:3H])     output gate
    g = tanh(a[:, 3H:4H])        candidate cell
    c = f o c_prev + i o g
    h = o o tanh(c)

(``o`` between two arrays is the element-wise product.) Backward, for the cotangents dh and dc of the two
outputs, i.e. the gradient of L = sum(G_h * h) + sum(G_c * c) with dh = G_h, dc = G_c::

    dc_total = dc + dh o o o (1 - tanh(c)^2)     c reaches L directly and through h
    do = dh o tanh(c)
    di = dc_total o g        df = dc_total o c_prev        dg = dc_total o i
    dc_prev = dc_total o f
    da = [di o i(1-i), df o f(1-f), do o o(1-o), dg o (1-g^2)]      (N, 4H), same gate order
    dx = da Wx^T     dh_prev = da Wh^T     dWx = x^T da     dWh = h_prev^T da     db = 1^T da

Gate order differs between conventions: i, f, o, g is the order above (cs231n's); torch.nn.LSTMCell stacks
i, f, g, o in its rows, stores the weights transposed (weight_ih (4H, D), weight_hh (4H, H)) and has two
biases whose sum is b.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def _sigmoid(a):
    """expit for real dtypes (no overflow warning, dtype kept), 1 / (1 + exp(-a)) for complex: analytic."""
    return 1 / (1 + np.exp(-a)) if np.iscomplexobj(a) else expit(a)


class LSTMStep:
    """One LSTM step, ``(x, h_prev, c_prev) -> (h, c)``: a layer with several outputs.

    The layer contract extended to several outputs (a single-output layer has no ``outputs`` attribute,
    which means one output named "y", and keeps ``forward -> (y, cache)``, ``backward(dy, cache)``)::

        layer.outputs               -> ("h", "c")      names of the outputs, in order
        layer.inputs                -> ("x", "h_prev", "c_prev", "Wx", "Wh", "b")
        layer.forward(**arrays)     -> ((h, c), cache)  a tuple of outputs, in ``outputs`` order
        layer.backward(dy, cache)   -> {name: gradient}  dy = (dh, dc), a tuple in ``outputs`` order
        layer.structure(name, shapes, output) -> the declaration of gradcheck.structure for one output:
                                       one entry per axis of arrays[name], axes referring to that output;
                                       the two-argument call structure(name, shapes), no output named,
                                       returns None (no declaration), which is always safe

    The checked loss is L = sum(G_h * h) + sum(G_c * c) for one random cotangent per output, and backward
    returns dL/d(input) for every input. backward does not modify dh, dc (or anything else) in place.

    Shapes:
        x:      (N, D)
        h_prev: (N, H)
        c_prev: (N, H)
        Wx:     (D, 4H)    columns [i | f | o | g], H each
        Wh:     (H, 4H)    same column layout
        b:      (4H,)
        h, c:   (N, H)
    Parameters: 4H (D + H + 1).

    cache: (x, h_prev, c_prev, Wx, Wh, i, f, o, g, tanh(c)), the four gates (N, H) after their
    non-linearities and tanh of the new cell.
    Complex-safe: the forward is products, sums, exp and tanh, all analytic (complex inputs take
    1 / (1 + exp(-a)) for the sigmoid), so complex-step differentiation applies.
    """

    outputs = ("h", "c")
    inputs = ("x", "h_prev", "c_prev", "Wx", "Wh", "b")
    complex_safe = True

    def forward(self, x, h_prev, c_prev, Wx, Wh, b):
        if x.ndim != 2 or h_prev.ndim != 2:
            raise ValueError(
                f"LSTMStep: x and h_prev must be 2-D, (N, D) and (N, H); got {x.shape}, {h_prev.shape}")
        N, D = x.shape
        H = h_prev.shape[1]
        expected = {"h_prev": (N, H), "c_prev": (N, H), "Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,)}
        given = {"h_prev": h_prev.shape, "c_prev": c_prev.shape, "Wx": Wx.shape, "Wh": Wh.shape, "b": b.shape}
        wrong = [f"{k} {given[k]} (expected {v})" for k, v in expected.items() if given[k] != v]
        if wrong:
            raise ValueError(f"LSTMStep: with x {x.shape} and H = {H}: wrong shapes " + ", ".join(wrong))
        a = x @ Wx + h_prev @ Wh + b
        i = _sigmoid(a[:, :H])
        f = _sigmoid(a[:, H:2 * H])
        o = _sigmoid(a[:, 2 * H:3 * H])
        g = np.tanh(a[:, 3 * H:])
        c = f * c_prev + i * g
        tc = np.tanh(c)
        h = o * tc
        return (h, c), (x, h_prev, c_prev, Wx, Wh, i, f, o, g, tc)

    def backward(self, dy, cache):
        dh, dc = dy
        x, h_prev, c_prev, Wx, Wh, i, f, o, g, tc = cache
        dc_total = dc + dh * o * (1 - tc * tc)  # a new array: dc is not touched
        da = np.concatenate([
            dc_total * g * i * (1 - i),        # di o i(1-i)
            dc_total * c_prev * f * (1 - f),   # df o f(1-f)
            dh * tc * o * (1 - o),             # do o o(1-o)
            dc_total * i * (1 - g * g),        # dg o (1-g^2)
        ], axis=1)
        return {
            "x": da @ Wx.T,
            "h_prev": da @ Wh.T,
            "c_prev": dc_total * f,
            "Wx": x.T @ da,
            "Wh": h_prev.T @ da,
            "b": da.sum(axis=0),
        }

    def structure(self, name, shapes, output=None):
        """Which slice of `output` ("h" or "c") each coordinate of input `name` touches (gradcheck.structure).

        The footprints are the same on both outputs: x[n, :] and h_prev[n, :] reach h[n, :], c[n, :]
        (``(0, None)``); c_prev is element-wise, c_prev[n, j] -> c[n, j], h[n, j] (``(0, 1)``). A weight
        column k of Wx, Wh, b reaches unit k mod H of every sample, which one identity or window per axis
        cannot say: no declaration (None), so each weight is perturbed on its own. Without an output
        (a caller that knows only single-output layers) nothing is declared either.
        """
        if output is None:
            return None
        if output not in self.outputs:
            raise ValueError(f"LSTMStep: no output {output!r}; outputs are {', '.join(self.outputs)}")
        return {"x": (0, None), "h_prev": (0, None), "c_prev": (0, 1)}.get(name)
