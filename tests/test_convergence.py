"""Observed convergence order: about 2 on right gradients of nonlinear layers (both methods), about 0 (a
plateau) on planted bugs, "exact" on linear layers; the eps sweep's shape; cost; the verdict line."""

import numpy as np
import pytest

import gradcheck
from gradcheck.catalogue.case import load_file
from gradcheck.engine import convergence as cv
from layers import FullyConnected, Sigmoid, Tanh
from tests import sweeps
from tests.test_planted_bugs import (
    AveragedBias,
    ConvWithoutRot180,
    SigmoidWithoutOneMinusF,
    SubsamplingWithoutBeta,
    conv_arrays,
    fc_arrays,
)


def x_arrays(seed=1, shape=(3, 4)):
    return {"x": np.random.default_rng(seed).standard_normal(shape)}


def order_of(layer, arrays, key, method, steps=cv.VERDICT_STEPS, **options):
    report = gradcheck.check(layer, arrays, method=method, **options)
    return report, sweeps.sweep(layer, arrays, report, key, steps=steps)


def subsampling_arrays():
    rng = np.random.default_rng(2)
    return {"x": rng.standard_normal((2, 3, 4, 5)), "beta": 0.5 + rng.random(3), "b": rng.standard_normal(3)}


# -- classify: the rule on synthetic error curves -------------------------------------------------------


def test_classify_synthetic_curves():
    h = np.array([1e-1, 1e-2, 1e-3])
    floor = np.full(3, 1e-12)
    order, verdict = cv.classify(h, 0.3 * h**2, floor)
    assert verdict == "converges" and order == pytest.approx(2.0)
    order, verdict = cv.classify(h, np.full(3, 0.7), floor)
    assert verdict == "plateau" and order == pytest.approx(0.0, abs=1e-12)
    assert cv.classify(h, np.full(3, 1e-14), floor) == (None, "exact")
    assert cv.classify(h, 0.5 * h, floor)[1] == "irregular"
    assert cv.classify(h, np.array([0.1, 0.065, 0.035]), floor)[1] == "irregular"  # shrinking: not flat
    # truncation then rounding (central): the slope is fitted on the leading run above the floor only
    h6 = np.array([1e-1, 1e-2, 1e-3, 1e-4, 1e-5])
    e = np.array([1e-3, 1e-5, 1e-7, 5e-13, 4e-11])
    order, verdict = cv.classify(h6, e, np.array([1e-15, 1e-14, 1e-13, 1e-12, 1e-11]))
    assert verdict == "converges" and order == pytest.approx(2.0)


