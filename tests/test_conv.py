"""Conv2D against seed 003's sizes and worked numbers, seed 004's (Bouvrie's) examples, its own literal
implementation, adjoint identities and plain central differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from layers.conv import Conv2D, output_size, rot180
from tests.numdiff import assert_backward_matches

# <A x, y> = <x, A^T y> holds exactly in real arithmetic; in float64 both sides are sums of O(10^3)
# products, each side off by ~ n * 2^-53 * sum|terms|: 1e-12 relative leaves a wide margin.
ADJOINT_RTOL = 1e-12
# fast and literal sum the same products in a different order: rounding only.
SAME_SUM = dict(rtol=1e-11, atol=1e-12)


def random_arrays(rng, N, C, H, W, F, kh, kw, dtype=np.float64):
    return {"x": rng.standard_normal((N, C, H, W)).astype(dtype),
            "k": rng.standard_normal((F, C, kh, kw)).astype(dtype),
            "b": rng.standard_normal(F).astype(dtype)}


# -- helpers ---------------------------------------------------------------------------------------

def test_rot180_flips_the_last_two_axes():
    a = np.arange(12).reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(rot180(a)[0, 0], [[5, 4, 3], [2, 1, 0]])
    np.testing.assert_array_equal(rot180(a)[0, 1], [[11, 10, 9], [8, 7, 6]])
    np.testing.assert_array_equal(rot180(rot180(a)), a)


@pytest.mark.parametrize("n, k, stride, pad, expected", [
    (7, 3, 1, 0, 5),   # seed 003: 7x7 input, 3x3 filter, stride 1 -> 5x5
    (7, 3, 2, 0, 3),   # stride 2 -> 3x3
    (7, 3, 1, 1, 7),   # pad 1, stride 1 -> 7x7
    (32, 5, 1, 2, 32),  # 32x32x3, 5x5 filters, stride 1, pad 2 -> 32x32
    (32, 5, 1, 0, 28),  # the 28x28 the seed prints is the pad-0 size
    (5, 3, 2, 1, 3),   # seed 003's worked example
    (8, 3, 2, 0, 3),   # (8 - 3) / 2 = 2.5: the remainder is dropped
])
def test_output_size_is_seed_003_formula(n, k, stride, pad, expected):
    assert output_size(n, k, stride, pad) == expected


def test_output_size_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="kernel size 6 is larger than the padded input 3"):
        output_size(3, 6, 1, 1)


# -- seed 003: sizes, parameter count, the worked example ---------------------------------------------

@pytest.mark.parametrize("stride, pad, side", [(1, 0, 5), (2, 0, 3), (1, 1, 7)])
def test_seed_003_7x7_input_3x3_filter(stride, pad, side):
    rng = np.random.default_rng(0)
    y, _ = Conv2D(stride, pad).forward(**random_arrays(rng, 1, 1, 7, 7, 1, 3, 3))
    assert y.shape == (1, 1, side, side)


@pytest.mark.parametrize("pad, side", [(2, 32), (0, 28)])
def test_seed_003_ten_5x5_filters_on_32x32x3(pad, side):
    """Pad 2 keeps 32x32; the seed's text says 28x28x10 for pad 2, which is the pad-0 size."""
    rng = np.random.default_rng(0)
    a = random_arrays(rng, 2, 3, 32, 32, 10, 5, 5)
    y, _ = Conv2D(stride=1, pad=pad).forward(**a)
    assert y.shape == (2, 10, side, side)
    assert a["k"].size + a["b"].size == 5 * 5 * 3 * 10 + 10 == 760


# The three channels of the padded top-left 3x3 window and of filter w0, as seed 003 prints them.
SEED_003_WINDOW = np.array([
    [[0, 0, 0], [0, 1, 1], [0, 1, 1]],
    [[0, 0, 0], [0, 0, 1], [0, 2, 2]],
    [[0, 0, 0], [0, 2, 2], [0, 0, 0]],
], dtype=float)
SEED_003_W0 = np.array([
    [[1, 1, 1], [-1, -1, 0], [-1, 1, 0]],
    [[-1, -1, 1], [-1, 1, 0], [-1, 1, 0]],
    [[1, 0, -1], [0, 0, 0], [1, -1, -1]],
], dtype=float)


