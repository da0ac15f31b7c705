"""gradcheck.check / assert_gradients: checked quantity, strategies, tolerances, reports, errors, safety."""

import importlib

import numpy as np
import pytest

import gradcheck
from gradcheck import GradientMismatch, LayerContractError
from gradcheck.engine import diagnosis, tolerance
from gradcheck.engine.differencing import Differencer
from layers import FullyConnected, ReLU, Sequential, Sigmoid
from tests.planted import AveragedBias, OneWrongWeight


def fc_arrays(seed=0, N=4, D=6, F=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)).astype(dtype), "W": rng.standard_normal((D, F)).astype(dtype),
            "b": rng.standard_normal(F).astype(dtype)}


class NoStructure:
    """y = x * W elementwise (no structure declared): exhaustive perturbs one coordinate per forward."""

    inputs = ("x", "W")
    complex_safe = True

    def forward(self, x, W):
        return x * W, (x, W)

    def backward(self, dy, cache):
        x, W = cache
        return {"x": dy * W, "W": dy * x}


# -- the checked quantity -------------------------------------------------------------------------------


def test_numeric_is_the_vjp_of_a_seeded_standard_normal_G():
    """For y = x W + b, d/dx sum(G * y) = G W^T with G = default_rng(seed).standard_normal(y.shape)."""
    arrays = fc_arrays()
    report = gradcheck.check(FullyConnected(), arrays, seed=5)
    G = np.random.default_rng(5).standard_normal((4, 3))
    np.testing.assert_allclose(report.arrays["x"].numeric, G @ arrays["W"].T, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(report.arrays["W"].numeric, arrays["x"].T @ G, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(report.arrays["b"].numeric, G.sum(axis=0), rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(report.arrays["W"].analytic, arrays["x"].T @ G)


def test_central_and_complex_differencer_agree_with_hand_derivative_of_sigmoid():
    x = np.array([[-1.0, 0.3, 2.0]])
    G = np.array([[0.5, -2.0, 1.0]])
    f = 1 / (1 + np.exp(-x))
    exact = (G * f * (1 - f)).ravel()
    for method, eps, rtol in (("complex", 1e-20, 1e-14), ("central", tolerance.default_eps("central"), 1e-9)):
        d = Differencer(Sigmoid(), {"x": x}, G, method, eps)
        central, left, right = d.coordinates("x", np.arange(3), np.arange(3))  # elementwise: one group
        np.testing.assert_allclose(central, exact, rtol=rtol)
        assert d.forwards == (1 if method == "complex" else 3)  # central: + the base point
        if method == "central":  # one-sided differences straddle the central one (first order in eps)
            np.testing.assert_allclose(left, exact, rtol=1e-4)
            np.testing.assert_allclose(right, exact, rtol=1e-4)


def test_method_defaults_to_complex_step_for_complex_safe_layers_else_richardson():
    assert gradcheck.check(FullyConnected(), fc_arrays()).method == "complex"
    x = {"x": np.array([[0.5, -1.0]])}
    assert gradcheck.check(ReLU(), x).method == "richardson"
    assert gradcheck.check(ReLU(), x, strategy="sampled").method == "richardson"
    assert gradcheck.check(ReLU(), x, strategy="directional").method == "central"  # a pass per forward
    assert gradcheck.check(ReLU(), {"x": x["x"] + 0.25j}).method == "central"  # complex inputs
    with pytest.raises(ValueError, match="ReLU: method 'complex' needs a complex-safe forward"):
        gradcheck.check(ReLU(), x, method="complex")
    with pytest.raises(ValueError, match="strategy must be one of"):
        gradcheck.check(ReLU(), x, strategy="random")


# -- strategies -----------------------------------------------------------------------------------------


def test_exhaustive_checks_every_coordinate_with_structure_groups():
    arrays = fc_arrays(N=5, D=7, F=4)
    report = gradcheck.check(FullyConnected(), arrays, strategy="exhaustive")
    W = report.arrays["W"]
    assert W.checked == 28 and not np.isnan(W.numeric).any()
    # FC W[:, j] -> y[:, j]: a group holds one row index per column: D groups, 1 forward each (complex)
    # plus structure.PROBES forwards validating the declaration against the base point's output, computed
    # once for all arrays (counted on x, checked first)
    assert W.forwards == 7 + 3
    assert report.arrays["x"].forwards == 7 + 1 + 3 and report.arrays["b"].forwards == 1 + 3
    assert report.forwards == 1 + 11 + 10 + 4  # was 29 with a base-point forward per array probed


def test_exhaustive_without_structure_uses_one_forward_per_coordinate():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((2, 3)), "W": rng.standard_normal((2, 3))}
    complex_report = gradcheck.check(NoStructure(), arrays, method="complex")
    assert complex_report.passed and complex_report.arrays["x"].forwards == 6
    central_report = gradcheck.check(NoStructure(), arrays, method="central")
    # the base point of the one-sided differences is the analytic side's forward (float64 arrays): no forward
    assert central_report.arrays["x"].forwards == 2 * 6
    assert central_report.arrays["W"].forwards == 2 * 6
    assert central_report.forwards == 1 + 24  # analytic forward, coordinates
    arrays32 = {k: v.astype(np.float32) for k, v in arrays.items()}  # upcast for the numerics: its own y0
    assert gradcheck.check(NoStructure(), arrays32, method="central").forwards == 1 + 1 + 24


def test_sampled_checks_n_seeded_coordinates_and_leaves_the_rest_nan():
    arrays = fc_arrays(N=5, D=7, F=4)
    a = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5, seed=3).arrays["W"]
    b = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5, seed=3).arrays["W"]
    c = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5, seed=4).arrays["W"]
    assert a.checked == 5 and np.count_nonzero(~np.isnan(a.numeric)) == 5
    np.testing.assert_array_equal(np.isnan(a.numeric), np.isnan(b.numeric))
    assert not np.array_equal(np.isnan(a.numeric), np.isnan(c.numeric))
    # more samples than coordinates: every coordinate once
    assert gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=99).arrays["b"].checked == 4


