"""The cs231n-style pairs (tests/cs231n_layers/layers.py) against central differences and torch, and each
planted bug (tests/cs231n_layers/buggy.py) shown wrong on the array its docstring names, right on the
others, by plain numerics (no gradcheck)."""

import ast
import inspect

import numpy as np
import pytest

from layers import LSTMStep
from tests.cs231n_layers import buggy
from tests.cs231n_layers import layers as ok
from tests.numdiff_functions import cotangent_loss, numeric_gradient


class Pair:
    """A forward/backward pair in cs231n's conventions, called with a dict of arrays.

    names: the forward's array arguments, in order, each with a gradient in backward's result (in that
    order); params: the trailing non-array arguments (conv_param, ...); n_out: outputs before the cache.
    """

    def __init__(self, forward, backward, names, params=(), n_out=1):
        self.forward, self.backward = forward, backward
        self.names, self.params, self.n_out = names, params, n_out

    def run(self, arrays):
        """(outputs tuple, cache)."""
        result = self.forward(*(arrays[k] for k in self.names), *self.params)
        return tuple(result[:self.n_out]), result[self.n_out]

    def grads(self, G, cache):
        result = self.backward(*G, cache)
        return dict(zip(self.names, (result,) if len(self.names) == 1 else result, strict=True))

    def with_backward(self, forward, backward):
        return Pair(forward, backward, self.names, self.params, self.n_out)


def numeric(pair, arrays, G, name):
    return numeric_gradient(lambda: cotangent_loss(pair.run(arrays)[0], G), arrays[name])


def conv_case(stride, pad, x_shape, w_shape):
    def build(rng):
        arrays = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape),
                  "b": rng.standard_normal(w_shape[0])}
        param = {"stride": stride, "pad": pad}
        return Pair(ok.conv_forward_naive, ok.conv_backward_naive, ("x", "w", "b"), (param,)), arrays
    return build


def pool_case(ph, pw, s, x_shape):
    def build(rng):
        param = {"pool_height": ph, "pool_width": pw, "stride": s}
        return Pair(ok.max_pool_forward_naive, ok.max_pool_backward_naive, ("x",), (param,)), \
            {"x": rng.standard_normal(x_shape)}
    return build


def bn_case(spatial, mode):
    def build(rng):
        shape, C = ((2, 3, 2, 3), 3) if spatial else ((5, 4), 4)
        param = {"mode": mode, "eps": 1e-5, "momentum": 0.9}
        if mode == "test":
            param.update(running_mean=rng.standard_normal(C), running_var=rng.uniform(0.5, 2, C))
        fns = ((ok.spatial_batchnorm_forward, ok.spatial_batchnorm_backward) if spatial
               else (ok.batchnorm_forward, ok.batchnorm_backward))
        arrays = {"x": 2 * rng.standard_normal(shape) + 1, "gamma": rng.standard_normal(C),
                  "beta": rng.standard_normal(C)}
        return Pair(*fns, ("x", "gamma", "beta"), (param,)), arrays
    return build


def affine(rng):
    arrays = {"x": rng.standard_normal((3, 2, 3)), "w": rng.standard_normal((6, 4)),
              "b": rng.standard_normal(4)}
    return Pair(ok.affine_forward, ok.affine_backward, ("x", "w", "b")), arrays


def relu(rng):
    x = rng.standard_normal((3, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    return Pair(ok.relu_forward, ok.relu_backward, ("x",)), {"x": x}


def rnn(rng):
    N, D, H = 3, 4, 5
    arrays = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
              "Wx": 0.5 * rng.standard_normal((D, H)), "Wh": 0.5 * rng.standard_normal((H, H)),
              "b": rng.standard_normal(H)}
    return Pair(ok.rnn_step_forward, ok.rnn_step_backward, ("x", "prev_h", "Wx", "Wh", "b")), arrays


def lstm(rng):
    N, D, H = 3, 4, 3
    arrays = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
              "prev_c": rng.standard_normal((N, H)), "Wx": 0.5 * rng.standard_normal((D, 4 * H)),
              "Wh": 0.5 * rng.standard_normal((H, 4 * H)), "b": rng.standard_normal(4 * H)}
    names = ("x", "prev_h", "prev_c", "Wx", "Wh", "b")
    return Pair(ok.lstm_step_forward, ok.lstm_step_backward, names, n_out=2), arrays


