"""One self-contained HTML page for a run: the verdict table, then what the failing cases look like.

``write(directory, rows, sections)`` writes ``directory/index.html``: no server and no other file is
needed (PNGs are embedded as base64 data URIs, the style is inline). The page holds

- the verdict table (one row per case: status, strategy, margin, worst index, seconds);
- "Failures": per failing case its verdict text, a diagnosis (gradcheck.explain), heat maps of analytic,
  numeric and their difference per failing array, and the error-vs-eps plot;
- "Near misses": the same for passing cases whose margin is above 0.5 (within a factor 2 of failing).

A run where everything passes comfortably has neither section.

Front ends: ``gradcheck run --report DIR`` and ``pytest --gradcheck-report DIR``. The pytest plugin may run
in several xdist workers: each case's row and section are saved as a JSON part under DIR/parts/ and the
page is assembled from all parts at the end (``assemble``).
"""

from __future__ import annotations

import base64
import html
import json
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gradcheck.output import explain
from gradcheck.output.table import margin_text
from gradcheck.results import NEAR_MISS, STATUSES

PARTS = "parts"


@dataclass
class Row:
    """One line of the verdict table."""

    case: str
    status: str  # one of results.STATUSES
    strategy: str = "-"
    margin: float | str | None = None
    worst: str = "-"
    seconds: float = 0.0
    file: str = ""


@dataclass
class Section:
    """What one case looks like: its verdict text, diagnosis, and PNG figures (bytes)."""

    case: str
    status: str  # "fail" | "undecided" | "pass" (a near miss) | "error"
    verdict: str
    diagnosis: str = ""
    figures: list[explain.Figure] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"case": self.case, "status": self.status, "verdict": self.verdict,
                "diagnosis": self.diagnosis,
                "figures": [{"filename": f.filename, "caption": f.caption,
                             "png": base64.b64encode(f.data).decode("ascii")} for f in self.figures]}

    @classmethod
    def from_json(cls, d: dict) -> Section:
        figs = [explain.Figure(f["filename"], f["caption"], base64.b64decode(f["png"])) for f in d["figures"]]
        return cls(d["case"], d["status"], d["verdict"], d.get("diagnosis", ""), figs)


def row_of(report, file: str = "") -> Row:
    worst = "-" if report.worst is None else report.worst.where
    return Row(report.case or "<unnamed case>", report.status, report.strategy,
               float(report.margin), worst, float(report.seconds), file)


def section_of(report, margin: float = NEAR_MISS) -> Section | None:
    """The section of a case that needs one (failing, or margin above `margin`), else None. The report
    comes from check(explain=margin): its sweeps and diagnoses are drawn, nothing is run."""
    if report.passed and report.margin <= margin:
        return None
    text = explain.explain_text(report)
    verdict, _, diagnosis = text.partition("\n\ndiagnosis:\n")
    return Section(report.case or "<unnamed case>", report.status, verdict, diagnosis,
                   explain.figures(report, margin))


def error_section(case: str, message: str) -> Section:
    """A case whose layer raised: its message, no pictures."""
    return Section(case, "error", message)


