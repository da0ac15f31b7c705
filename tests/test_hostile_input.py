"""Hostile input: every malformed case file and every absurd option is one line naming the file, the field and
what was expected (exit 2 in the CLI, a failed item under pytest), never a traceback or a hang, and never
stops the other cases. Cases as data: add a hostile input by adding a row."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradcheck.plugin  # noqa: F401  (imported once: see tests/test_plugin.py)
from gradcheck import check
from gradcheck.catalogue.case import load_file
from gradcheck.catalogue.yaml_io import ALIAS_NODES
from gradcheck.cli import main
from gradcheck.errors import CaseError
from layers import FullyConnected
from tests.test_plugin import run as run_pytest

GOOD = """\
name: fc-ok
layer: fully_connected
inputs:
  x: {shape: [4, 5]}
  W: {shape: [5, 3]}
  b: {shape: [3]}
check: {strategy: exhaustive}
"""


def alias_bomb(levels=9):
    """The "billion laughs": `levels` levels of 9 aliases each (9**levels strings in a dozen lines)."""
    text = GOOD + 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


def edit(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


def in_check(option):
    return edit("{strategy: exhaustive}", "{strategy: exhaustive, " + option + "}")


BOMB_NODES = 490_329_091  # the 28 nodes of GOOD, 9 keys, and l_k = 1 + 9 * l_(k-1) nodes per level (l_0 = 10)

# (id, case text, line, field, what was expected): load_file's exact one-line CaseError.
HOSTILE = [
    ("nul-byte", edit("name: fc-ok", "name: fc-ok\x00"), 1, None,
     "unreadable YAML: control character U+0000 at column 12; expected printable text"),
    ("control-byte", edit("layer:", "\x07layer:"), 2, None,
     "unreadable YAML: control character U+0007 at column 1; expected printable text"),
    ("ragged-values", edit("W: {shape: [5, 3]}", "W: {values: [[1, 2, 3], [1, 2]]}"), 5, "inputs.W.values[1]",
     "expected nested lists of one rectangular shape; item 1 has shape [2], item 0 has shape [3]"),
    ("ragged-deeper", edit("b: {shape: [3]}", "b: {values: [[[1], [2]], [[1], 2]]}"), 6,
     "inputs.b.values[1][1]",
     "expected nested lists of one rectangular shape; item 1 has shape [], item 0 has shape [1]"),
    ("string-values", edit("b: {shape: [3]}", "b: {values: ['1', '2', 3]}"), 6, "inputs.b.values[0]",
     "expected a number; got '1'"),
    ("boolean-values", edit("b: {shape: [3]}", "b: {values: [true, 0, 1]}"), 6, "inputs.b.values[0]",
     "expected a number; got True"),
    ("null-values", edit("b: {shape: [3]}", "b: {values: [null, 0, 1]}"), 6, "inputs.b.values[0]",
     "expected a number; got None"),
    ("float-overflow-values", edit("b: {shape: [3]}", "b: {values: [1, 2, 1" + "0" * 400 + "]}"), 6,
     "inputs.b.values",
     "expected numbers within float64's range (|v| < 1.8e308); got an integer of 401 digits"),
    ("infinite-values", edit("b: {shape: [3]}", "b: {values: [1, 2, 1e400]}"), 6, "inputs.b.values",
     "expected finite numbers for a differentiable input; got .inf"),
    ("nan-values", edit("b: {shape: [3]}", "b: {values: [1, .nan, 3]}"), 6, "inputs.b.values",
     "expected finite numbers for a differentiable input; got .nan"),
    ("integer-overflow-values", edit("b: {shape: [3]}", "b: {values: [1, 2, 9223372036854775808], "
                                                        "dtype: int64}"), 6, "inputs.b.values",
     "expected integers within int64 (|v| < 2**63); got 9223372036854775808"),
    ("float-in-shape", edit("[5, 3]", "[5.0, 3]"), 5, "inputs.W.shape[0]", "expected an integer; got 5.0"),
    ("nan-scale", edit("b: {shape: [3]}", "b: {shape: [3], scale: .nan}"), 6, "inputs.b.scale",
     "expected a finite number; got .nan"),
    ("labels-on-a-differentiable-input", edit("x: {shape: [4, 5]}", "x: {shape: [4, 5], init: labels, "
                                                                    "classes: 3}"), 4, "inputs.x.init",
     "expected a float init (normal, uniform, arange, zeros, ones) for a differentiable input; labels are "
     "integers, for a constant such as a loss's targets"),
    ("classes-on-a-differentiable-input", edit("x: {shape: [4, 5]}", "x: {shape: [4, 5], classes: 3}"), 4,
     "inputs.x.init", "expected a float init (normal, uniform, arange, zeros, ones) for a differentiable "
                      "input; labels are integers, for a constant such as a loss's targets"),
    ("infinite-eps", in_check("eps: .inf"), 7, "check.eps", "expected a finite number; got .inf"),
    ("nan-eps", in_check("eps: .nan"), 7, "check.eps", "expected a finite number; got .nan"),
    ("nan-rtol", in_check("rtol: .nan"), 7, "check.rtol", "expected a finite number; got .nan"),
    ("negative-rtol", in_check("rtol: -1e-6"), 7, "check.rtol", "expected a number >= 0; got -1e-06"),
    ("negative-atol", in_check("atol: -1"), 7, "check.atol", "expected an integer >= 0; got -1"),
    ("infinite-timeout", in_check("timeout: .inf"), 7, "check.timeout", "expected a finite number; got .inf"),
    ("zero-timeout", in_check("timeout: 0"), 7, "check.timeout", "expected an integer > 0; got 0"),
    ("float-samples", in_check("samples: 2.0"), 7, "check.samples", "expected an integer; got 2.0"),
    ("absurd-directions", in_check("directions: 100000000"), 7, "check.directions",
     "expected at most 10000 (each direction costs two forwards over every array); got 100000000"),
    ("absurd-samples", in_check("samples: 100000000"), 7, "check.samples",
     "expected at most 1000000 (coordinates per array; for more, use strategy: exhaustive); got 100000000"),
    ("alias-bomb", alias_bomb(), 1, None,
     f"YAML aliases expand this document to {BOMB_NODES} nodes (55 written); expected aliases to add at most "
     f"{ALIAS_NODES} (an alias bomb?)"),
    ("cyclic-alias", GOOD + "extra: &loop [1, *loop]\n", 8, None,
     "an alias refers to the node that contains it (a cyclic structure); expected plain data"),
    ("nested-too-deeply", GOOD + "extra: " + "[" * 3000 + "]" * 3000 + "\n", None, None,
     "unreadable YAML: nested too deeply; expected a case of a few levels"),
    ("not-yaml-at-all", "# Title\n\nSome prose that is " + "very " * 40 + "long.\n", 3, None,
     "expected a case (a mapping with name, layer, inputs); got "
     "'Some prose that is very very very very v'... (a text of 224 characters)"),
]


def load_error(tmp_path, text) -> CaseError:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as info:
        load_file(path)
    return info.value


@pytest.mark.parametrize("text, line, field, expected", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_case_file_is_one_line_naming_file_field_and_expectation(tmp_path, text, line, field,
                                                                         expected):
    error = load_error(tmp_path, text)
    path = tmp_path / "case.yaml"
    where = f"{path}:{line}" if line else str(path)
    assert str(error) == (f"{where}: {field}: {expected}" if field else f"{where}: {expected}")
    assert "\n" not in str(error)


def test_the_alias_bomb_is_refused_without_expanding_it(tmp_path, monkeypatch):
    """The walk visits each distinct node once: 57 nodes, not 9**10 (a Node's repr expands it: keep ids)."""
    import gradcheck.catalogue.yaml_io as yaml_io

    visited = []
    real = yaml_io._no_duplicate_keys
    monkeypatch.setattr(yaml_io, "_no_duplicate_keys",
                        lambda path, node: visited.append(id(node)) or real(path, node))
    error = load_error(tmp_path, alias_bomb(levels=10))
    assert "expand this document to 4412961543 nodes (57 written)" in str(error)
    assert len(visited) == len(set(visited)) == 57  # GOOD's 28, 10 keys, 10 lists, 9 strings


def test_aliases_that_expand_a_little_still_load(tmp_path):
    text = GOOD.replace("inputs:", "config: {}\nshapes: &s [4, 5]\ninputs:").replace("x: {shape: [4, 5]}",
                                                                                     "x: {shape: *s}")
    error = load_error(tmp_path, text)  # aliases are fine; only the unknown key "shapes" is refused
    assert error.field == "shapes" and "unknown key" in str(error)


# check() and assert_gradients() refuse the same options with a one-line ValueError.
def fc_arrays():
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((4, 5)), "W": rng.standard_normal((5, 3)), "b": rng.standard_normal(3)}