def seed_003_input():
    """A 5x5x3 input whose top-left 2x2 in each map is the interior of seed 003's padded window."""
    x = np.random.default_rng(3).integers(0, 3, size=(1, 3, 5, 5)).astype(float)
    x[0, :, :2, :2] = SEED_003_WINDOW[:, 1:, 1:]
    return x


def test_seed_003_worked_example_first_output_is_3():
    """Correlation, pad 1, stride 2: 0 + 2 + 0 + b(=1) = 3 at the first output of filter w0."""
    k = np.stack([SEED_003_W0, np.zeros((3, 3, 3))])
    y, _ = Conv2D(stride=2, pad=1).forward(seed_003_input(), k, np.array([1.0, 0.0]))
    assert y.shape == (1, 2, 3, 3)
    assert y[0, 0, 0, 0] == 3.0


@pytest.mark.parametrize("channel, level", [(0, 0.0), (1, 2.0), (2, 0.0)])
def test_seed_003_per_channel_levels_via_connection_table(channel, level):
    """F1 levels 1, 2, 3 of the seed (0, 2, 0): one input map connected at a time, b = 0."""
    connections = np.zeros((1, 3), dtype=bool)
    connections[0, channel] = True
    y, _ = Conv2D(stride=2, pad=1, connections=connections).forward(
        seed_003_input(), SEED_003_W0[None], np.zeros(1))
    assert y[0, 0, 0, 0] == level
    assert np.sum(SEED_003_WINDOW[channel] * SEED_003_W0[channel]) == level


# -- seed 004: Bouvrie's convolution mode ------------------------------------------------------------

X1 = np.arange(16, dtype=float).reshape(4, 4)
X2 = np.array([[1, 0, 2, 1], [0, 3, 1, 0], [2, 1, 0, 1], [1, 1, 1, 2]], dtype=float)
K11 = np.array([[1, 2], [3, 4]], dtype=float)
K12 = np.array([[0, -1], [1, 2]], dtype=float)


def test_seed_004_two_4x4_maps_two_2x2_kernels_give_one_3x3_map():
    x = np.stack([X1, X2])[None]                       # (1, 2, 4, 4)
    k = np.stack([K11, K12])[None]                     # (1, 2, 2, 2): k_11, k_12 feed output map 1
    y, _ = Conv2D(mode="convolution").forward(x, k, np.array([0.5]))
    expected = signal.convolve2d(X1, K11, "valid") + signal.convolve2d(X2, K12, "valid") + 0.5
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(y[0, 0], expected, rtol=0, atol=1e-14)
    # by hand, output (0, 0): conv2 pairs x[0,0]..x[1,1] with the kernel rotated 180 degrees
    by_hand = (0 * 4 + 1 * 3 + 4 * 2 + 5 * 1) + (1 * 2 + 0 * 1 + 0 * -1 + 3 * 0) + 0.5
    assert y[0, 0, 0, 0] == by_hand == 18.5


def test_seed_004_kernels_given_pre_rotated_are_correlation_kernels():
    """Seed 004: MATLAB's convn rotates the kernel, so the seed prints it already rotated."""
    x = np.stack([X1, X2])[None]
    k = np.stack([K11, K12])[None]
    y_conv, _ = Conv2D(mode="convolution").forward(x, k, np.zeros(1))
    y_corr, _ = Conv2D(mode="correlation").forward(x, rot180(k), np.zeros(1))
    np.testing.assert_allclose(y_conv, y_corr, rtol=0, atol=1e-14)


