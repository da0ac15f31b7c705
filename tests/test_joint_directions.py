"""The directional strategy's joint stage: one random direction spanning every checked array at once
(2 forwards with central differences, 1 with complex step, however many arrays), per-array directions and
bisection only once it fails, and the analytic gradient's buffer lent as the working copy at scale (in
directional and sampled checks)."""

import importlib

import numpy as np
import pytest

import gradcheck
from gradcheck.engine.differencing import Differencer
from gradcheck.output import explain
from layers import FullyConnected
from tests.planted import AveragedBias, OneWrongWeight

check_module = importlib.import_module("gradcheck.strategies.directional")


def fc_arrays(seed=0, N=4, D=30, F=20):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, F)) * 0.2,
            "b": rng.standard_normal(F)}


@pytest.fixture
def lend_from_200(monkeypatch):
    """Gradients of 200 elements or more lend their buffer (W: 600; x: 120 and b: 20 do not)."""
    monkeypatch.setattr(check_module, "REUSE_ELEMENTS", 200)


@pytest.mark.parametrize("method, per_direction", [("central", 2), ("complex", 1)])
def test_a_passing_joint_direction_spends_its_forwards_once_for_all_arrays(method, per_direction):
    report = gradcheck.check(FullyConnected(), fc_arrays(), strategy="directional", directions=3,
                             method=method)
    assert report.passed
    assert report.forwards == 1 + 3 * per_direction  # the analytic forward, then the joint directions
    for r in report.arrays.values():
        assert r.joint == ("x", "W", "b") and r.checked == 3 and r.failed == 0 and r.numeric is None
        assert r.worst[0].array == "(x, W, b)" and r.worst[0].index is None
    assert "checked 3 joint directions (x, W, b)" in str(report)
    assert f"{3 * per_direction} forwards shared" in str(report)


@pytest.mark.parametrize("method", ["central", "complex"])
def test_the_joint_derivative_is_the_sum_of_each_arrays_own(method):
    # direction i is, on array k, the i-th direction k's own check draws: the derivatives add up
    arrays = fc_arrays()
    joint = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=2, method=method)
    alone = {k: gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=2, method=method,
                                wrt=[k]) for k in arrays}
    assert len(joint.arrays["x"].worst) == 2 and all(len(alone[k].arrays[k].worst) == 2 for k in arrays)
    total_a = sum(e.analytic for k in arrays for e in alone[k].arrays[k].worst)
    total_n = sum(e.numeric for k in arrays for e in alone[k].arrays[k].worst)
    joint_a = sum(e.analytic for e in joint.arrays["x"].worst)
    joint_n = sum(e.numeric for e in joint.arrays["x"].worst)
    assert joint_a == pytest.approx(total_a, rel=1e-12)
    assert joint_n == pytest.approx(total_n, rel=1e-8)


def test_a_failing_joint_direction_falls_back_to_each_array_with_bisection():
    report = gradcheck.check(OneWrongWeight(index=(12, 3), by=1.0), fc_arrays(), strategy="directional",
                             method="central")
    assert not report.passed
    assert report.arrays["x"].passed and report.arrays["b"].passed
    W = report.arrays["W"]
    assert not W.passed and W.joint == ()
    assert [e.index for e in W.located if e.failed] == [(12, 3)]
    bias = gradcheck.check(AveragedBias(), fc_arrays(), strategy="directional")
    assert [k for k, r in bias.arrays.items() if not r.passed] == ["b"]


def test_arrays_of_different_precision_are_checked_each_on_its_own():
    arrays = fc_arrays()
    arrays["x"] = arrays["x"].astype(np.float32)  # float32 x: a looser rtol than W's and b's
    report = gradcheck.check(FullyConnected(), arrays, strategy="directional", method="central")
    assert report.passed
    assert all(r.joint == () for r in report.arrays.values())