def test_samples_of_a_huge_array_are_kept_as_coordinates_and_values_not_a_nan_array(monkeypatch):
    coordinates = importlib.import_module("gradcheck.strategies.coordinates")
    monkeypatch.setattr(coordinates, "DENSE_NUMERIC", 20)  # W (28) is "huge", b (4) not
    arrays = fc_arrays(N=5, D=7, F=4)
    dense = gradcheck.check(FullyConnected(), arrays, seed=3).arrays["W"].numeric.reshape(-1)
    report = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5, seed=3)
    W, b = report.arrays["W"], report.arrays["b"]
    assert W.numeric is None and b.numeric is not None and b.sampled is None
    coords, values = W.sampled
    assert coords.size == 5 and np.all(np.diff(coords) > 0)
    np.testing.assert_allclose(values, dense[coords], rtol=1e-12)
    wrong = gradcheck.check(OneWrongWeight(index=(3, 1), by=1.0), arrays, strategy="sampled", samples=28)
    assert diagnosis.diagnose(wrong.arrays["W"]) == ["W: 1 of 28 sampled coordinates wrong: W[3, 1]"]


def test_sample_choice_of_an_array_does_not_depend_on_what_else_is_checked():
    arrays = fc_arrays(N=5, D=7, F=4)
    full = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5).arrays["W"]
    alone = gradcheck.check(FullyConnected(), arrays, strategy="sampled", samples=5, wrt=["W"]).arrays["W"]
    np.testing.assert_array_equal(np.isnan(full.numeric), np.isnan(alone.numeric))


def test_directional_costs_one_forward_per_direction_at_any_size():
    arrays = fc_arrays(N=2, D=300, F=200)
    report = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=4, wrt=["W"])
    W = report.arrays["W"]
    assert report.passed and W.checked == 4 and W.numeric is None
    assert W.forwards == 4
    central = gradcheck.check(FullyConnected(), arrays, strategy="directional", directions=4, wrt=["W"],
                              method="central")
    # passing directions need no one-sided differences, so no forward at the base point either
    assert central.passed and central.arrays["W"].forwards == 2 * 4


