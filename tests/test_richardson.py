"""Richardson extrapolation of central differences (gradcheck.engine.methods.richardson, method="richardson"):
a relative error of 1e-10 on one element of a layer that is not complex-safe is caught on that element;
right layers pass; kinks are handed to central differences and stay kinks; float32 keeps float32
tolerances; twice central's forwards; convergence order ~4. Small shapes: the whole file runs in seconds."""

import numpy as np
import pytest

import gradcheck
from gradcheck.engine import convergence, methods, tolerance
from gradcheck.engine.differencing import Differencer
from gradcheck.engine.methods import central, richardson
from gradcheck.engine.problem import Problem
from gradcheck.engine.verdict import classify
from gradcheck.errors import CaseError
from layers import Conv2D, FullyConnected, MaxPool, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh
from tests.planted import ScaledElement, TanhFC
from tests.test_complex import ComplexMul, GarbageImaginary, mul_arrays

RICH = richardson.METHOD
U = tolerance.unit_roundoff(np.float64)


def tanh_fc_arrays(seed, N=16, D=100, F=10, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)).astype(dtype),
            "W": (rng.standard_normal((D, F)) / np.sqrt(D)).astype(dtype),
            "b": rng.standard_normal(F).astype(dtype)}


def dW(layer, arrays, seed=0):
    """The analytic dW for the checker's G of `seed`."""
    y, cache = layer.forward(**arrays)
    return layer.backward(np.random.default_rng(seed).standard_normal(y.shape), cache)["W"]


class RealOnly:
    """Any layer, declared not complex-safe (its forward written with real-only NumPy, say)."""

    def __init__(self, layer):
        self.layer, self.inputs = layer, layer.inputs
        self.constants = getattr(layer, "constants", ())
        self.complex_safe = False

    def forward(self, **arrays):
        return self.layer.forward(**arrays)

    def backward(self, dy, cache):
        return self.layer.backward(dy, cache)

    def structure(self, name, shapes):
        declare = getattr(self.layer, "structure", None)
        return None if declare is None else declare(name, shapes)


# -- the error model -----------------------------------------------------------------------------------


def test_step_rtol_registration_and_the_default_for_layers_that_are_not_complex_safe():
    assert RICH.default_eps() == pytest.approx((90 * U / tolerance.TRUNCATION_BOUND) ** 0.2)
    assert tolerance.default_eps("richardson") == pytest.approx(3.98e-4, rel=1e-2)
    assert tolerance.default_rtol("richardson", RICH.default_eps(), np.float64) == pytest.approx(2048 * U)
    assert "richardson" in methods.names() and methods.get("richardson") is RICH
    assert (RICH.forwards, RICH.order, RICH.fallback, RICH.bounded) == (4, 4, "central", True)
    report = gradcheck.check(TanhFC(), tanh_fc_arrays(0, N=4, D=6, F=3))
    assert report.method == "richardson" and report.passed and report.eps == RICH.default_eps()


def test_a_case_file_asks_for_it_with_method_richardson(tmp_path):
    from gradcheck.catalogue.case import load_file
    from gradcheck.catalogue.runner import run_case
    from gradcheck.output.json import report_dict

    path = tmp_path / "relu.yaml"
    path.write_text("name: relu-richardson\nlayer: relu\ninputs:\n  x: {shape: [3, 4]}\n"
                    "check: {strategy: exhaustive, method: richardson}\n", encoding="utf-8")
    [case] = load_file(path)
    report = run_case(case)
    assert report.passed and report.method == "richardson" and report.eps == RICH.default_eps()
    assert report_dict(case, report)["arrays"]["x"]["fallback"] == report.arrays["x"].fallback
    path.write_text(path.read_text(encoding="utf-8").replace("richardson", "richardsn"), encoding="utf-8")
    with pytest.raises(CaseError, match="check.method: expected one of complex, central, richardson; got "
                                        "'richardsn'"):
        load_file(path)