def test_differencer_directions_over_several_arrays_is_the_sum_over_each():
    arrays = fc_arrays()
    G = np.random.default_rng(1).standard_normal((4, 20))
    rng = np.random.default_rng(2)
    u = {k: rng.standard_normal(v.size) / np.sqrt(v.size) for k, v in arrays.items()}
    g = {k: rng.standard_normal(v.size) for k, v in arrays.items()}
    for method in ("central", "complex"):
        d = Differencer(FullyConnected(), arrays, G, method, 1e-6 if method == "central" else 1e-20)
        joint = d.directions([(k, u[k], g[k], 0, u[k].size) for k in arrays])
        each = [d.direction(k, u[k], g[k]) for k in arrays]
        assert joint.analytic == pytest.approx(sum(e.analytic for e in each), rel=1e-12)
        assert joint.numeric == pytest.approx(sum(e.numeric for e in each), rel=1e-7)
        assert d.forwards == (2 if method == "central" else 1) * 4
        for k, v in d.arrays().items():
            np.testing.assert_array_equal(np.real(v), arrays[k])


def test_an_adopted_buffer_gives_bit_identical_results(lend_from_200):
    arrays = fc_arrays()
    before = {k: v.copy() for k, v in arrays.items()}
    lent = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=3, method="central")
    kept = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=3, method="central",
                           keep_analytic=True)
    assert lent.passed and kept.passed
    assert lent.arrays["W"].analytic is None and kept.arrays["W"].analytic is not None
    assert lent.arrays["x"].analytic is not None and lent.arrays["b"].analytic is not None
    for e, f in zip(lent.arrays["W"].worst, kept.arrays["W"].worst, strict=True):
        assert (e.analytic, e.numeric) == (f.analytic, f.numeric)
    assert "buffer served as the working copy" in str(lent.arrays["W"].convergence)
    maps = explain.figures(lent, margin=-1)
    assert [f.filename for f in maps] == ["case-x-maps.png", "case-b-maps.png"]  # no heat map of a lent array
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])
    # the error-vs-eps sweep (check(explain=...)) computes the gradient the report did not keep again
    swept = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=3, method="central",
                            explain=-1.0)
    assert swept.arrays["W"].analytic is None and swept.arrays["W"].sweep.verdict == "exact"


def test_a_lent_gradient_is_computed_again_when_the_joint_direction_fails(lend_from_200):
    report = gradcheck.check(OneWrongWeight(index=(12, 3), by=1.0), fc_arrays(), strategy="directional",
                             method="central")
    W = report.arrays["W"]
    assert not W.passed and [e.index for e in W.located if e.failed] == [(12, 3)]
    right = FullyConnected().backward(np.ones((4, 20)), FullyConnected().forward(**fc_arrays())[1])["W"]
    assert W.analytic is not None and W.analytic.shape == (30, 20)
    assert not np.allclose(W.analytic, right)  # the planted error is in the recomputed gradient


def test_a_sampled_check_at_scale_lends_the_gradient_after_reading_its_samples(lend_from_200):
    arrays = fc_arrays()
    before = {k: v.copy() for k, v in arrays.items()}
    options = dict(strategy="sampled", method="central", samples=40)
    lent = gradcheck.check(FullyConnected(), arrays, **options)
    kept = gradcheck.check(FullyConnected(), arrays, keep_analytic=True, **options)
    assert lent.passed and kept.passed and lent.arrays["W"].checked == 40
    assert lent.arrays["W"].analytic is None and kept.arrays["W"].analytic is not None
    assert lent.arrays["x"].analytic is not None  # 120 elements: below the threshold
    for e, f in zip(lent.arrays["W"].worst, kept.arrays["W"].worst, strict=True):
        assert (e.index, e.analytic, e.numeric, e.tolerance) == (f.index, f.analytic, f.numeric, f.tolerance)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])
    # a wrong element among the samples is caught with its own analytic value; the sweep recomputes g
    index = next(e.index for e in kept.arrays["W"].worst)
    wrong = gradcheck.check(OneWrongWeight(index=index, by=0.5), arrays, explain=-1.0, **options)
    W = wrong.arrays["W"]
    assert not W.passed and [e.index for e in W.worst if e.failed] == [index] and W.analytic is None
    bad = next(e for e in W.worst if e.failed)
    good = next(e for e in kept.arrays["W"].worst if e.index == index)
    assert bad.analytic == good.analytic + 0.5 and W.sweep is not None
    held = gradcheck.check(KeepsItsGradient(), arrays, **options)  # a gradient its layer keeps: never lent
    assert held.passed and held.arrays["W"].analytic is not None