@pytest.mark.parametrize("impl", ["fast", "literal"])
def test_seed_004_dk_is_rot180_of_conv2_of_x_with_rotated_delta(impl):
    """3x3 delta, 2x2 kernel, 4x4 map: dk = rot180(conv2(x, rot180(delta), 'valid'))."""
    delta = np.array([[1, -2, 0], [0.5, 1, 3], [-1, 0, 2]])
    layer = Conv2D(mode="convolution", impl=impl)
    _, cache = layer.forward(X1[None, None], K11[None, None], np.zeros(1))
    dk = layer.backward(delta[None, None], cache)["k"][0, 0]
    np.testing.assert_allclose(dk, rot180(signal.convolve2d(X1, rot180(delta), "valid")), rtol=0, atol=1e-13)
    # by hand: dk[p, q] = sum_{u,v} delta[u, v] x[u + 1 - p, v + 1 - q]
    assert dk[1, 1] == np.sum(delta * X1[:3, :3])
    assert dk[0, 0] == np.sum(delta * X1[1:, 1:])


@pytest.mark.parametrize("impl", ["fast", "literal"])
def test_seed_004_dx_is_full_conv2_of_delta_with_rotated_kernel(impl):
    delta = np.array([[1, -2, 0], [0.5, 1, 3], [-1, 0, 2]])
    layer = Conv2D(mode="convolution", impl=impl)
    _, cache = layer.forward(X1[None, None], K11[None, None], np.zeros(1))
    g = layer.backward(delta[None, None], cache)
    expected = signal.convolve2d(delta, rot180(K11), "full")
    np.testing.assert_allclose(g["x"][0, 0], expected, rtol=0, atol=1e-13)
    assert g["b"][0] == delta.sum()


# -- stride remainder, padding, connections --------------------------------------------------------

@pytest.mark.parametrize("impl", ["fast", "literal"])
def test_stride_remainder_is_dropped_and_gets_no_gradient(impl):
    """8x8 input, 3x3 kernel, stride 2: windows start at 0, 2, 4, so row and column 7 are never read."""
    rng = np.random.default_rng(5)
    a = random_arrays(rng, 2, 2, 8, 8, 3, 3, 3)
    layer = Conv2D(stride=2, impl=impl)
    y, cache = layer.forward(**a)
    assert y.shape == (2, 3, 3, 3)
    dx = layer.backward(rng.standard_normal(y.shape), cache)["x"]
    assert np.all(dx[:, :, 7, :] == 0) and np.all(dx[:, :, :, 7] == 0)
    assert np.all(dx[:, :, 6, :6] != 0)
    b = dict(a, x=a["x"].copy())
    b["x"][:, :, 7, :] += 100.0
    np.testing.assert_array_equal(layer.forward(**b)[0], y)


@pytest.mark.parametrize("impl", ["fast", "literal"])
def test_padding_zeros_add_nothing_and_get_no_gradient_to_x(impl):
    """1x1 input of value 2, 3x3 kernel, pad 1: the one output is 2 * centre tap + b."""
    k = np.arange(9, dtype=float).reshape(1, 1, 3, 3)
    y, cache = Conv2D(pad=1, impl=impl).forward(np.full((1, 1, 1, 1), 2.0), k, np.array([0.25]))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 2 * 4 + 0.25
    g = Conv2D(pad=1, impl=impl).backward(np.ones((1, 1, 1, 1)), cache)
    assert g["x"][0, 0, 0, 0] == 4.0
    np.testing.assert_array_equal(g["k"][0, 0], [[0, 0, 0], [0, 2, 0], [0, 0, 0]])


def test_asymmetric_stride_and_pad_pairs():
    rng = np.random.default_rng(6)
    y, _ = Conv2D(stride=(1, 3), pad=(0, 2)).forward(**random_arrays(rng, 1, 2, 6, 7, 2, 3, 2))
    assert y.shape == (1, 2, output_size(6, 3, 1, 0), output_size(7, 2, 3, 2)) == (1, 2, 4, 4)


