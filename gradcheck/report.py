"""What a check found: per element, per array, per case; ``str(report)`` is the readable verdict.

The verdict (Chainer's gradient_check style: the method and tolerances first, then numeric against
analytic)::

    FAIL fc-bias-averaged: 3 of 3 elements failed (b)
      method central  eps 6.06e-06  rtol 6.1e-09  atol 1.2e-08..4.1e-08  seed 0  strategy exhaustive
      x  (4, 6) float64: checked 24, failed 0, kinks 0, margin 0.0012, 52 forwards
      b  (3,) float64: checked 3, failed 3, kinks 0, margin 3.1e+07, 10 forwards
        b[1]: analytic 0.41 numeric 1.64 |diff| 1.23 > tol 4.1e-08  (mismatch)

margin is the largest error / tolerance over the checked elements (kinks excluded): below 1 passes,
and a margin of 0.5 says the case is within a factor 2 of failing.

Each array also carries its observed convergence order (gradcheck.convergence): the error along one
direction at eps 1e-1, 1e-2, 1e-3, about 2 for a right gradient, about 0 (a plateau) for a wrong one::

        convergence order 0.0 (a plateau no eps gets under: a wrong gradient); |error| 0.71, 0.71, 0.71 ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SHOW_WORST = 10  # elements listed per array (largest error / tolerance first)
SHOW_IN_TEXT = 3  # of which the verdict text prints


def index_text(name: str, index) -> str:
    """``W[123, 45]``; a directional check (index None) is ``W<direction>``."""
    if index is None:
        return f"{name}<direction>"
    return f"{name}[{', '.join(str(int(i)) for i in index)}]"


@dataclass
class Element:
    """One compared value: a coordinate (index) or a directional derivative (index None).

    kind: "ok" | "mismatch" | "kink" | "nonfinite"; left/right: one-sided differences (central only).
    """

    array: str
    index: tuple[int, ...] | None
    analytic: float
    numeric: float
    error: float
    tolerance: float
    kind: str
    left: float | None = None
    right: float | None = None

    @property
    def ratio(self) -> float:
        """error / tolerance (inf for a non-finite element or a nonzero error at zero tolerance)."""
        if not np.isfinite(self.error):
            return float("inf")
        if self.tolerance > 0:
            return self.error / self.tolerance
        return 0.0 if self.error == 0 else float("inf")

    @property
    def failed(self) -> bool:
        return self.kind in ("mismatch", "nonfinite")

    def __str__(self) -> str:
        cmp = ">" if self.failed else "<="
        text = (f"{index_text(self.array, self.index)}: analytic {self.analytic:.6g}"
                f" numeric {self.numeric:.6g} |diff| {self.error:.3g} {cmp} tol {self.tolerance:.3g}")
        if self.kind == "kink":
            text += f"  (kink: one-sided {self.left:.6g} / {self.right:.6g})"
        elif self.kind == "nonfinite":
            text += "  (nonfinite: NaN or inf in the analytic or numeric value)"
        elif self.kind == "mismatch":
            text += "  (mismatch)"
        return text


@dataclass
class ArrayResult:
    """The check of one array (an input, or a residual "<layer>.delta").

    checked: coordinates compared, or directions for the directional strategy (then numeric is None and
    the wrong elements that bisection located are listed in worst with their indices).
    numeric: the numeric derivative per element (NaN where not checked); None for the directional strategy
    and for a sampled array of over check.DENSE_NUMERIC elements, whose `sampled` is then (flat
    coordinates, numeric values).
    failed: mismatching or non-finite checks, in the unit of `checked`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    strategy: str
    method: str
    eps: float
    rtol: float
    atol: float
    checked: int
    failed: int
    kinks: list[Element]
    worst: list[Element]
    margin: float
    passed: bool
    analytic: np.ndarray | None  # None: lent to the checker as a working copy (check's keep_analytic)
    numeric: np.ndarray | None
    forwards: int
    seconds: float
    located: list[Element] = field(default_factory=list)  # directional: elements found by bisection
    convergence: object | None = None  # gradcheck.convergence.Convergence: the error as eps shrinks
    joint: tuple[str, ...] = ()  # directional: the arrays the directions spanned together (forwards shared)
    sampled: tuple[np.ndarray, np.ndarray] | None = None  # see numeric

    def summary(self) -> str:
        unit = "directions" if self.strategy == "directional" else "elements"
        if len(self.joint) > 1:
            unit = f"joint directions ({', '.join(self.joint)})"
        shared = " shared" if len(self.joint) > 1 else ""
        text = (f"{self.name}  {self.shape} {self.dtype}: checked {self.checked} {unit},"
                f" failed {self.failed}, kinks {len(self.kinks)}, margin {self.margin:.3g},"
                f" rtol {self.rtol:.2g}, atol {self.atol:.2g}, {self.forwards} forwards{shared}")
        if self.strategy == "directional" and self.failed:
            where = ", ".join(index_text(e.array, e.index) for e in self.located if e.failed) or "none"
            text += f"; bisection located {where}"
        return text


@dataclass
class Report:
    """The check of one case: every requested input, and the requested residuals of a Sequential."""

    case: str | None
    passed: bool
    arrays: dict[str, ArrayResult]
    residuals: dict[str, ArrayResult]
    margin: float
    worst: Element | None
    seed: int
    strategy: str
    method: str
    seconds: float
    forwards: int
    eps: float = float("nan")

    def results(self) -> list[ArrayResult]:
        return [*self.arrays.values(), *self.residuals.values()]

    def headline(self) -> str:
        word = "PASS" if self.passed else "FAIL"
        case = self.case if self.case is not None else "<unnamed case>"
        if self.passed:
            return f"{word} {case}: margin {self.margin:.3g}"
        bad = [r for r in self.results() if not r.passed]
        counts = "; ".join(
            f"{r.failed} of {r.checked} {'directions' if r.strategy == 'directional' else 'elements'} failed"
            f" in {r.name}" for r in bad)
        return f"{word} {case}: {counts}"

    def __str__(self) -> str:
        results = self.results()
        atols = [r.atol for r in results]
        rtols = sorted({f"{r.rtol:.2g}" for r in results})
        atol = (f"{min(atols):.2g}" if len(set(atols)) <= 1 else f"{min(atols):.2g}..{max(atols):.2g}") \
            if atols else "-"
        lines = [
            self.headline(),
            f"  method {self.method}  eps {self.eps:.3g}  rtol {'/'.join(rtols) or '-'}  atol {atol}"
            f"  seed {self.seed}  strategy {self.strategy}",
        ]
        for r in results:
            lines.append("  " + r.summary())
            shown = [e for e in r.worst if e.failed][:SHOW_IN_TEXT] if not r.passed else r.worst[:1]
            lines.extend("    " + str(e) for e in shown)
            if r.kinks:
                lines.append(f"    {len(r.kinks)} kink(s), e.g. {r.kinks[0]}")
            if r.convergence is not None:
                lines.append(f"    {r.convergence}")
        if self.worst is not None and not self.passed:
            lines.append(f"  worst: {self.worst}")
        lines.append(f"  {self.forwards} forwards, {self.seconds:.3g} s")
        return "\n".join(lines)