# -- tolerances -----------------------------------------------------------------------------------------


def test_default_tolerances_follow_the_error_model():
    u64, u32 = 2.0**-53, 2.0**-24
    assert tolerance.default_eps("central") == pytest.approx((2 * u64) ** (1 / 3))  # 6.06e-6
    assert tolerance.default_eps("central") == pytest.approx(6.055e-6, rel=1e-3)
    assert tolerance.default_eps("complex") == 1e-20
    assert tolerance.default_rtol("complex", 1e-20, np.float64) == pytest.approx(2 * 1024 * u64)
    central = tolerance.default_rtol("central", tolerance.default_eps("central"), np.float64)
    assert central == pytest.approx(1000 * tolerance.default_eps("central")**2 / 6 + 1024 * u64)
    assert 1e-9 < central < 1e-8  # central cannot resolve a 1e-9 relative error; complex step can
    assert tolerance.default_rtol("complex", 1e-20, np.float32) == pytest.approx(1024 * (u64 + u32))
    # central rounding floor: ROUNDING_BOUND * u * sum|G y| / eps
    assert tolerance.rounding_atol("central", 1e-6, S=100.0) == pytest.approx(8 * u64 * 100 / 1e-6)
    assert tolerance.rounding_atol("complex", 1e-20, S=100.0) == 0


def test_report_records_tolerances_and_overrides_apply():
    arrays = fc_arrays()
    report = gradcheck.check(FullyConnected(), arrays, method="central")
    b = report.arrays["b"]
    G = np.random.default_rng(0).standard_normal((4, 3))
    y = arrays["x"] @ arrays["W"] + arrays["b"]
    rms = np.sqrt(np.mean(G.sum(axis=0) ** 2))
    expected_atol = b.rtol * rms + tolerance.rounding_atol("central", b.eps, np.sum(np.abs(G * y)))
    assert b.atol == pytest.approx(expected_atol)
    assert b.eps == tolerance.default_eps("central") and b.method == "central"
    custom = gradcheck.check(FullyConnected(), arrays, method="central", eps=1e-4, rtol=1e-3, atol=1e-5)
    assert all((r.eps, r.rtol, r.atol) == (1e-4, 1e-3, 1e-5) for r in custom.arrays.values())


def test_margin_is_the_largest_error_over_tolerance():
    arrays = fc_arrays()
    report = gradcheck.check(FullyConnected(), arrays, method="central")
    W = report.arrays["W"]
    ratio = np.abs(W.analytic - W.numeric) / (W.atol + W.rtol * np.abs(W.numeric))
    assert W.margin == pytest.approx(ratio.max())
    assert W.worst[0].ratio == pytest.approx(ratio.max())
    assert report.margin == max(r.margin for r in report.arrays.values())
    # a case close to failing is visible: tighten atol so the worst element sits just below it
    tight = gradcheck.check(FullyConnected(), arrays, method="central", rtol=0.0,
                            atol=W.worst[0].error * 1.25, wrt=["W"])
    assert tight.passed and tight.margin == pytest.approx(0.8)


def test_float32_analytic_runs_in_float32_and_gets_float32_tolerances():
    arrays = fc_arrays(dtype=np.float32)
    report = gradcheck.check(FullyConnected(), arrays)
    W = report.arrays["W"]
    assert report.passed and W.dtype == "float32" and W.analytic.dtype == np.float32
    assert W.rtol == pytest.approx(tolerance.default_rtol("complex", 1e-20, np.float32))
    # the float32 rounding is real: under float64 tolerances the same correct layer fails
    rtol64 = tolerance.default_rtol("complex", 1e-20, np.float64)
    strict = gradcheck.check(FullyConnected(), arrays, rtol=rtol64)
    assert not strict.passed
    # and the float32 tolerance still catches a wrong gradient
    assert not gradcheck.check(AveragedBias(), arrays).passed
    # numerics from float64 copies of the float32 values: exact for a linear layer
    G = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(W.numeric, arrays["x"].astype(np.float64).T @ G, rtol=1e-13, atol=1e-15)


