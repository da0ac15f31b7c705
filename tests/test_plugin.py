"""The pytest plugin through pytester: collection, ids, verdict text, malformed cases, --gradcheck-seed."""

import importlib.metadata
import xml.etree.ElementTree as ET

import pytest

# Imported once here: pytester's in-process runs forget the modules they import, and numpy/scipy extension
# modules cannot be loaded twice in one process.
import gradcheck.plugin  # noqa: F401
import layers  # noqa: F401
from tests.case_texts import CASE, USER_CASE, USER_LAYERS

# Once the project is pip-installed the plugin loads from its pytest11 entry point; before that, by name.
# Either way the in-process run finds gradcheck and layers already imported and warns that it cannot
# rewrite their asserts: an artifact of pytest inside pytest, silenced so the output is what a user sees.
INSTALLED = any(ep.name == "gradcheck" for ep in importlib.metadata.entry_points(group="pytest11"))
PLUGIN = [*([] if INSTALLED else ["-p", "gradcheck.plugin"]),
          "-W", "ignore::pytest.PytestAssertRewriteWarning"]


def run(pytester, *args):
    return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", *args)


@pytest.fixture
def project(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "fc.yaml").write_text(CASE.format(name="fc-small"))
    return pytester


def test_collects_cases_only_under_the_configured_folders(project):
    project.mkdir(".github")
    project.mkdir("data")
    (project.path / ".github" / "ci.yml").write_text("on: push\njobs: {test: {runs-on: ubuntu-latest}}\n")
    (project.path / "data" / "points.yaml").write_text("- [1, 2]\n- [3, 4]\n")
    (project.path / "data" / "looks_like_a_case.yaml").write_text(CASE.format(name="not-collected"))
    (project.path / "compose.yaml").write_text("services: {}\n")
    result = run(project, "--collect-only", "-q")
    assert result.ret == 0
    assert [line for line in result.outlines if "::" in line] == ["cases/fc.yaml::fc-small"]


def test_a_case_file_named_on_the_command_line_is_collected_even_outside_the_folders(project):
    project.mkdir("elsewhere")
    (project.path / "elsewhere" / "mine.yaml").write_text(CASE.format(name="named"))
    (project.path / "elsewhere" / "other.yaml").write_text(CASE.format(name="not-named"))
    result = run(project, "--collect-only", "-q", "elsewhere/mine.yaml")
    assert [line for line in result.outlines if "::" in line] == ["elsewhere/mine.yaml::named"]
    result = run(project, "--collect-only", "-q", "elsewhere")  # a folder is not a request for its YAML
    assert [line for line in result.outlines if "::" in line] == []


def test_ini_option_names_the_case_folders_relative_to_rootdir(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases =\n    suite/a\n    more\n")
    for folder, name in [("suite/a", "in-a"), ("suite/b", "in-b"), ("more/deep", "in-more")]:
        path = pytester.path / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / "c.yaml").write_text(CASE.format(name=name))
    result = run(pytester, "--collect-only", "-q")
    assert sorted(line for line in result.outlines if "::" in line) == [
        "more/deep/c.yaml::in-more", "suite/a/c.yaml::in-a"]


def test_one_item_per_case_with_the_case_name_as_id(project):
    family = CASE.format(name="first") + "---\n" + CASE.format(name="second")
    (project.path / "cases" / "family.yaml").write_text(family)
    result = run(project, "-v")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["cases/family.yaml::first PASSED*", "cases/family.yaml::second PASSED*",
                                 "cases/fc.yaml::fc-small PASSED*"])


def test_a_planted_bug_in_a_users_layer_shows_the_verdict_not_a_traceback(project):
    (project.path / "cases" / "userlayers.py").write_text(USER_LAYERS)
    (project.path / "cases" / "user.yaml").write_text(USER_CASE)
    result = run(project)
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # The failure section is headed by reportinfo (the case and its file) and holds the checker's verdict.
    result.stdout.fnmatch_lines(["*_ gradcheck case user-scale-planted (user.yaml) _*",
                                 "FAIL*user-scale-planted*"])
    assert "a[" in out and "analytic" in out and "numeric" in out
    assert "Traceback" not in out and "runtest" not in out and "def " not in out


def test_a_malformed_case_fails_with_its_one_line_error(project):
    (project.path / "cases" / "broken.yaml").write_text(
        CASE.format(name="broken").replace("strategy: exhaustive", "strategy: everything"))
    result = run(project)
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    path = project.path / "cases" / "broken.yaml"
    expected = f"{path}:8: check.strategy: expected one of directional, sampled, exhaustive; got 'everything'"
    assert expected in result.outlines
    assert "Traceback" not in result.stdout.str()


def test_a_shape_the_layer_rejects_is_a_one_line_case_error_at_run_time(project):
    (project.path / "cases" / "shape.yaml").write_text(
        CASE.format(name="shape").replace("x: {shape: [4, 5]}", "x: {shape: [4, 6]}"))
    result = run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*shape.yaml:4: inputs: the layer rejected the arrays on a first forward: "
                                 "FullyConnected: *"])


def seeds_from_junit(project, *args):
    xml = project.path / "out.xml"
    run(project, f"--junitxml={xml}", *args)
    props = ET.parse(xml).getroot().iter("property")
    return [p.get("value") for p in props if p.get("name") == "seed"]


def test_gradcheck_seed_reruns_every_case_with_another_seed(project):
    assert seeds_from_junit(project) == ["0"]
    assert seeds_from_junit(project, "--gradcheck-seed", "7") == ["7"]
    (project.path / "cases" / "userlayers.py").write_text(USER_LAYERS)
    (project.path / "cases" / "user.yaml").write_text(USER_CASE)
    result = run(project, "--gradcheck-seed", "7")
    assert "seed 7" in result.stdout.str() or "seed=7" in result.stdout.str()


def test_huge_cases_are_marked_slow(project):
    big = (CASE.format(name="big").replace("[5, 3]", "[5000, 1001]").replace("[4, 5]", "[4, 5000]")
           .replace("[3]}", "[1001]}").replace("[4, 3]", "[4, 1001]")
           .replace("parameters: 18", "parameters: 5006001"))
    (project.path / "cases" / "big.yaml").write_text(big)
    result = run(project, "--collect-only", "-q", "-m", "not slow")
    assert [line for line in result.outlines if "::" in line] == ["cases/fc.yaml::fc-small"]


RAISING_LAYERS = '''
import numpy as np


class Broken:
    inputs = ("x", "a")

    def forward(self, x, a):
        return x * a, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": np.dot(dy, x)}  # (3, 4) . (3, 4): shapes do not fit
'''


def test_a_layer_that_raises_shows_its_own_frames_not_the_harness(project):
    (project.path / "cases" / "brokenlayers.py").write_text(RAISING_LAYERS)
    case = USER_CASE.replace("userlayers:Scale", "brokenlayers:Broken")
    (project.path / "cases" / "broken.yaml").write_text(case.replace("user-scale-planted", "broken-layer"))
    result = run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["ERROR broken-layer: ValueError in Broken.backward "
                                 "(cases/brokenlayers.py:13): shapes (3,4) and (3,4) not aligned*",
                                 "cases/brokenlayers.py:13: in backward"])
    section = result.stdout.str().split("= FAILURES =")[1].split("short test summary")[0]
    assert "gradcheck/" not in section and "_pytest" not in section and "pluggy" not in section
