"""pytest plugin: every YAML case under the folders named by the ini option ``gradcheck_cases`` is a test.

Registered as the ``pytest11`` entry point ``gradcheck``; before the project is installed, load it with
``-p gradcheck.plugin``. One item per case (its id is the case name); a failing item prints the checker's
verdict instead of a traceback through the harness; a malformed case prints its one-line CaseError.
``pytest --gradcheck-seed N`` reruns every case with seed N (arrays and the cotangent G).
``pytest --gradcheck-timeout SECONDS`` stops a case that takes longer (a case's ``check.timeout`` overrides
it): such cases run in a worker process (gradcheck.catalogue.isolation says why not pytest-timeout), and one
that overruns fails with a one-line error naming the limit while the session goes on.
A file that does not load is one failed item with its one-line error (collection goes on), and so is a case
whose name another file already used (as ``gradcheck run`` reports it).
YAML outside those folders (CI configs, data files) is never collected, unless a file is named on the
command line (``pytest path/to/case.yaml``): then the user asked for it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

CASE_SUFFIXES = (".yaml", ".yml")  # gradcheck.catalogue.case's; the heavy parts load on the first case

# A case whose arrays hold more elements than this is marked slow (the 7x7x512 -> 4096 kernel has 102.8M).
SLOW_ELEMENTS = 5_000_000


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0; got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("gradcheck_cases", "folders (relative to rootdir) whose YAML files are gradcheck cases",
                  type="args", default=["cases"])
    group = parser.getgroup("gradcheck")
    group.addoption("--gradcheck-seed", type=_seed, default=None, metavar="N",
                    help="run every YAML case with seed N (>= 0) instead of its check.seed")
    group.addoption("--gradcheck-timeout", type=_seconds, default=None, metavar="SECONDS",
                    help="fail a YAML case that takes longer than SECONDS (its check.timeout overrides "
                         "this); cases with a limit run in a worker process")
    group.addoption("--gradcheck-report", default=None, metavar="DIR",
                    help="write DIR/index.html: verdicts, heat maps and error-vs-eps plots of failing and "
                         "nearly failing cases")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "gradcheck_case: a YAML gradient-check case")
    if config.getoption("gradcheck_report") and not hasattr(config, "workerinput"):
        from gradcheck.output.html import clear_parts

        clear_parts(config.getoption("gradcheck_report"))


def pytest_unconfigure(config: pytest.Config) -> None:
    worker = config.stash.get(_WORKER, None)
    if worker is not None:
        worker.stop()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """A case name used again in another file is that item's malformed-case error (as in gradcheck run)."""
    first: dict[str, CaseItem] = {}
    for item in items:
        if not isinstance(item, CaseItem):
            continue
        other = first.setdefault(item.case.name, item)
        if other is not item:
            name, also = item.case.name, f"{other.case.file}:{other.case.line}"
            message = f"duplicate case name '{name}' (also {also}); expected unique names"
            item.duplicate = item.case.error(["name"], message)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) assembles the page from every worker's parts."""
    directory = session.config.getoption("gradcheck_report", None)
    if directory and not hasattr(session.config, "workerinput"):
        from gradcheck.output.html import assemble

        assemble(directory)


def _report_part(item, report=None, status=None, message=""):
    """Save this case's row and section for --gradcheck-report (no-op without the option)."""
    directory = item.config.getoption("gradcheck_report")
    if not directory:
        return
    from gradcheck.output import html as html_report

    if report is not None:
        row = html_report.row_of(report, str(item.path))
        section = html_report.section_of(report)
    else:
        row = html_report.Row(item.name, status, file=str(item.path))
        section = html_report.error_section(item.name, message)
    html_report.save_part(directory, row, section)


def _case_folders(config: pytest.Config) -> list[Path]:
    return [(config.rootpath / p).resolve() for p in config.getini("gradcheck_cases")]


def _named_files(config: pytest.Config) -> set[Path]:
    """Files given as command-line arguments (without ::node suffixes)."""
    root = config.invocation_params.dir
    return {(root / arg.split("::")[0]).resolve() for arg in config.args}


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix not in CASE_SUFFIXES:
        return None
    path = file_path.resolve()
    config = parent.config
    if path in _named_files(config) or any(path.is_relative_to(f) for f in _case_folders(config)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFailed(AssertionError):
    """A case whose gradients disagree; carries the checker's Report (None when it ran in a worker process),
    str() is its verdict."""

    def __init__(self, report, verdict=None):
        super().__init__(str(report) if verdict is None else verdict)
        self.report = report


class CaseStopped(Exception):
    """A case that ran in a worker process and came to no verdict (it raised, or ran out of time): str() is
    its one-line error, .trace the user's frames."""

    def __init__(self, text, trace=""):
        super().__init__(text)
        self.trace = trace


_WORKER = pytest.StashKey()


def html_parts(report):
    """The --gradcheck-report row and section of a Report, drawn where the Report is (the worker process)."""
    from gradcheck.output import html as html_report

    return html_report.row_of(report), html_report.section_of(report)


class CaseFile(pytest.File):
    def collect(self):
        from gradcheck.catalogue.case import load_file
        from gradcheck.errors import CaseError

        try:
            cases = load_file(self.path)
        except CaseError as error:
            yield MalformedCase.from_parent(self, name=self.path.stem, error=error)
            return
        for case in cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)


class CaseItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.duplicate = None  # the CaseError of a name another file already used (collection_modifyitems)
        self.add_marker(pytest.mark.gradcheck_case)
        if case.elements() > SLOW_ELEMENTS:
            self.add_marker(pytest.mark.slow)

    def runtest(self) -> None:
        from gradcheck.catalogue import isolation
        from gradcheck.catalogue.runner import run_case
        from gradcheck.errors import CaseError
        from gradcheck.results import NEAR_MISS

        if self.duplicate is not None:
            _report_part(self, status="malformed", message=str(self.duplicate))
            raise self.duplicate
        seed = self.config.getoption("gradcheck_seed")
        explain = NEAR_MISS if self.config.getoption("gradcheck_report") else None
        limit, source = isolation.limit_of(self.case, self.config.getoption("gradcheck_timeout"),
                                           "--gradcheck-timeout")
        if limit is not None:
            self._run_in_worker(seed, explain, limit, source)
            return
        try:
            report = run_case(self.case, seed=seed, explain=explain)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: B036  (SystemExit from a layer is this item's error)
            _report_part(self, status="malformed" if isinstance(exc, CaseError) else "error",
                         message=f"{type(exc).__name__}: {exc}")
            raise
        _report_part(self, report)
        self._verdict(report.margin, report.seed, report.passed, lambda: CaseFailed(report))

    def _verdict(self, margin, seed, passed, failure) -> None:
        # Plain Python numbers: xdist ships user_properties between processes.
        self.user_properties.append(("margin", float(margin)))
        self.user_properties.append(("seed", int(seed)))
        if not passed:
            raise failure()

    def _run_in_worker(self, seed, explain, limit, source) -> None:
        """The case in the session's worker process (gradcheck.catalogue.isolation), stopped past `limit`."""
        from gradcheck.catalogue import isolation
        from gradcheck.output import html as html_report

        worker = self.config.stash.setdefault(_WORKER, isolation.Worker())
        keep = html_parts if explain is not None else None
        outcome = worker.run(self.case, seed, explain, keep, limit, source)
        if outcome.status in ("pass", "fail", "undecided"):
            if outcome.kept is not None:
                row, section = outcome.kept
                row.file = str(self.path)
                html_report.save_part(self.config.getoption("gradcheck_report"), row, section)
            data = outcome.data
            self._verdict(float(data["margin"]), data["seed"], outcome.status == "pass",
                          lambda: CaseFailed(None, outcome.verdict))
            return
        _report_part(self, status=outcome.status, message=outcome.verdict)
        raise CaseStopped(outcome.verdict, outcome.trace)

    def repr_failure(self, excinfo, style=None):
        from gradcheck.errors import CaseError, is_users_code, one_line

        if isinstance(excinfo.value, CaseFailed | CaseError):
            return str(excinfo.value)
        if isinstance(excinfo.value, CaseStopped):
            return str(excinfo.value) + ("\n" + excinfo.value.trace if excinfo.value.trace else "")
        first = f"ERROR {self.name}: {one_line(excinfo.value)}"
        # The layer (or its numpy calls) raised: show those frames, not the harness that called them. An
        # error the checker raised about the layer (a LayerContractError, an option it refuses) has no user
        # frame: its one line says everything.
        frames = excinfo.traceback.filter(lambda entry: is_users_code(str(entry.path)))
        if not len(frames):
            return first
        excinfo.traceback = frames
        return first + "\n" + str(super().repr_failure(excinfo, style="short"))

    def reportinfo(self):
        return self.path, self.case.line - 1, f"gradcheck case {self.name} ({self.path.name})"


class MalformedCase(pytest.Item):
    """Stands in for the cases of a file that does not load: fails with the file's one-line CaseError."""

    def __init__(self, *, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        _report_part(self, status="malformed", message=str(self.error))
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, (self.error.line or 1) - 1, f"malformed gradcheck case file {self.path.name}"