def test_central_keeps_its_own_rules_through_the_hooks():
    """The hooks' defaults are central's: classify with method=central is classify without a method, and
    central's re-test rules are the ones it always had."""
    rng = np.random.default_rng(0)
    a, n, left, right = (rng.standard_normal(50) for _ in range(4))
    left[:10], right[:10] = 0.0, 1.0  # kinks
    kw = dict(rtol=1e-3, atol=1e-3, eps=1e-2, rounding=1e-4, cleared=rng.random(50) < 0.3)
    for got, want in zip(classify(a, n, left, right, **kw, method=central.METHOD),
                         classify(a, n, left, right, **kw), strict=True):
        np.testing.assert_array_equal(got, want)
    assert central.METHOD.refine_factors == tolerance.REFINE_FACTORS and not central.METHOD.bounded
    cleared, settled = central.METHOD.refined(np.array([1.0, 1.0]), np.array([0.1, 0.1]),
                                              np.array([0.2, 0.01]), np.array([0.3, 0.3]))
    assert cleared.tolist() == [True, True] and settled.tolist() == [True, True]
    assert RICH.refined(np.array([1.0]), np.array([0.1]), np.array([0.2]), np.array([0.3]))[0].tolist() == [
        True]  # 0.2 + 0.3 + 0.1 < 1: fell by more than both tolerances
    assert RICH.refined(np.array([1.0]), np.array([0.1]), np.array([0.2]), np.array([0.8]))[0].tolist() == [
        False]  # passes at the smaller step, but within its noise


@pytest.mark.parametrize("layer, arrays", [
    (Sigmoid(), {"x": 2 * np.random.default_rng(1).standard_normal((3, 4))}),
    (Tanh(), {"x": 3 * np.random.default_rng(2).standard_normal((2, 7))}),
    (FullyConnected(), tanh_fc_arrays(3, N=4, D=8, F=3)),
    (Sequential([("fc", FullyConnected()), ("f", Tanh())]), {
        "x": np.random.default_rng(4).standard_normal((4, 10)),
        "fc.W": np.random.default_rng(5).standard_normal((10, 3)) / 3, "fc.b": np.ones(3)}),
], ids=["sigmoid", "tanh", "fc", "fc-tanh"])
def test_the_per_element_bound_covers_the_error_against_complex_step(layer, arrays):
    """On complex-safe layers complex step is exact to ~1e-15: R's error against it stays under R's own
    Bound (rounding + a-posteriori truncation), element by element, and not far under it either."""
    y = np.asarray(layer.forward(**arrays)[0])
    G = np.random.default_rng(9).standard_normal(y.shape)
    for name in layer.inputs:
        exact = Differencer(layer, arrays, G, "complex", 1e-20)
        rich = Differencer(layer, arrays, G, "richardson", RICH.default_eps())
        worst = 0.0
        for j in range(np.size(arrays[name])):
            truth = exact.coordinates(name, [j])[0][0]
            value = rich.coordinates(name, [j])[0][0]
            bound = rich.bound(name, [j]).total[0] + 1e-13 * abs(truth)
            worst = max(worst, abs(value - truth) / bound)
        assert worst <= 1, (name, worst)
        assert worst > 1e-4, (name, worst)  # a bound, not a blanket


def test_the_truncation_bound_is_measured_from_the_evaluations():
    """A steep smooth function (tanh(4x)): the a-posteriori term carries the truncation, and stays a bound;
    a group's values and bounds are those of its coordinates alone (bound() by coordinate)."""

    class Steep:
        inputs = ("x",)
        complex_safe = False

        def forward(self, x):
            y = np.tanh(4 * x)
            return y, y

        def backward(self, dy, cache):
            return {"x": 4 * dy * (1 - cache * cache)}

    x = np.linspace(-1, 1, 41).reshape(1, -1)
    d = Differencer(Steep(), {"x": x}, np.ones_like(x), "richardson", RICH.default_eps())
    coords = np.arange(x.size)
    value, left, right = d.coordinates("x", coords[::-1], np.arange(x.size)[::-1].copy())
    value, left = value[::-1], left[::-1]
    bound = d.bound("x", coords)
    exact = (4 / np.cosh(4 * x) ** 2).ravel()
    assert np.all(np.abs(value - exact) <= bound.total + 1e-13 * np.abs(exact))
    assert np.max(bound.truncation / bound.rounding) > 1  # somewhere truncation is the larger term
    np.testing.assert_allclose(left, exact, rtol=1e-5)  # second-order one-sided differences
    assert gradcheck.check(Steep(), {"x": x}, method="richardson").passed


