"""down()/up(), Subsampling, MeanPool and MaxPool against seed 004's examples and central differences."""

import numpy as np
import pytest

from layers.subsampling import MaxPool, MeanPool, Subsampling, down, up
from tests.numdiff import assert_backward_matches

# Seed 004, 2.2.2: a 4x4 conv map whose 2x2 blocks hold the labels 1..4, 5..8, 9..12, 13..16
# (block (0,0) = 1..4, block (0,1) = 5..8, block (1,0) = 9..12, block (1,1) = 13..16).
LABELS = np.array([
    [1, 2, 5, 6],
    [3, 4, 7, 8],
    [9, 10, 13, 14],
    [11, 12, 15, 16],
], dtype=np.float64)


def test_down_sums_each_block_of_the_seed_004_map():
    np.testing.assert_array_equal(down(LABELS, 2), [[1 + 2 + 3 + 4, 5 + 6 + 7 + 8],
                                                    [9 + 10 + 11 + 12, 13 + 14 + 15 + 16]])


def test_up_is_kron_with_ones_seed_004():
    """Seed 004, 2.1.2: a 2x2 residual of the subsampling layer expands to 4x4, each entry in its block."""
    d = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array([
        [1, 1, 2, 2],
        [1, 1, 2, 2],
        [3, 3, 4, 4],
        [3, 3, 4, 4],
    ], dtype=np.float64)
    np.testing.assert_array_equal(up(d, 2), expected)
    np.testing.assert_array_equal(up(d, 2), np.kron(d, np.ones((2, 2))))


@pytest.mark.parametrize("n, H, W", [(2, 4, 6), (3, 9, 6), (2, 5, 7), (3, 7, 8)])
def test_adjoint_down_up(n, H, W):
    """<down(x), d> = <x, up(d)> to float64 rounding (up zero-extended over rows/cols down() drops)."""
    rng = np.random.default_rng(n * 100 + H * 10 + W)
    x = rng.standard_normal((2, 3, H, W))
    d = rng.standard_normal((2, 3, H // n, W // n))
    upd = np.zeros_like(x)
    upd[..., : (H // n) * n, : (W // n) * n] = up(d, n)
    lhs, rhs = np.sum(down(x, n) * d), np.sum(x * upd)
    assert abs(lhs - rhs) <= 1e-13 * np.sum(np.abs(x * upd))


def test_down_drops_the_remainder_rows_and_columns():
    x = np.arange(35.0).reshape(5, 7)
    np.testing.assert_array_equal(down(x, 2), down(x[:4, :6], 2))
    assert down(x, 2).shape == (2, 3)


def test_subsampling_dbeta_is_seed_004_hand_example():
    """dbeta = d11*(1+2+3+4) + d12*(5+6+7+8) + d21*(9+..+12) + d22*(13+..+16); db = sum(delta)."""
    d11, d12, d21, d22 = 0.3, -1.2, 0.7, 2.5
    delta = np.array([[[[d11, d12], [d21, d22]]]])
    x = LABELS[None, None]
    layer = Subsampling(size=2)
    _, cache = layer.forward(x, np.array([0.5]), np.array([0.1]))
    g = layer.backward(delta, cache)
    expected = (d11 * (1 + 2 + 3 + 4) + d12 * (5 + 6 + 7 + 8)
                + d21 * (9 + 10 + 11 + 12) + d22 * (13 + 14 + 15 + 16))
    np.testing.assert_allclose(g["beta"], [expected], rtol=1e-15)
    np.testing.assert_allclose(g["b"], [d11 + d12 + d21 + d22], rtol=1e-15)
    # dx = beta * up(delta): each conv-map entry gets beta times its block's residual
    np.testing.assert_allclose(g["x"][0, 0], 0.5 * np.kron(delta[0, 0], np.ones((2, 2))), rtol=1e-15)


def test_subsampling_forward_is_beta_down_plus_b_per_map():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 4))
    beta, b = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, -1.0])
    u, _ = Subsampling(2).forward(x, beta, b)
    for c in range(3):
        np.testing.assert_allclose(u[:, c], beta[c] * down(x[:, c], 2) + b[c], rtol=1e-15)


def test_subsampling_sums_dbeta_and_db_over_batch_and_positions():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 4, 6))
    delta = rng.standard_normal((3, 2, 2, 3))
    layer = Subsampling(2)
    g = layer.backward(delta, layer.forward(x, np.ones(2), np.zeros(2))[1])
    for c in range(2):
        expected = sum(np.sum(delta[i, c] * down(x[i, c], 2)) for i in range(3))
        np.testing.assert_allclose(g["beta"][c], expected)
        np.testing.assert_allclose(g["b"][c], delta[:, c].sum())


@pytest.mark.parametrize("n, H, W", [(2, 4, 4), (3, 6, 9), (2, 5, 7)])
def test_subsampling_backward_matches_central_differences(n, H, W):
    rng = np.random.default_rng(n + H + W)
    arrays = {"x": rng.standard_normal((2, 3, H, W)), "beta": rng.standard_normal(3),
              "b": rng.standard_normal(3)}
    assert_backward_matches(Subsampling(size=n), arrays)


def test_subsampling_gradient_is_zero_on_dropped_rows_and_columns():
    layer = Subsampling(2)
    x = np.ones((1, 1, 5, 5))
    g = layer.backward(np.ones((1, 1, 2, 2)), layer.forward(x, np.array([3.0]), np.zeros(1))[1])
    assert g["x"].shape == x.shape
    np.testing.assert_array_equal(g["x"][0, 0, 4, :], 0.0)
    np.testing.assert_array_equal(g["x"][0, 0, :, 4], 0.0)
    np.testing.assert_array_equal(g["x"][0, 0, :4, :4], 3.0)