def test_wrt_checks_only_the_named_inputs():
    report = gradcheck.check(AveragedBias(), fc_arrays(), wrt=["x", "W"])
    assert list(report.arrays) == ["x", "W"] and report.passed
    assert not gradcheck.check(AveragedBias(), fc_arrays(), wrt=["b"]).passed
    with pytest.raises(LayerContractError, match="FullyConnected: wrt names q, not inputs"):
        gradcheck.check(FullyConnected(), fc_arrays(), wrt=["q"])


# -- reports and GradientMismatch -----------------------------------------------------------------------


def test_verdict_text_of_a_failure():
    report = gradcheck.check(AveragedBias(), fc_arrays(), name="fc-bias-averaged", seed=7, method="central")
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "FAIL fc-bias-averaged: 3 of 3 elements failed in b"
    assert lines[1].split()[:4] == ["method", "central", "eps", "6.06e-06"]
    assert "seed 7" in lines[1] and "rtol 6.1e-09" in lines[1] and "atol" in lines[1]
    b_line = next(line for line in lines if line.strip().startswith("b  (3,) float64"))
    assert "checked 3 elements, failed 3, kinks 0" in b_line
    worst = report.arrays["b"].worst[0]
    assert worst.kind == "mismatch" and worst.array == "b"
    assert (f"    b[{worst.index[0]}]: analytic {worst.analytic:.6g} numeric {worst.numeric:.6g} "
            f"|diff| {worst.error:.3g} > tol {worst.tolerance:.3g}  (mismatch)") in lines
    # analytic is the mean, numeric the sum over the batch of 4
    assert worst.numeric == pytest.approx(4 * worst.analytic)
    assert "PASS" in str(gradcheck.check(FullyConnected(), fc_arrays(), name="ok")).splitlines()[0]


def test_assert_gradients_raises_gradient_mismatch_naming_everything():
    with pytest.raises(GradientMismatch) as info:
        gradcheck.assert_gradients(AveragedBias(), fc_arrays(), name="fc-bias-averaged", seed=11)
    err = info.value
    assert isinstance(err, AssertionError) and err.report.passed is False
    text = str(err)
    assert text == str(err.report)
    worst = err.report.worst
    for needle in ("fc-bias-averaged", f"b[{worst.index[0]}]", "analytic", "numeric", "|diff|", "tol",
                   "method complex", "eps 1e-20", "seed 11", "3 of 3 elements failed",
                   f"{worst.analytic:.6g}", f"{worst.numeric:.6g}", f"{worst.error:.3g}",
                   f"{worst.tolerance:.3g}"):
        assert needle in text, needle
    report = gradcheck.assert_gradients(FullyConnected(), fc_arrays())
    assert report.passed


# -- non-finite values and contract errors --------------------------------------------------------------


class NaNGradient(FullyConnected):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"] = g["W"].copy()
        g["W"][2, 1] = np.nan
        return g