CASES = {
    "affine": affine,
    "relu": relu,
    "conv_s1_p0": conv_case(1, 0, (2, 2, 4, 5), (3, 2, 3, 2)),
    "conv_s2_p1": conv_case(2, 1, (2, 3, 5, 5), (2, 3, 3, 3)),
    "conv_s1_p2": conv_case(1, 2, (1, 2, 3, 4), (2, 2, 3, 3)),
    "pool_2x2_s2": pool_case(2, 2, 2, (2, 2, 4, 6)),
    "pool_3x2_s1_overlapping": pool_case(3, 2, 1, (2, 2, 5, 4)),
    "batchnorm_train": bn_case(False, "train"),
    "batchnorm_test": bn_case(False, "test"),
    "spatial_batchnorm_train": bn_case(True, "train"),
    "spatial_batchnorm_test": bn_case(True, "test"),
    "rnn_step": rnn,
    "lstm_step": lstm,
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", range(2))
def test_pair_matches_central_differences(case, seed):
    rng = np.random.default_rng(seed)
    pair, arrays = CASES[case](rng)
    outs, cache = pair.run(arrays)
    G = tuple(rng.standard_normal(y.shape) for y in outs)
    grads = pair.grads(G, cache)
    for name in pair.names:
        assert grads[name].shape == arrays[name].shape, name
        np.testing.assert_allclose(grads[name], numeric(pair, arrays, G, name), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{case}: d{name}")


@pytest.mark.parametrize("loss", [ok.softmax_loss, ok.svm_loss])
@pytest.mark.parametrize("seed", range(3))
def test_losses_match_central_differences(loss, seed):
    rng = np.random.default_rng(10 + seed)
    N, K = 4, 5
    x, y = 2 * rng.standard_normal((N, K)), rng.integers(0, K, N)
    value, dx = loss(x, y)
    assert np.ndim(value) == 0 and dx.shape == x.shape
    np.testing.assert_allclose(dx, numeric_gradient(lambda: loss(x, y)[0], x), rtol=1e-6, atol=1e-8)


def test_losses_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    loss, _ = ok.softmax_loss(x, y)
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(loss, (-np.log(p[2]) + np.log(3)) / 2, rtol=1e-14)
    loss, dx = ok.svm_loss(x, y)
    # sample 0: margins max(0, 1-3+1) = 0, max(0, 2-3+1) = 0; sample 1: two margins of 1
    np.testing.assert_allclose(loss, 2 / 2, rtol=1e-15)
    np.testing.assert_array_equal(dx, [[0, 0, 0], [-1, 0.5, 0.5]])


def test_affine_flattens_trailing_axes():
    rng = np.random.default_rng(20)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((12, 5)), rng.standard_normal(5)
    out, _ = ok.affine_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(2, 12) @ w + b, rtol=1e-14)


def test_conv_rejects_a_stride_that_does_not_divide():
    with pytest.raises(ValueError, match="stride 2"):
        ok.conv_forward_naive(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), np.zeros(1),
                              {"stride": 2, "pad": 0})


