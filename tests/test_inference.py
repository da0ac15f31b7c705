"""Structure inferred from a layer's forward (gradcheck.inference) and the checks that use it.

- the inferred declaration of every reference layer is its own declaration;
- undeclared user layers (tests/user_layers.py) are grouped, with the verdicts of one coordinate per forward;
- planted bugs are caught on the right element on inferred plans, including one that forgets the very
  outputs inference did not see (an under-estimated footprint);
- the irregular and the global-coordinate layers give correct verdicts, and a 20-seed sweep over the
  inferred path raises no false alarm;
- `gradcheck structure CASE` prints a declaration that pastes into the layer; progress, fallback warning.

Arrays are drawn from other seeds than the checker's G (a G equal to x makes batch norm's dx vanish).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import gradcheck
import layers
from gradcheck import cli
from gradcheck.engine import inference, structure
from gradcheck.engine.differencing import Differencer
from gradcheck.output import progress
from gradcheck.strategies import plans
from gradcheck.strategies.setting import rng_of
from tests import user_layers as U

SEEDS = range(20)


def shapes_of(arrays):
    return {k: np.shape(v) for k, v in arrays.items()}


def inferred_entries(layer, arrays, name, seed=0):
    y = np.asarray(layer.forward(**arrays)[0])
    return inference.infer(layer, name, arrays, y.shape, np.random.default_rng(seed)).entries


def conv_arrays(rng, N, C, H, W, F, kh, kw):
    return {"x": rng.standard_normal((N, C, H, W)), "k": rng.standard_normal((F, C, kh, kw)),
            "b": rng.standard_normal(F)}


# -- the reference layers: what inference finds is what they declare ------------------------------------

REFERENCE = {
    "conv-s1-p2": (lambda: layers.Conv2D(pad=2), lambda r: conv_arrays(r, 3, 3, 12, 12, 4, 5, 5)),
    "conv-s2-p1": (lambda: layers.Conv2D(stride=2, pad=1), lambda r: conv_arrays(r, 2, 2, 7, 6, 3, 3, 3)),
    "conv-s3": (lambda: layers.Conv2D(stride=3), lambda r: conv_arrays(r, 2, 2, 8, 7, 3, 2, 2)),
    "conv-mixed": (lambda: layers.Conv2D(stride=(1, 2), pad=(2, 0), mode="convolution"),
                   lambda r: conv_arrays(r, 2, 2, 5, 6, 3, 3, 2)),
    "maxpool": (lambda: layers.MaxPool(2), lambda r: {"x": r.standard_normal((2, 3, 5, 7))}),
    "meanpool3": (lambda: layers.MeanPool(3), lambda r: {"x": r.standard_normal((2, 3, 7, 6))}),
    "subsampling": (lambda: layers.Subsampling(2),
                    lambda r: {"x": r.standard_normal((2, 3, 4, 6)), "beta": r.standard_normal(3),
                               "b": r.standard_normal(3)}),
    "fc": (layers.FullyConnected, lambda r: {"x": r.standard_normal((4, 6)), "W": r.standard_normal((6, 5)),
                                             "b": r.standard_normal(5)}),
    "fc-4d": (layers.FullyConnected, lambda r: {"x": r.standard_normal((3, 2, 2, 3)),
                                                "W": r.standard_normal((12, 5)), "b": r.standard_normal(5)}),
    "relu": (layers.ReLU, lambda r: {"x": r.standard_normal((2, 3, 4))}),
    "sigmoid": (layers.Sigmoid, lambda r: {"x": r.standard_normal((2, 3, 4, 4))}),
    "tanh": (layers.Tanh, lambda r: {"x": r.standard_normal((3, 5))}),
    "fc-as-conv": (layers.FullyConnectedAsConv, lambda r: conv_arrays(r, 2, 3, 4, 4, 4, 2, 3)),
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_inferred_declaration_is_the_layers_own(case, seed):
    make, arrays = REFERENCE[case]
    layer, arrays = make(), arrays(np.random.default_rng(seed))
    for name in layer.inputs:
        declared = layer.structure(name, shapes_of(arrays))
        assert inferred_entries(layer, arrays, name, seed) == tuple(declared), name


def test_inferred_stack_is_the_composed_declaration():
    net = layers.Sequential([("conv", layers.Conv2D(pad=1)), ("f", layers.Sigmoid()),
                             ("pool", layers.MaxPool(2))])
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((2, 1, 8, 8)), "conv.k": rng.standard_normal((2, 1, 3, 3)),
              "conv.b": rng.standard_normal(2)}
    composed = {n: net.structure(n, shapes_of(arrays)) for n in net.inputs}
    assert composed == {"x": (0, None, (2, 2, -1, 4), (3, 2, -1, 4)), "conv.k": (1, None, None, None),
                        "conv.b": (1,)}
    for name in net.inputs:
        assert inferred_entries(net, arrays, name) == composed[name]


def test_a_stack_with_an_undeclared_layer_is_inferred_as_a_whole():
    net = layers.Sequential([("fc", layers.FullyConnected()), ("act", U.Swish()),
                             ("fc2", layers.FullyConnected())])
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((8, 6)), "fc.W": rng.standard_normal((6, 5)),
              "fc.b": rng.standard_normal(5), "fc2.W": rng.standard_normal((5, 4)),
              "fc2.b": rng.standard_normal(4)}
    assert net.structure("x", shapes_of(arrays)) is None  # Swish declares nothing: no composition
    report = gradcheck.check(net, arrays)
    assert report.passed, str(report)
    x = report.arrays["x"]
    assert x.inferred == (0, None) and x.forwards < x.checked  # the batch axis at least is grouped


class CountingSigmoid(layers.Sigmoid):
    """A Sigmoid that counts its forwards (the stack's own forwards on zeros included)."""

    def __init__(self):
        self.calls = 0

    def forward(self, **arrays):
        self.calls += 1
        return super().forward(**arrays)


def test_a_stack_learns_its_shapes_between_layers_once_per_set_of_shapes():
    """Sequential.structure needs every layer's input shape: one forward on zeros per set of array shapes,
    kept, however many arrays ask (it was one per call: 0.45 s each at 100M weights); none at all when a
    layer on the way declares nothing."""
    act = CountingSigmoid()
    net = layers.Sequential([("fc", layers.FullyConnected()), ("act", act), ("fc2", layers.FullyConnected())])
    rng = np.random.default_rng(2)
    arrays = {"x": rng.standard_normal((8, 6)), "fc.W": rng.standard_normal((6, 5)),
              "fc.b": rng.standard_normal(5), "fc2.W": rng.standard_normal((5, 4)),
              "fc2.b": rng.standard_normal(4)}
    shapes = shapes_of(arrays)
    declared = {n: net.structure(n, shapes) for n in net.inputs}
    assert declared == {"x": (0, None), "fc.W": (None, None), "fc.b": (None,), "fc2.W": (None, 1),
                        "fc2.b": (1,)}  # fc's units all reach every unit of fc2
    assert act.calls == 1  # five arrays, one forward on zeros
    assert {n: net.structure(n, shapes) for n in net.inputs} == declared and act.calls == 1
    wider = {**shapes, "x": (3, 6)}
    assert net.structure("x", wider) == (0, None) and act.calls == 2  # new shapes: learnt once more
    report = gradcheck.check(net, arrays)
    assert report.passed and all(r.inferred is None for r in report.arrays.values())
    assert act.calls > 2 and len(net._between) == 2  # the check's forwards, and no new set of shapes
    undeclared = layers.Sequential([("fc", layers.FullyConnected()), ("act", CountingSigmoid()),
                                    ("swish", U.Swish())])
    assert undeclared.structure("x", {k: shapes[k] for k in ("x", "fc.W", "fc.b")}) is None
    assert undeclared.layers[1][1].calls == 0  # Swish declares nothing: no forward on zeros


# -- user layers: grouped, and the verdicts of one coordinate per forward --------------------------------

def user_cases():
    """name -> (layer, arrays from rng, the inferred declaration per array that inference should find)."""
    return {
        "im2col-conv": (U.Im2colConv(stride=1, pad=2), lambda r: {
            "x": r.standard_normal((4, 2, 10, 10)), "k": r.standard_normal((6, 2, 5, 5)),
            "b": r.standard_normal(6)},
            {"x": (0, None, (2, 1, -2, 5), (3, 1, -2, 5)), "k": (1, None, None, None)}),
        "im2col-conv-s2": (U.Im2colConv(stride=2, pad=1), lambda r: {
            "x": r.standard_normal((3, 2, 12, 11)), "k": r.standard_normal((6, 2, 3, 3)),
            "b": r.standard_normal(6)},
            {"x": (0, None, (2, 2, -1, 3), (3, 2, -1, 3)), "k": (1, None, None, None)}),
        "where-maxpool": (U.WhereMaxPool(), lambda r: {"x": r.standard_normal((3, 3, 6, 8))},
                          {"x": (0, 1, (2, 2, 0, 2), (3, 2, 0, 2))}),
        "batchnorm": (U.BatchNorm(), lambda r: {
            "x": r.standard_normal((4, 5, 3, 3)), "gamma": r.standard_normal(5),
            "beta": r.standard_normal(5)},
            {"x": (None, 1, None, None)}),
        "swish": (U.Swish(), lambda r: {"x": 2 * r.standard_normal((4, 5, 6))}, {"x": (0, 1, 2)}),
        "dense": (U.Dense(), lambda r: {
            "x": r.standard_normal((16, 24)), "W": r.standard_normal((24, 12)), "b": r.standard_normal(12)},
            {"x": (0, None), "W": (None, 1)}),
        "sparse-mask": (U.SparseMask(20, 20), lambda r: {
            "x": r.standard_normal((8, 20)), "W": r.standard_normal((20, 20))},
            {"x": (0, None), "W": (None, 1)}),
        "global-scale": (U.GlobalScale(), lambda r: {"x": r.standard_normal((2, 2, 8, 8))},
                         {"x": (0, 1, (2, 2, 0, 2), (3, 2, 0, 2))}),
    }


USER = user_cases()
SMOOTH = {"im2col-conv", "im2col-conv-s2", "batchnorm", "swish", "dense", "sparse-mask", "global-scale"}


def methods(layer):
    return ["complex", "central"] if getattr(layer, "complex_safe", False) else ["central"]


@pytest.mark.parametrize("case", sorted(USER))
def test_user_layers_are_grouped_with_the_inferred_declaration(case):
    layer, make, expected = USER[case]
    report = gradcheck.check(layer, make(np.random.default_rng(10)), strategy="exhaustive")
    assert report.passed, str(report)
    for name, entries in expected.items():
        r = report.arrays[name]
        assert r.inferred == entries, name
        assert r.forwards < r.checked, (name, r.forwards, r.checked)  # below one per coordinate
        assert "structure inferred" in r.summary()
    checked = sum(r.checked for r in report.arrays.values())
    assert report.forwards < checked / 2  # well below, probes included


@pytest.mark.parametrize("case", sorted(USER))
def test_verdicts_are_those_of_one_coordinate_per_forward(case):
    layer, make, _ = USER[case]
    arrays = make(np.random.default_rng(13))
    for method in methods(layer):
        grouped = gradcheck.check(layer, arrays, method=method, seed=3)
        alone = gradcheck.check(layer, arrays, method=method, seed=3, infer=False)
        assert grouped.passed == alone.passed
        for name, g in grouped.arrays.items():
            a = alone.arrays[name]
            assert a.inferred is None and (g.failed, len(g.kinks)) == (a.failed, len(a.kinks))
            scale = np.max(np.abs(a.numeric)) + 1
            np.testing.assert_allclose(g.numeric, a.numeric, rtol=0, atol=1e-6 * scale, err_msg=name)


def test_probes_are_counted_in_forwards():
    layer, arrays = U.Dense(), USER["dense"][1](np.random.default_rng(10))
    y = layer.forward(**arrays)[0]
    diff = Differencer(layer, arrays, np.ones(y.shape), "complex", 1e-20)
    rng = rng_of(0, "W")  # the rng the check gives W
    plan = plans.declaration(diff, "W", y.shape, rng, coordinates=arrays["W"].size)
    assert plan.entries == (None, 1) and plan.inferred.probed > 0
    assert diff.forwards == 1 + 2 * plan.inferred.probed  # the base point, then NaN + a finite step each
    report = gradcheck.check(layer, arrays, method="complex")
    W = report.arrays["W"]
    assert W.forwards == 1 + 2 * plan.inferred.probed + plan.count  # then one forward per group


def test_small_arrays_and_scalar_outputs_are_not_probed():
    rng = np.random.default_rng(0)
    report = gradcheck.check(U.Dense(), {"x": rng.standard_normal((2, 3)), "W": rng.standard_normal((3, 2)),
                                         "b": rng.standard_normal(2)})
    assert all(r.inferred is None for r in report.arrays.values())  # alone is cheaper than probing
    assert report.arrays["b"].forwards == 2
    found = inference.infer(layers.SquaredError(), "y", {"y": np.ones((4, 5)), "t": np.zeros((4, 5))}, (),
                            rng)
    assert found.entries == (None, None) and found.probed == 0


def test_a_layer_that_refuses_nan_is_probed_with_finite_steps_only():
    class NoNaN(U.Swish):
        def forward(self, x):
            if np.isnan(x).any():
                raise ValueError("NaN input")
            return super().forward(x)

    x = {"x": np.random.default_rng(0).standard_normal((4, 6))}
    assert inferred_entries(NoNaN(), x, "x") == (0, 1)

    class PositiveOnly(U.Swish):
        def forward(self, x):
            if (x.real < -50).any():
                raise ValueError("out of range")
            return super().forward(x)

    x = {"x": np.linspace(-40, 40, 24).reshape(4, 6)}  # a probe step of -(1 + |x|) leaves the range
    found = inference.infer(PositiveOnly(), "x", x, (4, 6), np.random.default_rng(0))
    assert found.unrestricted and "raised" in found.note
    assert gradcheck.check(PositiveOnly(), x).passed  # one coordinate per forward, nothing lost


# -- planted bugs on inferred plans ---------------------------------------------------------------------

class DenseOneWrongWeight(U.Dense):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"][4, 2] += 0.5
        return g


class ConvKernelNotRotated(U.Im2colConv):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["k"] = g["k"][..., ::-1, ::-1].copy()
        return g


class ConvOneWrongInput(U.Im2colConv):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["x"] = g["x"].copy()
        g["x"][1, 0, 4, 6] *= 1.5
        return g


class BatchNormWithoutMeanTerm(U.BatchNorm):
    """dx without the -sum(dxhat) / m term: right only where the mean does not move."""

    def backward(self, dy, cache):
        xhat, inv, gamma = cache
        g = super().backward(dy, cache)
        m = dy.shape[0] * dy.shape[2] * dy.shape[3]
        dxhat = dy * gamma[None, :, None, None]
        g["x"] = g["x"] + inv / m * dxhat.sum(axis=(0, 2, 3), keepdims=True)
        return g


class MaxPoolToTheWrongCorner(U.WhereMaxPool):
    """The gradient of one window goes to its top-left corner whatever the maximum."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        dx = g["x"].copy()
        dx[0, 1, 2:4, 4:6] = 0
        dx[0, 1, 2, 4] = dy[0, 1, 1, 2]
        return {"x": dx}


class GlobalScaleForgetsTheScale(U.GlobalScale):
    """dx[g] without the global term: wrong exactly where inference (whose probes miss g) under-estimates."""

    def backward(self, dy, cache):
        shape, pooled, t = cache
        return {"x": np.repeat(np.repeat(dy * (1 + t / 2) / 4, 2, axis=2), 2, axis=3)}


def failed_at(result):
    return sorted(e.index for e in result.worst if e.failed)


@pytest.mark.parametrize("method", ["complex", "central"])
def test_one_wrong_weight_is_named_on_an_inferred_plan(method):
    arrays = USER["dense"][1](np.random.default_rng(10))
    report = gradcheck.check(DenseOneWrongWeight(), arrays, method=method)
    W = report.arrays["W"]
    assert not report.passed and {n for n, r in report.arrays.items() if not r.passed} == {"W"}
    assert W.inferred == (None, 1) and W.failed == 1 and failed_at(W) == [(4, 2)]
    assert W.rechecked == 1  # the failure was confirmed alone


def test_conv_bugs_are_named_on_inferred_plans():
    arrays = USER["im2col-conv"][1](np.random.default_rng(10))
    report = gradcheck.check(ConvKernelNotRotated(pad=2), arrays)
    assert {n for n, r in report.arrays.items() if not r.passed} == {"k"}
    assert report.arrays["k"].inferred == (1, None, None, None)
    report = gradcheck.check(ConvOneWrongInput(pad=2), arrays)
    x = report.arrays["x"]
    assert {n for n, r in report.arrays.items() if not r.passed} == {"x"}
    assert x.inferred is not None and x.failed == 1 and failed_at(x) == [(1, 0, 4, 6)]


def test_batchnorm_without_its_mean_term_fails_in_x_only():
    arrays = USER["batchnorm"][1](np.random.default_rng(10))
    for method in ("complex", "central"):
        report = gradcheck.check(BatchNormWithoutMeanTerm(), arrays, method=method)
        assert {n for n, r in report.arrays.items() if not r.passed} == {"x"}
        assert report.arrays["x"].inferred == (None, 1, None, None)


def test_max_pool_gradient_in_the_wrong_corner_is_named():
    arrays = USER["where-maxpool"][1](np.random.default_rng(10))
    x = arrays["x"][0, 1, 2:4, 4:6]
    truth = tuple(int(v) for v in np.unravel_index(np.argmax(x), x.shape))
    report = gradcheck.check(MaxPoolToTheWrongCorner(), arrays)
    r = report.arrays["x"]
    assert r.inferred == (0, 1, (2, 2, 0, 2), (3, 2, 0, 2))
    expected = sorted({(0, 1, 2, 4), (0, 1, 2 + truth[0], 4 + truth[1])})
    assert failed_at(r) == expected and r.failed == len(expected)


@pytest.mark.parametrize("method", ["complex", "central"])
def test_a_bug_that_forgets_what_inference_did_not_see_is_still_caught(method):
    """GlobalScale's x[g] touches every output but no probe reaches it: the plan groups g as a window, so
    g's grouped value misses the same term the planted backward forgets, and agrees with it. The mixing
    shows in g's group mates (they fail grouped, pass alone), so the whole group is re-checked alone."""
    layer = GlobalScaleForgetsTheScale()
    x = {"x": np.random.default_rng(5).standard_normal((2, 2, 8, 8))}
    r = gradcheck.check(layer, x, method=method).arrays["x"]
    assert r.inferred == (0, 1, (2, 2, 0, 2), (3, 2, 0, 2))  # g, the middle coordinate, was not probed
    assert r.failed == 1 and failed_at(r) == [layer._g(x["x"].shape)]


class SeesWhatTheGroupedPlanSeesAndWrongInTheFirstSample(U.GlobalScale):
    """dx[g] with the global term of g's own output window only, exactly what a grouped plan that takes g
    for a window measures; and dx of the whole first sample 1.5 times too large: 128 more failures, so
    central differences re-test them at smaller steps with one more pass of the grouped plan."""

    def backward(self, dy, cache):
        shape, pooled, t = cache
        dx = np.repeat(np.repeat(dy * (1 + t / 2) / 4, 2, axis=2), 2, axis=3)
        n, c, i, j = self._g(shape)
        dx[n, c, i, j] += dy[n, c, i // 2, j // 2] * pooled[n, c, i // 2, j // 2] * (1 - t * t) / 2
        dx[0] *= 1.5
        return {"x": dx}


def test_a_grouped_rerun_on_an_inferred_plan_does_not_excuse_a_mixed_value_as_a_kink():
    """More failures than REFINE_LIMIT are re-tested at eps/10 on the grouped plan, where g's value is mixed
    again and agrees with the backward: g passes there with an error that fell, as next to a kink. It is
    a kink only if its analytic value lies between its one-sided differences, and those are g's values
    alone (strategies.alone replaces them too): g fails."""
    layer = SeesWhatTheGroupedPlanSeesAndWrongInTheFirstSample()
    x = {"x": np.random.default_rng(5).standard_normal((2, 2, 8, 8))}
    r = gradcheck.check(layer, x, method="central").arrays["x"]
    g = layer._g(x["x"].shape)
    assert r.inferred == (0, 1, (2, 2, 0, 2), (3, 2, 0, 2))
    alone = gradcheck.check(layer, x, method="central", infer=False).arrays["x"]
    assert alone.failed == 129 and not alone.kinks
    assert r.failed == 129 and not r.kinks
    np.testing.assert_allclose(r.numeric[g], alone.numeric[g], rtol=1e-6)  # g's value alone is reported


class Undeclared:
    """A layer without its structure declaration (everything else delegated): the checker must infer it."""

    def __init__(self, layer):
        self.layer, self.inputs = layer, layer.inputs
        self.complex_safe = getattr(layer, "complex_safe", False)

    def forward(self, **arrays):
        return self.layer.forward(**arrays)

    def backward(self, dy, cache):
        return self.layer.backward(dy, cache)


def planted_cases():
    """tests/planted.py's bugs, at shapes where every array they break is large enough to be inferred."""
    from tests import planted

    def fc(r):
        return {"x": r.standard_normal((8, 30)), "W": r.standard_normal((30, 40)), "b": r.standard_normal(40)}

    return {
        "averaged-bias": (planted.AveragedBias(), fc),
        "one-wrong-weight": (planted.OneWrongWeight(index=(7, 11), by=0.3), fc),
        "sigmoid-without-1-f": (planted.SigmoidWithoutOneMinusF(),
                                lambda r: {"x": r.standard_normal((4, 5, 6))}),
        "subsampling-without-beta": (planted.SubsamplingWithoutBeta(2), lambda r: {
            "x": r.standard_normal((2, 3, 8, 8)), "beta": r.standard_normal(3) + 2,
            "b": r.standard_normal(3)}),
        "kernel-not-rotated": (planted.KernelNotRotated(pad=1),
                               lambda r: conv_arrays(r, 2, 3, 6, 6, 4, 3, 3)),
    }


PLANTED = planted_cases()


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled"])
@pytest.mark.parametrize("case", sorted(PLANTED))
def test_planted_bugs_are_caught_on_inferred_plans_as_on_declared_ones(case, strategy):
    layer, make = PLANTED[case]
    arrays = make(np.random.default_rng(21))
    for method in methods(layer):
        declared = gradcheck.check(layer, arrays, strategy=strategy, method=method, samples=200)
        inferred = gradcheck.check(Undeclared(layer), arrays, strategy=strategy, method=method, samples=200)
        bad = {n for n, r in declared.arrays.items() if not r.passed}
        assert bad and {n for n, r in inferred.arrays.items() if not r.passed} == bad
        for name in bad:
            d, i = declared.arrays[name], inferred.arrays[name]
            assert i.inferred is not None and d.inferred is None, name  # the bug sits on an inferred plan
            assert i.failed == d.failed and failed_at(i) == failed_at(d), name


# -- irregular connectivity and a global coordinate: correct verdicts -----------------------------------

@pytest.mark.parametrize("g", [None, (0, 0, 0, 0), (1, 1, 7, 7), (0, 1, 3, 2)])
def test_a_coordinate_that_touches_everything_costs_time_not_a_false_alarm(g):
    layer = U.GlobalScale(g)
    for seed in range(3):
        x = {"x": np.random.default_rng(100 + seed).standard_normal((2, 2, 8, 8))}
        for method in ("complex", "central"):
            report = gradcheck.check(layer, x, method=method, seed=seed)
            assert report.passed and not report.arrays["x"].kinks, str(report)


def test_irregular_connectivity_passes_with_no_false_alarm():
    for seed in range(5):
        layer = U.SparseMask(24, 24, band=3, density=0.4, seed=seed)
        rng = np.random.default_rng(100 + seed)
        arrays = {"x": rng.standard_normal((5, 24)), "W": rng.standard_normal((24, 24))}
        for method in ("complex", "central"):
            report = gradcheck.check(layer, arrays, method=method, seed=seed)
            assert report.passed and report.arrays["x"].inferred is not None, str(report)


# -- no false alarms over 20 seeds on the inferred path --------------------------------------------------

SWEEP = {
    "im2col-conv": (U.Im2colConv(stride=1, pad=1), lambda r: {
        "x": r.standard_normal((2, 2, 6, 6)), "k": r.standard_normal((2, 2, 3, 3)),
        "b": r.standard_normal(2)}),
    "where-maxpool": (U.WhereMaxPool(), lambda r: {"x": r.standard_normal((2, 2, 6, 6))}),
    "batchnorm": (U.BatchNorm(), lambda r: {"x": r.standard_normal((3, 3, 3, 3)),
                                            "gamma": r.standard_normal(3), "beta": r.standard_normal(3)}),
    "swish": (U.Swish(), lambda r: {"x": 2 * r.standard_normal((3, 4, 5))}),
    "dense": (U.Dense(), lambda r: {"x": r.standard_normal((5, 8)), "W": r.standard_normal((8, 6)),
                                    "b": r.standard_normal(6)}),
    "sparse-mask": (U.SparseMask(16, 16), lambda r: {"x": r.standard_normal((3, 16)),
                                                     "W": r.standard_normal((16, 16))}),
    "global-scale": (U.GlobalScale(), lambda r: {"x": r.standard_normal((2, 2, 6, 6))}),
}


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled"])
@pytest.mark.parametrize("case", sorted(SWEEP))
def test_inferred_path_passes_20_seeds(case, strategy):
    layer, make = SWEEP[case]
    inferred = 0
    for seed in SEEDS:
        arrays = make(np.random.default_rng(2000 + seed))
        for method in methods(layer):
            report = gradcheck.check(layer, arrays, strategy=strategy, method=method, seed=seed, samples=60)
            assert report.passed, str(report)
            if case != "where-maxpool":
                assert not any(r.kinks for r in report.arrays.values()), str(report)
            inferred += any(r.inferred is not None for r in report.arrays.values())
    assert inferred == len(SEEDS) * len(methods(layer))  # every run went through an inferred plan


# -- gradcheck structure CASE, progress --------------------------------------------------------------------

CASE = """\
name: user-conv
source: "003 - a user's im2col convolution, pad 1"
layer: userlayers:Im2colConv
config: {pad: 1}
inputs:
  x: {shape: [3, 2, 8, 8]}
  k: {shape: [4, 2, 3, 3]}
  b: {shape: [4]}
check: {strategy: exhaustive}
"""


def test_structure_command_prints_a_declaration_that_pastes_into_the_layer(tmp_path):
    (tmp_path / "userlayers.py").write_text(open(U.__file__).read())
    (tmp_path / "conv.yaml").write_text(CASE)
    result = CliRunner().invoke(cli.main, ["structure", "user-conv", "--cases", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "'x': (0, None, (2, 1, -1, 3), (3, 1, -1, 3)),  # inferred: 18 groups for 384 coordinates" in out
    assert "'k': (1, None, None, None),  # inferred: 18 groups for 72 coordinates" in out
    code = out[out.index("def structure"):]
    namespace = {}
    exec("class Declared(U.Im2colConv):\n" + "\n".join("    " + line for line in code.splitlines()),
         {"U": U}, namespace)
    layer = namespace["Declared"](pad=1)
    rng = np.random.default_rng(7)
    arrays = {"x": rng.standard_normal((3, 2, 8, 8)), "k": rng.standard_normal((4, 2, 3, 3)),
              "b": rng.standard_normal(4)}
    report = gradcheck.check(layer, arrays)
    assert report.passed and all(r.inferred is None for r in report.arrays.values())  # declared now
    assert structure.count(layer, "x", arrays, (3, 4, 8, 8)) == 18
    missing = CliRunner().invoke(cli.main, ["structure", "no-such-case", "--cases", str(tmp_path)])
    assert missing.exit_code == 2 and "no case named" in missing.output


def test_structure_command_on_a_declared_layer_says_declared(tmp_path):
    (tmp_path / "fc.yaml").write_text(CASE.replace("userlayers:Im2colConv", "conv2d").replace("user-conv",
                                                                                            "ref-conv"))
    result = CliRunner().invoke(cli.main, ["structure", str(tmp_path / "fc.yaml")])
    assert result.exit_code == 0, result.output
    assert "'x': (0, None, (2, 1, -1, 3), (3, 1, -1, 3)),  # declared: 18 groups" in result.output


def test_progress_is_reported_per_array():
    calls = []
    arrays = USER["dense"][1](np.random.default_rng(10))
    gradcheck.check(U.Dense(), arrays, progress=lambda *a: calls.append(a))
    by_array = {}
    for name, done, total, coordinates in calls:
        by_array.setdefault(name, []).append((done, total, coordinates))
    assert set(by_array) == {"x", "W", "b"}
    assert by_array["W"][0] == (0, 24, 288) and by_array["W"][-1] == (24, 24, 288)  # 24 groups for 288
    assert by_array["b"][-1] == (12, 12, 12)  # b alone: one coordinate per forward


def test_a_long_fallback_to_one_coordinate_per_forward_is_announced(monkeypatch):
    monkeypatch.setattr(progress, "PROGRESS_AFTER", 0.0)
    text = io.StringIO()
    watch = progress.Watch(Console(file=text, width=300), None)
    watch.started("my-case")
    watch("x", 0, 500, 500)
    watch("x", 1, 500, 500)
    watch("x", 2, 500, 500)
    watch("W", 0, 10, 400)
    watch("W", 1, 10, 400)  # grouped: no warning
    out = text.getvalue()
    assert out.count("one coordinate per forward") == 1
    assert "my-case: x: one coordinate per forward (500 of them, about" in out
    assert "Declare `structure`" in out and "gradcheck structure my-case" in out and "sampled" in out
