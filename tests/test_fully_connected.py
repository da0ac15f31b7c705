"""FullyConnected against seed 002's printout, seed 000's counts, and plain central differences."""

import numpy as np
import pytest

from layers import FullyConnected
from tests.numdiff import assert_backward_matches

# Seed 002, section 4.1: the printed initial W (5x3), b = 0, x = arange(1, 11).reshape(2, 5).
W0 = np.array([
    [-2.02246258e-04, -2.86134686e-05, 5.67536552e-05],
    [-2.65147732e-05, 3.46693399e-05, -4.84865213e-05],
    [-8.56741462e-05, -1.36582254e-04, -1.63278178e-04],
    [7.67300884e-05, 4.15051110e-05, 3.05435127e-05],
    [2.03954211e-05, 7.60062287e-05, -2.58280679e-04],
])
X = np.arange(1, 11, 1).reshape(2, 5).astype(np.float64)
DY = np.arange(0, 1.2, 0.2).reshape(2, 3)  # the "loss" passed down from the next layer
LR = 0.01
PRINTED_Y = np.array([[-0.0001034, 0.00017703, -0.00169928], [-0.00118995, 0.00011195, -0.00361302]])
PRINTED_RESIDUAL = np.array([
    [-0.14238302, -0.17281246, -0.20329263, -0.23357948, -0.26408811],
    [-0.50248748, -0.60483666, -0.70752395, -0.80949021, -0.91218524],
])
PRINTED_W = np.array([
    [-0.18020225, -0.25002861, -0.31994325],
    [-0.21002651, -0.29996533, -0.39004849],
    [-0.24008567, -0.35013658, -0.46016328],
    [-0.26992327, -0.39995849, -0.52996946],
    [-0.2999796, -0.44992399, -0.60025828],
])
PRINTED_B = np.array([-0.03, -0.05, -0.07])
PRINTED = 0.5e-8  # numpy printed 8 decimals: half a unit in the last place


def run_backward_cell(W, b):
    """One execution of seed 002's section 4.2 cell: residual from the current W, then W, b -= lr * grad.

    prev_grad_w is re-zeroed inside the cell, so the momentum-like term is always 0.
    """
    layer = FullyConnected()
    _, cache = layer.forward(X, W, b)
    g = layer.backward(DY, cache)
    return g["x"], W - LR * g["W"], b - LR * g["b"]


def test_forward_reproduces_seed_002_output():
    y, _ = FullyConnected().forward(X, W0, np.zeros(3))
    np.testing.assert_allclose(y, PRINTED_Y, rtol=0, atol=PRINTED)


def test_printout_is_the_state_after_five_runs_of_the_backward_cell():
    """The printed W is 5 SGD steps from the printed initial W; the residual used the W after 4 steps."""
    W, b = W0.copy(), np.zeros(3)
    matches = []
    for run in range(1, 21):
        residual, W, b = run_backward_cell(W, b)
        if (np.allclose(W, PRINTED_W, rtol=0, atol=PRINTED)
                and np.allclose(residual, PRINTED_RESIDUAL, rtol=0, atol=PRINTED)
                and np.allclose(b, PRINTED_B, rtol=0, atol=PRINTED)):
            matches.append(run)
    assert matches == [5]


def test_backward_is_seed_002_matrix_form():
    rng = np.random.default_rng(1)
    x, W, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
    dy = rng.standard_normal((4, 3))
    g = FullyConnected().backward(dy, FullyConnected().forward(x, W, b)[1])
    np.testing.assert_allclose(g["x"], dy @ W.T)
    np.testing.assert_allclose(g["W"], x.T @ dy)
    np.testing.assert_allclose(g["b"], np.ones(4) @ dy)  # summed, not averaged


def test_seed_000_lenet_fc_shapes_and_parameter_count():
    """50*4*4 = 800 inputs (a conv output, flattened), 500 outputs, batch_size = 16."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 50, 4, 4))
    W, b = rng.standard_normal((800, 500)), rng.standard_normal(500)
    y, cache = FullyConnected().forward(x, W, b)
    assert y.shape == (16, 500)
    assert W.size + b.size == 400_000 + 500
    g = FullyConnected().backward(np.ones_like(y), cache)
    assert g["x"].shape == x.shape and g["W"].shape == W.shape and g["b"].shape == b.shape
    np.testing.assert_allclose(g["b"], np.full(500, 16.0))


def test_backward_matches_central_differences_with_4d_input():
    rng = np.random.default_rng(2)
    arrays = {"x": rng.standard_normal((3, 2, 2, 2)), "W": rng.standard_normal((8, 4)),
              "b": rng.standard_normal(4)}
    assert_backward_matches(FullyConnected(), arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_forward_keeps_dtype(dtype):
    x, W, b = np.ones((2, 3), dtype), np.ones((3, 4), dtype), np.ones(4, dtype)
    y, _ = FullyConnected().forward(x, W, b)
    assert y.dtype == dtype


def test_mismatched_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match="x has 5 features per sample.*W has 4 rows"):
        FullyConnected().forward(np.ones((2, 5)), np.ones((4, 3)), np.ones(3))