@pytest.mark.parametrize("impl", ["fast", "literal"])
def test_unconnected_kernel_slices_do_not_act_and_get_zero_gradient(impl):
    rng = np.random.default_rng(7)
    connections = np.array([[True, False, True], [False, True, False]])
    a = random_arrays(rng, 2, 3, 5, 5, 2, 3, 3)
    layer = Conv2D(pad=1, connections=connections, impl=impl)
    y, cache = layer.forward(**a)
    b = dict(a, k=a["k"].copy())
    b["k"][0, 1] += 10.0
    b["k"][1, 0] -= 3.0
    np.testing.assert_array_equal(layer.forward(**b)[0], y)
    g = layer.backward(rng.standard_normal(y.shape), cache)
    assert np.all(g["k"][~connections] == 0)
    assert np.all(g["k"][connections] != 0)
    # output map 1 reads only input map 1
    expected = np.stack([signal.correlate2d(np.pad(a["x"][n, 1], 1), a["k"][1, 1], "valid")
                         for n in range(2)])
    np.testing.assert_allclose(y[:, 1], expected + a["b"][1], **SAME_SUM)


# -- fast == literal ---------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.data())
def test_fast_equals_literal(data):
    draw = data.draw
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 8))
    W = draw(st.integers(max(1, kw - 2 * pw), 8))
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["correlation", "convolution"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    connections = rng.random((F, C)) < 0.6 if draw(st.booleans()) else None
    a = random_arrays(rng, N, C, H, W, F, kh, kw)
    fast = Conv2D((sh, sw), (ph, pw), mode, connections, impl="fast")
    literal = Conv2D((sh, sw), (ph, pw), mode, connections, impl="literal")
    y_fast, c_fast = fast.forward(**a)
    y_lit, c_lit = literal.forward(**a)
    np.testing.assert_allclose(y_fast, y_lit, **SAME_SUM)
    dy = rng.standard_normal(y_fast.shape)
    g_fast, g_lit = fast.backward(dy, c_fast), literal.backward(dy, c_lit)
    for name in ("x", "k", "b"):
        assert g_fast[name].shape == a[name].shape
        np.testing.assert_allclose(g_fast[name], g_lit[name], **SAME_SUM, err_msg=f"d{name}")


# -- adjoint identities (no step size) ---------------------------------------------------------------

ADJOINT_CONFIGS = [
    dict(stride=1, pad=0, mode="convolution"),
    dict(stride=1, pad=0, mode="correlation"),
    dict(stride=2, pad=1, mode="convolution"),
    dict(stride=(3, 2), pad=(2, 0), mode="correlation"),
    dict(stride=2, pad=2, mode="convolution", connections=np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)),
]


@pytest.mark.parametrize("impl", ["fast", "literal"])
@pytest.mark.parametrize("config", ADJOINT_CONFIGS)
def test_adjoint_identities(config, impl):
    """<conv_k(x), g> = <x, dx(g)> and <conv_k(x), g> = <k, dk(g)> with b = 0: both sides are the same
    bilinear form, so equality to rounding checks rot180, dilation and cropping with no step size."""
    rng = np.random.default_rng(8)
    a = random_arrays(rng, 2, 3, 9, 8, 2, 3, 4)
    a["b"] = np.zeros(2)
    layer = Conv2D(impl=impl, **config)
    y, cache = layer.forward(**a)
    g = rng.standard_normal(y.shape)
    grads = layer.backward(g, cache)
    lhs = np.vdot(y, g)
    np.testing.assert_allclose(np.vdot(a["x"], grads["x"]), lhs, rtol=ADJOINT_RTOL)
    np.testing.assert_allclose(np.vdot(a["k"], grads["k"]), lhs, rtol=ADJOINT_RTOL)


# -- central differences and complex step ------------------------------------------------------------

@pytest.mark.parametrize("impl", ["fast", "literal"])
@pytest.mark.parametrize("config", [
    dict(stride=1, pad=0, mode="convolution"),
    dict(stride=2, pad=1, mode="correlation"),
    dict(stride=(2, 1), pad=(1, 2), mode="convolution", connections=np.array([[1, 0], [1, 1]], dtype=bool)),
])
def test_backward_matches_central_differences(config, impl):
    rng = np.random.default_rng(9)
    assert_backward_matches(Conv2D(impl=impl, **config), random_arrays(rng, 2, 2, 5, 4, 2, 3, 2))


