"""FullyConnectedAsConv against FullyConnected (seed 000/001: FC layers as global convolutions)."""

import gc
import os

import numpy as np
import pytest

from layers import FullyConnected
from layers.fc_as_conv import FullyConnectedAsConv, conv_to_fc, fc_to_conv
from tests.numdiff import assert_backward_matches

# Both layers form the same products; only the summation order (and BLAS blocking) differs.
SAME_SUM = dict(rtol=1e-10, atol=1e-10)


def assert_close_in_blocks(a, b, rows=256, **tol):
    """assert_allclose over row blocks: no full-size temporaries next to a 0.8 GB array."""
    assert a.shape == b.shape
    for start in range(0, a.shape[0], rows):
        np.testing.assert_allclose(a[start:start + rows], b[start:start + rows], **tol)


def compare_with_fc(x, k, b, dy):
    """Forward and every gradient of FullyConnectedAsConv equal FullyConnected with W = conv_to_fc(k)."""
    y_conv, cache_conv = FullyConnectedAsConv().forward(x, k, b)
    y_fc, cache_fc = FullyConnected().forward(x, conv_to_fc(k), b)
    assert y_conv.shape == (x.shape[0], k.shape[0], 1, 1)
    np.testing.assert_allclose(y_conv[:, :, 0, 0], y_fc, **SAME_SUM)
    g_conv = FullyConnectedAsConv().backward(dy[:, :, None, None], cache_conv)
    del cache_conv
    g_fc = FullyConnected().backward(dy, cache_fc)
    del cache_fc
    np.testing.assert_allclose(g_conv["x"], g_fc["x"], **SAME_SUM)
    np.testing.assert_allclose(g_conv["b"], g_fc["b"], **SAME_SUM)
    assert g_conv["k"].shape == k.shape
    assert_close_in_blocks(conv_to_fc(g_conv["k"]), g_fc["W"], **SAME_SUM)


def test_fc_to_conv_unflattens_columns_in_c_h_w_order():
    C, kh, kw, F = 2, 3, 4, 5
    W = np.arange(C * kh * kw * F, dtype=float).reshape(C * kh * kw, F)
    k = fc_to_conv(W, C, kh, kw)
    assert k.shape == (F, C, kh, kw)
    for j, c, u, v in [(0, 0, 0, 0), (4, 1, 2, 3), (2, 1, 0, 2), (3, 0, 2, 1)]:
        assert k[j, c, u, v] == W[c * kh * kw + u * kw + v, j]
    # the same order in which FullyConnected flattens x (N, C, H, W)
    x = np.arange(C * kh * kw, dtype=float).reshape(1, C, kh, kw)
    np.testing.assert_array_equal(x.reshape(1, -1)[0], [x[0, c, u, v] for c in range(C)
                                                         for u in range(kh) for v in range(kw)])


def test_fc_to_conv_and_conv_to_fc_are_exact_inverses():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3 * 2 * 2, 7))
    np.testing.assert_array_equal(conv_to_fc(fc_to_conv(W, 3, 2, 2)), W)
    k = rng.standard_normal((7, 3, 2, 2))
    np.testing.assert_array_equal(fc_to_conv(conv_to_fc(k), 3, 2, 2), k)


def test_fc_to_conv_rejects_a_wrong_size():
    with pytest.raises(ValueError, match=r"fc_to_conv: W must have shape \(C\*kh\*kw, F\) = \(12, F\)"):
        fc_to_conv(np.ones((10, 3)), 3, 2, 2)
    with pytest.raises(ValueError, match=r"conv_to_fc: k must have shape \(F, C, kh, kw\)"):
        conv_to_fc(np.ones((3, 4)))


def test_equals_fully_connected_small():
    rng = np.random.default_rng(1)
    x, k, b = rng.standard_normal((3, 4, 3, 2)), rng.standard_normal((5, 4, 3, 2)), rng.standard_normal(5)
    compare_with_fc(x, k, b, rng.standard_normal((3, 5)))


def test_seed_001_fc_4096_to_4096_is_4096_groups_of_4096_1x1_kernels():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4096, 1, 1))
    k = rng.standard_normal((4096, 4096, 1, 1)) * 0.01
    b = rng.standard_normal(4096)
    assert k.shape[2:] == (1, 1) and k.size == 4096 * 4096
    compare_with_fc(x, k, b, rng.standard_normal((2, 4096)))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("GRADCHECK_SWEEP_HUGE"),
                    reason="two 0.8 GB kernels and their gradients (~20-40 s of page faults): `make sweep` "
                           "runs it; make test checks the same code at 4096x4096 (test above) and this "
                           "layer's gradients at full size through the catalogue cases fc-as-conv-7x7x512-*")
def test_seed_001_vgg16_7x7x512_to_4096_global_convolution():
    """VGG-16's first FC layer as a 7x7x512x4096 kernel (0.8 GB in float64), batch 2."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 512, 7, 7))
    k = rng.random((4096, 512, 7, 7))
    k -= 0.5
    b = rng.standard_normal(4096)
    assert k.size + b.size == 7 * 7 * 512 * 4096 + 4096 == 102_764_544
    try:
        compare_with_fc(x, k, b, rng.standard_normal((2, 4096)))
    finally:
        del k
        gc.collect()


def test_larger_input_gives_the_fc_score_at_every_window():
    """Seed 000's FCN heat map: on a 6x7 input a 4x4 global kernel slides, y[:, :, u, v] = FC(window)."""
    rng = np.random.default_rng(4)
    x, k, b = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((5, 3, 4, 4)), rng.standard_normal(5)
    y, _ = FullyConnectedAsConv().forward(x, k, b)
    assert y.shape == (2, 5, 3, 4)
    fc, W = FullyConnected(), conv_to_fc(k)
    for u in range(3):
        for v in range(4):
            np.testing.assert_allclose(y[:, :, u, v], fc.forward(x[:, :, u:u + 4, v:v + 4], W, b)[0],
                                       **SAME_SUM)


def test_backward_matches_central_differences_on_a_score_map():
    rng = np.random.default_rng(5)
    arrays = {"x": rng.standard_normal((2, 2, 4, 3)), "k": rng.standard_normal((3, 2, 3, 2)),
              "b": rng.standard_normal(3)}
    assert_backward_matches(FullyConnectedAsConv(), arrays)


def test_literal_impl_gives_the_same_layer():
    rng = np.random.default_rng(6)
    x, k, b = rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    y_fast, cache_fast = FullyConnectedAsConv().forward(x, k, b)
    y_lit, cache_lit = FullyConnectedAsConv(impl="literal").forward(x, k, b)
    np.testing.assert_allclose(y_fast, y_lit, **SAME_SUM)
    dy = rng.standard_normal(y_fast.shape)
    g_fast = FullyConnectedAsConv().backward(dy, cache_fast)
    g_lit = FullyConnectedAsConv(impl="literal").backward(dy, cache_lit)
    for name in ("x", "k", "b"):
        np.testing.assert_allclose(g_fast[name], g_lit[name], **SAME_SUM)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_dtype_is_preserved(dtype):
    y, _ = FullyConnectedAsConv().forward(np.ones((2, 3, 2, 2), dtype), np.ones((4, 3, 2, 2), dtype),
                                          np.ones(4, dtype))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[:, :, 0, 0], np.full((2, 4), 13))


def test_channel_mismatch_is_reported_by_this_layer():
    with pytest.raises(ValueError, match="FullyConnectedAsConv: x has 3 channels .* but k expects 2"):
        FullyConnectedAsConv().forward(np.ones((1, 3, 2, 2)), np.ones((4, 2, 2, 2)), np.ones(4))
