"""Running cases: the first forward against ``expect``, the check, and many cases in a row (the CLI's
engine), each coming to one Outcome whatever the case or its layer does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gradcheck.catalogue.case import Case, load_paths
from gradcheck.engine import outputs
from gradcheck.errors import CaseError
from gradcheck.output.json import error_dict, report_dict


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


def run_case(case: Case, seed: int | None = None, explain: float | None = None):
    """Build the arrays, check the first forward against ``expect``, run gradcheck.check -> Report.
    explain: see gradcheck.check (sweeps and diagnoses for the arrays worth showing)."""
    from gradcheck.checker import check

    arrays = case.arrays(seed)
    first_forward(case, arrays)
    return check(case.layer, arrays, explain=explain, **case.options(seed))


@dataclass
class Outcome:
    """What one case (or one malformed file) came to, without the Report's big arrays.

    status: "pass" | "fail" (gradients disagree) | "error" (the layer or checker raised) | "malformed".
    data: the JSON form (gradcheck.output.json).
    """

    name: str
    file: str
    status: str
    data: dict
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """The verdict text, or the one-line error."""
        return self.data.get("verdict") or self.data.get("error", "")


def run_paths(paths: Iterable[str | Path], seed: int | None = None,
              started: Callable[[str], None] | None = None,
              checked: Callable[[Case, object], None] | None = None,
              explain: float | None = None) -> Iterator[Outcome]:
    """Load and run every case under ``paths`` in order, one Outcome each (malformed files included).

    ``started(name)`` is called before each case runs (progress display); ``checked(case, report)`` with
    each Report before it is dropped (a renderer that needs the arrays, such as the HTML report);
    explain: passed to gradcheck.check.
    """
    for item in load_paths(paths):
        if isinstance(item, CaseError):
            yield Outcome(Path(item.file).stem, item.file, "malformed", error_dict(item))
            continue
        case, start = item, time.perf_counter()
        if started is not None:
            started(case.name)
        try:
            report = run_case(case, seed, explain)
        except CaseError as exc:
            yield Outcome(case.name, str(case.file), "malformed", {**error_dict(exc, case),
                          "strategy": case.strategy}, seconds=time.perf_counter() - start)
            continue
        except Exception as exc:  # the layer or the checker raised: a failing case, reported on one line
            text = f"{case.file}:{case.line}: {case.name}: {type(exc).__name__}: {exc}"
            data = {"case": case.name, "file": str(case.file), "line": case.line, "status": "error",
                    "passed": False, "strategy": case.strategy, "error": " ".join(text.split("\n"))}
            yield Outcome(case.name, str(case.file), "error", data, seconds=time.perf_counter() - start)
            continue
        if checked is not None:
            checked(case, report)
        data = report_dict(case, report)
        yield Outcome(case.name, str(case.file), "pass" if report.passed else "fail", data,
                      seconds=time.perf_counter() - start)
        del report


def exit_code(outcomes: Iterable[Outcome]) -> int:
    """0 when every case passed, 2 when any case is malformed, else 1 when any failed or raised."""
    statuses = {o.status for o in outcomes}
    if "malformed" in statuses:
        return 2
    if statuses & {"fail", "error"}:
        return 1
    return 0
