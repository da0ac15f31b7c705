"""``gradcheck run [PATHS...]``: run YAML cases, show progress, then a table.

Exit status: 0 when every case passes, 1 on any failure, 2 on a malformed case (after reporting it).

Thin front end: loading and running live in gradcheck.catalogue, the table's cells and the pages in
gradcheck.output.
Without a terminal (CI logs) progress is one plain line per case and the table is drawn wide, uncoloured.
A long array gets a progress bar with the time left, and a warning when it runs one coordinate per
forward (gradcheck.output.progress).

``gradcheck structure CASE`` prints each array's structure declaration (the layer's own, or the one
inferred from its forward) as a ``structure`` method to paste into the layer.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gradcheck.catalogue.case import case_files
from gradcheck.catalogue.runner import exit_code, run_paths
from gradcheck.output import progress
from gradcheck.output.table import COLUMNS, cells
from gradcheck.results import NEAR_MISS

NARROW = 120  # terminal columns below which the table leaves out the arrays column
STYLE = {"pass": "green", "fail": "bold red", "error": "bold red", "malformed": "bold yellow"}


@click.group()
def main() -> None:
    """Finite-difference checks of hand-derived backward passes."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "json_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write a machine-readable report to FILE.")
@click.option("--seed", type=int, default=None, help="Run every case with seed N instead of its check.seed.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write DIR/index.html: verdicts, then heat maps and error-vs-eps plots of the "
                   "failing and nearly failing cases (one self-contained page).")
