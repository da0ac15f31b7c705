"""Channels-last arrays (gradcheck.layout): the layout travels with the result (ArrayResult.layout), and the
pictures (gradcheck.output.pictures) and diagnoses (gradcheck.engine.diagnosis) read NHWC maps as maps."""

import numpy as np
import pytest

import gradcheck
from gradcheck import layout
from gradcheck.catalogue.case import load_file
from gradcheck.errors import CaseError, LayerContractError
from gradcheck.output import pictures


class ChannelsLastMask:
    """x (N, H, W, C) -> y = x * m, m fixed; bug="mirror": dx flipped over H and W (a rot180 of every
    map), bug="shift": dx moved down one row."""

    inputs = ("x",)
    complex_safe = True

    def __init__(self, m, bug=None):
        self.m, self.bug = m, bug

    def forward(self, x):
        return x * self.m, None

    def backward(self, dy, cache):
        dx = dy * self.m
        if self.bug == "mirror":
            dx = dx[:, ::-1, ::-1, :]
        elif self.bug == "shift":
            dx = np.roll(dx, 1, axis=1)
            dx[:, 0] = 0.0
        return {"x": dx}

    def structure(self, name, shapes):
        return (0, 1, 2, 3)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((2, 5, 6, 3))}, rng.standard_normal((2, 5, 6, 3))


def test_canonical_orders():
    a = np.arange(2 * 5 * 6 * 3).reshape(2, 5, 6, 3)  # N, H, W, C
    np.testing.assert_array_equal(layout.canonical(a, "NHWC"), a.transpose(0, 3, 1, 2))
    k = np.arange(3 * 3 * 2 * 4).reshape(3, 3, 2, 4)  # kh, kw, C, F
    np.testing.assert_array_equal(layout.canonical(k, "HWIO"), k.transpose(3, 2, 0, 1))
    assert layout.canonical_shape((2, 5, 6, 3), "NHWC") == (2, 3, 5, 6)
    assert layout.canonical_index((1, 4, 5, 2), "NHWC") == (1, 2, 4, 5)
    assert layout.canonical(a, None) is a
    with pytest.raises(ValueError, match="x: layout NHWC needs a 4-D array; x has shape \\(3, 4\\)"):
        layout.check("x", "NHWC", (3, 4))
    with pytest.raises(ValueError, match="unknown layout 'NWHC'"):
        layout.check("x", "NWHC", (1, 2, 3, 4))


def test_the_layout_travels_with_the_result(arrays):
    a, m = arrays
    report = gradcheck.check(ChannelsLastMask(m), a, layouts={"x": "NHWC"})
    assert report.passed and report.arrays["x"].layout == "NHWC"
    assert gradcheck.check(ChannelsLastMask(m), a).arrays["x"].layout is None


def test_an_nhwc_array_is_drawn_as_the_same_maps_as_its_nchw_transpose(arrays):
    a, m = arrays
    report = gradcheck.check(ChannelsLastMask(m, "shift"), a, layouts={"x": "NHWC"})
    r = report.arrays["x"]
    ps = pictures.panels(r)
    lay = ps[0].layout
    assert lay.kind == "maps" and lay.shape == (2, 3, 5, 6) and "NHWC (2, 5, 6, 3)" in lay.description
    ref = pictures.layout_for("x", (2, 3, 5, 6))
    for p, how in zip(ps, ("mean", "mean", "maxabs"), strict=True):
        src = {"x analytic": r.analytic, "x numeric": r.numeric,
               "x analytic - numeric": r.analytic - r.numeric}[p.title]
        np.testing.assert_array_equal(p.data, pictures.arrange(ref, src.transpose(0, 3, 1, 2), how))
    worst = next(e for e in r.worst if e.failed)
    n, h, w, c = worst.index
    assert lay.place(worst.index) == ref.place((n, c, h, w))
    untagged = pictures.layout_for("x", a["x"].shape)
    assert untagged.shape == (2, 5, 6, 3)  # without a layout: tiles are W x C, the wrong picture


@pytest.mark.parametrize("bug, words", [("mirror", "rotated 180 degrees in every tile"),
                                        ("shift", "shifted by (1, 0) pixels in every tile")])
def test_diagnoses_read_nhwc_maps_as_maps(arrays, bug, words):
    a, m = arrays
    tagged = gradcheck.check(ChannelsLastMask(m, bug), a, layouts={"x": "NHWC"}, explain=0.5)
    assert any(words in s for s in tagged.arrays["x"].diagnosis), tagged.arrays["x"].diagnosis
    untagged = gradcheck.check(ChannelsLastMask(m, bug), a, explain=0.5)
    assert not any(words in s for s in untagged.arrays["x"].diagnosis)


def test_hwio_kernels_are_drawn_as_kernels():
    k = np.random.default_rng(1).standard_normal((3, 2, 4, 5))  # kh, kw, C, F
    lay = pictures.layout_for("w", k.shape, layout="HWIO")
    assert lay.kind == "kernel" and lay.shape == (5, 4, 3, 2)
    oihw = pictures.layout_for("k", (5, 4, 3, 2))
    np.testing.assert_array_equal(pictures.arrange(lay, k), pictures.arrange(oihw, k.transpose(3, 2, 0, 1)))


def test_check_rejects_a_layout_for_a_non_input_or_a_non_4d_array(arrays):
    a, m = arrays
    with pytest.raises(LayerContractError, match="layouts names y, not an input"):
        gradcheck.check(ChannelsLastMask(m), a, layouts={"y": "NHWC"})
    with pytest.raises(ValueError, match="unknown layout"):
        gradcheck.check(ChannelsLastMask(m), a, layouts={"x": "CHWN"})


CASE = """\
name: nhwc
layer: conv2d
{top}inputs:
  x: {{shape: [2, 3, 5, 5]{x}}}
  k: {{shape: [2, 3, 3, 3]{k}}}
  b: {{shape: [2]{b}}}
"""


def case(tmp_path, top="", x="", k="", b=""):
    path = tmp_path / "case.yaml"
    path.write_text(CASE.format(top=top, x=x, k=k, b=b), encoding="utf-8")
    return path


def test_a_case_says_its_layout_per_input_or_for_every_4d_input(tmp_path):
    (c,) = load_file(case(tmp_path, x=", layout: NHWC"))
    assert c.options()["layouts"] == {"x": "NHWC"}
    (c,) = load_file(case(tmp_path, top="layout: NHWC\n", k=", layout: OIHW"))
    assert c.options()["layouts"] == {"x": "NHWC"}  # k's own layout (the canonical one) wins; b is 1-D
    (c,) = load_file(case(tmp_path, k=", layout: HWIO"))
    assert c.options()["layouts"] == {"k": "HWIO"}
    (c,) = load_file(case(tmp_path))
    assert "layouts" not in c.options()


def test_a_layout_on_a_non_4d_input_or_an_unknown_layout_is_a_case_error(tmp_path):
    path = case(tmp_path, b=", layout: NHWC")
    with pytest.raises(CaseError) as info:
        load_file(path)
    expected = "inputs.b.layout: expected a 4-D array for layout NHWC; b has shape [2]"
    assert str(info.value) == f"{path}:6: {expected}"
    path = case(tmp_path, top="layout: HWIO\n")
    with pytest.raises(CaseError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:3: layout: expected one of NCHW, NHWC; got 'HWIO'"


def test_json_carries_the_layout(arrays):
    from gradcheck.output.json import array_dict

    a, m = arrays
    r = gradcheck.check(ChannelsLastMask(m), a, layouts={"x": "NHWC"}).arrays["x"]
    assert array_dict(r)["layout"] == "NHWC"
