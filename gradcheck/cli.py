"""``gradcheck run [PATHS...]``: run YAML cases, show progress, then a table.

Exit status: 0 when every case passes, 1 on any failure, undecided case or error, 2 on a malformed case
(after reporting it).

Thin front end: loading and running live in gradcheck.catalogue, the table's cells and the pages in
gradcheck.output.
Without a terminal (CI logs) progress is one plain line per case and the table is uncoloured ASCII, 100
columns wide (200 with --wide). A long array gets a progress bar with the time left, and a warning when it
runs one coordinate per forward (gradcheck.output.progress).

``gradcheck structure CASE`` prints each array's structure declaration (the layer's own, or the one
inferred from its forward) as a ``structure`` method to paste into the layer.
"""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from gradcheck.catalogue.case import case_files
from gradcheck.catalogue.memory import keep_freed_memory
from gradcheck.catalogue.runner import exit_code, run_paths
from gradcheck.output import progress
from gradcheck.output.table import NARROW_WIDTH, STYLE, build
from gradcheck.results import NEAR_MISS, NOT_PASSED, STATUSES

WIDE_LOG = 200  # columns of a --wide table in a log (no terminal)


@click.group()
def main() -> None:
    """Finite-difference checks of hand-derived backward passes."""


def _finite_seconds(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number of seconds; got {value}")
    return value


def _json_target(ctx, param, value):
    """The --json file's folder, made (or refused) before any case runs: not after, with the results lost."""
    if value is None:
        return None
    folder = Path(value).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot make its folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"its folder {folder} is not writable")
    return value


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "json_file", type=click.Path(dir_okay=False, writable=True), callback=_json_target,
              help="Also write a machine-readable report to FILE (its folder is made if missing).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Run every case with seed N (>= 0) instead of its check.seed.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              callback=_finite_seconds,
              help="Stop a case that takes longer than SECONDS and report it as an error (the run goes on); "
                   "a case's check.timeout overrides it. Cases with a limit run in a worker process.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write DIR/index.html: verdicts, then heat maps and error-vs-eps plots of the "
                   "failing and nearly failing cases (one self-contained page).")
@click.option("--wide", is_flag=True, help="A wider table: the arrays of each case, headers spelt out "
                                           "(200 columns in a log).")
def run(paths: tuple[str, ...], json_file: str | None, seed: int | None, timeout: float | None,
        report_dir: str | None, wide: bool) -> None:
    """Run the cases in PATHS (YAML files or folders; default: ./cases).

    Ctrl-C stops the run: the table shows the cases done so far, and the exit status is 130.
    """
    paths = paths or ("cases",)
    keep_freed_memory()  # the next case reuses what this one frees (gradcheck.catalogue.memory)
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        # a CI log has no line width: 100 columns (the default table fits), or 200 for --wide
        out = Console(highlight=False, width=WIDE_LOG if wide else NARROW_WIDTH, color_system=None)
    files = case_files(paths)
    if not files:
        out.print(f"gradcheck: no case files (*.yaml, *.yml) under {', '.join(paths)}")
        sys.exit(2)

    outcomes, interrupted = [], False
    live = progress.bar(out) if out.is_terminal else None
    watch = progress.Watch(out, live)
    with live if live is not None else nullcontext():
        status = None if live is None else live.add_task("loading cases", total=None, info="")

        def started(name: str) -> None:
            watch.started(name)
            if status is not None:
                live.update(status, description=f"running {name} ({len(outcomes)} done)")

        keep = None
        if report_dir:  # drawn while the case's arrays still exist (in the worker, for a case with a limit)
            from gradcheck.output.html import section_of as keep
        try:
            for outcome in run_paths(paths, seed=seed, started=started, keep=keep,
                                     explain=NEAR_MISS if report_dir else None, timeout=timeout,
                                     progress=watch):
                outcomes.append(outcome)
                line = f"[{len(outcomes)}] {outcome.status.upper():9} {outcome.name}  {outcome.seconds:.2f} s"
                if outcome.status == "malformed":
                    line += f"\n    {outcome.verdict}"
                out.print(escape(line), style=STYLE[outcome.status] if out.is_terminal else None,
                          soft_wrap=True)
        except KeyboardInterrupt:
            interrupted = True
    sections = [o.kept for o in outcomes if o.kept is not None]
    if not outcomes:
        out.print("gradcheck: interrupted before any case finished; exit 130")
        sys.exit(130)

    out.print(build(outcomes, out.width, out.is_terminal, wide))
    for outcome in outcomes:
        if outcome.status in NOT_PASSED:
            out.print(escape(outcome.verdict), soft_wrap=True)  # one-line errors stay one line
    code = 130 if interrupted else exit_code(o.status for o in outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in STATUSES}
    stopped = "interrupted (Ctrl-C) after these cases; " if interrupted else ""
    out.print(stopped + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; exit {code}")
    if json_file:
        document = {"exit_code": code, "seed": seed, "counts": counts, "interrupted": interrupted,
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
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Run with seed N (>= 0) instead of the case's check.seed.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              callback=_finite_seconds,
              help="Stop the case after SECONDS (a case's check.timeout overrides it).")
def explain(case: str, paths: tuple[str, ...], out_dir: str, seed: int | None, timeout: float | None) -> None:
    """Check CASE (a case name or a YAML file) and show why it fails: diagnosis and pictures.

    Exit status: 0 when it passes, 1 when it fails or raises, 2 when CASE is not found or malformed.
    """
    from gradcheck.catalogue.case import find_cases
    from gradcheck.errors import CaseError

    try:
        cases = find_cases(case, paths or ("cases",))
    except (CaseError, LookupError) as exc:
        click.echo(f"gradcheck explain: {exc}", err=True)
        sys.exit(2)
    statuses = {explain_case(c, out_dir, seed, echo=click.echo, timeout=timeout) for c in cases}
    sys.exit(exit_code(statuses))


def explain_case(case, out_dir, seed=None, echo=print, timeout=None) -> str:
    """Run one Case with every array swept and diagnosed, print the verdict and diagnosis, write every
    array's pictures to out_dir as PNG. Returns the case's status (results.STATUSES):
    a case that raises or times out prints its one-line error instead."""
    from gradcheck.catalogue import isolation
    from gradcheck.catalogue.runner import run_one
    from gradcheck.output.explain import explained

    limit, source = isolation.limit_of(case, timeout, "--timeout")
    if limit is None:
        outcome = run_one(case, seed, explain=-1.0, keep=explained)
    else:
        worker = isolation.Worker()
        try:
            outcome = worker.run(case, seed, -1.0, explained, limit, source)
        finally:
            worker.stop()
    if outcome.kept is None:
        echo(outcome.verdict)
        return outcome.status
    text, figures = outcome.kept
    echo(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    echo("")
    for f in figures:
        (out / f.filename).write_bytes(f.data)
        echo(f"wrote {out / f.filename}: {f.caption}")
    return outcome.status