@pytest.mark.parametrize("impl", ["fast", "literal"])
@pytest.mark.parametrize("mode", ["correlation", "convolution"])
def test_complex_step_derivative_equals_backward(mode, impl):
    """Im(sum(G * f(x + i h u))) / h = <dx, u> exactly to rounding (the forward is analytic)."""
    rng = np.random.default_rng(10)
    a = random_arrays(rng, 2, 2, 5, 5, 3, 3, 3)
    layer = Conv2D(stride=2, pad=1, mode=mode, impl=impl)
    y, cache = layer.forward(**a)
    G = rng.standard_normal(y.shape)
    grads = layer.backward(G, cache)
    h = 1e-30
    for name in ("x", "k", "b"):
        u = rng.standard_normal(a[name].shape)
        shifted = dict(a, **{name: a[name] + 1j * h * u})
        directional = np.sum(G * layer.forward(**shifted)[0]).imag / h
        np.testing.assert_allclose(directional, np.vdot(grads[name], u), rtol=1e-12, err_msg=name)


# -- dtype and errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["fast", "literal"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_dtype_is_preserved(dtype, impl):
    rng = np.random.default_rng(11)
    a = random_arrays(rng, 1, 2, 5, 5, 2, 3, 3, dtype=dtype)
    layer = Conv2D(stride=2, pad=1, mode="convolution", impl=impl)
    y, cache = layer.forward(**a)
    assert y.dtype == dtype
    grads = layer.backward(np.ones(y.shape, dtype), cache)
    assert {name: g.dtype for name, g in grads.items()} == {"x": dtype, "k": dtype, "b": dtype}


def test_channel_mismatch_raises():
    with pytest.raises(ValueError, match=r"Conv2D: x has 3 channels .* but k expects 2"):
        Conv2D().forward(np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3)), np.ones(4))


def test_bad_connections_shape_raises():
    message = r"Conv2D: connections must have shape \(F, C\) = \(4, 3\), got \(3, 4\)"
    with pytest.raises(ValueError, match=message):
        Conv2D(connections=np.ones((3, 4), dtype=bool)).forward(
            np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones(4))


@pytest.mark.parametrize("kwargs, message", [
    (dict(connections=np.ones((2, 2))), "connections must be a boolean"),
    (dict(stride=0), "stride must be an int >= 1"),
    (dict(pad=(1, -1)), "pad must be an int >= 0"),
    (dict(mode="full"), "mode must be one of"),
    (dict(impl="gpu"), "impl must be one of"),
])
def test_bad_hyper_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=f"Conv2D: {message}"):
        Conv2D(**kwargs)


@pytest.mark.parametrize("x_shape, k_shape, b_shape, message", [
    ((3, 5, 5), (2, 3, 3, 3), (2,), r"x must have shape \(N, C, H, W\)"),
    ((1, 3, 5, 5), (2, 3, 3, 3), (3,), r"b must have shape \(2,\)"),
    ((1, 3, 2, 5), (2, 3, 3, 3), (2,), "kernel 3x3 is larger than the padded input 2x5"),
])
def test_bad_shapes_raise(x_shape, k_shape, b_shape, message):
    with pytest.raises(ValueError, match=f"Conv2D: {message}"):
        Conv2D().forward(np.ones(x_shape), np.ones(k_shape), np.ones(b_shape))


def test_layer_keeps_no_state_between_calls():
    rng = np.random.default_rng(12)
    layer = Conv2D(stride=2, pad=1)
    before = dict(vars(layer))
    a = random_arrays(rng, 1, 2, 5, 5, 2, 3, 3)
    y1, cache = layer.forward(**a)
    layer.backward(np.ones(y1.shape), cache)
    y2, _ = layer.forward(**a)
    np.testing.assert_array_equal(y1, y2)
    assert vars(layer).keys() == before.keys()
