"""Running cases: the first forward against ``expect``, the check, and many cases in a row (the CLI's
engine), each coming to one Outcome whatever the case or its layer does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradcheck.catalogue.case import Case, load_paths
from gradcheck.engine import outputs
from gradcheck.errors import CaseError
from gradcheck.output.json import error_dict, report_dict
from gradcheck.results import NOT_PASSED


def first_forward(case: Case, arrays: dict) -> tuple | dict:
    """Run the layer once: its ValueError on a bad shape, or an unmet expect.output_shape, is a CaseError.
    Returns the output's shape, or {output name: shape} for a layer with several outputs."""
    try:
        y, _ = case.layer.forward(**arrays)
    except ValueError as exc:
        raise case.error(["inputs"], f"the layer rejected the arrays on a first forward: {exc}") from None
    expected = case.data.get("expect", {}).get("output_shape")
    shape = outputs.shapes_of(case.layer, y)
    if isinstance(shape, dict):
        given = {k: list(v) for k, v in shape.items()}
        wanted = {k: list(v) for k, v in expected.items()} if isinstance(expected, dict) else expected
        if expected is not None and wanted != given:
            raise case.error(["expect", "output_shape"], f"the case expects {expected}; the forward gave "
                                                         f"{given} (one shape per output)")
        return shape
    if expected is not None and (isinstance(expected, dict) or tuple(expected) != shape):
        want = expected if isinstance(expected, dict) else list(expected)
        raise case.error(["expect", "output_shape"], f"the case expects {want}; the forward gave "
                                                     f"{list(shape)}")
    return shape


def run_case(case: Case, seed: int | None = None, explain: float | None = None,
             progress: Callable | None = None):
    """Build the arrays, check the first forward against ``expect``, run gradcheck.check -> Report.
    explain: see gradcheck.check (sweeps and diagnoses for the arrays worth showing); progress: check's
    progress callback."""
    from gradcheck.checker import check

    arrays = case.arrays(seed)
    first_forward(case, arrays)
    return check(case.layer, arrays, explain=explain, progress=progress, **case.options(seed))


@dataclass
class Outcome:
    """What one case (or one malformed file) came to, without the Report's big arrays.

    status: "pass" | "fail" (gradients disagree) | "undecided" (nothing failed, but coinciding kinks left
    checks that finite differences cannot decide) | "error" (the layer or checker raised, or the case ran out
    of time) | "malformed". data: the JSON form (gradcheck.output.json). kept: what ``keep(report)`` made of
    the Report (run_one), e.g. the HTML report's section. trace: the user's frames of an error, as text.
    """

    name: str
    file: str
    status: str
    data: dict
    seconds: float = 0.0
    kept: Any = None
    trace: str = ""

    @property
    def verdict(self) -> str:
        """The verdict text, or the one-line error."""
        return self.data.get("verdict") or self.data.get("error", "")


def error_outcome(case: Case, text: str, start: float, **extra) -> Outcome:
    """A case that came to no verdict: ``text`` is its one-line error (after file:line: name:)."""
    line = " ".join(f"{case.file}:{case.line}: {case.name}: {text}".split())
    data = {"case": case.name, "file": str(case.file), "line": case.line, "status": "error", "passed": False,
            "strategy": case.strategy, "error": line, **extra}
    return Outcome(case.name, str(case.file), "error", data, seconds=time.perf_counter() - start)


def _user_trace(exc: BaseException) -> str:
    """The user's frames of exc (what a traceback shows of their layer), as text."""
    import traceback

    from gradcheck.errors import is_users_code

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_users_code(f.filename)]
    return "".join(traceback.format_list(frames))


def run_one(case: Case, seed: int | None = None, explain: float | None = None,
            keep: Callable[[Any], Any] | None = None, progress: Callable | None = None) -> Outcome:
    """Run one case in this process -> its Outcome, whatever the layer does.

    Any exception from the case, BaseException included (SystemExit, GeneratorExit: a layer calling
    sys.exit() must not end the run, nor pass it), is the case's "error", one line naming where the user's
    code raised it; a CaseError (a shape the layer rejects) is "malformed". KeyboardInterrupt is not caught:
    it stops the run. keep(report) runs before the Report is dropped; its result is Outcome.kept.
    progress: check()'s progress callback.
    """
    start = time.perf_counter()
    try:
        report = run_case(case, seed, explain, progress)
        kept = keep(report) if keep is not None else None
    except CaseError as exc:
        data = {**error_dict(exc, case), "strategy": case.strategy}
        return Outcome(case.name, str(case.file), "malformed", data, seconds=time.perf_counter() - start)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: B036  (the layer or the checker raised: the case's error)
        from gradcheck.errors import one_line

        outcome = error_outcome(case, one_line(exc), start)
        outcome.trace = _user_trace(exc)
        return outcome
    return Outcome(case.name, str(case.file), report.status, report_dict(case, report),
                   seconds=time.perf_counter() - start, kept=kept)


def run_paths(paths: Iterable[str | Path], seed: int | None = None,
              started: Callable[[str], None] | None = None,
              keep: Callable[[Any], Any] | None = None,
              explain: float | None = None, timeout: float | None = None,
              timeout_option: str = "--timeout", progress: Callable | None = None) -> Iterator[Outcome]:
    """Load and run every case under ``paths`` in order, one Outcome each (malformed files included).

    ``started(name)`` is called before each case runs (progress display); ``keep(report)`` with each Report
    before it is dropped (Outcome.kept: what a renderer that needs the arrays, such as the HTML report,
    draws of it); explain, progress: passed to gradcheck.check. A case with a time limit (its check.timeout,
    else ``timeout`` seconds) runs in a worker process (gradcheck.catalogue.isolation) and past its limit is
    an error naming the limit (``timeout_option``: how the caller spells the option); the others run here,
    with progress (a worker shows none).
    """
    from gradcheck.catalogue import isolation

    worker = isolation.Worker()
    try:
        for item in load_paths(paths):
            if isinstance(item, CaseError):
                yield Outcome(Path(item.file).stem, item.file, "malformed", error_dict(item))
                continue
            if started is not None:
                started(item.name)
            limit, source = isolation.limit_of(item, timeout, timeout_option)
            if limit is None:
                outcome = run_one(item, seed, explain, keep, progress)
            else:
                outcome = worker.run(item, seed, explain, keep, limit, source)
            yield outcome
    finally:
        worker.stop()


def exit_code(statuses: Iterable[str]) -> int:
    """0 when every case passed, 2 when any case is malformed, else 1 when any failed, was undecided or
    raised (statuses: the cases' Outcome.status)."""
    statuses = set(statuses)
    if "malformed" in statuses:
        return 2
    if statuses & set(NOT_PASSED):
        return 1
    return 0