def test_max_pool_gives_ties_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    out, cache = ok.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    np.testing.assert_array_equal(out, [[[[3.0]]]])
    np.testing.assert_array_equal(ok.max_pool_backward_naive(np.ones((1, 1, 1, 1)), cache),
                                  [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_batchnorm_writes_running_stats_into_bn_param():
    rng = np.random.default_rng(30)
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9}
    gamma, beta = np.ones(3), np.zeros(3)
    x1, x2 = rng.standard_normal((6, 3)), 3 + rng.standard_normal((6, 3))
    out, _ = ok.batchnorm_forward(x1, gamma, beta, bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(out.var(axis=0), 1 - 1e-5 / (x1.var(axis=0) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x1.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * x1.var(axis=0), rtol=1e-14)
    ok.batchnorm_forward(x2, gamma, beta, bn_param)
    rm = 0.9 * 0.1 * x1.mean(axis=0) + 0.1 * x2.mean(axis=0)
    rv = 0.9 * 0.1 * x1.var(axis=0) + 0.1 * x2.var(axis=0)
    np.testing.assert_allclose(bn_param["running_mean"], rm, rtol=1e-14)
    np.testing.assert_allclose(bn_param["running_var"], rv, rtol=1e-14)
    test_param = {**bn_param, "mode": "test"}
    out, _ = ok.batchnorm_forward(x1, gamma, beta, test_param)
    np.testing.assert_allclose(out, (x1 - rm) / np.sqrt(rv + 1e-5), rtol=1e-14)
    np.testing.assert_array_equal(test_param["running_mean"], bn_param["running_mean"])  # nothing written
    with pytest.raises(ValueError, match="mode"):
        ok.batchnorm_forward(x1, gamma, beta, {"mode": "eval"})


def test_spatial_batchnorm_normalises_each_channel_over_n_h_w():
    rng = np.random.default_rng(31)
    x = rng.standard_normal((3, 2, 4, 5)) * np.array([1.0, 5.0])[None, :, None, None]
    out, _ = ok.spatial_batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-14)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-12)


def test_lstm_step_backward_leaves_its_arguments_alone_and_agrees_with_layers_lstm():
    rng = np.random.default_rng(40)
    pair, arrays = lstm(rng)
    (h, c), cache = pair.run(arrays)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    saved = dh.copy(), dc.copy()
    for a in (dh, dc, *cache):
        a.flags.writeable = False
    grads = pair.grads((dh, dc), cache)
    np.testing.assert_array_equal(dh, saved[0])
    np.testing.assert_array_equal(dc, saved[1])
    layer = LSTMStep()
    theirs = {"x": "x", "prev_h": "h_prev", "prev_c": "c_prev", "Wx": "Wx", "Wh": "Wh", "b": "b"}
    (h2, c2), cache2 = layer.forward(**{theirs[k]: v for k, v in arrays.items()})
    np.testing.assert_allclose(h, h2, rtol=1e-14)
    np.testing.assert_allclose(c, c2, rtol=1e-14)
    g2 = layer.backward((dh, dc), cache2)
    for k, v in theirs.items():
        np.testing.assert_allclose(grads[k], g2[v], rtol=1e-13, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("module", [ok, buggy])
def test_modules_import_nothing_from_gradcheck(module):
    tree = ast.parse(inspect.getsource(module))
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m.startswith(("gradcheck", "layers"))], imported


# ---------------------------------------------------------------- the planted bugs

BUG_CASES = {
    "affine_dw_reshaped": "affine",
    "affine_dw_last_sample": "affine",
    "affine_db_keepdims": "affine",
    "conv_no_flip": "conv_s2_p1",
    "conv_pad_crop": "conv_s2_p1",
    "batchnorm_no_mean_term": "batchnorm_train",
    "rnn_dWh_missing": "rnn_step",
    "lstm_forget_gate": "lstm_step",
}
SPECIAL = {"relu_mask_ge", "max_pool_ties_all"}  # wrong only at kinks: their own tests below


def test_every_bug_is_tested():
    assert set(buggy.PAIRS) == set(BUG_CASES) | SPECIAL


def test_every_bug_docstring_names_its_wrong_arrays():
    for _, backward, wrong in buggy.PAIRS.values():
        doc = backward.__doc__
        assert doc.startswith("Wrong: "), backward.__name__
        for name in wrong:
            assert f"d{name}" in doc, (backward.__name__, name)


@pytest.mark.parametrize("bug", sorted(BUG_CASES))
def test_bug_is_wrong_exactly_on_the_named_arrays(bug):
    forward, backward, wrong = buggy.PAIRS[bug]
    rng = np.random.default_rng(50)
    good, arrays = CASES[BUG_CASES[bug]](rng)
    pair = good.with_backward(forward, backward)
    outs, cache = pair.run(arrays)
    G = tuple(rng.standard_normal(y.shape) for y in outs)
    grads = pair.grads(G, cache)
    for name in pair.names:
        num = numeric(pair, arrays, G, name)
        if name not in wrong:
            np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=f"{bug}: d{name}")
        elif grads[name].shape != num.shape:  # the contract error: values right, shape not b's
            assert bug == "affine_db_keepdims" and grads[name].shape == (1, num.size)
            np.testing.assert_allclose(grads[name].reshape(num.shape), num, rtol=1e-6, atol=1e-8)
        else:
            assert np.max(np.abs(grads[name] - num)) > 1e-2 * max(1.0, np.max(np.abs(num))), f"{bug}: d{name}"


