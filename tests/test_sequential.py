"""Sequential: naming, chaining, Bouvrie's residual propagation, head/tail, and central differences."""

import numpy as np
import pytest

from layers.activations import ReLU, Sigmoid, Tanh
from layers.fully_connected import FullyConnected
from layers.losses import SoftmaxCrossEntropy, SquaredError
from layers.sequential import Sequential
from layers.subsampling import MaxPool, Subsampling, down, up
from tests.numdiff import assert_backward_matches, numeric_vjp


def mlp():
    """fc1 -> sigmoid -> fc2 -> squared error, with its arrays."""
    rng = np.random.default_rng(0)
    net = Sequential([("fc1", FullyConnected()), ("sig", Sigmoid()), ("fc2", FullyConnected()),
                      ("loss", SquaredError())])
    arrays = {"x": rng.standard_normal((3, 4)),
              "fc1.W": rng.standard_normal((4, 5)), "fc1.b": rng.standard_normal(5),
              "fc2.W": rng.standard_normal((5, 2)), "fc2.b": rng.standard_normal(2),
              "loss.t": rng.standard_normal((3, 2))}
    return net, arrays


def bouvrie_stack():
    """sub1 -> sigmoid -> sub2 -> sigmoid -> fc -> squared error.

    Seed 004's chain with a subsampling layer (sub1) in the conv layer's place.
    """
    rng = np.random.default_rng(1)
    net = Sequential([("sub1", Subsampling(2)), ("f1", Sigmoid()), ("sub2", Subsampling(2)),
                      ("f2", Sigmoid()), ("fc", FullyConnected()), ("loss", SquaredError())])
    arrays = {"x": rng.standard_normal((2, 3, 8, 8)),
              "sub1.beta": rng.standard_normal(3), "sub1.b": rng.standard_normal(3),
              "sub2.beta": rng.standard_normal(3), "sub2.b": rng.standard_normal(3),
              "fc.W": rng.standard_normal((12, 4)), "fc.b": rng.standard_normal(4),
              "loss.t": rng.standard_normal((2, 4))}
    return net, arrays


def pick(net, arrays):
    return {k: arrays[k] for k in net.inputs + net.constants}


def test_names_of_inputs_constants_and_layers():
    net, _ = mlp()
    assert net.inputs == ("x", "fc1.W", "fc1.b", "fc2.W", "fc2.b")
    assert net.constants == ("loss.t",)
    assert net.layer_names == ("fc1", "sig", "fc2", "loss")


def test_forward_chains_the_layers():
    net, a = mlp()
    E, _ = net.forward(**a)
    h = 1 / (1 + np.exp(-(a["x"] @ a["fc1.W"] + a["fc1.b"])))
    y = h @ a["fc2.W"] + a["fc2.b"]
    np.testing.assert_allclose(E, 0.5 * np.sum((a["loss.t"] - y) ** 2), rtol=1e-14)
    assert E.shape == ()


def test_backward_returns_every_input_and_every_delta():
    net, a = mlp()
    E, cache = net.forward(**a)
    g = net.backward(np.array(1.0), cache)
    assert set(g) == set(net.inputs) | {f"{n}.delta" for n in net.layer_names}
    for k in net.inputs:
        assert g[k].shape == a[k].shape
    assert g["loss.delta"] == 1.0  # dE/dE


def test_mlp_backward_matches_central_differences():
    net, a = mlp()
    assert_backward_matches(net, a)


def test_bouvrie_stack_backward_matches_central_differences():
    net, a = bouvrie_stack()
    assert_backward_matches(net, a)