# -- detection: 1e-10 on one element --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(2))
def test_a_relative_error_of_1e_10_on_one_element_of_dW_is_caught_on_that_element(seed):
    arrays = tanh_fc_arrays(seed)
    g = dW(TanhFC(), arrays, seed)
    # the largest element, and one of typical size (the median): 1e-10 of them is above the bound
    order = np.argsort(np.abs(g).ravel())
    for flat in (int(order[-1]), int(order[g.size // 2])):
        index = tuple(int(i) for i in np.unravel_index(flat, g.shape))
        layer = ScaledElement(TanhFC(), "W", index, 1e-10)
        report = gradcheck.check(layer, arrays, seed=seed)  # the default for a layer not complex-safe
        W = report.arrays["W"]
        assert report.method == "richardson"
        assert not report.passed and W.failed == 1 and W.fallback == 0, str(report)
        [e] = [e for e in W.worst if e.failed]
        assert e.index == index and e.analytic == g[index] * (1 + 1e-10)
        assert e.error == pytest.approx(1e-10 * abs(g[index]), rel=0.1)  # R is exact to ~1e-12 here
        assert e.tolerance < 0.5 * e.error
        assert report.arrays["x"].passed and report.arrays["b"].passed
        # central differences at their cube-root step cannot resolve it (rtol 6.1e-9): a pass
        missed = gradcheck.check(layer, arrays, seed=seed, method="central").arrays["W"]
        assert missed.passed and missed.margin < 0.1 and missed.rtol == pytest.approx(6.1e-9, rel=0.01)


def test_a_relative_error_on_one_element_is_located_by_a_directional_check():
    arrays = tanh_fc_arrays(5, N=8, D=30, F=6)
    index = (17, 4)
    report = gradcheck.check(ScaledElement(TanhFC(), "W", index, 1e-6), arrays, strategy="directional",
                             method="richardson")
    assert not report.passed
    assert [e.index for e in report.arrays["W"].located if e.failed] == [index]
    assert gradcheck.check(TanhFC(), arrays, strategy="directional", method="richardson").passed


def test_complex_inputs_are_checked_as_their_parts():
    report = gradcheck.check(ComplexMul(), mul_arrays(), seed=3, method="richardson")
    assert report.passed and report.arrays["x"].checked == 24, str(report)
    bad = gradcheck.check(GarbageImaginary(), mul_arrays(), method="richardson")
    x = bad.arrays["x"]
    assert x.failed == 12 and all(e.part == "im" for e in x.worst if e.failed)


# -- no false alarms ------------------------------------------------------------------------------------


def small_fc_arrays(rng):
    return tanh_fc_arrays(int(rng.integers(1 << 30)), N=4, D=12, F=5)


CORRECT = {
    "tanh-fc": lambda rng: (TanhFC(), small_fc_arrays(rng)),
    "fc": lambda rng: (RealOnly(FullyConnected()), small_fc_arrays(rng)),
    "conv": lambda rng: (RealOnly(Conv2D(stride=2, pad=1)), {
        "x": rng.standard_normal((2, 2, 5, 4)), "k": rng.standard_normal((3, 2, 3, 3)),
        "b": rng.standard_normal(3)}),
    "sigmoid": lambda rng: (RealOnly(Sigmoid()), {"x": 3 * rng.standard_normal((3, 4))}),
    "conv-tanh-fc-sigmoid": lambda rng: (RealOnly(Sequential([
        ("conv", Conv2D(pad=1)), ("f", Tanh()), ("fc", FullyConnected()), ("g", Sigmoid())])), {
        "x": rng.standard_normal((2, 1, 4, 4)), "conv.k": rng.standard_normal((2, 1, 3, 3)),
        "conv.b": rng.standard_normal(2), "fc.W": rng.standard_normal((32, 3)) / 5,
        "fc.b": rng.standard_normal(3)}),
    "fc-softmax": lambda rng: (RealOnly(Sequential([("fc", FullyConnected()),
                                                    ("loss", SoftmaxCrossEntropy())])), {
        "x": rng.standard_normal((5, 6)), "fc.W": rng.standard_normal((6, 4)), "fc.b": rng.standard_normal(4),
        "loss.t": rng.integers(0, 4, 5)}),
}


@pytest.mark.parametrize("case", sorted(CORRECT))
def test_right_smooth_layers_pass_over_seeds_without_kinks(case):
    margins = []
    for seed in range(4):
        layer, arrays = CORRECT[case](np.random.default_rng(500 + seed))
        for strategy in ("exhaustive", "sampled", "directional"):
            report = gradcheck.check(layer, arrays, strategy=strategy, seed=seed, method="richardson",
                                     samples=6, directions=2)
            assert report.passed, str(report)
            assert not any(r.kinks or r.fallback for r in report.arrays.values()), str(report)
            margins.append(report.margin)
    assert 0 < max(margins) < 1


def small_catalogue():
    from gradcheck.catalogue.case import load_paths

    return [c for c in load_paths(["cases"]) if not isinstance(c, Exception) and c.elements() <= 4096]


SMALL_CASES = small_catalogue()


def test_the_small_catalogue_is_most_of_it():
    names = {c.name for c in SMALL_CASES}
    assert len(names) >= 12
    assert {"max-pool-2x2-of-4x4", "chain-bouvrie-conv-sigmoid-subsampling-sigmoid"} <= names


@pytest.mark.parametrize("case", SMALL_CASES, ids=[c.name for c in SMALL_CASES])
def test_small_catalogue_cases_pass_with_richardson_over_seeds(case):
    """The catalogue's cases of at most 4096 elements, their own strategy, richardson instead of their
    method: no false alarm over two seeds (with their residuals: Bouvrie's chains)."""
    for seed in (1, 2):
        options = {**case.options(seed=seed), "method": "richardson"}
        options.pop("eps", None)
        report = gradcheck.check(case.layer, case.arrays(seed), **options)
        assert report.passed and report.method == "richardson", str(report)


# -- kinks ------------------------------------------------------------------------------------------------


def test_relu_at_zero_is_handed_to_central_and_is_a_kink_there():
    x = np.array([[0.7, 0.0, -1.2, 0.0], [0.0, 2.0, -0.3, 1.1]])
    report = gradcheck.check(ReLU(), {"x": x}, method="richardson")
    result = report.arrays["x"]
    assert report.method == "richardson" and report.passed
    assert {k.index for k in result.kinks} == {(0, 1), (0, 3), (1, 0)} and result.fallback == 3
    assert "3 handed to richardson's fallback method" in str(report)
    G = np.random.default_rng(0).standard_normal(x.shape)
    by_central = {k.index: k for k in gradcheck.check(ReLU(), {"x": x}, method="central").arrays["x"].kinks}
    for k in result.kinks:  # central's values, at central's step, under central's tolerance
        assert k.left == pytest.approx(0.0, abs=1e-12) and k.right == pytest.approx(G[k.index], rel=1e-9)
        assert k.numeric == pytest.approx(G[k.index] / 2, rel=1e-9)
        assert (k.numeric, k.tolerance) == (by_central[k.index].numeric, by_central[k.index].tolerance)
    assert result.margin < 1e-3


def test_tied_maxima_are_kinks_and_a_wrong_value_at_a_tie_is_a_mismatch():
    x = np.array([[[[1.0, 1.0, 0.2, -0.5], [0.3, -1.0, 0.9, 0.1],
                    [2.0, 0.4, -0.2, 0.7], [0.1, 2.0, 0.7, 0.7]]]])
    report = gradcheck.check(MaxPool(2), {"x": x}, method="richardson")
    assert report.passed, str(report)
    assert {k.index for k in report.arrays["x"].kinks} == {
        (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 2, 0), (0, 0, 3, 1), (0, 0, 2, 3), (0, 0, 3, 2), (0, 0, 3, 3)}

    class DoubleAtTies(MaxPool):
        def backward(self, dy, cache):
            return {"x": 2 * super().backward(dy, cache)["x"]}

    bad = gradcheck.check(DoubleAtTies(2), {"x": x}, method="richardson")
    assert not bad.passed
    assert {(0, 0, 1, 2), (0, 0, 0, 0), (0, 0, 2, 0)} <= {e.index for e in bad.arrays["x"].worst if e.failed}


class ShiftedReLU:
    """y = relu(x + c), one shared shift c: a kink of one element near c moves dL/dc by G of that element."""

    inputs = ("x", "c")

    def forward(self, x, c):
        return np.maximum(x + c, 0.0), x + c > 0

    def backward(self, dy, active):
        return {"x": dy * active, "c": np.array([np.sum(dy * active)])}


def near_kink(offset, n=2000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.01, 1.0, n) * rng.choice([-1.0, 1.0], n)
    x[7] = offset
    return {"x": x, "c": np.zeros(1)}


@pytest.mark.parametrize("where", [0.5, -1.5])
def test_a_kink_inside_the_stencil_hands_the_coordinate_to_central(where):
    """x[7] + c crosses 0 at c = -where h: inside [-2h, 2h], outside central's [-6e-6, 6e-6]. The one-sided
    differences disagree (rough), central differences decide it: a pass, no kink, central's value."""
    arrays = near_kink(where * RICH.default_eps())
    report = gradcheck.check(ShiftedReLU(), arrays, wrt=["c"], method="richardson")
    c = report.arrays["c"]
    assert report.passed and c.fallback == 1 and not c.kinks, str(report)
    assert c.numeric[0] == pytest.approx(c.analytic[0], rel=1e-8) and c.margin < 1


def test_a_kink_at_2h_over_3_is_cleared_by_the_smaller_steps():
    """At 2h/3 the even difference E(2h) - 4E(h) is blind to the kink (the one-sided differences agree:
    not rough): only the re-tests at smaller steps tell it from a wrong gradient."""
    arrays = near_kink(-2 / 3 * RICH.default_eps())
    report = gradcheck.check(ShiftedReLU(), arrays, wrt=["c"], method="richardson")
    c = report.arrays["c"]
    assert report.passed and c.fallback == 0, str(report)
    [k] = c.kinks
    assert k.error > k.tolerance
    rounding = RICH.rounding_atol(report.eps, np.sum(np.abs(arrays["x"])) * 10)
    assert abs(k.right - k.left) < RICH.kink_threshold(k.left, k.right, report.eps, rounding)
    directional = gradcheck.check(ShiftedReLU(), arrays, wrt=["c"], strategy="directional", directions=2,
                                  method="richardson")
    assert directional.passed and len(directional.arrays["c"].kinks) == 2


def test_a_small_wrong_gradient_is_not_cleared_by_the_smaller_steps():
    """A relative 1e-9 error on every dW plateaus at h/10: a mismatch, never a kink (the smallest elements'
    1e-9 is below the bound: at least 15 of the 18 are resolvable)."""

    class OffByBillionth(TanhFC):
        def backward(self, dy, cache):
            g = super().backward(dy, cache)
            g["W"] = g["W"] * (1 + 1e-9)
            return g

    W = gradcheck.check(OffByBillionth(), tanh_fc_arrays(0, N=4, D=6, F=3), wrt=["W"],
                        method="richardson").arrays["W"]
    assert 15 <= W.failed <= W.checked == 18 and W.kinks == []


def test_a_relu_pool_stack_passes_with_kinks_in_every_strategy():
    """conv -> relu -> max pool -> fc -> softmax (the seed-003 stack, small): the weights behind many
    ReLU inputs have kinks within richardson's stencil, handed to central; no false alarm."""
    net = Sequential([("conv", Conv2D(pad=1)), ("relu", ReLU()), ("pool", MaxPool(2)),
                      ("fc", FullyConnected()), ("loss", SoftmaxCrossEntropy())])
    handed = 0
    for seed in range(2):
        rng = np.random.default_rng(seed)
        arrays = {"x": rng.standard_normal((4, 2, 6, 6)), "conv.k": 0.5 * rng.standard_normal((3, 2, 3, 3)),
                  "conv.b": 0.1 * rng.standard_normal(3), "fc.W": rng.standard_normal((27, 5)) / 5,
                  "fc.b": rng.standard_normal(5), "loss.t": rng.integers(0, 5, 4)}
        for strategy in ("exhaustive", "sampled", "directional"):
            report = gradcheck.check(net, arrays, strategy=strategy, seed=seed, samples=8,
                                     method="richardson")
            assert report.passed, str(report)
            handed += sum(r.fallback for r in report.arrays.values())
    assert handed > 0


# -- float32, cost, convergence -----------------------------------------------------------------------------


def test_float32_arrays_get_float32_tolerances():
    arrays = tanh_fc_arrays(1, N=8, D=20, F=5, dtype=np.float32)
    report = gradcheck.check(TanhFC(), arrays, method="richardson")
    assert report.passed, str(report)
    u32 = tolerance.unit_roundoff(np.float32)
    for r in report.arrays.values():
        assert r.rtol == pytest.approx(1024 * (u32 + U)) and r.dtype == "float32"
        assert r.margin > 1e-6  # float32 rounding is visible against the float32 budget
    index = (3, 2)
    bad = gradcheck.check(ScaledElement(TanhFC(), "W", index, 1e-2), arrays, method="richardson")
    assert [e.index for e in bad.arrays["W"].worst if e.failed] == [index]


def test_twice_centrals_forwards_on_the_same_exhaustive_check():
    layer, arrays = TanhFC(), tanh_fc_arrays(0, N=8, D=20, F=5)
    c = gradcheck.check(layer, arrays, method="central")
    r = gradcheck.check(layer, arrays, method="richardson")
    assert r.passed and c.passed
    for k in layer.inputs:  # each group: 4 forwards instead of 2 (the structure probes are the same)
        probes = 2 * c.arrays[k].forwards - r.arrays[k].forwards
        assert 0 <= probes <= 8 and r.arrays[k].forwards - probes == 2 * (c.arrays[k].forwards - probes)
        assert (r.arrays[k].convergence.forwards, c.arrays[k].convergence.forwards) == (12, 6)
    assert c.forwards < r.forwards <= 2 * c.forwards


@pytest.mark.parametrize("layer", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_convergence_order_is_about_4_on_right_layers_and_0_on_a_wrong_one(layer):
    arrays = {"x": np.random.default_rng(1).standard_normal((3, 4))}
    report = gradcheck.check(RealOnly(layer), arrays, method="richardson")
    c = report.arrays["x"].convergence
    assert c.verdict == "converges" and 3.5 < c.order < 4.5, c
    assert "eps^4" in str(c)
    problem = Problem.build(RealOnly(layer), arrays, 0)
    diff = problem.differencer("richardson", report.eps)
    sweep = convergence.sweep(diff, "x", problem.grads["x"], report.arrays["x"], steps=[1e-1, 3e-2, 1e-2])
    assert sweep.verdict == "converges" and 3.5 < sweep.order < 4.5, sweep
    assert c.expected == sweep.expected == 4  # the pictures' reference slope (eps^4, not eps^2)

    class Wrong(RealOnly):
        def backward(self, dy, cache):
            return {"x": 1.01 * self.layer.backward(dy, cache)["x"]}

    bad = gradcheck.check(Wrong(layer), arrays, method="richardson").arrays["x"].convergence
    assert bad.verdict == "plateau" and abs(bad.order) < 0.05, bad
