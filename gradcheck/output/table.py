"""The verdict table of a run: one row per case (gradcheck.catalogue.runner.Outcome).

Two layouts. The default fits a 100-column terminal or CI log: case (wrapped at its hyphens), verdict,
error / tolerance, where the worst element is, strategy, seconds; the array list is left to the JSON
report and the verdicts below the table. `wide` (``gradcheck run --wide``) adds the arrays column and
spells the headers out. Both say at a glance which case failed, where, and by how much.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

COLUMNS = ["case", "strategy", "arrays", "max error / tolerance", "worst index", "verdict", "seconds"]
NARROW_COLUMNS = ["case", "verdict", "err/tol", "worst at", "strategy", "s"]
NARROW_WIDTH = 100  # columns the default layout fits
# widest cell of each column but the case name in the default layout: verdict (MALFORMED), err/tol
# (1.23e-05), worst at (x[12, 424, 6, 2]; wider indices wrap at their commas), strategy (directional), s
FIXED = {"verdict": 9, "err/tol": 8, "worst at": 17, "strategy": 11, "s": 6}
MIN_CASE = 16
STYLE = {"pass": "green", "fail": "bold red", "undecided": "bold magenta", "error": "bold red",
         "malformed": "bold yellow"}


def worst_text(worst: dict | None, short: bool = False) -> str:
    """The worst element of a JSON report as an index (gradcheck.results.index_text); short: a joint
    direction over several arrays is just "joint direction"."""
    from gradcheck.results import index_text

    if worst is None:
        return "-"
    if short and worst["index"] is None and worst["array"].startswith("("):
        return "joint direction"
    return index_text(worst["array"], worst["index"])


def margin_text(margin) -> str:
    return f"{margin:.3g}" if isinstance(margin, float) else ("-" if margin is None else str(margin))


def cells(outcome) -> list[str]:
    """The wide row: case, strategy, arrays, max error / tolerance, worst index, verdict, seconds."""
    d = outcome.data
    if outcome.status in ("malformed", "error"):
        strategy = d.get("strategy") or "-"
        return [outcome.name, strategy, "-", "-", "-", outcome.status.upper(), f"{outcome.seconds:.2f}"]
    arrays = ", ".join(d["arrays"])
    if d["residuals"]:
        arrays += "; residuals " + ", ".join(d["residuals"])
    return [outcome.name, d["strategy"], arrays, margin_text(d["margin"]), worst_text(d["worst"]),
            outcome.status.upper(), f"{outcome.seconds:.2f}"]


def narrow_cells(outcome, case_width: int) -> list[str]:
    """The default row: case (wrapped at hyphens to case_width), verdict, err/tol, worst at, strategy, s."""
    d = outcome.data
    name = wrap_name(outcome.name, case_width)
    if outcome.status in ("malformed", "error"):
        return [name, outcome.status.upper(), "-", "-", d.get("strategy") or "-", f"{outcome.seconds:.1f}"]
    return [name, outcome.status.upper(), margin_text(d["margin"]), worst_text(d["worst"], short=True),
            d["strategy"], f"{outcome.seconds:.1f}"]


def wrap_name(name: str, width: int) -> str:
    """`name` broken into lines of at most `width` characters after its hyphens (a longer run without a
    hyphen is left whole for the table to fold)."""
    lines, line = [], ""
    for part in name.replace("-", "-\n").split("\n"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line])


def case_width(width: int) -> int:
    """Characters left for the case name in a `width`-column default table (ASCII or light box)."""
    borders = 3 * len(NARROW_COLUMNS) + 1  # a rule and a space either side of each cell
    return max(MIN_CASE, width - borders - sum(FIXED.values()))


def build(outcomes, width: int, terminal: bool, wide: bool = False) -> Table:
    """The rich Table of `outcomes` for a console `width` columns wide: light lines on a terminal, plain
    ASCII in a log (safe in any CI encoding), coloured rows only on a terminal."""
    table = Table(box=box.SIMPLE_HEAD if terminal else box.ASCII)
    if wide:
        longest = max((len(o.name) for o in outcomes), default=4)
        style = {"case": {"min_width": min(longest, 16 if terminal else 64)}, "arrays": {"max_width": 34},
                 "verdict": {"min_width": len("MALFORMED")}}
        for column in COLUMNS:
            table.add_column(column, overflow="fold", **style.get(column, {}))
        rows = [cells(o) for o in outcomes]
    else:
        name_width = case_width(width)
        longest = max((len(o.name) for o in outcomes), default=4)
        table.add_column("case", overflow="fold", max_width=name_width, min_width=min(longest, MIN_CASE))
        for column in NARROW_COLUMNS[1:]:
            table.add_column(column, overflow="fold", max_width=FIXED[column],
                             justify="right" if column in ("err/tol", "s") else "left")
        rows = [narrow_cells(o, name_width) for o in outcomes]
    for outcome, row in zip(outcomes, rows, strict=True):
        table.add_row(*map(escape, row), style=STYLE[outcome.status] if terminal and outcome.status != "pass"
                      else None)
    return table
