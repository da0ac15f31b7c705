"""Report._repr_html_ (gradcheck.output.html.notebook): the verdict, and for failing arrays the heat maps and
the error-vs-eps plot, drawn from the results; images that decode; a note when the check ran without
explain."""

import base64
import io
import re

import matplotlib.image
import numpy as np
import pytest

import gradcheck
from layers import FullyConnected


class Counting(FullyConnected):
    """FullyConnected that counts its forwards (rendering must not run it); bug: db averaged."""

    def __init__(self, bug=False):
        self.bug, self.calls = bug, 0

    def forward(self, x, W, b):
        self.calls += 1
        return super().forward(x, W, b)

    def backward(self, dy, cache):
        grads = super().backward(dy, cache)
        if self.bug:
            grads["b"] = dy.mean(axis=0)
        return grads


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((4, 6)), "W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}


def images(text):
    """The decoded PNGs of the page, (alt, array) each."""
    out = []
    for alt, data in re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'", text):
        out.append((alt, matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")))
    return out


def test_a_passing_report_shows_its_verdict_only(arrays):
    text = gradcheck.check(Counting(), arrays)._repr_html_()
    assert "PASS &lt;unnamed case&gt;: margin" in text  # the headline, escaped
    assert "<img" not in text and "gradcheck-note" not in text


def test_a_failing_report_without_explain_shows_heat_maps_and_says_what_is_missing(arrays):
    layer = Counting(bug=True)
    report = gradcheck.check(layer, arrays, name="fc-db-averaged")
    calls = layer.calls
    text = report._repr_html_()
    assert layer.calls == calls  # drawn from the results: nothing ran again
    assert "FAIL fc-db-averaged: 3 of 3 elements failed in b" in text
    assert "no error-vs-eps plot and no diagnosis; check(..., explain=0.5) adds them" in text
    decoded = images(text)
    assert [alt for alt, _ in decoded] == ["fc-db-averaged-b-maps.png"]  # the failing array only
    (_, png), = decoded
    assert png.ndim == 3 and png.shape[0] > 100 and png.shape[1] > 300  # a row of three panels


def test_a_failing_report_with_explain_shows_the_diagnosis_and_the_error_vs_eps_plot(arrays):
    layer = Counting(bug=True)
    report = gradcheck.check(layer, arrays, name="fc-db-averaged", explain=0.5)
    calls = layer.calls
    text = report._repr_html_()
    assert layer.calls == calls
    assert "gradcheck-note" not in text
    assert "Diagnosis" in text and "a missing factor" in text
    alts = [alt for alt, _ in images(text)]
    assert alts == ["fc-db-averaged-b-maps.png", "fc-db-averaged-error-vs-eps.png"]
    for _, png in images(text):
        assert png.size > 0 and np.isfinite(png).all()


def test_the_pieces_are_the_html_reports(arrays):
    """The same figures the page's section draws (gradcheck.output.explain.figures), byte for byte."""
    from gradcheck.output import explain

    report = gradcheck.check(Counting(bug=True), arrays, name="c", explain=0.5)
    text = report._repr_html_()
    for f in explain.figures(report, margin=float("inf")):
        assert base64.b64encode(f.data).decode("ascii") in text