def test_bouvrie_residual_propagation_through_sigmoid_and_subsampling():
    """delta^l = beta^{l+1} (f'(u^l) o up(delta^{l+1})), f'(u) = y (1 - y): the layer before f1 -> sub2."""
    net, a = bouvrie_stack()
    _, cache = net.forward(**a)
    g = net.backward(1.0, cache)
    y = net.head("f1").forward(**pick(net.head("f1"), a))[0]  # f(u^l), u^l = sub1's output
    beta = a["sub2.beta"][None, :, None, None]
    expected = beta * (y * (1 - y) * up(g["sub2.delta"], 2))
    np.testing.assert_allclose(g["sub1.delta"], expected, rtol=1e-14)
    # ... and the sub-layer's own gradients from that residual (seed 004: dbeta = sum(delta o down(x)))
    np.testing.assert_allclose(g["sub1.beta"], (g["sub1.delta"] * down(a["x"], 2)).sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(g["sub1.b"], g["sub1.delta"].sum(axis=(0, 2, 3)))


def test_delta_is_the_x_gradient_of_the_tail_checked_numerically():
    """Residual as a gradient: the stack's "<name>.delta" == tail(name)'s dE/dx == central differences."""
    net, a = bouvrie_stack()
    _, cache = net.forward(**a)
    g = net.backward(1.0, cache)
    head, tail = net.head("sub1"), net.tail("sub1")
    u = head.forward(**pick(head, a))[0]
    ta = pick(tail, a) | {"x": u}
    num = numeric_vjp(tail, ta, np.array(1.0), "x")
    # rounding ~ 1e-16 * |E| / eps = 1e-10 * |E| with |E| ~ 10 here: atol 1e-8 as in tests/numdiff.py
    np.testing.assert_allclose(g["sub1.delta"], num, rtol=1e-6, atol=1e-8)
    tg = tail.backward(1.0, tail.forward(**ta)[1])
    np.testing.assert_allclose(tg["x"], g["sub1.delta"], rtol=1e-15)
    np.testing.assert_allclose(tg["sub2.beta"], g["sub2.beta"], rtol=1e-15)


def test_head_then_tail_is_the_whole_stack_and_keeps_names():
    net, a = mlp()
    head, tail = net.head("sig"), net.tail("sig")
    assert head.layer_names == ("fc1", "sig") and tail.layer_names == ("fc2", "loss")
    assert head.inputs == ("x", "fc1.W", "fc1.b") and head.constants == ()
    assert tail.inputs == ("x", "fc2.W", "fc2.b") and tail.constants == ("loss.t",)
    h = head.forward(**pick(head, a))[0]
    np.testing.assert_allclose(tail.forward(**(pick(tail, a) | {"x": h}))[0], net.forward(**a)[0], rtol=1e-15)
    assert net.head("loss").layer_names == net.layer_names


def test_relu_maxpool_softmax_stack_matches_central_differences():
    rng = np.random.default_rng(2)
    net = Sequential([("pool", MaxPool(2)), ("act", ReLU()), ("fc", FullyConnected()),
                      ("tanh", Tanh()), ("loss", SoftmaxCrossEntropy())])
    x = rng.permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4) * 0.1 - 1.55  # no ties, no zeros
    a = {"x": x, "fc.W": rng.standard_normal((8, 3)), "fc.b": rng.standard_normal(3),
         "loss.t": np.array([2, 0])}
    assert net.complex_safe is False
    assert_backward_matches(net, a)


def test_complex_safe_only_when_every_layer_is():
    net, _ = mlp()
    assert net.complex_safe is True
    assert Sequential([("fc", FullyConnected()), ("r", ReLU())]).complex_safe is False


