"""Planted bugs: each wrong backward (a subclass overriding backward) is caught, on the right array, and
where the bug is one element, at the right index.

The conv bugs are written against a literal, per-map-pair backward (``literal_backward``, Bouvrie's
formulas with scipy.signal) that is first shown equal to Conv2D's own backward, so each planted bug is
exactly one deviation from a correct formula.
"""

import numpy as np
import pytest
from scipy import signal

import gradcheck
from layers import Conv2D, FullyConnected
from tests.planted import (
    AveragedBias,
    OneWrongWeight,
    SigmoidWithoutOneMinusF,
    SubsamplingWithoutBeta,
)

STRATEGIES = ["exhaustive", "sampled", "directional"]


def failing(report):
    return {name for name, r in report.arrays.items() if not r.passed}


def check(layer, arrays, strategy, **options):
    return gradcheck.check(layer, arrays, strategy=strategy, samples=1000, **options)


# -- FC -------------------------------------------------------------------------------------------------


def fc_arrays(seed=0, N=4, D=6, F=3):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, F)), "b": rng.standard_normal(F)}


@pytest.mark.parametrize("method", ["complex", "central"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fc_bias_averaged_instead_of_summed(strategy, method):
    report = check(AveragedBias(), fc_arrays(), strategy, method=method)
    assert failing(report) == {"b"}
    if strategy != "directional":
        b = report.arrays["b"]
        np.testing.assert_allclose(b.analytic * 4, b.numeric, rtol=1e-8)  # off by the batch size


class RelativelyOff(FullyConnected):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"] = g["W"] * (1 + 1e-9)
        return g


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_relative_1e_9_error_is_caught_by_complex_step_not_by_central(strategy):
    arrays = fc_arrays(N=8, D=10, F=6)
    complex_step = check(RelativelyOff(), arrays, strategy, method="complex")
    assert failing(complex_step) == {"W"} and complex_step.arrays["W"].margin > 100
    central = check(RelativelyOff(), arrays, strategy, method="central")
    assert central.passed  # central's tolerance (truncation eps^2, ~6e-9 relative) cannot resolve 1e-9
    assert complex_step.method == gradcheck.check(FullyConnected(), arrays).method == "complex"


@pytest.fixture(scope="module")
def lenet_fc():
    """Seed 000: LeNet's first FC layer, 50*4*4 = 800 inputs, 500 outputs, batch 16."""
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((16, 800)), "W": 0.05 * rng.standard_normal((800, 500)),
            "b": rng.standard_normal(500)}


@pytest.mark.slow  # ~2 s alone (800 complex forwards of 16x800 @ 800x500); more on a loaded machine
def test_one_wrong_weight_of_800x500_exhaustive_names_the_index(lenet_fc):
    report = gradcheck.check(OneWrongWeight(), lenet_fc, wrt=["W"])
    W = report.arrays["W"]
    assert W.checked == 400_000 and W.failed == 1
    assert W.worst[0].index == (123, 45) and W.worst[0].error == pytest.approx(1.0, rel=1e-9)
    assert W.forwards < 1000  # structure groups: 800 forwards, not 400,000
    assert "W[123, 45]" in str(report) and "1 of 400000 elements failed in W" in str(report)


@pytest.mark.parametrize("method", ["complex", "central"])
def test_one_wrong_weight_of_800x500_directional_bisection_names_the_index(lenet_fc, method):
    report = gradcheck.check(OneWrongWeight(), lenet_fc, wrt=["W"], strategy="directional", method=method,
                             directions=2)
    W = report.arrays["W"]
    assert W.failed == 2  # both directions see it
    assert [e.index for e in W.located if e.failed] == [(123, 45)]
    assert W.worst[0].index == (123, 45)
    assert "bisection located W[123, 45]" in str(report)
    # a few forwards per bisection level: ~2 log2(400000) ~ 38 checks, not 400,000
    assert W.forwards < (2 if method == "central" else 1) * 2 * (2 * 19 + 4) + 8


def test_bisection_locates_several_wrong_elements():
    class ThreeWrong(FullyConnected):
        def backward(self, dy, cache):
            g = super().backward(dy, cache)
            g["W"][1, 2] += 0.5
            g["W"][17, 0] -= 2.0
            g["W"][30, 5] *= 3.0
            return g

    report = gradcheck.check(ThreeWrong(), fc_arrays(N=5, D=40, F=6), wrt=["W"], strategy="directional")
    assert sorted(e.index for e in report.arrays["W"].located if e.failed) == [(1, 2), (17, 0), (30, 5)]


# -- Sigmoid --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sigmoid_derivative_f_instead_of_f_times_one_minus_f(strategy):
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert failing(check(SigmoidWithoutOneMinusF(), {"x": x}, strategy)) == {"x"}
    assert failing(check(SigmoidWithoutOneMinusF(), {"x": x}, strategy, method="central")) == {"x"}


# -- Conv2D ---------------------------------------------------------------------------------------------


def conv2(a, w, mode):
    return signal.convolve2d(a, w, mode=mode)


def rot180(a):
    return a[..., ::-1, ::-1]


def literal_backward(layer, dy, cache, *, rotate=True, dilate=True, crop=True):
    """Bouvrie's conv backward, one map pair at a time, for Conv2D(mode, stride, pad) without connections.

    rotate=False drops the rot180 of the residual formula (dx = conv2(delta, k, 'full') in convolution
    mode); dilate=False ignores the stride (delta packed at the top-left instead of every s-th position);
    crop=False cuts dx from the top-left corner of dxp instead of removing the pad on every side.
    """
    x_shape, xp, K, _, _ = cache
    k = rot180(K) if layer.mode == "convolution" else K
    (sh, sw), (ph, pw) = layer.stride, layer.pad
    N, C, Hp, Wp = xp.shape
    F, _, kh, kw = k.shape
    Ho, Wo = dy.shape[2:]
    delta = np.zeros((N, F, Hp - kh + 1, Wp - kw + 1))
    if dilate:
        delta[:, :, ::sh, ::sw] = dy
    else:
        delta[:, :, :Ho, :Wo] = dy
    dxp, dk = np.zeros(xp.shape), np.zeros(k.shape)
    for n in range(N):
        for j in range(F):
            for i in range(C):
                if layer.mode == "convolution":
                    dk[j, i] += rot180(conv2(xp[n, i], rot180(delta[n, j]), "valid"))
                    dxp[n, i] += conv2(delta[n, j], rot180(k[j, i]) if rotate else k[j, i], "full")
                else:
                    dk[j, i] += conv2(xp[n, i], rot180(delta[n, j]), "valid")
                    dxp[n, i] += conv2(delta[n, j], k[j, i], "full")
    H, W = x_shape[2:]
    dx = dxp[:, :, ph:ph + H, pw:pw + W] if crop else dxp[:, :, :H, :W]
    return {"x": dx, "k": dk, "b": dy.sum(axis=(0, 2, 3))}


def conv_arrays(seed=0, N=2, C=2, H=7, W=6, F=3, kh=3, kw=3):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, C, H, W)), "k": rng.standard_normal((F, C, kh, kw)),
            "b": rng.standard_normal(F)}


