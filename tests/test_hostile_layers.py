"""Hostile layers: a layer that exits, raises, hangs, breaks the contract or allocates a lot comes to that
case's one-line error (naming where the user's code raised it, or the time limit), in ``gradcheck run`` and
under pytest, and the run goes on with the next case. Ctrl-C stops the run with the results so far.

Layers and cases as data: add a hostile layer as a class in LAYERS and a row in HOSTILE.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gradcheck.plugin  # noqa: F401  (imported once: see tests/test_plugin.py)
from gradcheck import check
from gradcheck.cli import main
from gradcheck.strategies import plans
from tests.test_plugin import run as run_pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = '''\
import sys
import time

import numpy as np


class Scale:
    inputs = ("x", "a")

    def forward(self, x, a):
        return x * a, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": (dy * x).sum(0)}


class Exit0(Scale):
    def forward(self, x, a):
        sys.exit(0)  # exit-0


class Exit3(Scale):
    def backward(self, dy, cache):
        raise SystemExit(3)  # exit-3


class GenExit(Scale):
    def backward(self, dy, cache):
        raise GeneratorExit()  # generator-exit


class Broadcast(Scale):
    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": dy + np.ones(7)}  # broadcast


def helper(x):
    return len(x.shape[0])  # helper


class InHelper(Scale):
    def forward(self, x, a):
        return helper(x) * a, (x, a)


class LaterCall(Scale):
    calls = 0

    def forward(self, x, a):
        LaterCall.calls += 1
        if LaterCall.calls > 3:
            raise FloatingPointError("overflow on a perturbed forward")  # later-call
        return x * a, (x, a)


class NoGradient(Scale):
    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a}


class Loop(Scale):
    def forward(self, x, a):
        while True:
            pass


class Sleep(Scale):
    def forward(self, x, a):
        time.sleep(3600)


class Interrupt(Scale):
    def forward(self, x, a):
        raise KeyboardInterrupt


class Dies(Scale):
    def forward(self, x, a):
        import os

        os._exit(7)
'''

CASE = """\
name: {name}
layer: hostile:{layer}
inputs:
  x: {{shape: [3, 4]}}
  a: {{shape: [4]}}
