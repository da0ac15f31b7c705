"""What a failing (or nearly failing) case looks like: the verdict and diagnosis in words, and the pictures.

Everything here is drawn from a Report that the check filled in (check(explain=...): the error-vs-eps
sweep and the diagnosis of each array worth showing); nothing here runs a layer or the checker.
figures(report) draws, for every array worth showing, its heat maps, and one error-vs-eps plot of the case.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradcheck.output import pictures
from gradcheck.results import NEAR_MISS


@dataclass
class Figure:
    """A PNG of a case: file name (no folder), caption, bytes; arrays: the Panels drawn (heat maps)."""

    filename: str
    caption: str
    data: bytes
    panels: list | None = None


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def figures(report, margin: float = NEAR_MISS) -> list[Figure]:
    """Heat maps of every array worth showing, then one error-vs-eps plot of the sweeps the check made."""
    case = _slug(report.case or "case")
    out, curves = [], []
    for r in report.shown(margin):
        if r.analytic is not None:  # None: lent to the check as its working copy (check's keep_analytic)
            ps = pictures.panels(r)
            lay = ps[0].layout
            state = "FAIL" if not r.passed else f"margin {r.margin:.2g}"
            fig = pictures.heatmap_figure(ps, f"{r.name} {r.shape} ({state}): {lay.description}")
            out.append(Figure(f"{case}-{_slug(r.name)}-maps.png",
                              f"{r.name} {r.shape}: {lay.description}; red marks: worst elements",
                              pictures.png(fig), ps))
        if r.sweep is not None:
            curves.append((r.name, r.sweep))
    if curves:
        fig = pictures.sweep_figure(curves, report.eps, f"{report.case}: error vs step ({report.method})")
        out.append(Figure(f"{case}-error-vs-eps.png",
                          "|analytic - numeric| along u (the failing elements, or a random direction) as "
                          "eps shrinks; dotted: rounding floor, dashed: slope 2",
                          pictures.png(fig)))
    return out


def explain_text(report) -> str:
    """The verdict, then a diagnosis line per failing (or nearly failing) array."""
    lines = [str(report), "", "diagnosis:"]
    shown = report.shown()
    if not shown:
        lines.append(f"  all arrays pass with margin {report.margin:.3g} (at most 0.5): nothing to explain")
    for r in shown:
        lines.extend("  " + s for s in r.diagnosis or [f"{r.name}: not diagnosed (check(explain=...))"])
    return "\n".join(lines)


def explained(report) -> tuple[str, list[Figure]]:
    """(explain_text, figures of every array) of a Report from check(explain=-1.0): `gradcheck explain`'s
    output, drawn where the Report is (a worker process, for a case with a time limit)."""
    return explain_text(report), figures(report, margin=-1.0)