def run(paths: tuple[str, ...], json_file: str | None, seed: int | None, report_dir: str | None) -> None:
    """Run the cases in PATHS (YAML files or folders; default: ./cases)."""
    paths = paths or ("cases",)
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=200, color_system=None)  # a CI log has no line width
    files = case_files(paths)
    if not files:
        out.print(f"gradcheck: no case files (*.yaml, *.yml) under {', '.join(paths)}")
        sys.exit(2)

    outcomes, sections = [], []

    def checked(case, report) -> None:  # drawn while the case's arrays still exist
        from gradcheck.output.html import section_of

        section = section_of(report)
        if section is not None:
            sections.append(section)

    live = progress.bar(out) if out.is_terminal else None
    watch = progress.Watch(out, live)
    with live if live is not None else nullcontext():
        status = None if live is None else live.add_task("loading cases", total=None, info="")

        def started(name: str) -> None:
            watch.started(name)
            if status is not None:
                live.update(status, description=f"running {name} ({len(outcomes)} done)")

        for outcome in run_paths(paths, seed=seed, started=started, checked=checked if report_dir else None,
                                 explain=NEAR_MISS if report_dir else None, progress=watch):
            outcomes.append(outcome)
            line = (f"[{len(outcomes)}] {outcome.status.upper():9} {outcome.name}  {outcome.seconds:.2f} s")
            if outcome.status == "malformed":
                line += f"\n    {outcome.verdict}"
            out.print(escape(line), style=STYLE[outcome.status] if out.is_terminal else None)

    # A terminal gets a light table; a log gets plain ASCII, safe in any CI encoding.
    table = Table(box=box.SIMPLE_HEAD if out.is_terminal else box.ASCII)
    longest = max(len(o.name) for o in outcomes)
    style = {  # names fold rather than end in an ellipsis; short words never break
        "case": {"min_width": min(longest, 16 if out.is_terminal else 64)},
        "arrays": {"max_width": 34},
        "verdict": {"min_width": len("MALFORMED")},
    }
    # A narrow terminal drops the array list (the JSON report and the verdicts still name the arrays).
    shown = [c for c in COLUMNS if not (c == "arrays" and out.is_terminal and out.width < NARROW)]
    for column in shown:
        table.add_column(column, overflow="fold", **style.get(column, {}))
    for outcome in outcomes:
        row = [escape(c) for c, column in zip(cells(outcome), COLUMNS, strict=True) if column in shown]
        table.add_row(*row, style=STYLE[outcome.status] if outcome.status != "pass" else None)
    out.print(table)
    for outcome in outcomes:
        if outcome.status in ("fail", "error"):
            out.print(escape(outcome.verdict))
    code = exit_code(outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error", "malformed")}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; exit {code}")
    if json_file:
        document = {"exit_code": code, "seed": seed, "counts": counts,
                    "cases": [dict(o.data, seconds=o.seconds) for o in outcomes]}
        with open(json_file, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
    if report_dir:
        from gradcheck.output.html import write_outcomes

        out.print(f"report: {write_outcomes(report_dir, outcomes, sections)}")
    sys.exit(code)


@main.command()
@click.argument("case")
@click.option("--cases", "paths", multiple=True, type=click.Path(exists=True),
              help="Where to look for CASE by name (repeatable; default: ./cases).")
@click.option("--seed", type=int, default=None,
              help="Probe the arrays of seed N instead of the case's check.seed.")
def structure(case: str, paths: tuple[str, ...], seed: int | None) -> None:
    """Print the structure declaration of every array of CASE (a case name or a YAML file): the layer's
    own, or the one inferred from its forward, as a `structure` method to paste into the layer, with the
    number of groups (forwards) against the number of coordinates.

    Exit status: 0, or 2 when CASE is not found or malformed.
    """
    from gradcheck.catalogue.case import find_cases
    from gradcheck.catalogue.runner import first_forward
    from gradcheck.engine.inference import declarations
    from gradcheck.errors import CaseError
    from gradcheck.output.declaration import python_source

    try:
        for c in find_cases(case, paths or ("cases",)):
            arrays = c.arrays(seed)
            first_forward(c, arrays)
            y_shape, found = declarations(c.layer, arrays, seed=c.seed if seed is None else seed)
            stack = ", ".join(e["layer"] for e in c.data.get("stack", []))
            layer = c.data.get("layer", f"a stack of {stack}")
            click.echo(f"# {c.name} ({c.file}): {layer}, output {y_shape}")
            for f in found:
                if f.note:
                    click.echo(f"# {f.name}: {f.note}")
            click.echo(python_source(found))
    except (CaseError, LookupError) as exc:
        click.echo(f"gradcheck structure: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.argument("case")
@click.option("--cases", "paths", multiple=True, type=click.Path(exists=True),
              help="Where to look for CASE by name (repeatable; default: ./cases).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default="gradcheck-explain",
              show_default=True, help="Folder for the PNG pictures.")
@click.option("--seed", type=int, default=None, help="Run with seed N instead of the case's check.seed.")
def explain(case: str, paths: tuple[str, ...], out_dir: str, seed: int | None) -> None:
    """Check CASE (a case name or a YAML file) and show why it fails: diagnosis and pictures.

    Exit status: 0 when it passes, 1 when it fails, 2 when CASE is not found or malformed.
    """
    from gradcheck.catalogue.case import find_cases
    from gradcheck.errors import CaseError

    try:
        cases = find_cases(case, paths or ("cases",))
        passed = [explain_case(c, out_dir, seed, echo=click.echo) for c in cases]
    except (CaseError, LookupError) as exc:
        click.echo(f"gradcheck explain: {exc}", err=True)
        sys.exit(2)
    sys.exit(0 if all(passed) else 1)


def explain_case(case, out_dir, seed=None, echo=print) -> bool:
    """Run one Case with every array swept and diagnosed, print the verdict and diagnosis, write every
    array's pictures to out_dir as PNG. Returns whether the case passed."""
    from pathlib import Path

    from gradcheck.catalogue.runner import run_case
    from gradcheck.output.explain import explain_text, figures

    report = run_case(case, seed, explain=-1.0)
    echo(explain_text(report))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    echo("")
    for f in figures(report, margin=-1.0):
        (out / f.filename).write_bytes(f.data)
        echo(f"wrote {out / f.filename}: {f.caption}")
    return report.passed
