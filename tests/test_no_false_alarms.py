"""No false alarms: every correct layer passes over 20 seeds in every strategy and method that applies.

Small shapes keep the sweep fast; each seed draws new arrays, a new G, new directions and new samples.
Smooth layers must also report no kinks (a kink on a smooth function would hide a wrong gradient).
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.checker import default_method
from layers import (
    Conv2D,
    FullyConnected,
    MaxPool,
    MeanPool,
    ReLU,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    SquaredError,
    Subsampling,
    Tanh,
)

SEEDS = range(20)


def fc(rng):
    return FullyConnected(), {"x": rng.standard_normal((3, 5)), "W": rng.standard_normal((5, 4)),
                              "b": rng.standard_normal(4)}


def elementwise(layer):
    return lambda rng: (layer, {"x": 2 * rng.standard_normal((2, 3, 4))})


def conv(stride, pad, mode):
    def make(rng):
        return Conv2D(stride=stride, pad=pad, mode=mode), {
            "x": rng.standard_normal((2, 2, 6, 5)), "k": rng.standard_normal((3, 2, 3, 2)),
            "b": rng.standard_normal(3)}
    return make


def subsampling(rng):
    return Subsampling(2), {"x": rng.standard_normal((2, 3, 4, 5)), "beta": rng.standard_normal(3),
                            "b": rng.standard_normal(3)}


def pool(layer):
    return lambda rng: (layer, {"x": rng.standard_normal((2, 2, 4, 4))})


def squared_error(rng):
    return SquaredError(), {"y": rng.standard_normal((3, 4)), "t": rng.standard_normal((3, 4))}


def softmax_xent(rng):
    return SoftmaxCrossEntropy(), {"x": 3 * rng.standard_normal((4, 5)), "t": rng.integers(0, 5, 4)}


def stack(rng):
    net = Sequential([("conv", Conv2D(pad=1)), ("f", Sigmoid()), ("sub", Subsampling(2)),
                      ("fc", FullyConnected())])
    return net, {"x": rng.standard_normal((2, 1, 4, 4)), "conv.k": rng.standard_normal((2, 1, 3, 3)),
                 "conv.b": rng.standard_normal(2), "sub.beta": rng.standard_normal(2),
                 "sub.b": rng.standard_normal(2), "fc.W": rng.standard_normal((8, 3)),
                 "fc.b": rng.standard_normal(3)}


CASES = {
    "fc": fc,
    "sigmoid": elementwise(Sigmoid()),
    "tanh": elementwise(Tanh()),
    "relu": elementwise(ReLU()),
    "conv-s1-p0-corr": conv(1, 0, "correlation"),
    "conv-s2-p1-conv": conv(2, 1, "convolution"),
    "subsampling": subsampling,
    "meanpool": pool(MeanPool(2)),
    "maxpool": pool(MaxPool(2)),
    "squared-error": squared_error,
    "softmax-xent": softmax_xent,
    "stack": stack,
}
SMOOTH = {"fc", "sigmoid", "tanh", "conv-s1-p0-corr", "conv-s2-p1-conv", "subsampling", "meanpool",
          "squared-error", "softmax-xent", "stack"}


def methods(layer, strategy="exhaustive"):
    """The strategy's default method for the layer (richardson for a layer that is not complex-safe), and
    central differences and complex step wherever they apply."""
    given = ["complex", "central"] if getattr(layer, "complex_safe", False) else ["central"]
    return list(dict.fromkeys([default_method(layer, {}, strategy, None), *given]))


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_correct_layer_passes_20_seeds(case, strategy):
    margins = []
    for seed in SEEDS:
        layer, arrays = CASES[case](np.random.default_rng(1000 + seed))
        for method in methods(layer, strategy):
            report = gradcheck.check(layer, arrays, strategy=strategy, method=method, seed=seed, samples=6,
                                     directions=2, name=case)
            assert report.passed, str(report)
            if case in SMOOTH:
                assert not any(r.kinks for r in report.arrays.values()), str(report)
            margins.append(report.margin)
    # the tolerance is not so loose that nothing could fail: the model's errors are real but bounded
    assert 0 < max(margins) < 1


def test_stack_residuals_pass_20_seeds():
    for seed in SEEDS:
        layer, arrays = stack(np.random.default_rng(seed))
        for strategy in ("exhaustive", "directional"):
            report = gradcheck.check(layer, arrays, strategy=strategy, seed=seed, residuals=["conv", "sub"],
                                     wrt=[])
            assert set(report.residuals) == {"conv.delta", "sub.delta"}
            assert report.passed, str(report)


def test_float32_layers_pass_20_seeds():
    for seed in SEEDS:
        for make in (fc, conv(2, 1, "correlation"), subsampling, elementwise(Sigmoid())):
            layer, arrays = make(np.random.default_rng(seed))
            arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
            for method in methods(layer):
                report = gradcheck.check(layer, arrays, method=method, seed=seed)
                assert report.passed, str(report)
