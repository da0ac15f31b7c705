"""The readable verdict (Chainer's gradient_check style: the method and tolerances first, then numeric
against analytic)::

    FAIL fc-bias-averaged: 3 of 3 elements failed in b
      method central  eps 6.06e-06  rtol 6.1e-09  atol 1.2e-08..4.1e-08  seed 0  strategy exhaustive
      x  (4, 6) float64: checked 24 elements, failed 0, kinks 0, margin 0.0012, ..., 52 forwards
      b  (3,) float64: checked 3 elements, failed 3, kinks 0, margin 3.1e+07, ..., 10 forwards
        b[1]: analytic 0.41 numeric 1.64 |diff| 1.23 > tol 4.1e-08  (mismatch)

A layer with several outputs adds a line naming them and the checked sum::

      outputs h (3, 4), c (3, 4): L = sum(G_h * h) + sum(G_c * c)

Each array also carries its observed convergence order (gradcheck.engine.convergence)::

        convergence order 0.0 (a plateau no eps gets under: a wrong gradient); |error| 0.71, 0.71, 0.71 ...
"""

from __future__ import annotations

from gradcheck.results import SHOW_IN_TEXT, index_text


def element_text(e) -> str:
    cmp = ">" if e.failed or e.kind == "undecided" else "<="
    text = (f"{e.where}: analytic {e.analytic:.6g} numeric {e.numeric:.6g} |diff| {e.error:.3g} {cmp} tol "
            f"{e.tolerance:.3g}")
    if e.tied and e.failed:
        text += (f"  (mismatch: {len(e.tied)} tied kinks raised together, along which L is differentiable "
                 f"(one-sided {e.left:.6g} / {e.right:.6g}): their gradients must sum to the derivative)")
    elif e.kind == "kink":
        text += f"  (kink: one-sided {e.left:.6g} / {e.right:.6g})"
    elif e.kind == "undecided":
        text += (f"  (undecided: several kinks coincide here, one-sided {e.left:.6g} / {e.right:.6g} bound "
                 f"no valid gradient)")
    elif e.kind == "nonfinite":
        text += "  (nonfinite: NaN or inf in the analytic or numeric value)"
    elif e.kind == "mismatch":
        text += "  (mismatch)"
    return text


def nothing_checked(r) -> str:
    """Why an array had nothing checked (it has no elements)."""
    return f"nothing was checked in {r.name}: it has no elements (shape {tuple(r.shape)})"


def array_summary(r) -> str:
    if r.checked == 0:
        return f"{r.name}  {r.shape} {r.dtype}: {nothing_checked(r)}"
    shared = " shared" if len(r.joint) > 1 else ""
    undecided = f", undecided {r.undecided}" if r.undecided else ""
    text = (f"{r.name}  {r.shape} {r.dtype}: checked {r.checked} {r.unit},"
            f" failed {r.failed}{undecided}, kinks {len(r.kinks)}, margin {r.margin:.3g},"
            f" rtol {r.rtol:.2g}, atol {r.atol:.2g}, {r.forwards} forwards{shared}")
    if r.inferred is not None:
        alone = all(e is None for e in r.inferred)
        text += (f"; structure inferred {tuple(r.inferred)!r}"
                 + (": no axis fits, one coordinate per forward" if alone else "")
                 + (f", {r.rechecked} re-checked alone" if r.rechecked else ""))
    if r.strategy == "directional" and r.failed:
        where = ", ".join(e.where for e in r.located if e.failed) or "none"
        text += f"; bisection located {where}"
    if r.fallback:
        text += f"; {r.fallback} handed to {r.method}'s fallback method (a kink within its stencil)"
    return text


def outputs_text(shapes: dict) -> str:
    """``h (3, 4), c (3, 4): L = sum(G_h * h) + sum(G_c * c)``: a report's several outputs."""
    listed = ", ".join(f"{n} {tuple(s)}" for n, s in shapes.items())
    return f"{listed}: L = " + " + ".join(f"sum(G_{n} * {n})" for n in shapes)


def headline(report) -> str:
    case = report.case if report.case is not None else "<unnamed case>"
    if report.passed:
        return f"PASS {case}: margin {report.margin:.3g}"
    if report.cause is not None:
        return f"FAIL {case}: {report.cause}"
    bad = [r for r in report.results() if not r.passed]
    if not bad:
        return f"FAIL {case}: nothing was checked"
    failing = [r for r in bad if r.failed or r.checked == 0]
    counts = "; ".join(nothing_checked(r) if r.checked == 0
                       else f"{r.failed} of {r.checked} {r.unit} failed in {r.name}" for r in failing)
    undecided = [r for r in bad if r.undecided]
    if undecided:
        where = ", ".join(f"{r.undecided} of {r.checked} {r.unit} in {r.name}" for r in undecided)
        counts += ("; " if counts else "") + (
            f"{where} undecided: several kinks coincide at this point, so finite differences cannot tell a "
            f"right gradient from a wrong one there; move the point (other arrays, or another seed) so that "
            f"the kinks separate")
    return f"{'FAIL' if failing else 'UNDECIDED'} {case}: {counts}"


def verdict(report) -> str:
    results = report.results()
    atols = [r.atol for r in results]
    rtols = sorted({f"{r.rtol:.2g}" for r in results})
    atol = (f"{min(atols):.2g}" if len(set(atols)) <= 1 else f"{min(atols):.2g}..{max(atols):.2g}") \
        if atols else "-"
    lines = [
        headline(report),
        f"  method {report.method}  eps {report.eps:.3g}  rtol {'/'.join(rtols) or '-'}  atol {atol}"
        f"  seed {report.seed}  strategy {report.strategy}",
    ]
    if report.outputs:
        lines.append(f"  outputs {outputs_text(report.outputs)}")
    for r in results:
        lines.append("  " + array_summary(r))
        shown = [e for e in r.worst if not e.kind.passes][:SHOW_IN_TEXT] if not r.passed else r.worst[:1]
        lines.extend("    " + element_text(e) for e in shown)
        if r.kinks:
            lines.append(f"    {len(r.kinks)} kink(s), e.g. {element_text(r.kinks[0])}")
        if r.convergence is not None:
            lines.append(f"    {r.convergence}")
    worst = report.worst
    if worst is not None and not report.passed:
        lines.append(f"  worst: {element_text(worst)}")
    lines.extend(f"  warning: {w}" for w in report.warnings)
    lines.append(f"  {report.forwards} forwards, {report.seconds:.3g} s")
    return "\n".join(lines)


__all__ = ["array_summary", "element_text", "headline", "index_text", "outputs_text", "verdict"]