class LogLayer:
    """y = log(x): NaN where x < 0 in both the numeric and the analytic side."""

    inputs = ("x",)
    complex_safe = False

    def forward(self, x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(x), x

    def backward(self, dy, cache):
        return {"x": dy / cache}

    def structure(self, name, shapes):
        return (0,)  # element-wise: x[i] touches y[i] only


class UnstructuredLog(LogLayer):
    structure = None


def test_nan_in_analytic_is_a_nonfinite_failure():
    report = gradcheck.check(NaNGradient(), fc_arrays())
    W = report.arrays["W"]
    assert not report.passed and W.failed == 1
    assert W.worst[0].kind == "nonfinite" and W.worst[0].index == (2, 1) and W.worst[0].ratio == np.inf
    assert "W[2, 1]: analytic nan" in str(report) and "nonfinite" in str(report)


def test_nan_in_numeric_is_a_nonfinite_failure():
    x = np.array([1.0, -2.0, 3.0])
    report = gradcheck.check(LogLayer(), {"x": x})
    assert not report.passed and report.arrays["x"].failed == 1
    bad = report.arrays["x"].worst[0]
    assert bad.kind == "nonfinite" and bad.index == (1,) and np.isnan(bad.numeric)
    # without structure, one NaN output makes L itself NaN for every perturbation: all are nonfinite
    report = gradcheck.check(UnstructuredLog(), {"x": x}, infer=False)
    assert report.arrays["x"].failed == 3 and {e.kind for e in report.arrays["x"].worst} == {"nonfinite"}


class MissingGradient(FullyConnected):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        del g["b"]
        return g


class ExtraGradient(FullyConnected):
    def backward(self, dy, cache):
        return {**super().backward(dy, cache), "c": np.zeros(3)}


class TransposedGradient(FullyConnected):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["W"] = g["W"].T
        return g


@pytest.mark.parametrize("layer, message", [
    (MissingGradient(), "MissingGradient: backward returned no gradient for b"),
    (ExtraGradient(), "ExtraGradient: backward returned a gradient for c, which is not an input"),
    (TransposedGradient(),
     r"TransposedGradient: backward's gradient for W has shape \(3, 6\), expected \(6, 3\)"),
])
def test_contract_violations_are_value_errors_not_mismatches(layer, message):
    with pytest.raises(ValueError, match=message) as info:
        gradcheck.assert_gradients(layer, fc_arrays())
    assert not isinstance(info.value, AssertionError)


class Dropout:
    """y = x * mask with a fresh random mask per call: forward is not a function of x."""

    inputs = ("x",)

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def forward(self, x):
        mask = self.rng.random(x.shape) < 0.5
        return x * mask, mask

    def backward(self, dy, mask):
        return {"x": dy * mask}


class CountsCalls(FullyConnected):
    """Keeps state between calls: each forward adds its call count."""

    calls = 0

    def forward(self, x, W, b):
        self.calls += 1
        y, cache = super().forward(x, W, b)
        return y + self.calls, cache


@pytest.mark.parametrize("layer", [Dropout(), CountsCalls()], ids=["dropout", "stateful"])
@pytest.mark.parametrize("strategy", ["exhaustive", "directional"])
def test_a_forward_that_is_not_a_function_of_its_arrays_is_a_contract_error(layer, strategy):
    arrays = {"x": fc_arrays()["x"]} if isinstance(layer, Dropout) else fc_arrays()
    with pytest.raises(LayerContractError, match=r"forward is not a function of its arrays: two calls with "
                                                 r"the same arrays differ \(by up to"):
        gradcheck.check(layer, arrays, strategy=strategy, method="central")


@pytest.mark.parametrize("option", ["samples", "directions"])
def test_zero_samples_or_directions_is_an_error_not_an_empty_pass(option):
    with pytest.raises(ValueError, match=f"{option} must be at least 1, got 0"):
        gradcheck.check(FullyConnected(), fc_arrays(), **{option: 0})


def test_missing_or_unexpected_arrays_are_named():
    arrays = fc_arrays()
    del arrays["b"]
    with pytest.raises(LayerContractError, match="FullyConnected: arrays must hold exactly x, W, b; missing b"
                       ):
        gradcheck.check(FullyConnected(), arrays)
    with pytest.raises(LayerContractError, match="unexpected t"):
        gradcheck.check(FullyConnected(), {**fc_arrays(), "t": np.zeros(2)})


# -- the caller's arrays are never modified -------------------------------------------------------------


class FailsOnForward(FullyConnected):
    """Raises on the n-th forward call (mid-check, with a coordinate perturbed)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def forward(self, x, W, b):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("boom")
        return super().forward(x, W, b)


class WritesIntoInput(FullyConnected):
    def forward(self, x, W, b):
        x *= 2
        return super().forward(x, W, b)


def snapshot(arrays):
    return {k: v.copy() for k, v in arrays.items()}


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
@pytest.mark.parametrize("method", ["complex", "central"])
def test_callers_arrays_are_never_modified_nor_shared(strategy, method):
    arrays = fc_arrays()
    before = snapshot(arrays)
    report = gradcheck.check(FullyConnected(), arrays, strategy=strategy, method=method)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])
        if report.arrays[k].numeric is not None:
            assert not np.shares_memory(report.arrays[k].numeric, arrays[k])
    assert arrays["x"].flags.writeable  # the read-only views the layer gets do not change the caller's flags


@pytest.mark.parametrize("n", [2, 3, 6, 9])
@pytest.mark.parametrize("strategy", ["exhaustive", "directional"])
def test_callers_arrays_are_intact_after_an_exception_mid_forward(n, strategy):
    arrays = fc_arrays()
    before = snapshot(arrays)
    layer = FailsOnForward(n)
    with pytest.raises(RuntimeError, match="boom"):
        gradcheck.check(layer, arrays, strategy=strategy, method="central")
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])


def test_a_layer_writing_into_its_inputs_fails_loudly_and_changes_nothing():
    arrays = fc_arrays()
    before = snapshot(arrays)
    with pytest.raises(ValueError, match="read-only"):
        gradcheck.check(WritesIntoInput(), arrays)
    np.testing.assert_array_equal(arrays["x"], before["x"])


def test_working_copies_are_restored_exactly_after_each_perturbation():
    arrays = fc_arrays()
    for method, eps in (("central", 1e-3), ("complex", 1e-20)):
        d = Differencer(FullyConnected(), arrays, np.ones((4, 3)), method, eps)
        d.coordinates("W", np.array([5]))
        d.direction("W", np.ones(18) / np.sqrt(18), np.zeros(18))
        d.direction("W", np.ones(18) / np.sqrt(18), np.zeros(18), 3, 11)
        for k, v in d.arrays().items():
            np.testing.assert_array_equal(np.real(v), arrays[k])
            assert not np.iscomplexobj(v) or not v.imag.any()


# -- residuals ------------------------------------------------------------------------------------------


class SigmoidWrongDerivative(Sigmoid):
    def backward(self, dy, cache):
        return {"x": dy * cache}  # f instead of f (1 - f)


def stack(activation):
    net = Sequential([("fc1", FullyConnected()), ("f", activation), ("fc2", FullyConnected())])
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((3, 4)), "fc1.W": rng.standard_normal((4, 5)),
              "fc1.b": rng.standard_normal(5), "fc2.W": rng.standard_normal((5, 2)),
              "fc2.b": rng.standard_normal(2)}
    return net, arrays


def test_residuals_of_a_sequential_are_checked_against_the_tail():
    net, arrays = stack(Sigmoid())
    report = gradcheck.check(net, arrays, residuals=["fc1", "f"], wrt=["fc2.W"])
    assert report.passed and set(report.residuals) == {"fc1.delta", "f.delta"}
    r = report.residuals["fc1.delta"]
    assert r.shape == (3, 5) and r.checked == 15
    # the residual of fc1 is dE/du, u = x W1 + b1: G W2^T o f'(u)
    G = np.random.default_rng(0).standard_normal((3, 2))
    f = 1 / (1 + np.exp(-(arrays["x"] @ arrays["fc1.W"] + arrays["fc1.b"])))
    np.testing.assert_allclose(r.numeric, (G @ arrays["fc2.W"].T) * f * (1 - f), rtol=1e-12)
    assert "fc1.delta" in str(report)


def test_a_wrong_activation_derivative_shows_in_the_residual_below_it_not_above():
    net, arrays = stack(SigmoidWrongDerivative())
    report = gradcheck.check(net, arrays, residuals=["fc1", "f"], wrt=[])
    assert not report.residuals["fc1.delta"].passed
    assert report.residuals["f.delta"].passed
    with pytest.raises(LayerContractError, match="needs a Sequential"):
        gradcheck.check(FullyConnected(), fc_arrays(), residuals=["fc1"])
