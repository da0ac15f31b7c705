"""The stateful objects of tests/stateful_layers.py against central differences (the parameters perturbed
in place inside the object), against the cs231n-style pairs, and their state (running statistics)."""

import numpy as np
import pytest

from tests.cs231n_layers import layers as ok
from tests.numdiff_functions import numeric_gradient
from tests.stateful_layers import BatchNorm, Conv2D, Dense


def check_object(layer, X, params, rng):
    """backward's dX and the gradients it stores (d<param>) against central differences of
    L = sum(G * layer.forward(X)), each array perturbed in place (the object reads its own)."""
    y = layer.forward(X)
    G = rng.standard_normal(y.shape)
    dX = layer.backward(G)
    analytic = {"X": dX, **{p: getattr(layer, "d" + p) for p in params}}
    arrays = {"X": X, **{p: getattr(layer, p) for p in params}}
    for name, a in arrays.items():
        num = numeric_gradient(lambda: np.sum(G * layer.forward(X)), a)
        assert analytic[name].shape == a.shape, name
        np.testing.assert_allclose(analytic[name], num, rtol=1e-6, atol=1e-8, err_msg=f"d{name}")


@pytest.mark.parametrize("seed", range(3))
def test_dense_matches_central_differences(seed):
    rng = np.random.default_rng(seed)
    N, D, M = (int(v) for v in rng.integers(1, 6, 3))
    layer = Dense(rng.standard_normal((D, M)), rng.standard_normal(M))
    check_object(layer, rng.standard_normal((N, D)), ("W", "b"), rng)


@pytest.mark.parametrize("stride, pad, x_shape, w_shape", [
    (1, 0, (2, 2, 4, 5), (3, 2, 3, 2)),
    (2, 1, (2, 3, 5, 5), (2, 3, 3, 3)),
    (2, 0, (1, 2, 6, 7), (2, 2, 3, 3)),  # floor: (7 - 3) / 2 and (6 - 3) / 2 leave a remainder on one
    (1, 2, (1, 1, 3, 3), (1, 1, 2, 2)),
])
def test_conv2d_matches_central_differences(stride, pad, x_shape, w_shape):
    rng = np.random.default_rng(10)
    layer = Conv2D(rng.standard_normal(w_shape), rng.standard_normal(w_shape[0]), stride=stride, pad=pad)
    check_object(layer, rng.standard_normal(x_shape), ("W", "b"), rng)


@pytest.mark.parametrize("x_shape", [(6, 4), (3, 2, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_central_differences(x_shape, training):
    rng = np.random.default_rng(20)
    C = x_shape[1]
    layer = BatchNorm(rng.standard_normal(C), rng.standard_normal(C))
    layer.training = training
    if not training:
        layer.running_mean, layer.running_var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    check_object(layer, 2 * rng.standard_normal(x_shape) + 1, ("gamma", "beta"), rng)


def test_dense_and_conv_agree_with_the_cs231n_pairs():
    rng = np.random.default_rng(30)
    X, W, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    G = rng.standard_normal((4, 3))
    dense = Dense(W, b)
    out, cache = ok.affine_forward(X, W, b)
    np.testing.assert_allclose(dense.forward(X), out, rtol=1e-14)
    dx, dw, db = ok.affine_backward(G, cache)
    np.testing.assert_allclose(dense.backward(G), dx, rtol=1e-14)
    np.testing.assert_allclose(dense.dW, dw, rtol=1e-14)
    np.testing.assert_allclose(dense.db, db, rtol=1e-14)

    X, W, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv = Conv2D(W, b, stride=2, pad=1)
    out, cache = ok.conv_forward_naive(X, W, b, {"stride": 2, "pad": 1})
    np.testing.assert_allclose(conv.forward(X), out, rtol=1e-12, atol=1e-13)
    G = rng.standard_normal(out.shape)
    dx, dw, db = ok.conv_backward_naive(G, cache)
    np.testing.assert_allclose(conv.backward(G), dx, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(conv.dW, dw, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(conv.db, db, rtol=1e-12, atol=1e-13)


def test_batchnorm_agrees_with_the_cs231n_pair_and_keeps_running_stats():
    rng = np.random.default_rng(40)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    layer = BatchNorm(gamma, beta, momentum=0.9, eps=1e-5)
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9, "running_var": np.ones(3)}
    for _ in range(3):
        X = 3 * rng.standard_normal((8, 3)) - 2
        out, cache = ok.batchnorm_forward(X, gamma, beta, bn_param)
        np.testing.assert_allclose(layer.forward(X), out, rtol=1e-13, atol=1e-14)
        G = rng.standard_normal(X.shape)
        dx, dgamma, dbeta = ok.batchnorm_backward(G, cache)
        np.testing.assert_allclose(layer.backward(G), dx, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.dgamma, dgamma, rtol=1e-13)
        np.testing.assert_allclose(layer.dbeta, dbeta, rtol=1e-13)
    np.testing.assert_allclose(layer.running_mean, bn_param["running_mean"], rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, bn_param["running_var"], rtol=1e-14)
    layer.training = False
    frozen = layer.running_mean.copy(), layer.running_var.copy()
    X = rng.standard_normal((2, 3))
    y = layer.forward(X)
    np.testing.assert_allclose(y, gamma * (X - frozen[0]) / np.sqrt(frozen[1] + 1e-5) + beta, rtol=1e-13)
    np.testing.assert_array_equal(layer.running_mean, frozen[0])
    np.testing.assert_array_equal(layer.running_var, frozen[1])


def test_backward_uses_the_state_of_the_last_forward():
    """The stateful convention: a second forward before backward replaces what backward differentiates."""
    rng = np.random.default_rng(50)
    layer = Dense(rng.standard_normal((3, 2)), rng.standard_normal(2))
    X1, X2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    G = rng.standard_normal((4, 2))
    layer.forward(X1)
    layer.forward(X2)
    layer.backward(G)
    np.testing.assert_allclose(layer.dW, X2.T @ G, rtol=1e-14)
