"""A Report as plain JSON data (no arrays): the --json file, the pytest report parts, the table's cells."""

from __future__ import annotations

import math
from typing import Any


def _number(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)


def element_dict(e: Any) -> dict | None:
    if e is None:
        return None
    return {"array": e.array, "index": None if e.index is None else [int(i) for i in e.index],
            "analytic": _number(e.analytic), "numeric": _number(e.numeric), "error": _number(e.error),
            "tolerance": _number(e.tolerance), "kind": str(e.kind),
            **({"tied": [[int(i) for i in t] for t in e.tied]} if e.tied else {}),
            **({"part": e.part} if e.part else {})}


def array_dict(a: Any) -> dict:
    return {"shape": [int(s) for s in a.shape], "dtype": str(a.dtype), "strategy": a.strategy,
            "method": a.method, "eps": _number(a.eps), "rtol": _number(a.rtol), "atol": _number(a.atol),
            "checked": int(a.checked), "failed": int(a.failed), "undecided": int(a.undecided),
            "kinks": len(a.kinks), "fallback": int(a.fallback),
            "margin": _number(a.margin), "passed": bool(a.passed),
            "worst": [element_dict(e) for e in a.worst], "forwards": int(a.forwards),
            "seconds": _number(a.seconds), "joint": list(a.joint),
            "inferred": None if a.inferred is None else [_entry(e) for e in a.inferred],
            "rechecked": int(a.rechecked), "layout": a.layout}


def _entry(entry: Any) -> Any:
    """A structure declaration's entry as JSON: None, an output axis, or [axis, stride, start, size]."""
    return entry if entry is None or isinstance(entry, int) else [int(v) for v in entry]


def report_dict(case: Any, report: Any) -> dict:
    """A Report as plain JSON data (no arrays), with the case's file and source."""
    return {"case": case.name, "file": str(case.file), "line": case.line, "source": case.source,
            "status": report.status, "passed": bool(report.passed),
            "seed": int(report.seed), "strategy": report.strategy, "method": report.method,
            "margin": _number(report.margin), "worst": element_dict(report.worst),
            "seconds": _number(report.seconds), "forwards": int(report.forwards),
            "arrays": {n: array_dict(a) for n, a in report.arrays.items()},
            "residuals": {n: array_dict(a) for n, a in report.residuals.items()},
            "warnings": list(report.warnings), "cause": report.cause, "verdict": str(report),
            "outputs": {n: [int(v) for v in s] for n, s in report.outputs.items()}}


def error_dict(error: Any, case: Any = None) -> dict:
    """A malformed case (a gradcheck.errors.CaseError) as JSON data."""
    return {"case": case.name if case else None, "file": error.file, "line": error.line,
            "status": "malformed", "passed": False, "field": error.field, "error": str(error)}


