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