def test_lstm_forget_gate_bug_touches_only_the_forget_columns():
    forward, backward, _ = buggy.PAIRS["lstm_forget_gate"]
    rng = np.random.default_rng(51)
    good, arrays = lstm(rng)
    H = arrays["prev_h"].shape[1]
    outs, cache = good.run(arrays)
    G = tuple(rng.standard_normal(y.shape) for y in outs)
    right = good.grads(G, cache)
    bad = good.with_backward(forward, backward).grads(G, cache)
    for name in ("Wx", "Wh", "b"):
        others = np.r_[0:H, 2 * H:4 * H]
        np.testing.assert_allclose(bad[name][..., others], right[name][..., others], rtol=1e-14, atol=1e-15)
        assert not np.allclose(bad[name][..., H:2 * H], right[name][..., H:2 * H])
    np.testing.assert_array_equal(bad["prev_c"], right["prev_c"])


def test_relu_ge_mask_is_wrong_only_at_exact_zeros_where_there_is_no_derivative():
    """At x == 0, relu has one-sided derivatives 0 (left) and dout (right) and central differences give
    dout / 2: neither mask matches them there. The convention (torch) is the left value 0; x >= 0 gives the
    right one. A per-coordinate check can at most call this a kink: the bug is a convention, not a value."""
    forward, backward, _ = buggy.PAIRS["relu_mask_ge"]
    rng = np.random.default_rng(60)
    x = rng.standard_normal((4, 5))
    zeros = np.zeros(x.shape, dtype=bool)
    zeros.flat[[1, 7, 12]] = True
    x[zeros] = 0.0
    G = rng.standard_normal(x.shape)
    pair = Pair(forward, backward, ("x",))
    _, cache = pair.run({"x": x})
    bad = pair.grads((G,), cache)["x"]
    right = ok.relu_backward(G, ok.relu_forward(x)[1])
    num = numeric(pair, {"x": x}, (G,), "x")
    np.testing.assert_allclose(bad[~zeros], num[~zeros], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(num[zeros], G[zeros] / 2, rtol=1e-6)
    np.testing.assert_array_equal(bad[zeros], G[zeros])  # the right-hand derivative
    np.testing.assert_array_equal(right[zeros], 0.0)  # the left-hand one, the convention
    np.testing.assert_array_equal(bad[~zeros], right[~zeros])


def test_max_pool_ties_bug_is_wrong_along_the_direction_that_keeps_the_tie():
    """With k tied maxima, the window's max is not differentiable coordinate by coordinate (each tied
    element alone: one-sided derivatives 0 and dout, so either value passes a per-coordinate kink test),
    but it is along the direction moving all k together, with derivative dout. max pooling commutes with
    adding a constant: L(x + t) = L(x) + t sum(dout) for non-overlapping windows, so <dx, 1> must be
    sum(dout). The tied-maxima variant gives sum over windows of k dout."""
    forward, backward, _ = buggy.PAIRS["max_pool_ties_all"]
    rng = np.random.default_rng(61)
    x = rng.integers(0, 3, (2, 2, 4, 6)).astype(np.float64)  # small integers: many ties
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    pair = Pair(forward, backward, ("x",), (param,))
    (out,), cache = pair.run({"x": x})
    G = rng.standard_normal(out.shape)
    bad = pair.grads((G,), cache)["x"]
    right = ok.max_pool_backward_naive(G, cache)
    eps = 1e-6
    along_ones = (cotangent_loss(pair.run({"x": x + eps})[0], (G,))
                  - cotangent_loss(pair.run({"x": x - eps})[0], (G,))) / (2 * eps)
    np.testing.assert_allclose(along_ones, G.sum(), rtol=1e-8)
    np.testing.assert_allclose(np.sum(right), along_ones, rtol=1e-8)
    ties = (x.reshape(2, 2, 2, 2, 3, 2) == out[:, :, :, None, :, None]).sum(axis=(3, 5))  # k per window
    assert (ties > 1).any()
    np.testing.assert_allclose(np.sum(bad), np.sum(ties * G), rtol=1e-12)
    assert abs(np.sum(bad) - along_ones) > 0.1
    # and in a window without ties, both agree
    single = np.repeat(np.repeat(ties == 1, 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(bad[single], right[single])


# ---------------------------------------------------------------- torch as the oracle

@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is the oracle here (pip install '.[oracle]')")


def t64(torch, a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def vjp(torch, outs, G, leaves):
    grads = torch.autograd.grad(outs, leaves, grad_outputs=tuple(torch.from_numpy(g) for g in G))
    return [g.numpy() for g in grads]


RTOL, ATOL = 1e-11, 1e-12


def assert_like_torch(pair, arrays, torch_fn, seed, torch):
    rng = np.random.default_rng(seed)
    outs, cache = pair.run(arrays)
    G = tuple(rng.standard_normal(y.shape) for y in outs)
    grads = pair.grads(G, cache)
    leaves = [t64(torch, arrays[k]) for k in pair.names]
    touts = torch_fn(*leaves)
    touts = touts if isinstance(touts, tuple) else (touts,)
    for y, ty in zip(outs, touts, strict=True):
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    for name, ref in zip(pair.names, vjp(torch, touts, G, leaves), strict=True):
        np.testing.assert_allclose(grads[name], ref, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(2))
def test_affine_relu_rnn_against_torch(seed, torch):
    rng = np.random.default_rng(70 + seed)
    pair, arrays = affine(rng)
    assert_like_torch(pair, arrays, lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b, seed, torch)
    pair, arrays = relu(rng)
    assert_like_torch(pair, arrays, torch.relu, seed, torch)
    pair, arrays = rnn(rng)
    cell = torch.nn.functional
    assert_like_torch(pair, arrays, lambda x, h, Wx, Wh, b: torch.tanh(cell.linear(x, Wx.T, b) + h @ Wh),
                      seed, torch)


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["conv_s1_p0", "conv_s2_p1", "conv_s1_p2"])
def test_conv_against_torch_conv2d(case, torch):
    pair, arrays = CASES[case](np.random.default_rng(80))
    param = pair.params[0]
    assert_like_torch(pair, arrays, lambda x, w, b: torch.nn.functional.conv2d(
        x, w, b, stride=param["stride"], padding=param["pad"]), 81, torch)


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["pool_2x2_s2", "pool_3x2_s1_overlapping"])
@pytest.mark.parametrize("integers", [False, True])
def test_max_pool_against_torch_including_ties(case, integers, torch):
    pair, arrays = CASES[case](np.random.default_rng(90))
    if integers:
        arrays["x"] = np.random.default_rng(91).integers(0, 3, arrays["x"].shape).astype(np.float64)
    p = pair.params[0]
    assert_like_torch(pair, arrays, lambda x: torch.nn.functional.max_pool2d(
        x, (p["pool_height"], p["pool_width"]), stride=p["stride"]), 92, torch)


@pytest.mark.oracle
@pytest.mark.parametrize("spatial", [False, True])
def test_batchnorm_against_torch(spatial, torch):
    """torch's momentum is 1 - ours (it weighs the new batch) and its running_var is unbiased (N/(N-1))."""
    build = CASES["spatial_batchnorm_train" if spatial else "batchnorm_train"]
    pair, arrays = build(np.random.default_rng(100))
    param = pair.params[0]
    C = arrays["gamma"].size
    rm0, rv0 = np.random.default_rng(101).standard_normal(C), np.random.default_rng(102).uniform(1, 2, C)
    param.update(running_mean=rm0.copy(), running_var=rv0.copy())
    t_rm, t_rv = torch.from_numpy(rm0.copy()), torch.from_numpy(rv0.copy())
    assert_like_torch(pair, arrays, lambda x, g, b: torch.nn.functional.batch_norm(
        x, t_rm, t_rv, g, b, training=True, momentum=1 - param["momentum"], eps=param["eps"]), 103, torch)
    x = arrays["x"]
    axes = (0, 2, 3) if spatial else (0,)
    m = x.size // C
    np.testing.assert_allclose(param["running_mean"], t_rm.numpy(), rtol=1e-13)
    var = x.var(axis=axes)
    np.testing.assert_allclose(t_rv.numpy() - param["running_var"], 0.1 * var * (m / (m - 1) - 1), rtol=1e-10)


@pytest.mark.oracle
def test_lstm_step_against_torch_lstm_cell(torch):
    from tests.test_lstm import to_lstm_cell

    pair, arrays = lstm(np.random.default_rng(110))
    H = arrays["prev_h"].shape[1]
    cell, perm = to_lstm_cell(torch, arrays["Wx"], arrays["Wh"], arrays["b"], np.full(4 * H, 0.5))
    rng = np.random.default_rng(111)
    outs, cache = pair.run(arrays)
    G = tuple(rng.standard_normal(y.shape) for y in outs)
    grads = pair.grads(G, cache)
    tx, th, tc = (t64(torch, arrays[k]) for k in ("x", "prev_h", "prev_c"))
    h, c = cell(tx, (th, tc))
    np.testing.assert_allclose(outs[0], h.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(outs[1], c.detach().numpy(), rtol=RTOL, atol=ATOL)
    leaves = (tx, th, tc, cell.weight_ih, cell.weight_hh, cell.bias_ih)
    gx, gh, gc, gwi, gwh, gb = vjp(torch, (h, c), G, leaves)
    inverse = np.argsort(perm)
    for mine, ref in [("x", gx), ("prev_h", gh), ("prev_c", gc), ("Wx", gwi.T[:, inverse]),
                      ("Wh", gwh.T[:, inverse]), ("b", gb[inverse])]:
        np.testing.assert_allclose(grads[mine], ref, rtol=RTOL, atol=ATOL, err_msg=mine)


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(3))
def test_losses_against_torch(seed, torch):
    """svm_loss is torch's multi_margin_loss times the number of classes K (torch divides by K)."""
    rng = np.random.default_rng(120 + seed)
    N, K = 5, 4
    x, y = 2 * rng.standard_normal((N, K)), rng.integers(0, K, N)
    ty = torch.from_numpy(y)
    F = torch.nn.functional
    for loss, fn in [(ok.softmax_loss, lambda tx: F.cross_entropy(tx, ty)),
                     (ok.svm_loss, lambda tx: K * F.multi_margin_loss(tx, ty, p=1, margin=1))]:
        value, dx = loss(x, y)
        tx = t64(torch, x)
        tl = fn(tx)
        np.testing.assert_allclose(value, tl.item(), rtol=1e-13)
        np.testing.assert_allclose(dx, torch.autograd.grad(tl, tx)[0].numpy(), rtol=RTOL, atol=ATOL)