def test_complex_step_through_the_whole_stack():
    net, a = bouvrie_stack()
    g = net.backward(1.0, net.forward(**a)[1])
    h = 1e-30
    ac = {k: (v.astype(np.complex128) if k != "loss.t" else v) for k, v in a.items()}
    for name, idx in [("sub1.beta", (1,)), ("x", (1, 2, 3, 4)), ("fc.W", (5, 2))]:
        p = {k: v.copy() for k, v in ac.items()}
        p[name][idx] += 1j * h
        np.testing.assert_allclose(g[name][idx], net.forward(**p)[0].imag / h, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_stack_keeps_dtype(dtype):
    net, a = mlp()
    a = {k: v.astype(dtype) for k, v in a.items()}
    E, cache = net.forward(**a)
    assert E.dtype == dtype
    g = net.backward(np.ones((), dtype), cache)
    assert all(g[k].dtype == dtype for k in net.inputs)


def test_nested_stack_exposes_its_parameters_and_residuals():
    net, a = mlp()
    inner = Sequential([("fc1", FullyConnected()), ("sig", Sigmoid())])
    outer = Sequential([("block", inner), ("fc2", FullyConnected()), ("loss", SquaredError())])
    assert outer.inputs == ("x", "block.fc1.W", "block.fc1.b", "fc2.W", "fc2.b")
    oa = {("block." + k if k.startswith("fc1.") else k): v for k, v in a.items()}
    g_flat = net.backward(1.0, net.forward(**a)[1])
    g = outer.backward(1.0, outer.forward(**oa)[1])
    np.testing.assert_allclose(g["block.fc1.W"], g_flat["fc1.W"], rtol=1e-15)
    np.testing.assert_allclose(g["block.fc1.delta"], g_flat["fc1.delta"], rtol=1e-15)
    np.testing.assert_allclose(g["block.delta"], g_flat["sig.delta"], rtol=1e-15)


def test_stateless_repeated_calls_agree():
    net, a = mlp()
    before = dict(vars(net))
    g1 = net.backward(1.0, net.forward(**a)[1])
    g2 = net.backward(1.0, net.forward(**a)[1])
    assert vars(net) == before
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("layers, match", [
    ([("a", Sigmoid()), ("a", Tanh())], "Sequential: duplicate layer name 'a'"),
    ([], "Sequential: layers must hold at least one"),
    ([("a.b", Sigmoid())], "layer names must be non-empty and without '.'"),
    ([Sigmoid()], r"each entry must be a \(name, layer\) pair"),
])
def test_bad_layer_lists_raise(layers, match):
    with pytest.raises(ValueError, match=match):
        Sequential(layers)


def test_unknown_names_in_head_tail_and_forward_raise():
    net, a = mlp()
    with pytest.raises(ValueError, match="Sequential: no layer named 'conv'; layers are fc1, sig, fc2, loss"):
        net.head("conv")
    with pytest.raises(ValueError, match="no layer named 'conv'"):
        net.tail("conv")
    with pytest.raises(ValueError, match="no layers after 'loss'"):
        net.tail("loss")
    with pytest.raises(ValueError, match=r"missing \['loss.t'\], unknown none"):
        net.forward(**{k: v for k, v in a.items() if k != "loss.t"})
    with pytest.raises(ValueError, match=r"missing none, unknown \['fc3.W'\]"):
        net.forward(**a, **{"fc3.W": a["fc2.W"]})


# ---- whole CNN chains with Conv2D (layers/conv.py, written by another helper) -------------------------
try:
    from layers.conv import Conv2D
except ImportError:  # pragma: no cover - only while layers/conv.py is not in the tree
    Conv2D = None
needs_conv = pytest.mark.skipif(Conv2D is None, reason="layers/conv.py (Conv2D) is not in the tree")


def seed_004_cnn():
    """conv -> sigmoid -> subsampling -> sigmoid -> fc -> squared error, Bouvrie's convolution mode."""
    rng = np.random.default_rng(10)
    net = Sequential([("conv", Conv2D(mode="convolution")), ("f1", Sigmoid()), ("sub", Subsampling(2)),
                      ("f2", Sigmoid()), ("fc", FullyConnected()), ("loss", SquaredError())])
    arrays = {"x": rng.standard_normal((2, 2, 5, 5)),            # 5x5 maps, 2x2 kernels -> 4x4 -> 2x2
              "conv.k": rng.standard_normal((3, 2, 2, 2)), "conv.b": rng.standard_normal(3),
              "sub.beta": rng.standard_normal(3), "sub.b": rng.standard_normal(3),
              "fc.W": rng.standard_normal((12, 2)), "fc.b": rng.standard_normal(2),
              "loss.t": rng.standard_normal((2, 2))}
    return net, arrays


@needs_conv
def test_seed_004_cnn_backward_matches_central_differences():
    net, a = seed_004_cnn()
    assert net.complex_safe is True
    assert_backward_matches(net, a)


@needs_conv
def test_seed_004_conv_residual_is_beta_times_fprime_o_up_delta():
    """Bouvrie: delta_j^l = beta_j^{l+1} (f'(u_j^l) o up(delta_j^{l+1})), f'(u) = y (1 - y)."""
    net, a = seed_004_cnn()
    g = net.backward(1.0, net.forward(**a)[1])
    head = net.head("f1")
    y = head.forward(**pick(head, a))[0]
    beta = a["sub.beta"][None, :, None, None]
    np.testing.assert_allclose(g["conv.delta"], beta * (y * (1 - y) * up(g["sub.delta"], 2)), rtol=1e-14)
    # db_j = sum_{u,v} (delta_j)_{uv}, over the batch as well
    np.testing.assert_allclose(g["conv.b"], g["conv.delta"].sum(axis=(0, 2, 3)), rtol=1e-14)


@needs_conv
def test_seed_004_conv_residual_is_the_tail_gradient_checked_numerically():
    net, a = seed_004_cnn()
    g = net.backward(1.0, net.forward(**a)[1])
    head, tail = net.head("conv"), net.tail("conv")
    u = head.forward(**pick(head, a))[0]                         # the conv's pre-activation u
    num = numeric_vjp(tail, pick(tail, a) | {"x": u}, np.array(1.0), "x")
    np.testing.assert_allclose(g["conv.delta"], num, rtol=1e-6, atol=1e-8)


@needs_conv
def test_seed_004_cnn_complex_step():
    net, a = seed_004_cnn()
    g = net.backward(1.0, net.forward(**a)[1])
    h = 1e-30
    for name, idx in [("conv.k", (2, 1, 0, 1)), ("x", (1, 0, 3, 2)), ("sub.beta", (0,))]:
        p = {k: v.astype(np.complex128) for k, v in a.items()}
        p[name][idx] += 1j * h
        np.testing.assert_allclose(g[name][idx], net.forward(**p)[0].imag / h, rtol=1e-13)


@needs_conv
def test_seed_003_cnn_conv_relu_maxpool_fc_softmax_matches_central_differences():
    """Seed 003's [INPUT-CONV-RELU-POOL-FC]: 7x7x3, two 3x3 filters, stride 2, pad 1 -> 4x4 -> pool 2x2."""
    rng = np.random.default_rng(11)
    net = Sequential([("conv", Conv2D(stride=2, pad=1)), ("relu", ReLU()), ("pool", MaxPool(2)),
                      ("fc", FullyConnected()), ("loss", SoftmaxCrossEntropy())])
    a = {"x": rng.standard_normal((3, 3, 7, 7)),
         "conv.k": rng.standard_normal((2, 3, 3, 3)), "conv.b": rng.standard_normal(2),
         "fc.W": rng.standard_normal((8, 4)), "fc.b": rng.standard_normal(4),
         "loss.t": np.array([3, 0, 1])}
    assert net.complex_safe is False
    assert net.head("pool").forward(**pick(net.head("pool"), a))[0].shape == (3, 2, 2, 2)
    # away from kinks: no conv output within 1e-3 of the ReLU kink, and in every pooling block the
    # maximum leads the runner-up by > 1e-3 unless the block is all zeros (then dy reaches nothing)
    u = net.head("conv").forward(**pick(net.head("conv"), a))[0]
    assert u.shape == (3, 2, 4, 4) and np.abs(u).min() > 1e-3
    blocks = np.sort(np.maximum(u, 0).reshape(3, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
                     .reshape(3, 2, 2, 2, 4), axis=-1)
    assert np.all((blocks[..., -1] - blocks[..., -2] > 1e-3) | (blocks[..., -1] == 0))
    assert_backward_matches(net, a)
