"""The fully connected layer in matrix form (seed 002, seed 000).

Forward, as seed 002 writes it (``Top_data = Bottom_data * W + c * Bias``, c a column of ones)::

    y = x W + 1 b

Backward, the three matrix products of seed 002's summary::

    dx = dy W^T          (Bottom_diff = Top_diff * W^T)
    dW = x^T dy          (weight_diff = Bottom_data^T * Top_diff)
    db = 1^T dy          (bias_diff  = c^T * Top_diff: summed over the batch, not averaged)
"""

from __future__ import annotations


class FullyConnected:
    """``y = x W + 1 b``.

    Shapes:
        x: (N, D), or (N, C, H, W) flattened to (N, D) with D = C*H*W (the conv -> FC hand-over:
           seed 000's 50*4*4 = 800 inputs)
        W: (D, F)
        b: (F,)
        y: (N, F)
    Parameters: D*F + F (seed 000: 800 -> 500 has 400,000 + 500).

    cache: (x2d, W, x.shape) where x2d is x flattened to (N, D).
    Complex-safe: the forward is polynomial, so complex-step differentiation applies.
    """

    inputs = ("x", "W", "b")
    complex_safe = True

    def forward(self, x, W, b):
        x2d = x.reshape(x.shape[0], -1)
        if x2d.shape[1] != W.shape[0]:
            raise ValueError(
                f"FullyConnected: x has {x2d.shape[1]} features per sample (shape {x.shape}) "
                f"but W has {W.shape[0]} rows (shape {W.shape})"
            )
        if b.shape != (W.shape[1],):
            raise ValueError(f"FullyConnected: b must have shape ({W.shape[1]},), got {b.shape}")
        y = x2d @ W + b
        return y, (x2d, W, x.shape)

    def structure(self, name, shapes):
        """Which output slice each input coordinate touches (gradcheck.structure's declaration).

        x[n, ...] -> y[n, :] (identity on the batch axis, every feature axis unrestricted);
        W[:, j] -> y[:, j] and b[j] -> y[:, j] (identity onto the output-feature axis).
        """
        if name == "x":
            return (0,) + (None,) * (len(shapes["x"]) - 1)
        return {"W": (None, 1), "b": (1,)}.get(name)

    def backward(self, dy, cache):
        x2d, W, x_shape = cache
        dx = (dy @ W.T).reshape(x_shape)
        dW = x2d.T @ dy
        db = dy.sum(axis=0)
        return {"x": dx, "W": dW, "b": db}
