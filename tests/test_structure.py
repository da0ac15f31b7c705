"""Column grouping (gradcheck.structure): exact against brute-force Jacobian sparsity, group counts, probes.

The small reference layers below are written here, loop-free but independent of layers/, so the grouping
logic is checked on stride/pad/window cases whatever the state of the real layers; the real layers'
declarations are checked at the end of the file.
"""

from collections.abc import Iterator

import numpy as np
import pytest

import gradcheck
import layers
from gradcheck.engine import structure
from gradcheck.engine.structure import StructureMismatch
from layers import FullyConnected
from layers.conv import Conv2D
from layers.fc_as_conv import FullyConnectedAsConv


def windows(x, kh, kw, stride, pad):
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw) views of the zero-padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return v[:, :, ::stride, ::stride]


class Corr:
    """y[n, f] = sum_c corr(x[n, c], k[f, c]) + b[f], stride s, zero pad p."""

    inputs = ("x", "k", "b")

    def __init__(self, stride=1, pad=0):
        self.s, self.p = stride, pad

    def forward(self, x, k, b):
        v = windows(x, k.shape[2], k.shape[3], self.s, self.p)
        return np.einsum("nchwij,fcij->nfhw", v, k) + b[None, :, None, None], None

    def structure(self, name, shapes):
        _, _, kh, kw = shapes["k"]
        rows, cols = (2, self.s, -self.p, kh), (3, self.s, -self.p, kw)
        return {"x": (0, None, rows, cols), "k": (1, None, None, None), "b": (1,)}[name]


class Pool:
    """Mean or max over size x size windows, stride s; x (N, C, H, W) -> (N, C, Ho, Wo)."""

    inputs = ("x",)

    def __init__(self, size, stride, op="mean"):
        self.size, self.s, self.op = size, stride, op

    def forward(self, x):
        v = windows(x, self.size, self.size, self.s, 0)
        return getattr(v, self.op)(axis=(4, 5)), None

    def structure(self, name, shapes):
        w = (self.s, 0, self.size)
        return (0, 1, (2, *w), (3, *w))


class Tanh:
    inputs = ("x",)

    def forward(self, x):
        return np.tanh(x), None

    def structure(self, name, shapes):
        return tuple(range(len(shapes[name])))


class NoStructure:
    inputs = ("x",)

    def forward(self, x):
        return 2 * x, None


def fc_arrays(rng, N, D, F):
    return {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, F)), "b": rng.standard_normal(F)}


def conv_arrays(rng, N, C, H, W, F, kh, kw):
    return {"x": rng.standard_normal((N, C, H, W)), "k": rng.standard_normal((F, C, kh, kw)),
            "b": rng.standard_normal(F)}


def true_footprints(layer, arrays, name):
    """Brute force: bool (size of arrays[name], size of y), True where perturbing the coordinate moved y."""
    y0 = layer.forward(**arrays)[0]
    x = arrays[name]
    touched = np.zeros((x.size, y0.size), dtype=bool)
    for j in range(x.size):
        xp = x.copy()
        xp.flat[j] += 1.0 + abs(xp.flat[j])
        touched[j] = (layer.forward(**{**arrays, name: xp})[0] != y0).ravel()
    return touched


def assert_exact_grouping(layer, arrays, name, rng):
    """Every coordinate in exactly one group; in its group, every output it really touches is labelled
    with it (so footprints within a group are disjoint and the bincount split is exact)."""
    y_shape = layer.forward(**arrays)[0].shape
    touched = true_footprints(layer, arrays, name)
    seen = np.zeros(arrays[name].size, dtype=int)
    n_groups = 0
    for g in structure.groups(layer, name, arrays, y_shape, rng):
        n_groups += 1
        assert g.coords.dtype == np.int64 and g.labels.dtype == np.int64
        assert g.labels.shape == (int(np.prod(y_shape)),)
        assert g.labels.min() >= -1 and g.labels.max() < len(g.coords)
        seen[g.coords] += 1
        for pos, j in enumerate(g.coords):
            assert np.all(g.labels[touched[j]] == pos), f"{name} coordinate {j}: footprint not labelled"
        # the true footprints of one group never overlap
        assert touched[g.coords].sum(axis=0).max(initial=0) <= 1
    np.testing.assert_array_equal(seen, 1)
    assert touched.any()  # the brute force saw something, so the check above had teeth
    return n_groups


