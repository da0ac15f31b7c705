"""Layers with several outputs (gradcheck.engine.outputs): one cotangent per output, L = sum_k sum(G_k y_k),
backward given dy as a tuple in ``outputs`` order, structure declared per output, the report naming them."""

import numpy as np
import pytest

import gradcheck
from gradcheck.engine import outputs, structure
from gradcheck.engine.structure import StructureMismatch
from gradcheck.errors import LayerContractError


class NormAndDirection:
    """x (N, D) -> r (N,) = |x_n|, u (N, D) = x_n / r_n: two outputs of different shapes.

    dx = dr x / r + (du - u <u, du>) / r (per row); bug="r": the first term dropped; bug="u": the
    projection -u <u, du> dropped (only the path through u is wrong).
    """

    outputs = ("r", "u")
    inputs = ("x",)
    complex_safe = True

    def __init__(self, bug=None):
        self.bug = bug

    def forward(self, x):
        r = np.sqrt(np.sum(x * x, axis=1))
        return (r, x / r[:, None]), (x, r)

    def backward(self, dy, cache):
        dr, du = dy
        x, r = cache
        u = x / r[:, None]
        through_r = 0 * x if self.bug == "r" else dr[:, None] * u
        proj = 0 if self.bug == "u" else u * np.sum(u * du, axis=1, keepdims=True)
        return {"x": through_r + (du - proj) / r[:, None]}

    def structure(self, name, shapes, output):
        return {"r": (0, None), "u": (0, None)}[output]


class TwiceAndWindowSum:
    """x (N, L) -> y (N, L) = 2 x, s (N, L - 2) = x[:, j] + x[:, j + 1] + x[:, j + 2].

    Axis 1 of x is an identity onto y but a window of 3 onto s: the common colouring is modulo 3.
    """

    outputs = ("y", "s")
    inputs = ("x",)
    complex_safe = True

    def __init__(self, declare_s=(0, (1, 1, 0, 3))):
        self.declare_s = declare_s

    def forward(self, x):
        return (2 * x, x[:, :-2] + x[:, 1:-1] + x[:, 2:]), None

    def backward(self, dy, cache):
        dy2, ds = dy
        dx = 2 * dy2
        dx = dx.copy()
        for k in range(3):
            dx[:, k:k + ds.shape[1]] += ds
        return {"x": dx}

    def structure(self, name, shapes, output):
        return (0, 1) if output == "y" else self.declare_s


@pytest.fixture
def x():
    return {"x": np.random.default_rng(0).standard_normal((4, 5)) + 0.5}


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
@pytest.mark.parametrize("method", ["complex", "central"])
def test_outputs_of_different_shapes_pass(x, strategy, method):
    report = gradcheck.check(NormAndDirection(), x, strategy=strategy, method=method)
    assert report.passed, str(report)
    assert report.outputs == {"r": (4,), "u": (4, 5)}


@pytest.mark.parametrize("bug", ["r", "u"])
@pytest.mark.parametrize("strategy", ["exhaustive", "directional"])
def test_a_wrong_path_through_either_output_is_caught(x, bug, strategy):
    """L sums over both outputs: a gradient right through one output and wrong through the other fails."""
    report = gradcheck.check(NormAndDirection(bug), x, strategy=strategy)
    assert not report.passed
    assert report.arrays["x"].failed > 0


def test_L_is_the_sum_of_each_outputs_own_cotangent_loss(x):
    """The checked numeric gradient is d/dx [sum(G_r r) + sum(G_u u)] with G_r, G_u the consecutive pieces
    of one seeded standard-normal vector of r.size + u.size elements (the flat concatenation)."""
    layer = NormAndDirection()
    report = gradcheck.check(layer, x, method="central", seed=3)
    (r, u), _ = layer.forward(**x)
    G = np.random.default_rng(3).standard_normal(r.size + u.size)
    Gr, Gu = G[:r.size], G[r.size:].reshape(u.shape)
    a, h = x["x"], 1e-6
    numeric = np.zeros(a.shape)
    for idx in np.ndindex(a.shape):
        e = np.zeros(a.shape)
        e[idx] = h
        (rp, up), _ = layer.forward(a + e)
        (rm, um), _ = layer.forward(a - e)
        numeric[idx] = (np.sum(Gr * (rp - rm)) + np.sum(Gu * (up - um))) / (2 * h)
    np.testing.assert_allclose(report.arrays["x"].numeric, numeric, rtol=1e-7, atol=1e-9)
    analytic = layer.backward((Gr, Gu), layer.forward(**x)[1])["x"]
    np.testing.assert_allclose(report.arrays["x"].analytic, analytic, rtol=1e-14)


def test_backward_gets_a_tuple_of_views_in_outputs_order(x):
    seen = []

    class Recording(NormAndDirection):
        def backward(self, dy, cache):
            seen.append(dy)
            return super().backward(dy, cache)

    gradcheck.check(Recording(), x)
    dr, du = seen[0]
    assert isinstance(seen[0], tuple) and dr.shape == (4,) and du.shape == (4, 5)