def test_meanpool_forward_and_backward():
    y, cache = MeanPool(2).forward(LABELS[None, None])
    np.testing.assert_allclose(y[0, 0], [[2.5, 6.5], [10.5, 14.5]], rtol=1e-15)
    g = MeanPool(2).backward(np.array([[[[4.0, 8.0], [-4.0, 0.0]]]]), cache)
    np.testing.assert_allclose(g["x"][0, 0], np.kron([[1.0, 2.0], [-1.0, 0.0]], np.ones((2, 2))), rtol=1e-15)


@pytest.mark.parametrize("n, H, W", [(2, 4, 6), (3, 7, 6)])
def test_meanpool_backward_matches_central_differences(n, H, W):
    x = np.random.default_rng(5).standard_normal((2, 2, H, W))
    assert_backward_matches(MeanPool(size=n), {"x": x})


def test_maxpool_forward_takes_block_max_and_routes_gradient_to_it():
    x = np.array([[[[1.0, 9.0, 0.0, -1.0],
                    [3.0, 2.0, -5.0, -2.0],
                    [7.0, 0.0, 4.0, 4.5],
                    [0.0, 8.0, 6.0, 1.0]]]])
    y, cache = MaxPool(2).forward(x)
    np.testing.assert_array_equal(y[0, 0], [[9.0, 0.0], [8.0, 6.0]])
    g = MaxPool(2).backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), cache)["x"][0, 0]
    np.testing.assert_array_equal(g, [[0, 10, 20, 0],
                                      [0, 0, 0, 0],
                                      [0, 0, 0, 0],
                                      [0, 30, 40, 0]])


def test_maxpool_tie_sends_the_gradient_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 2.0, 2.0],
                    [5.0, 5.0, 2.0, 2.0]]]])
    layer = MaxPool(2)
    g = layer.backward(np.array([[[[1.0, 1.0]]]]), layer.forward(x)[1])["x"][0, 0]
    np.testing.assert_array_equal(g, [[0, 1, 1, 0], [0, 0, 0, 0]])


def test_maxpool_backward_matches_central_differences_without_ties():
    rng = np.random.default_rng(6)
    # a permutation scaled apart: no ties, and every gap (>= 0.1) far beyond eps
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1
    assert_backward_matches(MaxPool(size=2), {"x": x})
    assert_backward_matches(MaxPool(size=3), {"x": x[..., :, :6]})


@pytest.mark.parametrize("layer, arrays, dtype", [
    (Subsampling(2), {"beta": (2,), "b": (2,)}, np.float32),
    (Subsampling(2), {"beta": (2,), "b": (2,)}, np.complex128),
    (MeanPool(2), {}, np.float32),
    (MeanPool(2), {}, np.complex128),
    (MaxPool(2), {}, np.float32),  # not complex-safe: no complex case
])
def test_forward_and_backward_keep_dtype(layer, arrays, dtype):
    rng = np.random.default_rng(7)
    a = {"x": rng.standard_normal((2, 2, 4, 4)).astype(dtype)}
    a.update({k: rng.standard_normal(s).astype(dtype) for k, s in arrays.items()})
    y, cache = layer.forward(**a)
    assert y.dtype == dtype
    g = layer.backward(np.ones_like(y), cache)
    for name in layer.inputs:
        assert g[name].dtype == dtype and g[name].shape == a[name].shape


def test_complex_safety_flags():
    assert Subsampling.complex_safe and MeanPool.complex_safe and not MaxPool.complex_safe


def test_subsampling_complex_step_gives_the_beta_gradient_exactly():
    rng = np.random.default_rng(8)
    x, beta, b = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal(2), rng.standard_normal(2)
    G = rng.standard_normal((1, 2, 2, 2))
    layer = Subsampling(2)
    g = layer.backward(G, layer.forward(x, beta, b)[1])
    h = 1e-30
    for c in range(2):
        bp = beta.astype(np.complex128)
        bp[c] += 1j * h
        num = np.sum(G * layer.forward(x.astype(complex), bp, b.astype(complex))[0]).imag / h
        np.testing.assert_allclose(g["beta"][c], num, rtol=1e-14)


@pytest.mark.parametrize("make, a, match", [
    (lambda: Subsampling(2), {"x": np.ones((2, 4, 4)), "beta": np.ones(2), "b": np.ones(2)},
     r"Subsampling: x must have shape \(N, C, H, W\), got shape \(2, 4, 4\)"),
    (lambda: Subsampling(2), {"x": np.ones((1, 2, 4, 4)), "beta": np.ones(3), "b": np.ones(2)},
     r"Subsampling: beta must have shape \(2,\), got \(3,\)"),
    (lambda: Subsampling(2), {"x": np.ones((1, 2, 4, 4)), "beta": np.ones(2), "b": np.ones((2, 1))},
     r"Subsampling: b must have shape \(2,\), got \(2, 1\)"),
    (lambda: MaxPool(3), {"x": np.ones((1, 1, 2, 4))}, r"MaxPool: x maps must be at least 3x3"),
    (lambda: MeanPool(2), {"x": np.ones((4, 4))}, r"MeanPool: x must have shape"),
])
def test_bad_shapes_raise_a_clear_error(make, a, match):
    with pytest.raises(ValueError, match=match):
        make().forward(**a)


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_size_raises(size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        MaxPool(size)


def test_layers_are_stateless():
    layer = Subsampling(2)
    before = dict(vars(layer))
    x = np.ones((1, 1, 4, 4))
    layer.backward(np.ones((1, 1, 2, 2)), layer.forward(x, np.ones(1), np.ones(1))[1])
    assert vars(layer) == before
