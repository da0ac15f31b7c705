"""Kinks that coincide: tie groups and degenerate points.

Tied maxima of a max pool are kinks one by one, but along the direction that raises all of them together
the output is differentiable (the maximum rises with them), so the sum of their gradients must match that
directional derivative: a backward that hands the full dy to every tied maximum fails there. At a point
where several kinks coincide in different outputs (FC -> ReLU at x = 0, b = 0) finite differences cannot
tell a right gradient from a wrong one: that is its own verdict, UNDECIDED, never a pass and never called
a wrong gradient.
"""

import numpy as np
import pytest

import gradcheck
from gradcheck.engine.verdict import Verdict
from layers import FullyConnected, MaxPool, ReLU, Sequential
from tests.planted import MaxPoolFullDyToEveryTie
from tests.test_kinks import tied_maxpool_input


class MaxPoolSplitsTies(MaxPool):
    """dy / k to each of the k tied maxima: another right convention (the subgradient's midpoint)."""

    def backward(self, dy, cache):
        arg, x_shape = cache
        x = self._x
        n = self.size
        blocks = x.reshape(x.shape[0], x.shape[1], x.shape[2] // n, n, x.shape[3] // n, n)
        top = blocks.max(axis=(3, 5), keepdims=True)
        tied = blocks == top
        share = dy[:, :, :, None, :, None] / tied.sum(axis=(3, 5), keepdims=True)
        return {"x": (tied * share).reshape(x.shape)}

    def forward(self, x):
        self._x = np.array(x)
        return super().forward(x)


def all_tied():
    """4 windows of 2x2, every element tied: the full-dy bug gives dx summing to 16 dy where 4 is right."""
    return np.ones((1, 1, 4, 4))


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
def test_full_dy_to_every_tied_maximum_fails_naming_the_tied_elements(strategy):
    report = gradcheck.check(MaxPoolFullDyToEveryTie(2), {"x": all_tied()}, strategy=strategy, samples=16)
    x = report.arrays["x"]
    assert not report.passed and x.failed > 0, str(report)
    groups = [e for e in (x.worst + x.located) if e.tied]
    assert groups and all(e.kind == Verdict.MISMATCH for e in groups)
    windows = {frozenset((0, 0, 2 * a + i, 2 * b + j) for i in (0, 1) for j in (0, 1))
               for a in (0, 1) for b in (0, 1)}
    assert all(frozenset(e.tied) in windows for e in groups)  # each group is one whole window
    if strategy != "directional":  # every window is checked (directional: the windows it located)
        assert {frozenset(e.tied) for e in groups} == windows
    g = groups[0]
    assert g.analytic == pytest.approx(4 * g.numeric, rel=1e-6)  # 4 tied elements, each given the full dy
    text = str(report)
    assert " + ".join(f"x{list(i)}" for i in sorted(g.tied)) in text
    assert "4 tied kinks raised together" in text


def test_full_dy_to_every_tie_fails_only_on_the_tied_windows():
    x, tied = tied_maxpool_input()
    report = gradcheck.check(MaxPoolFullDyToEveryTie(2), {"x": x})
    r = report.arrays["x"]
    assert not report.passed
    failing = {i for e in r.worst if e.failed for i in (e.tied or (e.index,))}
    assert failing and failing <= tied  # the untied window (maximum 0.9 at (0,0,1,2)) is right
    assert (0, 0, 1, 2) not in failing


@pytest.mark.parametrize("layer", [MaxPool(2), MaxPoolSplitsTies(2)], ids=type)
@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
def test_right_conventions_at_ties_keep_passing(layer, strategy):
    for x in (all_tied(), tied_maxpool_input()[0]):
        report = gradcheck.check(layer, {"x": x}, strategy=strategy, samples=16)
        assert report.passed, str(report)


def test_relu_at_exact_zeros_keeps_passing_without_tie_groups():
    x = np.array([[0.0, 0.0, 1.0], [0.0, -2.0, 0.0]])
    r = gradcheck.check(ReLU(), {"x": x}).arrays["x"]
    assert r.passed and len(r.kinks) == 4 and not any(e.tied for e in r.worst + r.kinks)


def test_the_tie_check_costs_nothing_without_kinks_and_a_few_forwards_with_them():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 4, 4))
    smooth = gradcheck.check(MaxPool(2), {"x": x}, method="central").arrays["x"]
    tied = gradcheck.check(MaxPool(2), {"x": all_tied()}, method="central").arrays["x"]
    assert smooth.passed and tied.passed
    # the plan is 4 groups (8 forwards + the base point); the ties: 4 packed groups and 4 joint directions
    assert tied.forwards - smooth.forwards <= 4 * 2 + 4 * 2
    # the default (richardson, not complex-safe) hands each of the 16 tied coordinates to central alone
    # (2 forwards each), which then analyses the ties at the same cost
    smooth, tied = (gradcheck.check(MaxPool(2), {"x": v}).arrays["x"] for v in (x, all_tied()))
    assert smooth.passed and tied.passed and tied.method == "richardson" and tied.fallback == 16
    assert tied.forwards - smooth.forwards <= 16 * 2 + 4 * 2 + 4 * 2


# -- degenerate points ----------------------------------------------------------------------------------


def fc_relu():
    return Sequential([("fc", FullyConnected()), ("relu", ReLU())])


