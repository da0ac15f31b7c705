"""LSTMStep, a layer with two outputs: central differences of L = sum(G_h h) + sum(G_c c), complex step,
torch.nn.LSTMCell (gate order and biases mapped), footprints, cotangents left untouched."""

import numpy as np
import pytest

from layers import LSTMStep
from tests.numdiff_functions import cotangent_loss, numeric_gradient


def backward_at_random_point(rng):
    """(arrays, layer, (h, c), G, grads) of LSTMStep at a random shape and point, one cotangent per output."""
    N, D, H = random_shape(rng)
    arrays = random_arrays(rng, N, D, H)
    layer = LSTMStep()
    (h, c), cache = layer.forward(**arrays)
    G = (rng.standard_normal(h.shape), rng.standard_normal(c.shape))
    return arrays, layer, (h, c), G, layer.backward(G, cache)


def random_arrays(rng, N, D, H, scale=0.5, dtype=np.float64):
    return {
        "x": rng.standard_normal((N, D)).astype(dtype),
        "h_prev": rng.standard_normal((N, H)).astype(dtype),
        "c_prev": rng.standard_normal((N, H)).astype(dtype),
        "Wx": (scale * rng.standard_normal((D, 4 * H))).astype(dtype),
        "Wh": (scale * rng.standard_normal((H, 4 * H))).astype(dtype),
        "b": rng.standard_normal(4 * H).astype(dtype),
    }


def random_shape(rng):
    return int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5))


def test_contract_attributes():
    layer = LSTMStep()
    assert layer.outputs == ("h", "c")
    assert layer.inputs == ("x", "h_prev", "c_prev", "Wx", "Wh", "b")
    assert layer.complex_safe is True
    assert "LSTMStep" in __import__("layers").__all__


def test_forward_formulas_by_hand():
    """One sample, H = 1, every gate pre-activation chosen: a = [ln 3, 0, -ln 3, atanh(0.5)]."""
    a = np.array([np.log(3.0), 0.0, -np.log(3.0), np.arctanh(0.5)])
    arrays = {"x": np.zeros((1, 2)), "h_prev": np.zeros((1, 1)), "c_prev": np.array([[2.0]]),
              "Wx": np.zeros((2, 4)), "Wh": np.zeros((1, 4)), "b": a}
    (h, c), _ = LSTMStep().forward(**arrays)
    i, f, o, g = 0.75, 0.5, 0.25, 0.5
    np.testing.assert_allclose(c, [[f * 2.0 + i * g]], rtol=1e-15)
    np.testing.assert_allclose(h, [[o * np.tanh(f * 2.0 + i * g)]], rtol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_backward_matches_central_differences_of_both_outputs(seed):
    rng = np.random.default_rng(seed)
    arrays, layer, (h, c), G, grads = backward_at_random_point(rng)
    assert set(grads) == set(layer.inputs)
    for name in layer.inputs:
        num = numeric_gradient(lambda: cotangent_loss(layer.forward(**arrays)[0], G), arrays[name])
        assert grads[name].shape == arrays[name].shape, name
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=f"d{name}")


@pytest.mark.parametrize("which", [0, 1])
def test_each_output_alone(which):
    """G_c = 0 checks the path through h only, G_h = 0 the cell only (dc_total = dc, do = 0)."""
    rng = np.random.default_rng(10 + which)
    arrays = random_arrays(rng, 2, 3, 4)
    layer = LSTMStep()
    (h, c), cache = layer.forward(**arrays)
    G = [np.zeros_like(h), np.zeros_like(c)]
    G[which] = rng.standard_normal(h.shape)
    grads = layer.backward(tuple(G), cache)
    for name in layer.inputs:
        num = numeric_gradient(lambda: cotangent_loss(layer.forward(**arrays)[0], G), arrays[name])
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=f"d{name}")
    if which == 1:  # the output gate does not reach c
        H = h.shape[1]
        np.testing.assert_array_equal(grads["b"][2 * H:3 * H], 0.0)


def test_complex_step_is_exact_so_complex_safe_holds():
    """imag(L(a + ih)) / h at h = 1e-20 equals backward to rounding: forward is analytic."""
    rng = np.random.default_rng(20)
    arrays = random_arrays(rng, 3, 2, 3)
    layer = LSTMStep()
    (h, c), cache = layer.forward(**arrays)
    G = (rng.standard_normal(h.shape), rng.standard_normal(c.shape))
    grads = layer.backward(G, cache)
    z = {k: v.astype(np.complex128) for k, v in arrays.items()}
    for name in layer.inputs:
        num = np.zeros(arrays[name].shape)
        for idx in np.ndindex(num.shape):
            z[name][idx] += 1e-20j
            (hz, cz), _ = layer.forward(**z)
            num[idx] = np.imag(np.sum(G[0] * hz) + np.sum(G[1] * cz)) / 1e-20
            z[name][idx] -= 1e-20j
        np.testing.assert_allclose(grads[name], num, rtol=1e-13, atol=1e-14, err_msg=f"d{name}")


