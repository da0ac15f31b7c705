"""The checker's promises against a layer that misbehaves: dy is backward's own copy, the caller's arrays
are never modified, nothing checked is not a pass, and an output that is not a finite number array is
blamed on the output, not on the gradient."""

import numpy as np
import pytest

import gradcheck
from gradcheck import LayerContractError
from layers import FullyConnected, ReLU


def xs(shape=(3, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- backward that writes into dy -----------------------------------------------------------------------


class Triple:
    """y = 3 x: dx = 3 dy."""

    inputs = ("x",)

    def forward(self, x):
        return 3 * x, None

    def backward(self, dy, cache):
        return {"x": 3 * dy}


class DoublesDyInPlace(Triple):
    """dy *= 2 before using it: gradients twice the right ones."""

    def backward(self, dy, cache):
        dy *= 2
        return {"x": 3 * dy}


class ClearsDyAfterwards(Triple):
    """A right gradient; dy zeroed afterwards (a buffer recycled in place)."""

    def backward(self, dy, cache):
        g = {"x": 3 * dy}
        dy[...] = 0
        return g


class UpdatesAViewOfDy:
    """y = (x a, x) stacked on axis 0: dx = dy[0] a + dy[1], da = dy[0] x. backward accumulates into a view
    of dy, as a published LSTM step does with `dnext_c += ...`: right, but dy is changed."""

    inputs = ("x", "a")
    complex_safe = True

    def forward(self, x, a):
        return np.stack([x * a, x]), (x, a)

    def backward(self, dy, cache):
        x, a = cache
        d_first, d_second = dy[0], dy[1]  # views of dy
        d_second += d_first * a
        return {"x": d_second, "a": d_first * x}


def test_a_backward_that_doubles_dy_in_place_fails():
    report = gradcheck.check(DoublesDyInPlace(), {"x": xs()})
    assert not report.passed and report.arrays["x"].failed == 12
    assert any("modified its dy" in w for w in report.warnings)


@pytest.mark.parametrize("layer", [ClearsDyAfterwards(), UpdatesAViewOfDy()], ids=type)
def test_a_right_backward_that_writes_into_dy_passes_with_a_warning(layer):
    arrays = {"x": xs()} if len(layer.inputs) == 1 else {"x": xs(), "a": xs(seed=1)}
    report = gradcheck.check(layer, arrays)
    assert report.passed, str(report)
    assert len(report.warnings) == 1 and "backward modified its dy in place" in report.warnings[0]
    assert "warning: backward modified its dy" in str(report)


def test_a_backward_that_leaves_dy_alone_gets_no_warning():
    report = gradcheck.check(Triple(), {"x": xs()})
    assert report.passed and report.warnings == []


def test_dy_modified_during_a_second_backward_does_not_change_the_numerics():
    """The directional strategy may call backward again (a lent buffer, a failure): its dy is a copy too."""
    for strategy in ("exhaustive", "sampled", "directional"):
        report = gradcheck.check(ClearsDyAfterwards(), {"x": xs()}, strategy=strategy, explain=0.0)
        assert report.passed, (strategy, str(report))


# -- the caller's arrays are never modified -------------------------------------------------------------


class MakesItsInputWriteable(Triple):
    """forward sets x.flags.writeable = True on the read-only view it was handed, and writes through it."""

    def forward(self, x):
        x.flags.writeable = True
        x[0, 0] = 100.0
        return 3 * x, None


class WritesIntoTheBaseOfItsInput(Triple):
    """forward walks to the view's base array and makes that writeable instead."""

    def forward(self, x):
        base = x
        while isinstance(getattr(base, "base", None), np.ndarray):
            base = base.base
        base.flags.writeable = True
        base[...] = 7.0
        return 3 * x, None


@pytest.mark.parametrize("layer", [MakesItsInputWriteable(), WritesIntoTheBaseOfItsInput()], ids=type)
def test_a_layer_cannot_write_into_the_callers_arrays(layer):
    x = xs()
    before = x.copy()
    with pytest.raises(LayerContractError, match="forward tried to make its read-only input x writeable"):
        gradcheck.check(layer, {"x": x})
    np.testing.assert_array_equal(x, before)
    assert x.flags.writeable  # and the caller's own flags are left as they were


def test_a_layer_cannot_write_into_a_constant_or_a_non_contiguous_array():
    class WritesIntoT:
        inputs = ("x",)
        constants = ("t",)

        def forward(self, x, t):
            t.flags.writeable = True
            t[...] = 0
            return x * t, None

        def backward(self, dy, cache):
            return {"x": dy}

    t = xs(seed=2)[:, ::2]  # a strided view of the caller's array
    x = xs((3, 2))
    before = t.copy()
    with pytest.raises(LayerContractError, match="read-only input t writeable"):
        gradcheck.check(WritesIntoT(), {"x": x, "t": t})
    np.testing.assert_array_equal(t, before)


# -- nothing checked is not a pass ----------------------------------------------------------------------


def test_wrt_empty_checks_nothing_and_says_why():
    report = gradcheck.check(FullyConnected(), {"x": xs((2, 3)), "W": xs((3, 4)), "b": xs((4,))}, wrt=[])
    assert not report.passed
    assert report.headline().startswith("FAIL <unnamed case>: nothing was checked")
    assert "wrt is empty" in report.headline()


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
def test_a_zero_size_array_checks_nothing_and_says_why(strategy):
    report = gradcheck.check(ReLU(), {"x": np.zeros((0, 3))}, strategy=strategy, name="empty")
    r = report.arrays["x"]
    assert not report.passed and not r.passed and r.checked == 0
    assert report.headline() == "FAIL empty: nothing was checked in x: it has no elements (shape (0, 3))"
    assert "0 of 0" not in str(report)


def test_one_empty_array_among_others_fails_the_report_naming_it():
    report = gradcheck.check(FullyConnected(), {"x": xs((2, 0)), "W": xs((0, 4)), "b": xs((4,))})
    assert not report.passed and report.arrays["b"].passed
    assert "nothing was checked in x: it has no elements (shape (2, 0))" in report.headline()
    assert "W: it has no elements (shape (0, 4))" in report.headline()


# -- an output that is not a finite number array is blamed on the output --------------------------------


def output_layer(out):
    class Returns:
        inputs = ("x",)

        def forward(self, x):
            return out, None

        def backward(self, dy, cache):
            return {"x": np.ones((3, 4))}

    return Returns()


@pytest.mark.parametrize("out, what", [(None, "None"), ("abc", "str"),
                                       (np.array(["a", "b"]), "str"), (np.array([object()]), "object")])
def test_a_non_numeric_output_is_a_contract_error_naming_the_output(out, what):
    with pytest.raises(LayerContractError, match=rf"forward's output y is .*{what}.*numeric array"):
        gradcheck.check(output_layer(out), {"x": xs()})


def test_a_forward_that_returns_no_cache_pair_is_a_contract_error():
    class ReturnsYOnly(Triple):
        def forward(self, x):
            return 3 * x

    with pytest.raises(LayerContractError, match=r"forward must return \(y, cache\)"):
        gradcheck.check(ReturnsYOnly(), {"x": xs()})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nonfinite_output_is_named_as_the_cause_not_the_gradient(bad):
    class LogOfNegative(Triple):
        def forward(self, x):
            y = 3 * x
            y[1, 2] = bad
            return y, None

    report = gradcheck.check(LogOfNegative(), {"x": xs()}, name="nan-out")
    assert not report.passed
    text = str(report)
    assert report.headline().startswith("FAIL nan-out: forward's output y is not finite at the base point")
    assert "y[1, 2]" in report.headline() and "1 of 12" in report.headline()
    assert "wrong gradient" not in text and "mismatch" not in text
    assert "the output's fault, not the gradient's" in report.headline()


def test_a_nonfinite_output_that_no_input_reaches_is_still_not_a_pass():
    class ConstantNaN(Triple):
        def forward(self, x):
            return np.concatenate([3 * x.ravel(), [np.nan]]), None

        def backward(self, dy, cache):
            return {"x": 3 * dy[:-1].reshape(3, 4)}

        def structure(self, name, shapes):
            return None

    report = gradcheck.check(ConstantNaN(), {"x": xs()}, method="central")
    assert not report.passed and "y[12] = nan" in report.headline()