check: {{strategy: exhaustive{check}}}
"""


def line(marker):
    """The line of LAYERS that carries `# marker`."""
    return next(i for i, text in enumerate(LAYERS.splitlines(), 1) if text.endswith(f"# {marker}"))


# (id, layer class, what follows "file:line: case: " in the one-line error).
HOSTILE = [
    ("sys-exit-0-in-forward", "Exit0",
     f"SystemExit in Exit0.forward (hostile.py:{line('exit-0')}): sys.exit(0) was called"),
    ("system-exit-3-in-backward", "Exit3",
     f"SystemExit in Exit3.backward (hostile.py:{line('exit-3')}): sys.exit(3) was called"),
    ("generator-exit", "GenExit", f"GeneratorExit in GenExit.backward (hostile.py:{line('generator-exit')})"),
    ("broadcast-error-in-backward", "Broadcast",
     f"ValueError in Broadcast.backward (hostile.py:{line('broadcast')}): operands could not be broadcast "
     "together with shapes (3,4) (7,)"),
    ("error-in-a-helper-of-forward", "InHelper",
     f"TypeError in InHelper.forward (hostile.py:{line('helper')}, in helper): object of type 'int' has no "
     "len()"),
    ("error-on-a-later-forward", "LaterCall",
     f"FloatingPointError in LaterCall.forward (hostile.py:{line('later-call')}): overflow on a perturbed "
     "forward"),
    ("contract-error", "NoGradient", "LayerContractError: NoGradient: backward returned no gradient for a"),
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """tmp_path with hostile.py and a passing case that sorts last (the run must reach it); the cwd, so
    errors show hostile.py by its relative name."""
    (tmp_path / "hostile.py").write_text(LAYERS)
    (tmp_path / "zz_good.yaml").write_text(CASE.format(name="zz-good", layer="Scale", check=""))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_case(folder, name, layer, check=""):
    path = folder / f"{name}.yaml"
    path.write_text(CASE.format(name=name, layer=layer, check=check))
    return path


def run_cli(folder, *options):
    """gradcheck run on the folder -> (exit code, output, {case name: JSON case})."""
    report = folder / "out" / "report.json"
    result = CliRunner().invoke(main, ["run", str(folder), "--json", str(report), *options])
    cases = {c["case"]: c for c in json.loads(report.read_text())["cases"]} if report.exists() else {}
    return result.exit_code, result.output, cases


@pytest.mark.parametrize("layer, message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_gradcheck_run_reports_a_hostile_layer_as_its_cases_error_and_goes_on(folder, layer, message):
    path = write_case(folder, "hostile", layer)
    code, output, cases = run_cli(folder)
    assert code == 1, output
    assert cases["hostile"]["status"] == "error" and cases["zz-good"]["status"] == "pass"
    assert cases["hostile"]["error"] == f"{path}:1: hostile: {message}"
    assert f"{path}:1: hostile: {message}" in output.splitlines()
    assert output.splitlines()[-1] == "1 pass, 1 error; exit 1"


@pytest.mark.parametrize("layer, message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_pytest_reports_a_hostile_layer_as_a_failed_item_and_goes_on(pytester, layer, message):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "hostile.py").write_text(LAYERS)
    (cases / "zz_good.yaml").write_text(CASE.format(name="zz-good", layer="Scale", check=""))
    write_case(cases, "hostile", layer)
    result = run_pytest(pytester)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1  # not an INTERNALERROR (3), not a silent exit 0
    out = result.stdout.str()
    section = out.split("= FAILURES =")[1].split("short test summary")[0]
    first = f"ERROR hostile: {message.replace('hostile.py', 'cases/hostile.py')}"
    assert first in section.splitlines()
    assert "gradcheck/" not in section and "_pytest" not in section and "pluggy" not in section
    if layer == "NoGradient":  # raised by the checker about the layer: the one line is all there is
        body = [text for text in section.splitlines() if text and not text.startswith(("___", "==="))]
        assert body == [first]


EXITS_AT_IMPORT = CASE.format(name="exits", layer="Exits", check="").replace("hostile:Exits", "exits:Exits")


def test_sys_exit_at_import_is_a_malformed_case_in_gradcheck_run(folder):
    (folder / "exits.py").write_text("import sys\n\nsys.exit(0)\n")
    path = folder / "exits.yaml"
    path.write_text(EXITS_AT_IMPORT)
    code, output, cases = run_cli(folder)
    assert code == 2 and cases["zz-good"]["status"] == "pass"
    assert cases[None]["error"] == (f"{path}:2: layer: importing 'exits:Exits' failed: SystemExit in "
                                       "<module> (exits.py:3): sys.exit(0) was called")


def test_sys_exit_at_import_is_a_malformed_item_and_collection_goes_on(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "exits.py").write_text("import sys\n\nsys.exit(0)\n")
    (cases / "exits.yaml").write_text(EXITS_AT_IMPORT)
    (cases / "hostile.py").write_text(LAYERS)
    (cases / "zz_good.yaml").write_text(CASE.format(name="zz-good", layer="Scale", check=""))
    result = run_pytest(pytester)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1 and "INTERNALERROR" not in result.stdout.str()
    assert (f"{cases / 'exits.yaml'}:2: layer: importing 'exits:Exits' failed: SystemExit in <module> "
            "(cases/exits.py:3): sys.exit(0) was called") in result.outlines


def test_a_layer_raising_keyboard_interrupt_stops_the_run_with_the_table_so_far(folder):
    (folder / "aa_good.yaml").write_text(CASE.format(name="aa-good", layer="Scale", check=""))
    write_case(folder, "mm_interrupt", "Interrupt")
    code, output, cases = run_cli(folder)
    assert code == 130
    assert "aa-good" in output and "zz-good" not in output  # stopped: the later case never ran
    assert output.splitlines()[-1] == "interrupted (Ctrl-C) after these cases; 1 pass; exit 130"
    assert list(cases) == ["aa-good"]


@pytest.mark.parametrize("options", [[], ["--timeout", "60"]], ids=["in-process", "worker"])
def test_ctrl_c_stops_the_run_with_the_table_so_far(folder, options):
    (folder / "aa_good.yaml").write_text(CASE.format(name="aa-good", layer="Scale", check=""))
    write_case(folder, "mm_sleep", "Sleep")
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck", "run", str(folder), *options], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    deadline = time.monotonic() + 120
    while "aa-good" not in out and time.monotonic() < deadline:  # the first case is done: the sleep runs
        out += proc.stdout.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    out += rest
    assert proc.returncode == 130, out
    assert out.splitlines()[-1] == "interrupted (Ctrl-C) after these cases; 1 pass; exit 130"
    assert "zz-good" not in out


TIMEOUTS = [  # (id, layer, gradcheck run options, check.timeout entry, the limit as the error names it)
    ("loop-with-timeout-option", "Loop", ["--timeout", "1"], "", "--timeout 1"),
    ("sleep-with-timeout-option", "Sleep", ["--timeout", "1"], "", "--timeout 1"),
    ("loop-with-check-timeout", "Loop", [], ", timeout: 1.5", "check.timeout: 1.5"),
    ("check-timeout-overrides-the-option", "Sleep", ["--timeout", "600"], ", timeout: 1", "check.timeout: 1"),
]


@pytest.mark.parametrize("layer, options, entry, named", [t[1:] for t in TIMEOUTS],
                         ids=[t[0] for t in TIMEOUTS])
def test_a_forward_that_never_returns_ends_as_an_error_naming_the_limit(folder, layer, options, entry, named):
    path = write_case(folder, "hangs", layer, entry)
    write_case(folder, "hangs_too", layer, entry)
    code, output, cases = run_cli(folder, *options)
    assert code == 1, output
    error = f"timed out: no verdict within {named.split()[-1]} s ({named}); the case was stopped"
    assert cases["hangs"]["error"] == f"{path}:1: hangs: {error}"
    assert cases["hangs_too"]["status"] == "error"  # a new worker after the first was killed
    assert cases["zz-good"]["status"] == "pass"  # the run went on


def test_a_worker_that_dies_is_the_cases_error(folder):
    path = write_case(folder, "dies", "Dies")
    code, output, cases = run_cli(folder, "--timeout", "60")
    assert code == 1
    assert cases["dies"]["error"] == f"{path}:1: dies: the case's process exited with status 7 before " \
                                     "reporting"
    assert cases["zz-good"]["status"] == "pass"


def test_errors_in_the_worker_read_as_in_process(folder):
    for _, layer, _ in HOSTILE:
        write_case(folder, layer.lower(), layer)
    _, _, here = run_cli(folder)
    _, _, there = run_cli(folder, "--timeout", "60")
    assert {n: c["error"] for n, c in there.items() if "error" in c} == \
           {n: c["error"] for n, c in here.items() if "error" in c}
    assert there["zz-good"]["status"] == here["zz-good"]["status"] == "pass"
    assert there["zz-good"]["margin"] == here["zz-good"]["margin"]


def test_pytest_gradcheck_timeout_and_check_timeout(pytester):
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    cases = pytester.mkdir("cases")
    (cases / "hostile.py").write_text(LAYERS)
    (cases / "zz_good.yaml").write_text(CASE.format(name="zz-good", layer="Scale", check=""))
    write_case(cases, "loops", "Loop")
    write_case(cases, "sleeps", "Sleep", ", timeout: 1")
    result = run_pytest(pytester, "--gradcheck-timeout", "3")  # room for a good case on a busy machine
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*/cases/loops.yaml:1: loops: timed out: no verdict within 3 s "
                                 "(--gradcheck-timeout 3); the case was stopped"])
    result.stdout.fnmatch_lines(["*/cases/sleeps.yaml:1: sleeps: timed out: no verdict within 1 s "
                                 "(check.timeout: 1); the case was stopped"])


def test_the_timeout_options_refuse_what_is_not_a_positive_number(folder, pytester):
    for value in ("0", "-1", "inf", "soon"):
        result = CliRunner().invoke(main, ["run", str(folder), "--timeout", value])
        assert result.exit_code == 2 and "Invalid value for '--timeout'" in result.output
        assert "zz-good" not in result.output
    pytester.makefile(".ini", pytest="[pytest]\ngradcheck_cases = cases\n")
    result = run_pytest(pytester, "--gradcheck-timeout=inf")
    assert result.ret == 4  # pytest's usage error
    expected = "argument --gradcheck-timeout: expected a finite number of seconds > 0; got 'inf'"
    assert expected in result.stderr.str()


# -- memory: threads sized by what one forward allocates ----------------------------------------------------

class Hungry:
    """y = x * a whose forward allocates `megabytes` of scratch and takes ~10 ms (so plans go parallel)."""

    inputs = ("x", "a")

    def __init__(self, megabytes):
        self.megabytes, self.threads = megabytes, set()

    def forward(self, x, a):
        self.threads.add(threading.get_ident())
        scratch = np.ones(self.megabytes << 17)  # megabytes * 2**20 / 8 float64
        time.sleep(0.01)
        return x * a + 0 * scratch[0], (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": (dy * x).sum(0)}


@pytest.mark.parametrize("megabytes, threads", [(1, 2), (64, 1)], ids=["small-forward", "hungry-forward"])
def test_a_forward_that_allocates_a_lot_gets_one_thread(monkeypatch, megabytes, threads):
    """With 100 MB available, two threads of a 64 MB forward would not fit MEMORY_SHARE of it; 1 MB would."""
    monkeypatch.setattr(plans, "cpu_count", lambda: 2)
    monkeypatch.setattr(plans, "available_bytes", lambda: 100 << 20)
    layer = Hungry(megabytes)
    rng = np.random.default_rng(0)
    # infer=False: one coordinate per forward, so the plan is long enough to go parallel
    report = check(layer, {"x": rng.standard_normal((6, 4)), "a": rng.standard_normal(4)}, wrt=["x"],
                   infer=False)
    assert report.passed
    checker_threads = layer.threads - {threading.get_ident()}
    assert len(checker_threads) == (threads if threads > 1 else 0)


def test_thread_count_divides_the_memory_share_by_forks_and_forward_peaks(monkeypatch):
    monkeypatch.setattr(plans, "available_bytes", lambda: 8 << 30)
    assert plans.thread_count(8, work_bytes=1 << 20, peak=1 << 20) == 8
    assert plans.thread_count(8, work_bytes=1 << 20, peak=1 << 30) == 3  # 4 GB / (1 GB + 1 MB)
    assert plans.thread_count(8, work_bytes=0, peak=5 << 30) == 1


@pytest.mark.parametrize("layer, options, message", [
    ("Broadcast", [], HOSTILE[3][2]),
    ("Loop", ["--timeout", "1"], "timed out: no verdict within 1 s (--timeout 1); the case was stopped"),
], ids=["raises", "hangs"])
def test_explain_shows_a_hostile_layers_one_line_error(folder, layer, options, message):
    path = write_case(folder, "hostile", layer)
    result = CliRunner().invoke(main, ["explain", str(path), "-o", str(folder / "out"), *options])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"{path}:1: hostile: {message}"]


def test_run_paths_with_a_limit_works_from_a_script_on_stdin(folder):
    """The worker does not run the caller's __main__ again (multiprocessing's spawn would: from stdin it
    fails, and a script without a __main__ guard would run twice)."""
    write_case(folder, "hangs", "Sleep")
    script = ("from gradcheck.catalogue.runner import run_paths\n"
              f"print([o.status for o in run_paths([{str(folder)!r}], timeout=2)])\n")
    proc = subprocess.run([sys.executable, "-"], input=script, cwd=folder, capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.splitlines() == ["['error', 'pass']"], proc.stderr


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads a process's children from /proc")
def test_the_worker_dies_with_its_parent(folder):
    write_case(folder, "hangs", "Sleep")
    parent = subprocess.Popen([sys.executable, "-m", "gradcheck", "run", str(folder), "--timeout", "600"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children, deadline = [], time.monotonic() + 60
    while not children and time.monotonic() < deadline:
        time.sleep(0.2)
        tasks = Path(f"/proc/{parent.pid}/task").iterdir()
        children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
    assert children, "no worker started"
    time.sleep(1.0)
    parent.kill()
    parent.wait()

    def running(pid):
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    deadline = time.monotonic() + 10
    while any(map(running, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, children))