@pytest.mark.parametrize("N, D, F", [(3, 4, 5), (1, 6, 2)])
def test_fc_grouping_exact(N, D, F):
    rng = np.random.default_rng(1)
    layer, arrays = FullyConnected(), fc_arrays(rng, N, D, F)
    counts = {name: assert_exact_grouping(layer, arrays, name, rng) for name in layer.inputs}
    assert counts == {"x": D, "W": D, "b": 1}


def test_fc_grouping_exact_on_4d_input():
    rng = np.random.default_rng(2)
    arrays = {"x": rng.standard_normal((2, 2, 2, 3)), "W": rng.standard_normal((12, 4)),
              "b": rng.standard_normal(4)}
    assert assert_exact_grouping(FullyConnected(), arrays, "x", rng) == 12


@pytest.mark.parametrize("stride, pad, H, W, kh, kw", [
    (1, 0, 5, 5, 3, 3),
    (1, 2, 5, 4, 3, 2),   # pad wider than the window overhang on the right
    (2, 1, 7, 6, 3, 3),   # stride 2: some input rows touch two output rows, some one
    (3, 0, 8, 8, 2, 2),   # stride > kernel: some rows touch nothing
    (2, 1, 3, 3, 5, 5),   # kernel larger than the input: period capped at the length
])
def test_conv_grouping_exact(stride, pad, H, W, kh, kw):
    rng = np.random.default_rng(3)
    layer, arrays = Corr(stride, pad), conv_arrays(rng, 2, 2, H, W, 3, kh, kw)
    counts = {name: assert_exact_grouping(layer, arrays, name, rng) for name in layer.inputs}
    assert counts == {"x": 2 * min(kh, H) * min(kw, W), "k": 2 * kh * kw, "b": 1}


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 3), (2, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("op", ["mean", "max"])
def test_pool_grouping_exact(size, stride, op):
    rng = np.random.default_rng(4)
    layer = Pool(size, stride, op)
    arrays = {"x": rng.standard_normal((2, 3, 7, 6))}
    assert assert_exact_grouping(layer, arrays, "x", rng) == size * size


def test_elementwise_is_one_group():
    rng = np.random.default_rng(5)
    assert assert_exact_grouping(Tanh(), {"x": rng.standard_normal((2, 3, 4))}, "x", rng) == 1


@pytest.mark.parametrize("layer, make", [
    (FullyConnected(), lambda rng: fc_arrays(rng, 3, 5, 4)),
    (Corr(2, 1), lambda rng: conv_arrays(rng, 2, 2, 6, 5, 3, 3, 3)),
    (Pool(2, 1), lambda rng: {"x": rng.standard_normal((2, 2, 5, 5))}),
])
def test_grouped_vjp_equals_one_coordinate_at_a_time(layer, make):
    """The way the checker uses a group: one forward, split by bincount. These layers are linear in
    each input, so the grouped difference quotient equals the one-at-a-time one to rounding."""
    rng = np.random.default_rng(6)
    arrays = make(rng)
    y0 = layer.forward(**arrays)[0]
    G = rng.standard_normal(y0.shape)
    h = 1e-3
    for name in layer.inputs:
        x = arrays[name]
        single = np.empty(x.size)
        for j in range(x.size):
            xp = x.copy()
            xp.flat[j] += h
            single[j] = np.sum(G * (layer.forward(**{**arrays, name: xp})[0] - y0)) / h
        grouped = np.full(x.size, np.nan)
        for g in structure.groups(layer, name, arrays, y0.shape, rng):
            xp = x.copy()
            xp.flat[g.coords] += h
            w = (G * (layer.forward(**{**arrays, name: xp})[0] - y0)).ravel()
            hit = g.labels >= 0
            grouped[g.coords] = np.bincount(g.labels[hit], weights=w[hit], minlength=len(g.coords)) / h
        np.testing.assert_allclose(grouped, single, rtol=1e-9, atol=1e-9, err_msg=name)


def test_fc_800_500_batch16_has_1601_lazy_groups():
    """Seed 000's first FC layer: x 800 groups of 16, W 800 groups of 500, b 1 group of 500."""
    rng = np.random.default_rng(7)
    layer = FullyConnected()
    arrays = {"x": rng.standard_normal((16, 800)), "W": 0.05 * rng.standard_normal((800, 500)),
              "b": np.zeros(500)}
    sizes = {}
    for name in layer.inputs:
        it = structure.groups(layer, name, arrays, (16, 500), rng)
        assert isinstance(it, Iterator) and not isinstance(it, list | tuple)
        sizes[name] = [len(g.coords) for g in it]
    assert {k: (len(v), set(v)) for k, v in sizes.items()} == {
        "x": (800, {16}), "W": (800, {500}), "b": (1, {500})}
    assert sum(len(v) for v in sizes.values()) == 1601


def test_conv_32x32x3_ten_5x5_pad2_batch16_group_counts():
    """75 groups for x (3 channels x 5 x 5 residues), 75 for k (filters share a group), 1 for b."""
    rng = np.random.default_rng(8)
    layer, arrays = Corr(1, 2), conv_arrays(rng, 16, 3, 32, 32, 10, 5, 5)
    y_shape = (16, 10, 32, 32)
    assert {n: structure.count(layer, n, arrays, y_shape) for n in layer.inputs} == {"x": 75, "k": 75, "b": 1}
    gx = list(structure.groups(layer, "x", arrays, y_shape, rng))
    assert len(gx) == 75
    assert sum(len(g.coords) for g in gx) == arrays["x"].size
    # each output element of a full-interior window is touched by exactly one x coordinate per channel
    hits = sum((g.labels >= 0).astype(int) for g in gx)
    assert hits.min() == 3 * 3 * 3 and hits.max() == 3 * 25


def test_wrong_declaration_is_caught_by_the_probe():
    class WrongFC(FullyConnected):
        def structure(self, name, shapes):  # claims x[n, d] touches only y[n, d]: false
            return (0, 1) if name == "x" else super().structure(name, shapes)

    rng = np.random.default_rng(9)
    arrays = fc_arrays(rng, 4, 6, 6)
    with pytest.raises(StructureMismatch, match=r"WrongFC: .*input 'x' is wrong: probe 0 perturbed x\("):
        structure.groups(WrongFC(), "x", arrays, (4, 6), rng)
    # the right parts of the same declaration pass
    assert len(list(structure.groups(WrongFC(), "W", arrays, (4, 6), rng))) == 6


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled"])
@pytest.mark.parametrize("method", ["central", "complex"])
def test_the_checker_probes_in_its_working_copy_and_still_catches_a_wrong_declaration(strategy, method):
    class WrongFC(FullyConnected):
        def structure(self, name, shapes):  # claims x[n, d] touches only y[n, d]: false
            return (0, 1) if name == "x" else super().structure(name, shapes)

    rng = np.random.default_rng(9)
    arrays = fc_arrays(rng, 4, 6, 6)
    before = {k: v.copy() for k, v in arrays.items()}
    with pytest.raises(StructureMismatch, match=r"WrongFC: .*input 'x' is wrong"):
        gradcheck.check(WrongFC(), arrays, strategy=strategy, method=method, samples=8)
    report = gradcheck.check(FullyConnected(), arrays, strategy=strategy, method=method, samples=8)
    assert report.passed
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])