# -- right gradients: order 2 -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["central", "complex"])
@pytest.mark.parametrize("layer", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_order_is_about_2_on_right_nonlinear_layers(layer, method):
    _, c = order_of(layer, x_arrays(), "x", method)
    assert c.verdict == "converges" and 1.8 < c.order < 2.2, c
    # truncation h^2: each decade of eps takes two decades off the error
    np.testing.assert_allclose(c.errors[:-1] / c.errors[1:], 100, rtol=0.1)


def test_order_is_about_2_on_the_seed_004_chain_conv_sigmoid_subsampling():
    case = next(c for c in load_file("cases/chain_bouvrie_conv_sigmoid_subsampling.yaml"))
    arrays = case.arrays()
    report = gradcheck.check(case.layer, arrays, **case.options())
    assert report.passed
    for key in ("x", *[k for k in report.arrays if k.endswith(".k")]):
        c = sweeps.sweep(case.layer, arrays, report, key, steps=cv.VERDICT_STEPS)
        assert c.verdict == "converges" and 1.8 < c.order < 2.2, (key, c)


@pytest.mark.parametrize("method", ["central", "complex"])
def test_linear_layers_are_exact_at_every_step_not_order_2(method):
    report = gradcheck.check(FullyConnected(), fc_arrays(), method=method)
    for key in ("x", "W", "b"):
        c = sweeps.sweep(FullyConnected(), fc_arrays(), report, key, steps=cv.VERDICT_STEPS)
        assert c.verdict == "exact" and c.order is None
        assert np.all(c.errors <= c.floors)


# -- planted bugs: order 0 ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["central", "complex"])
@pytest.mark.parametrize("layer, arrays, key", [
    (SigmoidWithoutOneMinusF(), x_arrays(), "x"),
    (AveragedBias(), fc_arrays(), "b"),
    (ConvWithoutRot180(mode="convolution"), conv_arrays(), "x"),
    (SubsamplingWithoutBeta(2), subsampling_arrays(), "x"),
], ids=["sigmoid-f", "fc-bias-mean", "conv-no-rot180", "subsampling-no-beta"])
def test_order_is_about_0_on_planted_bugs(layer, arrays, key, method):
    report, c = order_of(layer, arrays, key, method)
    assert not report.arrays[key].passed
    assert c.verdict == "plateau" and abs(c.order) < 0.05, c
    assert c.direction.startswith("the ") and np.all(c.errors > 1e6 * c.floors)  # far above rounding
    # the plateau's height is the wrong part of the gradient along u: +-1 on the failing elements shown
    failing = [e for e in report.arrays[key].worst if e.failed]
    expected = abs(sum(abs(e.analytic - e.numeric) for e in failing))
    np.testing.assert_allclose(c.errors[-1], expected, rtol=1e-4)  # + truncation on a nonlinear layer


# -- the full sweep (the picture) ------------------------------------------------------------------------


def test_central_sweep_slope_2_then_rounding_takes_over():
    layer, arrays = Sigmoid(), x_arrays(shape=(6, 8))
    report = gradcheck.check(layer, arrays, method="central")
    c = sweeps.sweep(layer, arrays, report, "x")
    assert c.steps[0] == 1e-1 and c.steps[-1] == pytest.approx(1e-12)
    best = int(np.argmin(c.errors))
    assert 1e-7 < c.steps[best] < 1e-3  # the sweet spot around the cube-root rule's 6e-6
    assert c.errors[-1] > 100 * c.errors[best]  # rounding ~ u S / h grows again at 1e-12
    assert c.verdict == "converges" and 1.8 < c.order < 2.2


def test_complex_sweep_is_flat_at_rounding_and_reaches_the_case_eps():
    layer, arrays = Sigmoid(), x_arrays(shape=(6, 8))
    report = gradcheck.check(layer, arrays, method="complex")
    c = sweeps.sweep(layer, arrays, report, "x")
    assert c.steps[-1] <= 1e-20  # extended down to the case's eps
    small = c.steps <= 1e-6
    assert np.all(c.errors[small] <= c.floors[small])  # no cancellation: flat at rounding
    assert c.errors[0] > 1e6 * c.errors[small].max()


def test_a_wrong_gradient_has_a_plateau_no_eps_gets_under():
    layer, arrays = SigmoidWithoutOneMinusF(), x_arrays()
    report = gradcheck.check(layer, arrays, method="central")
    c = sweeps.sweep(layer, arrays, report, "x")
    assert c.errors.min() > 0.5 * c.errors.max() > 0.1


# -- cost and the verdict text ------------------------------------------------------------------------------


def test_measure_costs_two_forwards_per_step_and_leaves_the_differencer_as_it_was():
    layer = FullyConnected()
    arrays = {"x": np.ones((2, 1000)), "W": np.ones((1000, 1000)), "b": np.ones(1000)}
    report = gradcheck.check(layer, arrays, method="central", strategy="sampled", samples=5, wrt=["W"])
    diff, name, g = sweeps.problem_of(layer, arrays, report, "W")
    c = cv.measure(diff, name, g, report.arrays["W"])
    assert c.forwards == 2 * len(cv.VERDICT_STEPS) and diff.forwards == 0 and diff.eps == report.eps
    assert c.direction == f"a random direction on {cv.MAX_BLOCK} consecutive elements"  # not 1M per pass
    assert c.verdict == "exact"


def test_the_verdict_reports_the_convergence_order_per_array():
    good = str(gradcheck.check(Sigmoid(), x_arrays(), method="central"))
    assert "convergence order 2.0 (error ~ eps^2: converges)" in good
    bad = str(gradcheck.check(AveragedBias(), fc_arrays(), method="central"))
    line = next(s for s in bad.splitlines() if s.strip().startswith("convergence") and "plateau" in s)
    assert "order 0.0" in line and "at eps 1e-01, 1e-02, 1e-03" in line
    fc = str(gradcheck.check(FullyConnected(), fc_arrays()))
    assert fc.count("convergence order n/a (rounding only") == 3


def test_verdict_forward_counts_are_the_checks_own():
    report = gradcheck.check(Sigmoid(), x_arrays(), method="complex")
    assert report.arrays["x"].convergence.forwards == len(cv.VERDICT_STEPS)
    assert report.forwards == 1 + report.arrays["x"].forwards


class SlowSigmoid:
    """Sigmoid whose forward takes 30 ms: a stand-in for a layer with a 100M-weight forward."""

    inputs = ("x",)

    def forward(self, x):
        import time

        time.sleep(0.03)
        y = 1 / (1 + np.exp(-x))
        return y, y

    def backward(self, dy, y):
        return {"x": dy * y * (1 - y)}


def test_a_passing_array_whose_convergence_would_cost_more_than_its_check_is_not_measured():
    x = np.random.default_rng(0).standard_normal((3, 4))
    report = gradcheck.check(SlowSigmoid(), {"x": x}, strategy="directional", directions=1, method="central")
    conv = report.arrays["x"].convergence
    assert report.passed and conv.verdict == "skipped" and conv.forwards == 0
    assert "not measured: passing" in str(report)


def test_a_failing_array_is_measured_whatever_it_costs():
    class WrongSlowSigmoid(SlowSigmoid):
        def backward(self, dy, y):
            return {"x": dy * y}  # f instead of f(1 - f)

    x = np.random.default_rng(0).standard_normal((3, 4))
    report = gradcheck.check(WrongSlowSigmoid(), {"x": x}, strategy="directional", directions=1,
                             method="central")
    conv = report.arrays["x"].convergence
    assert not report.passed and conv.verdict == "plateau" and conv.forwards == 6