def test_backward_does_not_modify_cotangents_or_cache():
    rng = np.random.default_rng(30)
    arrays = random_arrays(rng, 3, 2, 4)
    layer = LSTMStep()
    (h, c), cache = layer.forward(**arrays)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    saved = (dh.copy(), dc.copy(), [np.copy(a) for a in cache])
    for a in (dh, dc, *cache):
        a.flags.writeable = False  # an in-place update raises instead of passing unnoticed
    first = layer.backward((dh, dc), cache)
    second = layer.backward((dh, dc), cache)
    np.testing.assert_array_equal(dh, saved[0])
    np.testing.assert_array_equal(dc, saved[1])
    for a, b in zip(cache, saved[2], strict=True):
        np.testing.assert_array_equal(a, b)
    for name in layer.inputs:
        np.testing.assert_array_equal(first[name], second[name])


def test_inputs_not_modified_by_forward():
    rng = np.random.default_rng(31)
    arrays = random_arrays(rng, 2, 3, 2)
    for a in arrays.values():
        a.flags.writeable = False
    LSTMStep().forward(**arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_forward_and_backward_keep_dtype(dtype):
    rng = np.random.default_rng(40)
    arrays = random_arrays(rng, 2, 3, 2, dtype=dtype)
    layer = LSTMStep()
    (h, c), cache = layer.forward(**arrays)
    assert h.dtype == c.dtype == dtype
    grads = layer.backward((np.ones_like(h), np.ones_like(c)), cache)
    for name in layer.inputs:
        assert grads[name].dtype == dtype, name


@pytest.mark.parametrize("name, shape", [("h_prev", (3, 3)), ("c_prev", (2, 2)), ("Wx", (4, 12)),
                                         ("Wh", (3, 8)), ("b", (3, 4))])
def test_wrong_shapes_are_named(name, shape):
    arrays = random_arrays(np.random.default_rng(50), 2, 3, 3)
    arrays[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=name):
        LSTMStep().forward(**arrays)


@pytest.mark.parametrize("output", [0, 1])
@pytest.mark.parametrize("name", ["x", "h_prev", "c_prev"])
def test_structure_footprints_hold_on_each_output(name, output):
    """Perturb every coordinate of `name`: output elements outside its declared footprint stay put."""
    rng = np.random.default_rng(60)
    N, D, H = 3, 2, 4
    arrays = random_arrays(rng, N, D, H)
    layer = LSTMStep()
    shapes = {k: v.shape for k, v in arrays.items()}
    entries = layer.structure(name, shapes, layer.outputs[output])
    assert len(entries) == arrays[name].ndim
    y0 = layer.forward(**arrays)[0][output]
    for idx in np.ndindex(arrays[name].shape):
        a = {**arrays, name: arrays[name].copy()}
        a[name][idx] += 1.0
        moved = layer.forward(**a)[0][output] != y0
        allowed = np.ones(y0.shape, dtype=bool)
        for i, entry in zip(idx, entries, strict=True):
            if entry is not None:  # identity onto output axis `entry`
                keep = np.zeros(y0.shape[entry], dtype=bool)
                keep[i] = True
                allowed &= keep.reshape([-1 if ax == entry else 1 for ax in range(y0.ndim)])
        assert not (moved & ~allowed).any(), (name, idx)
        assert moved[allowed].any(), (name, idx)  # and the footprint is not empty (declaration is tight)


def test_structure_declares_nothing_for_weights_and_rejects_unknown_outputs():
    layer = LSTMStep()
    shapes = {k: v.shape for k, v in random_arrays(np.random.default_rng(0), 2, 3, 2).items()}
    for name in ("Wx", "Wh", "b"):
        for output in layer.outputs:
            assert layer.structure(name, shapes, output) is None
    with pytest.raises(ValueError, match="no output 'y'"):
        layer.structure("x", shapes, "y")
    for name in layer.inputs:  # the two-argument call declares nothing (safe for a single-output checker)
        assert layer.structure(name, shapes) is None


def test_the_checker_reads_outputs_one_cotangent_each_and_the_structure_per_output():
    """gradcheck.check reads ``outputs``: backward gets (dh, dc) as a tuple of arrays of the outputs' own
    shapes (no longer a stacked (2, N, H) array), the report names both outputs, x is grouped by its
    per-output declaration (one group per column of x), and a wrong forget-gate derivative is caught on b."""
    gradcheck = pytest.importorskip("gradcheck")
    seen = []

    class Recording(LSTMStep):
        def backward(self, dy, cache):
            seen.append(dy)
            return super().backward(dy, cache)

    class WrongForgetGate(LSTMStep):
        def backward(self, dy, cache):
            grads = super().backward(dy, cache)
            grads["b"] = grads["b"].copy()
            grads["b"][2] *= 2
            return grads

    arrays = random_arrays(np.random.default_rng(70), 2, 3, 2)
    report = gradcheck.check(Recording(), arrays, strategy="exhaustive")
    assert report.passed
    assert isinstance(seen[0], tuple) and [g.shape for g in seen[0]] == [(2, 2), (2, 2)]
    assert report.outputs == {"h": (2, 2), "c": (2, 2)}
    assert "outputs h (2, 2), c (2, 2): L = sum(G_h * h) + sum(G_c * c)" in str(report)
    # x (2, 3) -> h, c (2, 2) through (0, None): 3 groups, after 1 + 3 probe forwards (complex step)
    assert report.arrays["x"].forwards == 1 + 3 + 3
    report = gradcheck.check(WrongForgetGate(), arrays, strategy="exhaustive")
    assert not report.passed
    assert [r.name for r in report.results() if not r.passed] == ["b"]
    assert [e.index for e in report.arrays["b"].worst if e.failed] == [(2,)]


# ---------------------------------------------------------------- torch.nn.LSTMCell as the oracle

def to_lstm_cell(torch, Wx, Wh, b, split):
    """torch.nn.LSTMCell with our weights: rows in torch's gate order i, f, g, o, transposed, and
    b = bias_ih + bias_hh (split into two arbitrary parts)."""
    D, H4 = Wx.shape
    H = H4 // 4
    blocks = [np.arange(q * H, (q + 1) * H) for q in (0, 1, 3, 2)]  # ours i, f, o, g -> torch i, f, g, o
    perm = np.concatenate(blocks)
    cell = torch.nn.LSTMCell(D, H, bias=True, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(Wx[:, perm].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(Wh[:, perm].T.copy()))
        cell.bias_ih.copy_(torch.from_numpy((split * b)[perm]))
        cell.bias_hh.copy_(torch.from_numpy(((1 - split) * b)[perm]))
    return cell, perm


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(4))
def test_against_torch_lstm_cell(seed):
    torch = pytest.importorskip("torch", reason="torch is the oracle for this test (pip install '.[oracle]')")
    rng = np.random.default_rng(100 + seed)
    arrays, layer, (h, c), G, grads = backward_at_random_point(rng)

    split = rng.uniform(size=arrays["b"].size)  # how b is split into bias_ih + bias_hh
    cell, perm = to_lstm_cell(torch, arrays["Wx"], arrays["Wh"], arrays["b"], split)
    tx, th, tc = (torch.tensor(arrays[k], requires_grad=True) for k in ("x", "h_prev", "c_prev"))
    h_t, c_t = cell(tx, (th, tc))
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c, c_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    leaves = (tx, th, tc, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    gx, gh, gc, gwi, gwh, gbi, gbh = (g.numpy() for g in torch.autograd.grad(
        (h_t, c_t), leaves, grad_outputs=tuple(torch.from_numpy(g) for g in G)))
    inverse = np.argsort(perm)  # torch's row layout back to our column layout
    np.testing.assert_allclose(grads["x"], gx, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["h_prev"], gh, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["c_prev"], gc, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["Wx"], gwi.T[:, inverse], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["Wh"], gwh.T[:, inverse], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(gbi, gbh)  # both biases enter a alike: each gets the whole db
    np.testing.assert_allclose(grads["b"], gbi[inverse], rtol=1e-12, atol=1e-13)


@pytest.mark.oracle
def test_torch_gate_order_is_not_ours():
    """Feeding our Wx to torch unpermuted gives a different h: the mapping above is needed."""
    torch = pytest.importorskip("torch", reason="torch is the oracle for this test (pip install '.[oracle]')")
    rng = np.random.default_rng(200)
    arrays = random_arrays(rng, 2, 3, 3, scale=1.0)
    (h, _), _ = LSTMStep().forward(**arrays)
    cell = torch.nn.LSTMCell(3, 3, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(arrays["Wx"].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(arrays["Wh"].T.copy()))
        cell.bias_ih.copy_(torch.from_numpy(arrays["b"]))
        cell.bias_hh.zero_()
        h_t, _ = cell(torch.from_numpy(arrays["x"]), (torch.from_numpy(arrays["h_prev"]),
                                                      torch.from_numpy(arrays["c_prev"])))
    assert not np.allclose(h, h_t.numpy(), rtol=1e-3)