def test_a_probe_in_a_lent_scratch_array_puts_every_element_back():
    rng = np.random.default_rng(9)
    arrays = fc_arrays(rng, 4, 6, 6)
    scratch = arrays["W"].copy()
    view = {**arrays, "W": scratch}  # the scratch is the array the layer sees (the checker's working copy)
    plan = structure.groups(FullyConnected(), "W", view, (4, 6), rng, probes=5, scratch=scratch)
    assert len(list(plan)) == 6
    np.testing.assert_array_equal(scratch, arrays["W"])


def test_too_narrow_conv_window_is_caught():
    class NarrowCorr(Corr):
        def structure(self, name, shapes):  # forgets the padding offset
            return (0, None, (2, 1, 0, 3), (3, 1, 0, 3)) if name == "x" else super().structure(name, shapes)

    rng = np.random.default_rng(10)
    arrays = conv_arrays(rng, 2, 2, 6, 6, 2, 3, 3)
    with pytest.raises(StructureMismatch, match=r"NarrowCorr: .*input 'x' is wrong: probe \d"):
        structure.groups(NarrowCorr(1, 1), "x", arrays, (2, 2, 6, 6), rng, probes=10)


@pytest.mark.parametrize("entries, message", [
    ((0,), "one entry per axis"),
    ((0, 5), "output axis 5"),
    ((1, 1), "two axes of x map to output axis 1"),
    ((0, (1, 0, 0, 2)), "stride >= 1"),
    ((0, "all"), "is not None, an output axis"),
])
def test_malformed_declaration_names_layer_and_input(entries, message):
    class Bad(FullyConnected):
        def structure(self, name, shapes):
            return entries

    rng = np.random.default_rng(11)
    with pytest.raises(StructureMismatch, match=rf"Bad\.structure\('x'\).*{message}"):
        structure.groups(Bad(), "x", fc_arrays(rng, 2, 3, 3), (2, 3), rng)