API = [
    ("infinite-eps", {"eps": float("inf")}, "eps must be a finite number > 0, got inf"),
    ("nan-eps", {"eps": float("nan")}, "eps must be a finite number > 0, got nan"),
    ("nan-rtol", {"rtol": float("nan")}, "rtol must be a finite number >= 0, got nan"),
    ("negative-rtol", {"rtol": -1e-6}, "rtol must be a finite number >= 0, got -1e-06"),
    ("negative-atol", {"atol": -1.0}, "atol must be a finite number >= 0, got -1.0"),
    ("infinite-atol", {"atol": float("inf")}, "atol must be a finite number >= 0, got inf"),
    ("absurd-directions", {"strategy": "directional", "directions": 100_000_000},
     "directions must be at most 10000, got 100000000"),
    ("absurd-samples", {"strategy": "sampled", "samples": 100_000_000},
     "samples must be at most 1000000, got 100000000"),
]


@pytest.mark.parametrize("options, message", [a[1:] for a in API], ids=[a[0] for a in API])
def test_check_refuses_absurd_options_with_one_line(options, message):
    calls = []

    class Counting(FullyConnected):
        def forward(self, **arrays):
            calls.append(1)
            return super().forward(**arrays)

    with pytest.raises(ValueError) as info:
        check(Counting(), fc_arrays(), **options)
    assert str(info.value) == message
    assert calls == []  # refused before the layer ran (nothing was built for 10**8 directions)


