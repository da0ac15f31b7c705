"""``gradcheck run``: progress, table, exit codes 0 / 1 / 2, --json, --seed, output without a TTY."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck.cli import main
from tests.case_texts import CASE, USER_CASE, USER_LAYERS

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture
def folder(tmp_path):
    (tmp_path / "good.yaml").write_text(CASE.format(name="fc-good"))
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_all_passing_exits_0_with_progress_table_and_json(folder, tmp_path):
    out = tmp_path / "report.json"
    result = run(folder, "--json", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("[1] PASS") and "fc-good" in lines[0]
    header = next(line for line in lines if "err/tol" in line)
    for column in ["case", "verdict", "worst at", "strategy", " s "]:
        assert column in header
    row = next(line for line in lines if "fc-good" in line and "exhaustive" in line)
    assert "PASS" in row and "x, W, b" not in row  # the arrays are in --wide, the JSON and the verdicts
    assert lines[-1] == "1 pass; exit 0"
    assert "\x1b[" not in result.output  # no terminal: no colour codes in a CI log
    report = json.loads(out.read_text())
    assert report["exit_code"] == 0 and report["counts"] == {"pass": 1, "fail": 0, "undecided": 0, "error": 0,
                                                         "malformed": 0}
    (case,) = report["cases"]
    assert case["case"] == "fc-good" and case["status"] == "pass" and case["passed"] is True
    assert case["file"] == str(folder / "good.yaml")
    assert case["seed"] == 0 and case["strategy"] == "exhaustive"
    assert case["source"] == "002 - the FC layer in matrix form, batch_size=10"
    assert set(case["arrays"]) == {"x", "W", "b"}
    assert [case["arrays"][n]["checked"] for n in ("x", "W", "b")] == [20, 15, 3]
    assert case["arrays"]["W"]["shape"] == [5, 3] and case["arrays"]["W"]["failed"] == 0
    assert 0 <= case["margin"] < 1 and case["verdict"].startswith("PASS")


def test_a_failing_case_exits_1_and_prints_its_verdict(folder, tmp_path):
    (folder / "userlayers.py").write_text(USER_LAYERS)
    (folder / "user.yaml").write_text(USER_CASE)
    out = tmp_path / "report.json"
    result = run(folder, "--json", out)
    assert result.exit_code == 1, result.output
    assert "FAIL user-scale-planted" in result.output  # the checker's verdict, after the table
    row = next(line for line in result.output.splitlines() if "user-scale-planted" in line and "|" in line)
    assert "FAIL" in row and "a[" in row
    cases = {c["case"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["fc-good"]["status"] == "pass"
    bad = cases["user-scale-planted"]
    assert bad["status"] == "fail" and bad["worst"]["array"] == "a" and bad["arrays"]["a"]["failed"] > 0
    assert bad["arrays"]["x"]["failed"] == 0


def test_a_malformed_case_exits_2_after_the_others_ran(folder, tmp_path):
    (folder / "userlayers.py").write_text(USER_LAYERS)
    (folder / "user.yaml").write_text(USER_CASE)  # a failure does not hide the malformed case
    bad = folder / "zz_bad.yaml"
    bad.write_text(CASE.format(name="bad").replace("strategy: exhaustive", "strategy: all"))
    out = tmp_path / "report.json"
    result = run(folder, "--json", out)
    assert result.exit_code == 2, result.output
    message = f"{bad}:8: check.strategy: expected one of directional, sampled, exhaustive; got 'all'"
    assert message in result.output.replace("\n    ", "\n").splitlines()
    report = json.loads(out.read_text())
    assert report["exit_code"] == 2
    assert [c["status"] for c in report["cases"]] == ["pass", "fail", "malformed"]
    assert report["cases"][2]["error"] == message and report["cases"][2]["field"] == "check.strategy"


def test_a_shape_rejected_at_run_time_is_malformed_too(folder):
    (folder / "shape.yaml").write_text(CASE.format(name="shape").replace("[4, 5]", "[4, 6]"))
    result = run(folder)
    assert result.exit_code == 2
    assert f"{folder / 'shape.yaml'}:4: inputs: the layer rejected the arrays on a first forward: " \
           "FullyConnected:" in result.output


def test_seed_option_reruns_with_another_seed(folder, tmp_path):
    out = tmp_path / "report.json"
    assert run(folder, "--seed", 5, "--json", out).exit_code == 0
    report = json.loads(out.read_text())
    assert report["seed"] == 5 and report["cases"][0]["seed"] == 5


def test_files_and_folders_mix_and_the_default_is_cases(folder, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.yaml"
    other.write_text(CASE.format(name="fc-other"))
    result = run(folder / "good.yaml", other)
    assert result.exit_code == 0 and "fc-good" in result.output and "fc-other" in result.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(CASE.format(name="from-default-folder"))
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 0 and "from-default-folder" in result.output


def test_no_case_files_is_a_usage_error(tmp_path):
    result = run(tmp_path)
    assert result.exit_code == 2 and "no case files" in result.output


def test_python_dash_m_gradcheck_without_a_tty(folder):
    proc = subprocess.run([sys.executable, "-m", "gradcheck", "run", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fc-good" in proc.stdout and "err/tol" in proc.stdout and "\x1b[" not in proc.stdout
    assert max(map(len, proc.stdout.splitlines())) <= 100


def test_hidden_folders_are_skipped(folder):
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "good-checkpoint.yaml").write_text(CASE.format(name="fc-good"))
    result = run(folder)
    assert result.exit_code == 0 and result.output.count("PASS      fc-good") == 1


LONG = "chain-bouvrie-conv-sigmoid-subsampling-sigmoid-fc-squared-error-with-a-longer-name"


@pytest.fixture
def failing(folder):
    (folder / "long.yaml").write_text(CASE.format(name=LONG))
    (folder / "userlayers.py").write_text(USER_LAYERS)
    (folder / "user.yaml").write_text(USER_CASE)
    return folder


def test_the_default_table_fits_100_columns_and_shows_what_failed_where_and_by_how_much(failing):
    from rich.console import Console

    from gradcheck.catalogue.runner import run_paths
    from gradcheck.output.table import build

    outcomes = list(run_paths([failing]))
    bad = next(o for o in outcomes if o.status == "fail")
    worst = bad.data["worst"]
    for width in (100, 80):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(build(outcomes, console.width, terminal=False))
        lines = console.file.getvalue().splitlines()
        assert max(map(len, lines)) <= width
        row = next(line for line in lines if line.startswith("| user-scale-"))
        assert "FAIL" in row and f"a[{worst['index'][0]}]" in row and f"{bad.data['margin']:.3g}" in row
        # a long name wraps inside its cell after its hyphens: whole, one piece per line
        cells = [line.split("|")[1].strip() for line in lines if line.startswith("| ")]
        first = next(i for i, c in enumerate(cells) if LONG.startswith(c) and c.endswith("-"))
        pieces = []
        while "".join(pieces) != LONG:
            pieces.append(cells[first + len(pieces)])
        assert all(p.endswith("-") for p in pieces[:-1]) and len(pieces) > 1


def test_the_table_fits_100_columns_in_a_log_and_wide_adds_the_arrays(failing):
    result = run(failing)
    assert result.exit_code == 1
    table = [line for line in result.output.splitlines() if line.startswith(("|", "+"))]
    assert table and max(map(len, table)) <= 100
    assert any("FAIL" in line and "user-scale-planted" in line and "a[" in line for line in table)
    wide = run(failing, "--wide")
    header = next(line for line in wide.output.splitlines() if "max error / tolerance" in line)
    for column in ["case", "strategy", "arrays", "worst index", "verdict", "seconds"]:
        assert column in header
    assert any(LONG in line for line in wide.output.splitlines())  # whole names, one line each
    assert any("x, W, b" in line for line in wide.output.splitlines())


def test_names_wrap_after_their_hyphens():
    from gradcheck.output.table import wrap_name

    assert wrap_name("fc-as-conv-7x7x512-4096-batch16", 12) == "fc-as-conv-\n7x7x512-\n4096-batch16"
    assert wrap_name("short", 12) == "short"
    assert wrap_name("averyveryverylongword-x", 5) == "averyveryverylongword-\nx"  # the table folds it