def test_no_declaration_gives_none():
    rng = np.random.default_rng(12)
    assert structure.groups(NoStructure(), "x", {"x": np.ones((2, 3))}, (2, 3), rng) is None
    assert structure.count(NoStructure(), "x", {"x": np.ones((2, 3))}, (2, 3)) is None

    class Partial(Tanh):
        inputs = ("x", "t")

        def forward(self, x, t):
            return np.tanh(x) * t, None

        def structure(self, name, shapes):
            return (0, 1) if name == "x" else None

    arrays = {"x": np.ones((2, 3)), "t": np.ones((2, 3))}
    assert structure.groups(Partial(), "t", arrays, (2, 3), rng) is None
    assert len(list(structure.groups(Partial(), "x", arrays, (2, 3), rng))) == 1


def test_probe_leaves_arrays_untouched_and_tolerates_complex():
    rng = np.random.default_rng(13)
    arrays = fc_arrays(rng, 3, 4, 2)
    arrays["x"] = arrays["x"] + 1j * rng.standard_normal((3, 4))
    before = {k: v.copy() for k, v in arrays.items()}
    assert len(list(structure.groups(FullyConnected(), "x", arrays, (3, 2), rng))) == 4
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], before[k])


# --- the real layers' declarations ---------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: layers.Sigmoid(), lambda: layers.Tanh(), lambda: layers.ReLU()])
@pytest.mark.parametrize("shape", [(2, 5), (2, 2, 3, 3)])
def test_activations_declare_one_exact_group(make, shape):
    rng = np.random.default_rng(20)
    assert assert_exact_grouping(make(), {"x": rng.standard_normal(shape)}, "x", rng) == 1


@pytest.mark.parametrize("cls", ["Subsampling", "MeanPool", "MaxPool"])
@pytest.mark.parametrize("size, H, W", [(2, 4, 6), (2, 5, 7), (3, 7, 6)])  # 5, 7: dropped rows / columns
def test_pooling_layers_declare_exact_groups(cls, size, H, W):
    rng = np.random.default_rng(21)
    layer = getattr(layers, cls)(size)
    arrays = {"x": rng.standard_normal((2, 3, H, W))}
    if cls == "Subsampling":
        arrays |= {"beta": rng.standard_normal(3), "b": rng.standard_normal(3)}
    counts = {name: assert_exact_grouping(layer, arrays, name, rng) for name in layer.inputs}
    assert counts == {name: (size * size if name == "x" else 1) for name in layer.inputs}


@pytest.mark.parametrize("kwargs, H, W, kh, kw", [
    ({}, 5, 5, 3, 3),
    ({"stride": 2, "pad": 1}, 7, 6, 3, 3),
    ({"stride": (1, 2), "pad": (2, 0), "mode": "convolution"}, 5, 6, 3, 2),
    ({"stride": 3, "impl": "literal"}, 8, 7, 2, 2),
    ({"pad": 1, "connections": [[True, False], [True, True], [False, True]]}, 4, 4, 3, 3),
])
def test_conv2d_declares_exact_groups(kwargs, H, W, kh, kw):
    rng = np.random.default_rng(22)
    layer, arrays = Conv2D(**kwargs), conv_arrays(rng, 2, 2, H, W, 3, kh, kw)
    counts = {name: assert_exact_grouping(layer, arrays, name, rng) for name in layer.inputs}
    assert counts == {"x": 2 * kh * kw, "k": 2 * kh * kw, "b": 1}


def test_conv2d_32x32x3_ten_5x5_pad2_batch16_group_counts():
    """Seed 003's layer: 75 + 75 + 1 forwards instead of 49,152 + 750 + 10."""
    rng = np.random.default_rng(23)
    layer, arrays = Conv2D(pad=2), conv_arrays(rng, 16, 3, 32, 32, 10, 5, 5)
    y_shape = layer.forward(**arrays)[0].shape
    assert y_shape == (16, 10, 32, 32)
    counts = {n: sum(1 for _ in structure.groups(layer, n, arrays, y_shape, rng)) for n in layer.inputs}
    assert counts == {"x": 75, "k": 75, "b": 1}


@pytest.mark.parametrize("H, W", [(2, 3), (4, 4)])  # 1x1 output (an FC layer), and a sliding score map
def test_fc_as_conv_declares_exact_groups(H, W):
    rng = np.random.default_rng(24)
    layer, arrays = FullyConnectedAsConv(), conv_arrays(rng, 2, 3, H, W, 4, 2, 3)
    counts = {name: assert_exact_grouping(layer, arrays, name, rng) for name in layer.inputs}
    assert counts == {"x": 3 * 2 * 3, "k": 3 * 2 * 3, "b": 1}