# -- the page ----------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
tr.fail td, tr.undecided td, tr.error td, tr.malformed td { background: #fde8e8; }
tr.near td { background: #fff6dc; }
.pass { color: #17692a; } .fail, .undecided, .error, .malformed { color: #b00020; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 0.8em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
section { border-top: 2px solid #ccc; margin-top: 1.5em; }
"""


def render(rows: list[Row], sections: list[Section], title: str = "gradcheck report") -> str:
    """The HTML text of the page."""
    esc = html.escape
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no cases"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f"<p>{esc(summary)} &middot; written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
             "<h2>Verdicts</h2><table><tr><th>case</th><th>verdict</th><th>strategy</th>"
             "<th>max error / tolerance</th><th>worst index</th><th>seconds</th></tr>"]
    near = {s.case for s in sections if s.status == "pass"}
    for r in rows:
        cls = r.status if r.status != "pass" else ("near" if r.case in near else "pass")
        link = f"<a href='#{_anchor(r.case)}'>{esc(r.case)}</a>" if any(s.case == r.case for s in sections) \
            else esc(r.case)
        parts.append(f"<tr class='{cls}'><td>{link}</td><td class='{r.status}'>{r.status.upper()}</td>"
                     f"<td>{esc(str(r.strategy))}</td><td>{esc(margin_text(r.margin))}</td>"
                     f"<td>{esc(str(r.worst))}</td><td>{r.seconds:.2f}</td></tr>")
    parts.append("</table>")
    failures = [s for s in sections if s.status != "pass"]
    misses = [s for s in sections if s.status == "pass"]
    if not sections:
        parts.append("<p class='pass'>Every case passes with a margin of at most 0.5 (at least a factor 2 "
                     "below its tolerance): nothing to show.</p>")
    for heading, cls, group in (("Failures", "failure", failures),
                                ("Near misses (passing, margin above 0.5)", "near-miss", misses)):
        if not group:
            continue
        parts.append(f"<h2>{heading}</h2>")
        for s in group:
            parts.append(f"<section class='{cls}' id='{_anchor(s.case)}'><h3>{esc(s.case)} "
                         f"<span class='{s.status}'>{s.status.upper()}</span></h3>")
            parts.append(f"<pre>{esc(s.verdict)}</pre>")
            if s.diagnosis:
                parts.append(f"<h4>Diagnosis</h4><pre>{esc(s.diagnosis)}</pre>")
            for f in s.figures:
                data = base64.b64encode(f.data).decode("ascii")
                parts.append(f"<figure><img alt='{esc(f.filename)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{esc(f.caption)}</figcaption></figure>")
            parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def notebook(report) -> str:
    """The HTML a notebook shows for a Report (Report._repr_html_): the verdict, and for every failing
    array its diagnosis and heat maps, then the error-vs-eps plot: the pieces of a case's section of the
    page, drawn from the results (nothing runs again).

    The sweeps and diagnoses exist only when the check ran with explain=... (check(..., explain=0.5));
    without them the heat maps are shown alone, with a note saying so. Near misses (passing arrays within a
    factor 2 of failing) are in the verdict text only; the page (`gradcheck run --report`) draws them too.
    """
    esc = html.escape
    colour = "#17692a" if report.passed else "#b00020"
    parts = [f"<div class='gradcheck-report'><p style='color:{colour};font-weight:bold'>"
             f"{esc(report.headline())}</p><pre style='font-size:0.85em'>{esc(str(report))}</pre>"]
    failing = [r for r in report.results() if not r.passed]
    diagnosis = [s for r in failing for s in r.diagnosis]
    if diagnosis:
        text = esc("\n".join(diagnosis))
        parts.append(f"<p><b>Diagnosis</b></p><pre style='font-size:0.85em'>{text}</pre>")
    if failing and all(r.sweep is None for r in failing):
        parts.append("<p class='gradcheck-note'><i>Heat maps only: the check ran without explain, so there "
                     "is no error-vs-eps plot and no diagnosis; check(..., explain=0.5) adds them.</i></p>")
    for f in explain.figures(report, margin=float("inf")) if failing else []:
        data = base64.b64encode(f.data).decode("ascii")
        parts.append(f"<figure><img alt='{esc(f.filename)}' src='data:image/png;base64,{data}' "
                     f"style='max-width:100%'><figcaption>{esc(f.caption)}</figcaption></figure>")
    parts.append("</div>")
    return "\n".join(parts)


def _anchor(case: str) -> str:
    return "case-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in case)


def write(directory, rows: list[Row], sections: list[Section], title: str = "gradcheck report") -> Path:
    """Write directory/index.html (the folder is created); return its path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "index.html"
    path.write_text(render(rows, sections, title), encoding="utf-8")
    return path


# -- parts (pytest, possibly across xdist workers) ---------------------------------------------------------


def save_part(directory, row: Row, section: Section | None) -> Path:
    """Save one case's row and section as DIR/parts/<case>.json."""
    d = Path(directory) / PARTS
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{_anchor(row.case)}-{zlib.crc32(row.file.encode()):08x}.json"
    part = {"row": asdict(row), "section": None if section is None else section.to_json()}
    path.write_text(json.dumps(part), encoding="utf-8")
    return path


def clear_parts(directory) -> None:
    d = Path(directory) / PARTS
    if d.is_dir():
        for p in d.glob("*.json"):
            p.unlink()


def assemble(directory, title: str = "gradcheck report") -> Path:
    """index.html from every part under DIR/parts/ (rows in case-name order)."""
    rows, sections = [], []
    for p in sorted((Path(directory) / PARTS).glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        rows.append(Row(**d["row"]))
        if d["section"] is not None:
            sections.append(Section.from_json(d["section"]))
    rows.sort(key=lambda r: r.case)
    sections.sort(key=lambda s: s.case)
    return write(directory, rows, sections, title)


def rows_of(outcomes) -> list[Row]:
    """The verdict table's rows of a `gradcheck run` (gradcheck.catalogue.runner.Outcome list)."""
    from gradcheck.output.table import worst_text

    return [Row(o.name, o.status, o.data.get("strategy") or "-", o.data.get("margin"),
                worst_text(o.data.get("worst")), o.seconds, o.file) for o in outcomes]


def write_outcomes(directory, outcomes, sections: list[Section]) -> Path:
    """The page of a `gradcheck run`: its rows, the sections drawn while it ran (section_of, called with
    each Report before it was dropped), and an error section for each case that raised or is malformed."""
    drawn = {s.case for s in sections}
    errors = [error_section(o.name, o.verdict) for o in outcomes
              if o.status in ("error", "malformed") and o.name not in drawn]
    return write(directory, rows_of(outcomes), [*sections, *errors])