@pytest.mark.parametrize("mode", ["correlation", "convolution"])
@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 0), (1, 1), (2, 2)])
def test_literal_backward_is_conv2d_backward(mode, stride, pad):
    layer = Conv2D(stride=stride, pad=pad, mode=mode)
    y, cache = layer.forward(**conv_arrays())
    dy = np.random.default_rng(1).standard_normal(y.shape)
    expected, got = layer.backward(dy, cache), literal_backward(layer, dy, cache)
    for name in ("x", "k", "b"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-12)


class ConvWithoutRot180(Conv2D):
    def backward(self, dy, cache):
        return literal_backward(self, dy, cache, rotate=False)


class ConvIgnoringStride(Conv2D):
    def backward(self, dy, cache):
        return literal_backward(self, dy, cache, dilate=False)


class ConvNotCroppingPad(Conv2D):
    def backward(self, dy, cache):
        return literal_backward(self, dy, cache, crop=False)


@pytest.mark.parametrize("method", ["complex", "central"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("layer, wrong", [
    (ConvWithoutRot180(mode="convolution"), {"x"}),
    (ConvIgnoringStride(stride=2), {"x", "k"}),
    (ConvNotCroppingPad(pad=1), {"x"}),
], ids=["no-rot180", "stride-ignored", "pad-not-cropped"])
def test_conv_backward_bugs(layer, wrong, strategy, method):
    assert failing(check(layer, conv_arrays(), strategy, method=method)) == wrong


def test_uncropped_pad_with_the_padded_shape_is_a_contract_error_naming_layer_and_array():
    class ConvReturningPaddedDx(Conv2D):
        def backward(self, dy, cache):
            g = literal_backward(self, dy, cache)
            g["x"] = np.pad(g["x"], ((0, 0), (0, 0), (1, 1), (1, 1)))
            return g

    with pytest.raises(ValueError, match=r"ConvReturningPaddedDx: backward's gradient for x has shape "
                                         r"\(2, 2, 9, 8\), expected \(2, 2, 7, 6\)"):
        gradcheck.check(ConvReturningPaddedDx(pad=1), conv_arrays())


# -- Subsampling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["complex", "central"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_subsampling_backward_missing_beta_in_up(strategy, method):
    rng = np.random.default_rng(2)
    arrays = {"x": rng.standard_normal((2, 3, 4, 5)), "beta": 0.5 + rng.random(3),
              "b": rng.standard_normal(3)}
    assert failing(check(SubsamplingWithoutBeta(2), arrays, strategy, method=method)) == {"x"}
