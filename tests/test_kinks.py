"""Kinks: ReLU at exactly 0 and tied maxima in max pooling are reported as kinks, not failures; a value
outside the one-sided interval [left, right] at a kink is still a mismatch."""

import numpy as np
import pytest

import gradcheck
from gradcheck.engine import tolerance
from gradcheck.engine.verdict import classify
from layers import MaxPool, ReLU


def relu_input():
    x = np.array([[0.7, 0.0, -1.2, 0.0], [0.0, 2.0, -0.3, 1.1]])
    return x, {(0, 1), (0, 3), (1, 0)}


def G_of(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_relu_at_zero_is_a_kink_with_one_sided_differences_0_and_G():
    x, zeros = relu_input()
    report = gradcheck.check(ReLU(), {"x": x}, name="relu-at-zero")
    result = report.arrays["x"]
    assert report.passed and result.failed == 0
    assert {k.index for k in result.kinks} == zeros
    G = G_of(x.shape)
    for k in result.kinks:
        assert k.kind == "kink" and k.analytic == 0.0  # ReLU's convention: 0 at 0
        assert k.left == pytest.approx(0.0, abs=1e-12) and k.right == pytest.approx(G[k.index], rel=1e-9)
        assert k.numeric == pytest.approx(G[k.index] / 2, rel=1e-9)  # the central difference straddles it
    assert "3 kink(s)" in str(report) and "kinks 3" in str(report)
    # kinks are excluded from the margin: the smooth elements are exact
    assert result.margin < 1e-3


def test_relu_with_derivative_one_at_zero_is_also_a_kink():
    class ReLUOneAtZero(ReLU):
        def forward(self, x):
            return np.where(x > 0, x, 0), x

        def backward(self, dy, cache):
            return {"x": dy * (cache >= 0)}

    x, zeros = relu_input()
    report = gradcheck.check(ReLUOneAtZero(), {"x": x})
    assert report.passed and {k.index for k in report.arrays["x"].kinks} == zeros


class ReLUWrongAtZero(ReLU):
    """dx = 2 dy at x = 0: outside [0, dy], no subgradient of ReLU."""

    def forward(self, x):
        return np.where(x > 0, x, 0), x

    def backward(self, dy, cache):
        return {"x": dy * (cache > 0) + 2 * dy * (cache == 0)}


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled"])
def test_a_wrong_value_at_a_relu_kink_is_a_mismatch(strategy):
    x, zeros = relu_input()
    report = gradcheck.check(ReLUWrongAtZero(), {"x": x}, strategy=strategy, samples=100)
    result = report.arrays["x"]
    assert not report.passed and result.failed == 3 and not result.kinks
    assert {e.index for e in result.worst if e.kind == "mismatch"} == zeros


def test_a_wrong_value_at_a_relu_kink_is_located_by_directional_bisection():
    x, zeros = relu_input()
    result = gradcheck.check(ReLUWrongAtZero(), {"x": x}, strategy="directional").arrays["x"]
    assert result.failed > 0
    assert {e.index for e in result.located if e.failed} <= zeros and result.located


def test_relu_just_off_zero_within_eps_is_a_kink_not_a_failure():
    eps = tolerance.default_eps("central")
    x = np.array([eps / 3, -eps / 5, 1.0])
    result = gradcheck.check(ReLU(), {"x": x}).arrays["x"]
    assert result.passed and {k.index for k in result.kinks} == {(0,), (1,)}


def tied_maxpool_input():
    x = np.array([[[[1.0, 1.0, 0.2, -0.5],
                    [0.3, -1.0, 0.9, 0.1],
                    [2.0, 0.4, -0.2, 0.7],
                    [0.1, 2.0, 0.7, 0.7]]]])
    return x, {(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 2, 0), (0, 0, 3, 1), (0, 0, 2, 3), (0, 0, 3, 2),
               (0, 0, 3, 3)}


def test_tied_maxima_in_max_pooling_are_kinks_not_failures():
    x, tied = tied_maxpool_input()
    report = gradcheck.check(MaxPool(2), {"x": x})
    result = report.arrays["x"]
    assert report.passed and {k.index for k in result.kinks} == tied
    G = G_of((1, 1, 2, 2))
    first = result.kinks[0]  # (0,0,0,0): the first maximum gets dy, one side moves the max, the other not
    assert first.index == (0, 0, 0, 0) and first.analytic == G[0, 0, 0, 0]
    assert sorted([first.left, first.right]) == pytest.approx(sorted([0.0, G[0, 0, 0, 0]]), abs=1e-9)
    assert not any(k.index == (0, 0, 1, 2) for k in result.kinks)  # 0.9, an untied maximum


class MaxPoolDoubleAtTies(MaxPool):
    """Gives 2 dy to the first maximum: outside [0, dy]."""

    def backward(self, dy, cache):
        return {"x": 2 * super().backward(dy, cache)["x"]}


def test_a_wrong_value_at_a_max_pooling_tie_is_a_mismatch():
    x, tied = tied_maxpool_input()
    result = gradcheck.check(MaxPoolDoubleAtTies(2), {"x": x}).arrays["x"]
    assert not result.passed
    mismatched = {e.index for e in result.worst if e.kind == "mismatch"}
    # every block's gradient is doubled: the untied maximum (0,0,1,2) too, and the first tied entries
    assert {(0, 0, 1, 2), (0, 0, 0, 0), (0, 0, 2, 0)} <= mismatched


def test_classify_rules():
    """Kink needs both: one-sided differences that disagree, and the analytic value between them."""
    kw = dict(rtol=1e-8, atol=1e-10, eps=1e-6, rounding=1e-10)
    codes, error, tol = classify([0.0, 0.0, 2.0, 0.6, 0.5, np.nan],
                                 [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
                                 [0.0, 0.5 - 1e-9, 0.0, 0.5, 0.5, 0.0],
                                 [1.0, 0.5 + 1e-9, 1.0, 0.5, 0.5, 1.0], **kw)
    assert list(codes) == [2, 1, 1, 1, 0, 3]  # kink, smooth mismatch, outside interval, smooth, ok, nan
    assert error[0] == 0.5 and tol[0] == pytest.approx(1e-10 + 1e-8 * 0.5)
    complex_codes, _, _ = classify([0.0], [0.5], None, None, **kw)
    assert list(complex_codes) == [1]  # no one-sided differences (complex step): never a kink


def test_a_direction_through_relu_zeros_is_a_kink_not_a_failure():
    x, _ = relu_input()
    result = gradcheck.check(ReLU(), {"x": x}, strategy="directional", directions=3).arrays["x"]
    assert result.passed and len(result.kinks) == 3 and all(k.index is None for k in result.kinks)
    # a direction through several zeros may fail although each coordinate is a valid subgradient; the
    # bisection then checks coordinates, finds only kinks, and the direction is a kink, not a failure
    assert result.located and all(e.kind in ("kink", "ok") for e in result.located)
    assert {e.index for e in result.located if e.kind == "kink"} <= relu_input()[1]


class ShiftedReLU:
    """y = relu(x + c), one scalar shift c (shape (1,)) shared by every element: dc = sum(dy * (x + c > 0)).

    With many elements |dL/dc| is large, so a kink of one element inside [c - eps, c + eps] moves the
    one-sided differences by less than the smooth-function bound: only a smaller step tells it apart."""

    inputs = ("x", "c")

    def forward(self, x, c):
        return np.maximum(x + c, 0.0), x + c > 0

    def backward(self, dy, active):
        return {"x": dy * active, "c": np.array([np.sum(dy * active)])}


def near_kink_arrays(n=100_000, seed=3):
    """x far from the kink (|x + c| > 0.01) except x[7], at 0.5 eps: inside [-eps, eps], not inside eps/10."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.01, 1.0, n) * rng.choice([-1.0, 1.0], n)
    x[7] = 0.5 * tolerance.default_eps("central")
    return {"x": x, "c": np.zeros(1)}


def test_a_kink_within_eps_but_not_at_the_point_is_a_kink_not_a_failure():
    arrays = near_kink_arrays()
    report = gradcheck.check(ShiftedReLU(), arrays, wrt=["c"], name="near-kink")
    c = report.arrays["c"]
    assert report.passed and c.failed == 0
    [k] = c.kinks
    assert k.index == (0,)
    # the one-sided rule alone does not see it: |right - left| is under the smooth bound at this |L'|
    rounding = tolerance.rounding_atol("central", report.eps, 0.0)
    assert abs(k.right - k.left) < tolerance.kink_threshold(k.left, k.right, report.eps, rounding)
    assert k.error > k.tolerance  # and the central difference at eps is off: it straddles x[7]'s kink
    # the analytic value is the one-sided difference on x[7]'s inactive side... within the one-sided error
    assert min(k.left, k.right) - 1e-6 <= k.analytic <= max(k.left, k.right) + 1e-6


def test_a_kink_within_eps_is_a_kink_for_the_directional_strategy_too():
    arrays = near_kink_arrays()
    report = gradcheck.check(ShiftedReLU(), arrays, wrt=["c"], strategy="directional", directions=2)
    assert report.passed and report.arrays["c"].failed == 0
    assert len(report.arrays["c"].kinks) == 2


def test_a_small_wrong_gradient_is_not_cleared_by_the_smaller_steps():
    """A relative 1e-6 error plateaus at eps/10 and eps/100 (the error does not fall), although the
    smaller step's rounding tolerance is looser: still a mismatch, for every element."""
    from layers import FullyConnected

    class OffByMillionth(FullyConnected):
        def backward(self, dy, cache):
            g = super().backward(dy, cache)
            g["W"] = g["W"] * (1 + 1e-6)
            return g

    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 6)), "W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    report = gradcheck.check(OffByMillionth(), arrays, method="central", wrt=["W"])
    W = report.arrays["W"]
    exact = W.analytic / (1 + 1e-6)
    beyond = np.abs(W.analytic - exact) > W.atol + W.rtol * np.abs(exact)  # resolvable at eps at all
    assert beyond.sum() >= 15
    assert not report.passed and W.failed == beyond.sum() and W.kinks == []