class KeepsItsGradient(FullyConnected):
    """A layer that holds on to the gradient it returns: the checker must not write into it."""

    def backward(self, dy, cache):
        self.last = super().backward(dy, cache)
        return self.last


def test_a_gradient_someone_else_holds_is_never_lent(lend_from_200):
    layer = KeepsItsGradient()
    report = gradcheck.check(layer, fc_arrays(), strategy="directional", method="central")
    assert report.passed and report.arrays["W"].analytic is not None
    x, W, b = (fc_arrays()[k] for k in ("x", "W", "b"))
    G = np.random.default_rng(0).standard_normal((4, 20))
    np.testing.assert_allclose(layer.last["W"], x.T @ G, rtol=1e-12)


class ReshapedGradient(FullyConnected):
    """dW as a reshape of a flat array nothing else holds (as Conv2D's dk is): it may be lent."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"] = g["W"].reshape(-1).copy().reshape(g["W"].shape)
        return g


class KeepsTheBase(FullyConnected):
    """dW as a reshape of a flat array the layer keeps: it must not be lent."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        self.flat = g["W"].reshape(-1).copy()
        g["W"] = self.flat.reshape(g["W"].shape)
        return g


def test_a_reshape_is_lent_only_when_nothing_else_holds_its_base(lend_from_200):
    reshaped = gradcheck.check(ReshapedGradient(), fc_arrays(), strategy="directional", method="central")
    assert reshaped.passed and reshaped.arrays["W"].analytic is None
    layer = KeepsTheBase()
    kept = gradcheck.check(layer, fc_arrays(), strategy="directional", method="central")
    assert kept.passed and kept.arrays["W"].analytic is not None
    x = fc_arrays()["x"]
    G = np.random.default_rng(0).standard_normal((4, 20))
    np.testing.assert_allclose(layer.flat.reshape(30, 20), x.T @ G, rtol=1e-12)


def test_directional_checks_at_scale_default_to_central_differences(lend_from_200):
    # complex step would need a complex128 copy (twice the array) and a complex forward
    arrays = fc_arrays()
    assert gradcheck.check(FullyConnected(), arrays, strategy="directional").method == "central"
    small = gradcheck.check(FullyConnected(), arrays, strategy="directional", wrt=["x", "b"])
    assert small.method == "complex"
    assert gradcheck.check(FullyConnected(), arrays, strategy="sampled").method == "complex"


def test_below_the_threshold_directional_checks_keep_complex_step():
    assert gradcheck.check(FullyConnected(), fc_arrays(), strategy="directional").method == "complex"


def test_a_wrong_bias_beside_a_6m_weight_matrix_is_caught_and_located():
    # each array's part of the joint direction has unit norm, so 20 biases are not drowned by 6M weights
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 3000)), "W": rng.standard_normal((3000, 2000)) * 0.02,
              "b": rng.standard_normal(2000)}
    right = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=1)
    assert right.passed and right.method == "central" and right.arrays["W"].analytic is None
    assert right.forwards == 3
    report = gradcheck.check(AveragedBias(), arrays, strategy="directional", directions=1)
    assert [k for k, r in report.arrays.items() if not r.passed] == ["b"]
    assert len([e for e in report.arrays["b"].located if e.failed]) == 10  # MAX_LOCATED: all of b is wrong


# -- detection power of the generated directions (above Direction.EXACT_NORM elements) -------------------