def test_the_schema_maxima_are_the_checkers():
    from gradcheck import strategies
    from gradcheck.catalogue.schema import schema

    check_fields = schema()["properties"]["check"]["properties"]
    assert check_fields["samples"]["maximum"] == strategies.MAX_SAMPLES
    assert check_fields["directions"]["maximum"] == strategies.MAX_DIRECTIONS


# -- the front ends: a malformed file is one line and the other cases still run ------------------------------

# (file name, text) of malformed files that used to stop a run or a whole pytest collection
BROKEN_FILES = [("nul.yaml", HOSTILE[0][1]), ("ragged.yaml", HOSTILE[2][1]), ("bomb.yaml", alias_bomb())]


def broken_folder(folder):
    for name, text in BROKEN_FILES:
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "zz_good.yaml").write_text(GOOD.replace("fc-ok", "zz-good"))
    return {name: str(load_error_at(folder / name)) for name, _ in BROKEN_FILES}


def load_error_at(path) -> CaseError:
    with pytest.raises(CaseError) as info:
        load_file(path)
    return info.value


def cli(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_gradcheck_run_reports_each_malformed_file_on_one_line_and_runs_the_rest(tmp_path):
    errors = broken_folder(tmp_path)
    report = tmp_path / "new" / "folder" / "report.json"  # made before the run: the results are not lost
    result = cli("run", tmp_path, "--json", report)
    assert result.exit_code == 2, result.output
    lines = result.output.replace("\n    ", "\n").splitlines()
    for message in errors.values():
        assert message in lines
    cases = json.loads(report.read_text())["cases"]
    assert [c["status"] for c in cases] == ["malformed", "malformed", "malformed", "pass"]


def test_pytest_collects_past_malformed_files(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    errors = broken_folder(pytester.mkdir("cases"))
    result = run_pytest(pytester)
    result.assert_outcomes(passed=1, failed=3)
    assert result.ret == 1 and "error during collection" not in result.stdout.str()
    for message in errors.values():
        assert message in result.outlines


def test_the_same_case_name_in_two_files_is_malformed_in_both_front_ends(tmp_path, pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "a.yaml").write_text(GOOD)
    (cases / "b.yaml").write_text(GOOD)
    expected = (f"{cases / 'b.yaml'}:1: name: duplicate case name 'fc-ok' (also {cases / 'a.yaml'}:1); "
                "expected unique names")
    result = cli("run", cases)
    assert result.exit_code == 2 and expected in result.output.replace("\n    ", "\n").splitlines()
    result = run_pytest(pytester, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["cases/a.yaml::fc-ok PASSED*", "cases/b.yaml::fc-ok FAILED*"])
    assert expected in result.outlines


def test_a_negative_seed_is_a_usage_error_before_anything_runs(tmp_path, pytester):
    (tmp_path / "good.yaml").write_text(GOOD)
    result = cli("run", tmp_path, "--seed", "-1")
    assert result.exit_code == 2
    assert "Invalid value for '--seed': -1 is not in the range x>=0." in result.output
    assert "fc-ok" not in result.output
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    result = run_pytest(pytester, "--gradcheck-seed=-1")
    assert result.ret == 4  # pytest's usage error
    assert "argument --gradcheck-seed: expected an integer >= 0; got '-1'" in result.stderr.str()


def test_json_under_a_file_is_refused_before_any_case_runs(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "afile").write_text("")
    result = cli("run", tmp_path, "--json", tmp_path / "afile" / "report.json")
    assert result.exit_code == 2
    assert "Invalid value for '--json': cannot make its folder" in result.output
    assert "fc-ok" not in result.output  # refused up front, not after the run


EXPLAIN = [  # (id, file name, text, what to ask for (None: the file), exit code, the one line printed)
    ("malformed-file", "ragged.yaml", HOSTILE[2][1], None, 2, "gradcheck explain: {file}:5: "
     "inputs.W.values[1]: expected nested lists of one rectangular shape; item 1 has shape [2], item 0 has "
     "shape [3]"),
    ("a-name-in-a-malformed-file", "ragged.yaml", HOSTILE[2][1], "fc-ok", 2, "gradcheck explain: {file}:5: "
     "inputs.W.values[1]: expected nested lists of one rectangular shape; item 1 has shape [2], item 0 has "
     "shape [3]"),
    ("not-yaml", "notes.yaml", "# Notes\n\n" + "Some prose. " * 50 + "\n", None, 2,
     "gradcheck explain: {file}:3: expected a case (a mapping with name, layer, inputs); got 'Some prose. "
     "Some prose. Some prose. Some'... (a text of 599 characters)"),
    ("nan-eps", "nan.yaml", in_check("eps: .nan"), None, 2,
     "gradcheck explain: {file}:7: check.eps: expected a finite number; got .nan"),
]


@pytest.mark.parametrize("name, text, ask, code, message", [e[1:] for e in EXPLAIN],
                         ids=[e[0] for e in EXPLAIN])
def test_explain_shows_the_one_line_error(tmp_path, name, text, ask, code, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["explain", ask or str(path), "--cases", str(tmp_path), "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == code
    assert result.output.splitlines() == [message.format(file=path)]
