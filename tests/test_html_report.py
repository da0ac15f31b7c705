"""The HTML report (gradcheck run --report, pytest --gradcheck-report) and gradcheck explain."""

import base64
import io
import re

import matplotlib.image
import pytest
from click.testing import CliRunner

import gradcheck.plugin  # noqa: F401  (pytester: import extension modules once)
import layers  # noqa: F401
from gradcheck.cli import main
from tests.test_plugin import PLUGIN

GOOD = """\
name: fc-good
layer: fully_connected
inputs:
  x: {shape: [4, 5]}
  W: {shape: [5, 3]}
  b: {shape: [3]}
check: {strategy: exhaustive}
"""

PLANTED_LAYER = '''
from layers import Conv2D


class KernelNotRotated(Conv2D):
    """Convolution mode whose dk forgot its rot180."""

    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        g["k"] = g["k"][..., ::-1, ::-1].copy()
        return g
'''

PLANTED = """\
name: conv-planted-no-rot180
layer: planted_conv:KernelNotRotated
config: {mode: convolution}
inputs:
  x: {shape: [2, 2, 6, 6]}
  k: {shape: [3, 2, 3, 3]}
  b: {shape: [3]}
check: {strategy: exhaustive, method: central}
"""


def images(page: str) -> list:
    """Every embedded PNG of the page, decoded."""
    found = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(b)), format="png") for b in found]


@pytest.fixture
def catalogue(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD)
    return folder


def test_run_report_shows_the_failing_case_with_pictures_that_decode(catalogue, tmp_path):
    (catalogue / "planted_conv.py").write_text(PLANTED_LAYER)
    (catalogue / "planted.yaml").write_text(PLANTED)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(catalogue), "--report", str(out)])
    assert result.exit_code == 1, result.output
    assert f"report: {out / 'index.html'}" in result.output
    page = (out / "index.html").read_text()
    assert page.count("<tr class=") == 2 and "<h2>Failures</h2>" in page
    assert "Near misses" not in page  # fc-good passes with a tiny margin: no section of its own
    sections = re.findall(r"<section class='failure' id='case-([^']+)'>", page)
    assert sections == ["conv-planted-no-rot180"]
    assert "k: analytic is numeric rotated 180 degrees in every tile" in page
    assert "convergence order 0.0 (a plateau no eps gets under: a wrong gradient)" in page
    pics = images(page)
    assert len(pics) == 2  # heat maps of k (x and b pass), error vs eps
    assert all(p.ndim == 3 and min(p.shape[:2]) > 100 for p in pics)
    assert "http" not in page.split("<body>")[1]  # self-contained: nothing fetched


def test_report_of_a_passing_run_has_no_failure_section(catalogue, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(catalogue), "--report", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "fc-good" in page and "<h2>Verdicts</h2>" in page
    assert "Failures" not in page and "<section" not in page and images(page) == []
    assert "Every case passes with a margin of at most 0.5" in page


def test_explain_prints_the_diagnosis_and_writes_the_pictures(catalogue, tmp_path, monkeypatch):
    (catalogue / "planted_conv.py").write_text(PLANTED_LAYER)
    (catalogue / "planted.yaml").write_text(PLANTED)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["explain", "conv-planted-no-rot180", "--cases", str(catalogue)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FAIL conv-planted-no-rot180: ")
    assert "diagnosis:\n  k: analytic is numeric rotated 180 degrees in every tile" in result.output
    folder = tmp_path / "gradcheck-explain"  # the default folder
    names = sorted(p.name for p in folder.iterdir())
    # explain draws every array (x and b pass, k fails) and the error-vs-eps plot
    assert names == ["conv-planted-no-rot180-b-maps.png", "conv-planted-no-rot180-error-vs-eps.png",
                     "conv-planted-no-rot180-k-maps.png", "conv-planted-no-rot180-x-maps.png"]
    for p in folder.iterdir():
        assert matplotlib.image.imread(p).ndim == 3
    assert f"wrote {folder.relative_to(tmp_path) / 'conv-planted-no-rot180-k-maps.png'}" in result.output


def test_explain_a_passing_case_by_file_into_a_folder(catalogue, tmp_path):
    out = tmp_path / "pics"
    result = CliRunner().invoke(main, ["explain", str(catalogue / "good.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASS fc-good" in result.output and "nothing to explain" in result.output
    assert len(list(out.glob("*.png"))) == 4


def test_explain_unknown_case_exits_2_with_a_suggestion(catalogue):
    result = CliRunner().invoke(main, ["explain", "fc-god", "--cases", str(catalogue)])
    assert result.exit_code == 2
    assert "no case named 'fc-god'" in result.output and "did you mean fc-good?" in result.output


def test_pytest_gradcheck_report_writes_the_same_page(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "good.yaml").write_text(GOOD)
    (cases / "planted_conv.py").write_text(PLANTED_LAYER)
    (cases / "planted.yaml").write_text(PLANTED)
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "--gradcheck-report", "rep")
    result.assert_outcomes(passed=1, failed=1)
    page = (pytester.path / "rep" / "index.html").read_text()
    assert page.count("<tr class=") == 2
    assert re.findall(r"<section class='failure' id='case-([^']+)'>", page) == ["conv-planted-no-rot180"]
    assert "rotated 180 degrees" in page and len(images(page)) == 2
