"""Subsampling, pooling, activations and losses against torch float64: forward values, autograd gradients."""

import numpy as np
import pytest

from layers.activations import ReLU, Sigmoid, Tanh
from layers.losses import SoftmaxCrossEntropy, SquaredError
from layers.subsampling import MaxPool, MeanPool, Subsampling, down

torch = pytest.importorskip("torch", reason="torch is the oracle for these tests (pip install '.[oracle]')")
F = torch.nn.functional

pytestmark = pytest.mark.oracle

RTOL, ATOL = 1e-12, 1e-13  # both sides sum the same few float64 terms in different orders


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def vjp(out, G, *leaves):
    """torch's vector-Jacobian product sum(G * out) w.r.t. leaves, as numpy arrays."""
    grads = torch.autograd.grad(out, leaves, grad_outputs=torch.as_tensor(G, dtype=torch.float64))
    return [g.numpy() for g in grads]


def random_pool_shape(rng):
    n = int(rng.integers(2, 4))
    return n, (int(rng.integers(1, 4)), int(rng.integers(1, 4)),
               int(rng.integers(n, 3 * n + 2)), int(rng.integers(n, 3 * n + 2)))


@pytest.mark.parametrize("seed", range(6))
def test_down_is_avg_pool2d_times_n_squared(seed):
    rng = np.random.default_rng(seed)
    n, shape = random_pool_shape(rng)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(down(x, n), F.avg_pool2d(t64(x), n).numpy() * n * n, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", range(6))
def test_subsampling_against_torch_autograd(seed):
    rng = np.random.default_rng(100 + seed)
    n, shape = random_pool_shape(rng)
    C = shape[1]
    x, beta, b = rng.standard_normal(shape), rng.standard_normal(C), rng.standard_normal(C)
    layer = Subsampling(size=n)
    u, cache = layer.forward(x, beta, b)
    G = rng.standard_normal(u.shape)
    g = layer.backward(G, cache)
    tx, tbeta, tb = t64(x, True), t64(beta, True), t64(b, True)
    tu = tbeta[:, None, None] * F.avg_pool2d(tx, n) * n * n + tb[:, None, None]
    np.testing.assert_allclose(u, tu.detach().numpy(), rtol=RTOL, atol=ATOL)
    for name, ref in zip(("x", "beta", "b"), vjp(tu, G, tx, tbeta, tb), strict=True):
        np.testing.assert_allclose(g[name], ref, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("seed", range(4))
def test_meanpool_against_torch_autograd(seed):
    rng = np.random.default_rng(200 + seed)
    n, shape = random_pool_shape(rng)
    x = rng.standard_normal(shape)
    y, cache = MeanPool(n).forward(x)
    G = rng.standard_normal(y.shape)
    tx = t64(x, True)
    ty = F.avg_pool2d(tx, n)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(MeanPool(n).backward(G, cache)["x"], vjp(ty, G, tx)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", range(6))
def test_maxpool_against_torch_autograd(seed):
    rng = np.random.default_rng(300 + seed)
    n, shape = random_pool_shape(rng)
    x = rng.standard_normal(shape)
    y, cache = MaxPool(n).forward(x)
    G = rng.standard_normal(y.shape)
    tx = t64(x, True)
    ty = F.max_pool2d(tx, n)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(MaxPool(n).backward(G, cache)["x"], vjp(ty, G, tx)[0])


def test_maxpool_ties_go_where_torch_sends_them():
    """Integer-valued maps full of ties: the first maximum in row-major order, as torch."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (2, 3, 6, 9)).astype(np.float64)
    y, cache = MaxPool(3).forward(x)
    G = rng.standard_normal(y.shape)
    tx = t64(x, True)
    ty = F.max_pool2d(tx, 3)
    np.testing.assert_array_equal(MaxPool(3).backward(G, cache)["x"], vjp(ty, G, tx)[0])


@pytest.mark.parametrize("layer, fn", [(Sigmoid(), torch.sigmoid), (Tanh(), torch.tanh),
                                       (ReLU(), torch.relu)])
@pytest.mark.parametrize("seed", range(3))
def test_activations_against_torch_autograd(layer, fn, seed):
    rng = np.random.default_rng(400 + seed)
    shape = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 5))))
    x = 4 * rng.standard_normal(shape)
    if seed == 0:
        x.reshape(-1)[0] = 0.0  # torch's relu'(0) = 0 too
    y, cache = layer.forward(x)
    G = rng.standard_normal(shape)
    tx = t64(x, True)
    ty = fn(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(layer.backward(G, cache)["x"], vjp(ty, G, tx)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", range(4))
def test_squared_error_is_half_mse_sum(seed):
    rng = np.random.default_rng(500 + seed)
    shape = tuple(int(s) for s in rng.integers(1, 5, 3))
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    E, cache = SquaredError().forward(y, t)
    ty = t64(y, True)
    tE = F.mse_loss(ty, t64(t), reduction="sum") / 2
    np.testing.assert_allclose(E, tE.item(), rtol=RTOL)
    G = rng.standard_normal()
    dy = SquaredError().backward(G, cache)["y"]
    np.testing.assert_allclose(dy, vjp(tE, G, ty)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(4))
def test_softmax_cross_entropy_against_torch(reduction, seed):
    rng = np.random.default_rng(600 + seed)
    N, K = int(rng.integers(1, 7)), int(rng.integers(2, 8))
    x = 5 * rng.standard_normal((N, K))
    t = rng.integers(0, K, N)
    layer = SoftmaxCrossEntropy(reduction)
    E, cache = layer.forward(x, t)
    tx = t64(x, True)
    tE = F.cross_entropy(tx, torch.as_tensor(t), reduction=reduction)
    np.testing.assert_allclose(E, tE.item(), rtol=RTOL)
    G = rng.standard_normal()
    np.testing.assert_allclose(layer.backward(G, cache)["x"], vjp(tE, G, tx)[0], rtol=RTOL, atol=ATOL)