def test_a_window_on_one_output_and_an_identity_on_the_other_share_one_colouring():
    """x (2, 7): identity onto y's axis 1 (period 1), window of 3 onto s's (period 3): 3 groups, each
    column j of x alone in its group within any window of s, and y and s both split exactly."""
    layer = TwiceAndWindowSum()
    arrays = {"x": np.random.default_rng(1).standard_normal((2, 7))}
    y, cache = layer.forward(**arrays)
    flat, _ = outputs.flattened(layer, y)
    y_shape = (2 * 7 + 2 * 5,)
    assert structure.count(flat, "x", arrays, y_shape) == 3
    groups = list(structure.groups(flat, "x", arrays, y_shape, np.random.default_rng(0)))
    assert sorted(np.concatenate([g.coords for g in groups]).tolist()) == list(range(14))
    for g in groups:  # brute force: perturbing coordinate coords[i] moves exactly the outputs labelled i
        y0 = flat.forward(**arrays)[0]
        for i, c in enumerate(g.coords):
            a = arrays["x"].copy()
            a.flat[c] += 1.0
            moved = flat.forward(x=a)[0] != y0
            assert not (moved & (g.labels != i)).any()
            assert (g.labels[moved] == i).all()
    report = gradcheck.check(layer, arrays)
    assert report.passed and report.arrays["x"].forwards == 1 + 3 + 3


def test_a_wrong_declaration_for_one_output_is_caught_naming_that_output():
    layer = TwiceAndWindowSum(declare_s=(0, 1))  # s is a window, not an identity
    arrays = {"x": np.random.default_rng(2).standard_normal((2, 7))}
    with pytest.raises(StructureMismatch, match=r"output s\[\d, \d\] changed by"):
        gradcheck.check(layer, arrays)


def test_declaring_nothing_for_one_output_groups_nothing():
    class Half(TwiceAndWindowSum):
        def structure(self, name, shapes, output):
            return (0, 1) if output == "y" else None

    arrays = {"x": np.random.default_rng(3).standard_normal((2, 7))}
    report = gradcheck.check(Half(), arrays)
    assert report.passed and report.arrays["x"].forwards == 14  # one forward per coordinate, no probes


def test_float32_outputs_stay_float32_for_backward():
    seen = []

    class Recording(NormAndDirection):
        def backward(self, dy, cache):
            seen.append(dy)
            return super().backward(dy, cache)

    x32 = {"x": (np.random.default_rng(4).standard_normal((3, 4)) + 0.5).astype(np.float32)}
    assert gradcheck.check(Recording(), x32, method="central").passed
    assert [g.dtype for g in seen[0]] == [np.float32, np.float32]


def test_json_names_the_outputs(x):
    from gradcheck.output.json import report_dict

    class Case:
        name, file, line, source = "c", "f", 1, None

    data = report_dict(Case, gradcheck.check(NormAndDirection(), x))
    assert data["outputs"] == {"r": [4], "u": [4, 5]}


# ---------------------------------------------------------------- contract errors


def test_forward_returning_the_wrong_number_of_outputs_is_a_contract_error(x):
    class One(NormAndDirection):
        def forward(self, x):
            (r, u), cache = super().forward(x)
            return (r,), cache

    with pytest.raises(LayerContractError, match=r"forward must return \(\(r, u\), cache\).*a tuple of 1$"):
        gradcheck.check(One(), x)


def test_outputs_must_be_a_tuple_of_names(x):
    class Named(NormAndDirection):
        outputs = "ru"

    with pytest.raises(LayerContractError, match="outputs must be a tuple of output names"):
        gradcheck.check(Named(), x)


def test_a_two_argument_structure_is_a_contract_error_naming_the_per_output_call(x):
    class Old(NormAndDirection):
        def structure(self, name, shapes):
            return (0, None)

    with pytest.raises(LayerContractError, match=r"structure\(name, shapes, output\)"):
        gradcheck.check(Old(), x)


def test_an_output_whose_shape_depends_on_the_values_is_a_contract_error():
    class Ragged:
        outputs = ("y", "z")
        inputs = ("x",)

        def forward(self, x):
            return (x, x[x >= 0]), None

        def backward(self, dy, cache):
            return {"x": dy[0]}

    arrays = {"x": np.array([0.0, -1.0, 2.0])}  # x[0] - h drops out of z
    with pytest.raises(LayerContractError, match="output z has shape"):
        gradcheck.check(Ragged(), arrays, method="central")


def test_an_output_that_is_not_a_numeric_array_is_a_contract_error_naming_it(x):
    """The single-output checks of forward's y hold for each of several outputs, by name."""
    class NoneForU(NormAndDirection):
        def forward(self, x):
            (r, u), cache = super().forward(x)
            return (r, None), cache

    with pytest.raises(LayerContractError, match=r"forward's output u is None, not a numeric array: forward "
                                                 r"must return \(\(r, u\), cache\) with each an array"):
        gradcheck.check(NoneForU(), x)


def test_backward_writing_into_one_outputs_dy_is_warned_and_still_judged_on_the_checkers_G(x):
    class Scribbles(NormAndDirection):
        def backward(self, dy, cache):
            grads = super().backward(dy, cache)
            dy[1][...] = 0.0  # du: a view of backward's own copy of G
            return grads

    report = gradcheck.check(Scribbles(), x)
    assert report.passed, str(report)
    assert any("backward modified its dy in place" in w for w in report.warnings)


def test_a_nonfinite_output_is_the_cause_named_in_its_own_outputs_terms(x):
    class NanInU(NormAndDirection):
        def forward(self, x):
            (r, u), cache = super().forward(x)
            return (r, np.where(np.arange(u.size).reshape(u.shape) == 7, np.nan, u)), cache

    report = gradcheck.check(NanInU(), x, method="central")
    assert not report.passed
    assert "forward's outputs r, u are not finite at the base point: 1 of 24 elements" in report.cause
    assert "(u[1, 2] = nan)" in report.cause and "L = sum_k sum(G_k * y_k)" in report.cause
