"""The verdict table of a run: one row per case (gradcheck.catalogue.runner.Outcome)."""

from __future__ import annotations

COLUMNS = ["case", "strategy", "arrays", "max error / tolerance", "worst index", "verdict", "seconds"]


def worst_text(worst: dict | None) -> str:
    """The worst element of a JSON report as an index (gradcheck.results.index_text)."""
    from gradcheck.results import index_text

    return "-" if worst is None else index_text(worst["array"], worst["index"])


def margin_text(margin) -> str:
    return f"{margin:.3g}" if isinstance(margin, float) else ("-" if margin is None else str(margin))


def cells(outcome) -> list[str]:
    """The row: case, strategy, arrays, max error / tolerance, worst index, verdict, seconds."""
    d = outcome.data
    if outcome.status in ("malformed", "error"):
        strategy = d.get("strategy") or "-"
        return [outcome.name, strategy, "-", "-", "-", outcome.status.upper(), f"{outcome.seconds:.2f}"]
    arrays = ", ".join(d["arrays"])
    if d["residuals"]:
        arrays += "; residuals " + ", ".join(d["residuals"])
    return [outcome.name, d["strategy"], arrays, margin_text(d["margin"]), worst_text(d["worst"]),
            outcome.status.upper(), f"{outcome.seconds:.2f}"]