def degenerate(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": np.zeros((2, 3)), "fc.W": rng.standard_normal((3, 4)), "fc.b": np.zeros(4)}


@pytest.mark.parametrize("strategy", ["exhaustive", "sampled", "directional"])
def test_a_degenerate_point_is_undecided_not_a_wrong_gradient(strategy):
    report = gradcheck.check(fc_relu(), degenerate(), strategy=strategy, name="fc-relu-at-0")
    x = report.arrays["x"]
    assert not report.passed and not x.passed
    assert x.failed == 0 and x.undecided > 0, str(report)
    text = str(report)
    assert report.headline().startswith("UNDECIDED fc-relu-at-0:")
    assert "several kinks coincide" in report.headline() and "move the point" in report.headline()
    assert "wrong gradient" not in text and "mismatch" not in text and "FAIL" not in text
    assert "undecided" in text


def test_the_reference_layers_agree_with_torch_at_the_degenerate_point():
    torch = pytest.importorskip("torch")
    a = degenerate()
    layer = fc_relu()
    y, cache = layer.forward(**a)
    G = np.random.default_rng(1).standard_normal(y.shape)
    ours = layer.backward(G, cache)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    torch.relu(t["x"] @ t["fc.W"] + t["fc.b"]).backward(torch.tensor(G))
    for k in a:
        np.testing.assert_allclose(ours[k], t[k].grad.numpy(), rtol=1e-15, atol=1e-15)


def test_a_wrong_value_at_a_single_kink_is_still_a_mismatch_not_undecided():
    class ReLUWrongAtZero(ReLU):
        def backward(self, dy, cache):
            return {"x": dy * (cache > 0) + 2 * dy * (cache == 0)}

    report = gradcheck.check(ReLUWrongAtZero(), {"x": np.array([0.0, 1.0, 0.0])})
    r = report.arrays["x"]
    assert r.failed == 2 and r.undecided == 0 and report.headline().startswith("FAIL")


def test_a_wrong_gradient_elsewhere_still_fails_next_to_undecided_elements():
    class WrongW(FullyConnected):
        def backward(self, dy, cache):
            g = super().backward(dy, cache)
            return {**g, "W": g["W"] + 1.0}

    layer = Sequential([("fc", WrongW()), ("relu", ReLU())])
    report = gradcheck.check(layer, degenerate())  # at x = 0, W does not move y: dW = 0, smooth
    assert report.arrays["fc.W"].failed == 12 and report.arrays["x"].undecided > 0
    assert report.headline().startswith("FAIL") and "12 of 12 elements failed in fc.W" in report.headline()
    assert "in x undecided: several kinks coincide" in report.headline()


def test_kinks_beyond_the_analysis_limit_are_named_in_a_warning():
    from gradcheck.engine import kinks

    class UnstructuredReLU(ReLU):
        structure = None

    n = kinks.ANALYSE_SINGLES + 44
    report = gradcheck.check(UnstructuredReLU(), {"x": np.zeros(n)})
    assert report.passed and len(report.arrays["x"].kinks) == n
    assert any(f"only {kinks.ANALYSE_SINGLES} of {n} kink(s)" in w for w in report.warnings)


# -- an undecided case through the runner, the table, JSON, HTML and exit status --------------------------

DEGENERATE_CASE = """\
name: fc-relu-at-zero
source: "FC -> ReLU at x = 0, b = 0: every output is a kink"
stack:
  - {name: fc, layer: fully_connected}
  - {name: relu, layer: relu}
inputs:
  x: {shape: [2, 3], init: zeros}
  fc.W: {shape: [3, 4]}
  fc.b: {shape: [4], init: zeros}
"""


def test_report_status_tells_undecided_from_fail_and_pass():
    assert gradcheck.check(fc_relu(), degenerate()).status == "undecided"
    rng = np.random.default_rng(0)
    moved = {"x": rng.standard_normal((2, 3)), "fc.W": rng.standard_normal((3, 4)), "fc.b": np.zeros(4)}
    assert gradcheck.check(fc_relu(), moved).status == "pass"

    class WrongW(FullyConnected):
        def backward(self, dy, cache):
            g = super().backward(dy, cache)
            return {**g, "W": g["W"] + 1.0}

    wrong = Sequential([("fc", WrongW()), ("relu", ReLU())])
    assert gradcheck.check(wrong, degenerate()).status == "fail"  # a wrong gradient next to undecided ones
    assert gradcheck.check(fc_relu(), degenerate(), wrt=[]).status == "fail"  # nothing checked


def test_an_undecided_case_is_shown_as_undecided_and_does_not_pass(tmp_path):
    import json

    from click.testing import CliRunner

    from gradcheck.cli import main

    (tmp_path / "degenerate.yaml").write_text(DEGENERATE_CASE)
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["run", str(tmp_path), "--json", str(out), "--report",
                                       str(tmp_path / "html")])
    assert result.exit_code == 1, result.output
    rows = [line for line in result.output.splitlines() if "fc-relu-at-zero" in line and "|" in line]
    assert rows and "UNDECIDED" in rows[0] and "FAIL" not in rows[0]
    assert "1 undecided; exit 1" in result.output
    assert "UNDECIDED fc-relu-at-zero:" in result.output  # the verdict line is printed, as for a failure
    document = json.loads(out.read_text())
    assert document["counts"] == {"pass": 0, "fail": 0, "undecided": 1, "error": 0, "malformed": 0}
    case = document["cases"][0]
    assert case["status"] == "undecided" and case["passed"] is False
    page = (tmp_path / "html" / "index.html").read_text()
    assert "<td class='undecided'>UNDECIDED</td>" in page and "1 undecided" in page


def test_an_undecided_case_fails_under_pytest_with_its_verdict(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    pytester.mkdir("cases")
    (pytester.path / "cases" / "degenerate.yaml").write_text(DEGENERATE_CASE)
    from tests.test_plugin import PLUGIN

    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*UNDECIDED fc-relu-at-zero:*several kinks coincide*"])
