"""Sigmoid, Tanh, ReLU: values, derivatives through the cached output, kinks, overflow, dtypes."""

import warnings

import numpy as np
import pytest

from layers.activations import ReLU, Sigmoid, Tanh
from tests.numdiff import assert_backward_matches


def test_sigmoid_values_and_derivative_y_times_one_minus_y():
    x = np.array([0.0, np.log(3.0), -np.log(3.0)])
    y, cache = Sigmoid().forward(x)
    np.testing.assert_allclose(y, [0.5, 0.75, 0.25], rtol=1e-15)
    dx = Sigmoid().backward(np.array([2.0, 1.0, 4.0]), cache)["x"]
    np.testing.assert_allclose(dx, [2 * 0.25, 0.75 * 0.25, 4 * 0.25 * 0.75], rtol=1e-15)


def test_tanh_values_and_derivative_one_minus_y_squared():
    x = np.array([0.0, np.log(2.0)])  # tanh(log 2) = (2 - 1/2) / (2 + 1/2) = 3/5
    y, cache = Tanh().forward(x)
    np.testing.assert_allclose(y, [0.0, 0.6], rtol=1e-15, atol=1e-300)
    dx = Tanh().backward(np.array([3.0, 1.0]), cache)["x"]
    np.testing.assert_allclose(dx, [3.0, 1 - 0.36], rtol=1e-15)


def test_relu_values_and_derivative_zero_at_zero():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0, -np.inf])
    y, cache = ReLU().forward(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 1e-300, 3.0, 0.0])
    dx = ReLU().backward(np.full(6, 5.0), cache)["x"]
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 5.0, 5.0, 0.0])  # f'(0) taken as 0, as torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_does_not_overflow_warn_for_large_inputs(dtype):
    x = np.array([-1e4, -800.0, 800.0, 1e4], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = Sigmoid().forward(x)
        dx = Sigmoid().backward(np.ones_like(x), cache)["x"]
    np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(dx, 0.0)


@pytest.mark.parametrize("layer", [Sigmoid(), Tanh(), ReLU()])
def test_backward_matches_central_differences(layer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU away from its kink
    assert_backward_matches(layer, {"x": x})


@pytest.mark.parametrize("layer, dtype", [
    (Sigmoid(), np.float32), (Sigmoid(), np.complex128),
    (Tanh(), np.float32), (Tanh(), np.complex128),
    (ReLU(), np.float32),  # not complex-safe: no complex case
])
def test_forward_and_backward_keep_dtype_and_shape(layer, dtype):
    x = np.random.default_rng(1).standard_normal((2, 3, 2)).astype(dtype)
    y, cache = layer.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    dx = layer.backward(np.ones_like(y), cache)["x"]
    assert dx.dtype == dtype and dx.shape == x.shape


@pytest.mark.parametrize("layer", [Sigmoid(), Tanh()])
def test_complex_step_matches_backward(layer):
    """imag(f(x + ih)) / h is f'(x) to rounding for the analytic activations."""
    x = np.linspace(-3, 3, 7)
    h = 1e-30
    num = layer.forward(x + 1j * h)[0].imag / h
    dx = layer.backward(np.ones_like(x), layer.forward(x)[1])["x"]
    np.testing.assert_allclose(dx, num, rtol=1e-14)


def test_complex_safety_flags():
    assert Sigmoid.complex_safe and Tanh.complex_safe and not ReLU.complex_safe
