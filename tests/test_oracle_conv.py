"""Conv2D against torch.nn.functional.conv2d (float64) and torch.autograd, an independent oracle.

torch's conv2d is cross-correlation (mode="correlation"); Bouvrie's mode="convolution" is conv2d with the
kernel flipped in both spatial axes. A connection table is a kernel with the unconnected slices zeroed.
"""

import numpy as np
import pytest

from layers.conv import Conv2D

torch = pytest.importorskip("torch", reason="the torch oracle is optional (pip install .[oracle])")

pytestmark = pytest.mark.oracle

# Same products, different summation order: rounding only.
SAME_SUM = dict(rtol=1e-11, atol=1e-12)


def torch_conv(x, k, b, dy, stride, pad, mode, connections):
    """y and (dx, dk, db) from torch autograd for the layer Conv2D(stride, pad, mode, connections)."""
    xt, kt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, k, b))
    K = kt if connections is None else kt * torch.tensor(connections[:, :, None, None])
    if mode == "convolution":
        K = torch.flip(K, dims=(2, 3))
    y = torch.nn.functional.conv2d(xt, K, bt, stride=stride, padding=pad)
    grads = torch.autograd.grad(y, (xt, kt, bt), torch.tensor(dy))
    return y.detach().numpy(), {name: g.numpy() for name, g in zip("xkb", grads, strict=True)}


def random_case(seed):
    rng = np.random.default_rng(seed)
    kh, kw = rng.integers(1, 5, size=2)
    sh, sw = rng.integers(1, 4, size=2)
    ph, pw = rng.integers(0, 3, size=2)
    H, W = max(1, kh - 2 * ph) + rng.integers(0, 8), max(1, kw - 2 * pw) + rng.integers(0, 8)
    N, C, F = rng.integers(1, 4, size=3)
    connections = rng.random((F, C)) < 0.6 if rng.random() < 0.4 else None
    arrays = {"x": rng.standard_normal((N, C, H, W)), "k": rng.standard_normal((F, C, kh, kw)),
              "b": rng.standard_normal(F)}
    return arrays, (int(sh), int(sw)), (int(ph), int(pw)), connections, rng


@pytest.mark.parametrize("impl", ["fast", "literal"])
@pytest.mark.parametrize("mode", ["correlation", "convolution"])
@pytest.mark.parametrize("seed", range(12))
def test_conv2d_matches_torch(seed, mode, impl):
    arrays, stride, pad, connections, rng = random_case(seed)
    layer = Conv2D(stride, pad, mode, connections, impl)
    y, cache = layer.forward(**arrays)
    dy = rng.standard_normal(y.shape)
    y_torch, g_torch = torch_conv(**arrays, dy=dy, stride=stride, pad=pad, mode=mode, connections=connections)
    assert y.shape == y_torch.shape
    np.testing.assert_allclose(y, y_torch, **SAME_SUM)
    grads = layer.backward(dy, cache)
    for name in ("x", "k", "b"):
        np.testing.assert_allclose(grads[name], g_torch[name], **SAME_SUM, err_msg=f"d{name}")


def test_seed_003_layer_matches_torch():
    """32x32x3 input, ten 5x5 filters, stride 1, pad 2, batch 16 -> 32x32x10."""
    rng = np.random.default_rng(99)
    arrays = {"x": rng.standard_normal((16, 3, 32, 32)), "k": rng.standard_normal((10, 3, 5, 5)),
              "b": rng.standard_normal(10)}
    layer = Conv2D(stride=1, pad=2)
    y, cache = layer.forward(**arrays)
    assert y.shape == (16, 10, 32, 32)
    dy = rng.standard_normal(y.shape)
    y_torch, g_torch = torch_conv(**arrays, dy=dy, stride=1, pad=2, mode="correlation", connections=None)
    np.testing.assert_allclose(y, y_torch, **SAME_SUM)
    grads = layer.backward(dy, cache)
    for name in ("x", "k", "b"):
        np.testing.assert_allclose(grads[name], g_torch[name], rtol=1e-10, atol=1e-10, err_msg=f"d{name}")
