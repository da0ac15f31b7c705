"""SquaredError (Bouvrie's E = 1/2 sum (t - y)^2) and SoftmaxCrossEntropy: values, gradients, dtypes."""

import numpy as np
import pytest

from layers.losses import SoftmaxCrossEntropy, SquaredError
from tests.numdiff import assert_backward_matches


def test_squared_error_value_and_gradient_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.array([[0.0, 2.0], [5.0, 1.0]])
    E, cache = SquaredError().forward(y, t)
    assert E.shape == ()
    assert E == 0.5 * (1 + 0 + 4 + 9)  # summed over batch and entries, not averaged
    g = SquaredError().backward(np.array(2.0), cache)
    np.testing.assert_array_equal(g["y"], 2.0 * np.array([[1.0, 0.0], [-2.0, 3.0]]))


def test_softmax_cross_entropy_value_by_hand():
    """Uniform scores: E = log K; the correct class at +log 3 over two zeros: p = 3/5."""
    x = np.array([[0.0, 0.0, 0.0, 0.0], [np.log(3.0), 0.0, 0.0, -np.inf]])
    t = np.array([2, 0])
    E, cache = SoftmaxCrossEntropy().forward(x, t)
    assert E.shape == ()
    np.testing.assert_allclose(E, (np.log(4.0) - np.log(0.6)) / 2, rtol=1e-15)
    E_sum, _ = SoftmaxCrossEntropy(reduction="sum").forward(x, t)
    np.testing.assert_allclose(E_sum, np.log(4.0) - np.log(0.6), rtol=1e-15)
    dx = SoftmaxCrossEntropy().backward(1.0, cache)["x"]
    expected = np.array([[0.25, 0.25, 0.25 - 1, 0.25], [0.6 - 1, 0.2, 0.2, 0.0]]) / 2
    np.testing.assert_allclose(dx, expected, rtol=1e-15, atol=1e-17)


def test_softmax_cross_entropy_is_stable_for_huge_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 1000.0]])
    E, cache = SoftmaxCrossEntropy(reduction="sum").forward(x, np.array([0, 1]))
    np.testing.assert_allclose(E, np.log(2.0), rtol=1e-15)
    dx = SoftmaxCrossEntropy(reduction="sum").backward(1.0, cache)["x"]
    np.testing.assert_allclose(dx, [[0, 0, 0], [0, -0.5, 0.5]], atol=1e-300)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_backward_matches_central_differences(reduction):
    rng = np.random.default_rng(reduction == "sum")
    arrays = {"x": rng.standard_normal((5, 4)), "t": rng.integers(0, 4, 5)}
    assert_backward_matches(SoftmaxCrossEntropy(reduction), arrays)


def test_squared_error_backward_matches_central_differences():
    rng = np.random.default_rng(3)
    arrays = {"y": rng.standard_normal((3, 2, 2, 2)), "t": rng.standard_normal((3, 2, 2, 2))}
    assert_backward_matches(SquaredError(), arrays)


def test_softmax_cross_entropy_complex_step_with_huge_scores():
    """The max of the real part is the shift, so complex step stays exact even at scores ~ 1e3."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4)) + np.array([[1000.0], [-1000.0], [0.0]])
    t = np.array([1, 3, 0])
    layer = SoftmaxCrossEntropy()
    dx = layer.backward(1.0, layer.forward(x, t)[1])["x"]
    h = 1e-30
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xc = x.astype(np.complex128)
        xc[i] += 1j * h
        num[i] = layer.forward(xc, t)[0].imag / h
    np.testing.assert_allclose(dx, num, rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("layer, dtype", [
    (SquaredError(), np.float32), (SquaredError(), np.complex128),
    (SoftmaxCrossEntropy(), np.float32), (SoftmaxCrossEntropy(), np.complex128),
])
def test_forward_and_backward_keep_dtype(layer, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)).astype(dtype)
    t = rng.integers(0, 4, 3) if isinstance(layer, SoftmaxCrossEntropy) else rng.standard_normal((3, 4))
    E, cache = layer.forward(x, t.astype(dtype) if t.dtype.kind == "f" else t)
    assert E.dtype == dtype and E.shape == ()
    g = layer.backward(np.ones((), dtype), cache)[layer.inputs[0]]
    assert g.dtype == dtype and g.shape == x.shape


def test_constants_and_flags():
    assert SquaredError.inputs == ("y",) and SquaredError.constants == ("t",)
    assert SoftmaxCrossEntropy.inputs == ("x",) and SoftmaxCrossEntropy.constants == ("t",)
    assert SquaredError.complex_safe and SoftmaxCrossEntropy.complex_safe


@pytest.mark.parametrize("x, t, match", [
    (np.ones((2, 3, 1)), np.array([0, 1]), r"x must have shape \(N, K\), got shape \(2, 3, 1\)"),
    (np.ones((2, 3)), np.array([0, 1, 2]), r"t must have shape \(2,\), got \(3,\)"),
    (np.ones((2, 3)), np.array([0.0, 1.0]), r"t must hold integer class labels, got dtype float64"),
    (np.ones((2, 3)), np.array([0, 3]), r"t must hold labels in \[0, 3\), got 0..3"),
])
def test_softmax_cross_entropy_bad_inputs_raise(x, t, match):
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy: " + match):
        SoftmaxCrossEntropy().forward(x, t)


def test_bad_reduction_and_squared_error_shape_raise():
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy: reduction must be 'mean' or 'sum'"):
        SoftmaxCrossEntropy("none")
    with pytest.raises(ValueError, match=r"SquaredError: t must have the shape of y \(2, 3\), got \(3, 2\)"):
        SquaredError().forward(np.ones((2, 3)), np.ones((3, 2)))