def test_generated_directions_weigh_every_element_within_a_factor_2():
    # A single wrong element j is seen through |u_j| alone: a random sign times a level in [2^14, 2^15)
    size = check_module.Direction.EXACT_NORM + 100_003
    rng = np.random.default_rng(11)
    us = [check_module.random_direction(rng, size)[0:size] for _ in range(3)]
    for u in us:
        w = np.abs(u) * np.sqrt(size)  # each element's weight in units of the RMS
        assert np.linalg.norm(u) == pytest.approx(1.0, abs=3e-3)
        assert w.min() > 0.65 and w.max() < 1.31 and w.max() / w.min() < 2  # never near 0
        assert abs(np.mean(np.sign(u))) < 4 / np.sqrt(size)  # symmetric
        for t in (0.7, 0.9, 1.1, 1.3):  # the levels are uniform: |u_j| sqrt(n) / 0.6547 - 1 on [0, 1)
            assert np.mean(w < t) == pytest.approx(t / 0.65467 - 1, abs=3e-3)
        positive, negative = np.sort(u[u > 0]), np.sort(-u[u < 0])
        assert np.array_equal(np.unique(positive), np.unique(negative))  # the same levels on both sides
    for a, b in [(0, 1), (1, 2), (0, 2)]:  # the directions of one array are independent of each other
        assert abs(np.dot(us[a], us[b])) < 5 / np.sqrt(size)
    # two opposite errors cancel only on a tie: 1 level in 2^15 (2^14 levels of each sign)
    assert np.unique(us[0]).size == 2**15


def test_a_small_wrong_weight_and_a_wrong_bias_are_caught_through_generated_directions(monkeypatch):
    # The generated path on 60,000 weights (EXACT_NORM lowered). by=0.0007 against |dW| ~ 0.6 is over the
    # tolerance along a direction when |u_j| is above ~0.55 of the RMS (0.0005 is caught on 16 seeds of 20):
    # every generated level is (>= 0.65), so one direction catches and locates it on all 20 seeds (uniform
    # levels on (0, 1.73) would miss it ~30% of the time, normal ones ~40%), and so do the default ones.
    monkeypatch.setattr(check_module.Direction, "EXACT_NORM", 1 << 10)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        arrays = {"x": rng.standard_normal((2, 300)), "W": rng.standard_normal((300, 200)) / 17,
                  "b": rng.standard_normal(200)}
        index = (int(rng.integers(300)), int(rng.integers(200)))
        options = dict(strategy="directional", seed=seed, method="central")
        for directions in (1, None):
            report = gradcheck.check(OneWrongWeight(index=index, by=0.0007), arrays, directions=directions,
                                     **options)
            assert [k for k, r in report.arrays.items() if not r.passed] == ["W"], (seed, directions)
            assert [e.index for e in report.arrays["W"].located if e.failed] == [index]
        bias = gradcheck.check(AveragedBias(), arrays, directions=1, **options)
        assert [k for k, r in bias.arrays.items() if not r.passed] == ["b"]


def test_at_scale_two_default_directions_catch_a_wrong_weight_and_a_wrong_bias():
    # 6M weights (over REUSE_ELEMENTS): the default is 2 joint directions, generated and lent
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((4, 3000)), "W": rng.standard_normal((3000, 2000)) * 0.02,
              "b": rng.standard_normal(2000)}
    assert check_module.default_directions([np.size(v) for v in arrays.values()]) == 2
    assert check_module.default_directions([300 * 200, 2 * 300, 200]) == 3
    right = gradcheck.check(FullyConnected(), arrays, strategy="directional")
    assert right.passed and right.forwards == 5 and right.arrays["W"].checked == 2  # 1 + 2 pairs
    index = (1234, 567)  # |dW| ~ 1.5 here; one element of 6M is seen from ~0.1 (1.53 T sqrt(n))
    wrong = gradcheck.check(OneWrongWeight(index=index, by=0.2), arrays, strategy="directional")
    assert [k for k, r in wrong.arrays.items() if not r.passed] == ["W"]
    assert [e.index for e in wrong.arrays["W"].located if e.failed] == [index]
    bias = gradcheck.check(AveragedBias(), arrays, strategy="directional")
    assert [k for k, r in bias.arrays.items() if not r.passed] == ["b"]
