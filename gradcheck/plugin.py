"""pytest plugin: every YAML case under the folders named by the ini option ``gradcheck_cases`` is a test.

Registered as the ``pytest11`` entry point ``gradcheck``; before the project is installed, load it with
``-p gradcheck.plugin``. One item per case (its id is the case name); a failing item prints the checker's
verdict instead of a traceback through the harness; a malformed case prints its one-line CaseError.
``pytest --gradcheck-seed N`` reruns every case with seed N (arrays and the cotangent G).
YAML outside those folders (CI configs, data files) is never collected, unless a file is named on the
command line (``pytest path/to/case.yaml``): then the user asked for it.
"""

from __future__ import annotations

from pathlib import Path

import _pytest
import pluggy
import pytest

CASE_SUFFIXES = (".yaml", ".yml")  # gradcheck.catalogue.case's; the heavy parts load on the first case

# A case whose arrays hold more elements than this is marked slow (the 7x7x512 -> 4096 kernel has 102.8M).
SLOW_ELEMENTS = 5_000_000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("gradcheck_cases", "folders (relative to rootdir) whose YAML files are gradcheck cases",
                  type="args", default=["cases"])
    group = parser.getgroup("gradcheck")
    group.addoption("--gradcheck-seed", type=int, default=None, metavar="N",
                    help="run every YAML case with seed N instead of its check.seed")
    group.addoption("--gradcheck-report", default=None, metavar="DIR",
                    help="write DIR/index.html: verdicts, heat maps and error-vs-eps plots of failing and "
                         "nearly failing cases")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "gradcheck_case: a YAML gradient-check case")
    if config.getoption("gradcheck_report") and not hasattr(config, "workerinput"):
        from gradcheck.output.html import clear_parts

        clear_parts(config.getoption("gradcheck_report"))


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


_HARNESS = (*(Path(m.__file__).resolve().parent for m in (pluggy, _pytest)), Path(__file__).resolve().parent)


def _is_harness(path) -> bool:
    """A frame of pytest, pluggy or gradcheck itself: noise in a layer's error."""
    path = Path(str(path)).resolve()
    return any(root in path.parents for root in _HARNESS)


class CaseFailed(AssertionError):
    """A case whose gradients disagree; carries the checker's Report, str() is its verdict."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


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
        self.add_marker(pytest.mark.gradcheck_case)
        if case.elements() > SLOW_ELEMENTS:
            self.add_marker(pytest.mark.slow)

    def runtest(self) -> None:
        from gradcheck.catalogue.runner import run_case
        from gradcheck.errors import CaseError
        from gradcheck.results import NEAR_MISS

        seed = self.config.getoption("gradcheck_seed")
        explain = NEAR_MISS if self.config.getoption("gradcheck_report") else None
        try:
            report = run_case(self.case, seed=seed, explain=explain)
        except Exception as exc:
            _report_part(self, status="malformed" if isinstance(exc, CaseError) else "error",
                         message=f"{type(exc).__name__}: {exc}")
            raise
        _report_part(self, report)
        # Plain Python numbers: xdist ships user_properties between processes.
        self.user_properties.append(("margin", float(report.margin)))
        self.user_properties.append(("seed", int(report.seed)))
        if not report.passed:
            raise CaseFailed(report)

    def repr_failure(self, excinfo, style=None):
        from gradcheck.errors import CaseError

        if isinstance(excinfo.value, CaseFailed | CaseError):
            return str(excinfo.value)
        # The layer (or its numpy calls) raised: show those frames, not the harness that called them.
        frames = excinfo.traceback.filter(lambda entry: not _is_harness(entry.path))
        if len(frames):
            excinfo.traceback = frames
        first = " ".join(f"ERROR {self.name}: {excinfo.typename}: {excinfo.value}".split("\n"))
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
