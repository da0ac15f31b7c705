"""Each layer's forward and backward: the fast path against the literal scipy path, grouped per layer.

`pytest benchmarks/test_layers.py --benchmark-group-by=group` prints one table per layer; the asserts
check that both paths give the same values, so a speed-up cannot silently change a result.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from benchmarks.conftest import conv_problem, fc_problem
from layers import (
    Conv2D,
    FullyConnected,
    FullyConnectedAsConv,
    MaxPool,
    MeanPool,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
    Subsampling,
    fc_to_conv,
)

IMPLS = ["fast", "literal"]


def fwd_bwd(layer, arrays):
    """One forward and one backward with a ones cotangent; returns the gradients."""
    y, cache = layer.forward(**arrays)
    return layer.backward(np.ones_like(y), cache)


@cache
def literal_conv_gradients(mode):
    return fwd_bwd(Conv2D(stride=1, pad=2, mode=mode, impl="literal"), conv_problem())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["correlation", "convolution"])
def test_conv_seed003(benchmark, impl, mode):
    """Seed 003: ten 5x5 filters over 16 x 3 x 32 x 32, stride 1, pad 2; fast (im2col) vs literal scipy."""
    benchmark.group = f"layer Conv2D 32x32x3 ten 5x5 pad 2 ({mode})"
    arrays = conv_problem()
    layer = Conv2D(stride=1, pad=2, mode=mode, impl=impl)
    grads = benchmark(fwd_bwd, layer, arrays)
    reference = literal_conv_gradients(mode)
    for name in ("x", "k", "b"):
        np.testing.assert_allclose(grads[name], reference[name], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("part", ["forward", "backward"])
@pytest.mark.parametrize("impl", IMPLS)
def test_conv_seed003_parts(benchmark, impl, part):
    benchmark.group = "layer Conv2D 32x32x3 ten 5x5 pad 2: forward / backward"
    layer = Conv2D(stride=1, pad=2, impl=impl)
    arrays = conv_problem()
    y, cache = layer.forward(**arrays)
    if part == "forward":
        out, _ = benchmark(layer.forward, **arrays)
        assert out.shape == (16, 10, 32, 32)
    else:
        grads = benchmark(layer.backward, np.ones_like(y), cache)
        assert grads["x"].shape == (16, 3, 32, 32)


@pytest.mark.parametrize("impl", IMPLS + ["matrix"])
def test_fc_800_500(benchmark, impl):
    """Seed 000's FC 800 -> 500 (batch 16): as a matrix product, and as a global conv (fast, literal)."""
    benchmark.group = "layer FC 800->500 batch 16"
    arrays = fc_problem()
    reference = fwd_bwd(FullyConnected(), arrays)
    if impl == "matrix":
        grads = benchmark(fwd_bwd, FullyConnected(), arrays)
        np.testing.assert_array_equal(grads["W"], reference["W"])
        return
    x4 = arrays["x"].reshape(16, 50, 4, 4)  # seed 000: 50 maps of 4x4
    conv_arrays = {"x": x4, "k": fc_to_conv(arrays["W"], 50, 4, 4), "b": arrays["b"]}
    grads = benchmark(fwd_bwd, FullyConnectedAsConv(impl=impl), conv_arrays)
    np.testing.assert_allclose(grads["x"].reshape(16, 800), reference["x"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layer", [Subsampling(2), MeanPool(2), MaxPool(2)], ids=lambda l: type(l).__name__)
def test_subsampling_layers(benchmark, layer):
    benchmark.group = "layer subsampling 2x2 of 16 x 10 x 32 x 32"
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((16, 10, 32, 32))}
    if "beta" in layer.inputs:
        arrays.update(beta=rng.standard_normal(10), b=rng.standard_normal(10))
    grads = benchmark(fwd_bwd, layer, arrays)
    assert grads["x"].shape == (16, 10, 32, 32)


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid()], ids=lambda l: type(l).__name__)
def test_activations(benchmark, layer):
    benchmark.group = "layer activation on 16 x 10 x 32 x 32"
    x = np.random.default_rng(0).standard_normal((16, 10, 32, 32))
    grads = benchmark(fwd_bwd, layer, {"x": x})
    assert grads["x"].shape == x.shape


def test_softmax_cross_entropy(benchmark):
    benchmark.group = "layer loss SoftmaxCrossEntropy 16 x 1000"
    rng = np.random.default_rng(0)
    layer = SoftmaxCrossEntropy()
    arrays = {"x": rng.standard_normal((16, 1000))}
    for c in getattr(layer, "constants", ()):
        arrays[c] = rng.integers(0, 1000, 16)
    grads = benchmark(fwd_bwd, layer, arrays)
    np.testing.assert_allclose(grads["x"].sum(axis=1), 0.0, atol=1e-12)  # softmax - onehot sums to 0
