"""What a check found: per element, per array, per case. Plain data; gradcheck.output renders it
(``str(report)`` is gradcheck.output.text's verdict).

margin is the largest error / tolerance over the checked elements (kinks excluded): below 1 passes, and a
margin of 0.5 says the case is within a factor 2 of failing. Whatever a renderer shows is here: the
per-element values, the convergence order, and (when the check was asked to explain) the error-vs-eps
sweep and the diagnosis of each array worth showing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradcheck.engine.verdict import Verdict

SHOW_WORST = 10  # elements listed per array (largest error / tolerance first)
SHOW_IN_TEXT = 3  # of which the verdict text prints
# What a case can come to, in the order tables and counts list them: a Report's status, then the runner's.
STATUSES = ("pass", "fail", "undecided", "error", "malformed")
NOT_PASSED = ("fail", "undecided", "error")  # ran and did not pass: their verdict lines are printed
NEAR_MISS = 0.5  # a passing array whose margin is above this is within a factor 2 of failing: shown


SHOW_TIED = 8  # elements of a tie group its text names


def index_text(name: str, index) -> str:
    """The one index formatter: ``W[123, 45]``; a directional value (index None) is ``W<direction>``."""
    if index is None:
        return f"{name}<direction>"
    return f"{name}[{', '.join(str(int(i)) for i in index)}]"


def tied_text(name: str, tied) -> str:
    """A tie group raised together: ``x[0, 0] + x[0, 1]`` (the first SHOW_TIED, then how many more)."""
    text = " + ".join(index_text(name, i) for i in tied[:SHOW_TIED])
    return text + (f" + {len(tied) - SHOW_TIED} more" if len(tied) > SHOW_TIED else "")


@dataclass
class Element:
    """One compared value: a coordinate (index) or a directional derivative (index None).

    kind: a Verdict ("ok" | "mismatch" | "kink" | "nonfinite" | "undecided"); left/right: one-sided
    differences. tied: a tie group (gradcheck.engine.kinks), the indices of kinks raised together: analytic
    is the sum of their gradients, numeric the derivative along them, index the first of them. part: of a
    complex array's element, the part compared ("re": Re(g) against dL/dRe, "im": Im(g) against dL/dIm).
    """

    array: str
    index: tuple[int, ...] | None
    analytic: float
    numeric: float
    error: float
    tolerance: float
    kind: Verdict
    left: float | None = None
    right: float | None = None
    tied: tuple[tuple[int, ...], ...] = ()
    part: str | None = None  # "re" | "im": which part of a complex element (gradcheck.strategies.parts)

    def __post_init__(self):
        self.kind = Verdict(self.kind)

    @property
    def where(self) -> str:
        if self.tied:
            return tied_text(self.array, self.tied)
        return index_text(self.array, self.index) + (f".{self.part}" if self.part else "")

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
        return self.kind.failed

    def __str__(self) -> str:
        from gradcheck.output.text import element_text

        return element_text(self)


@dataclass
class ArrayResult:
    """The check of one array (an input, or a residual "<layer>.delta").

    checked: coordinates compared, or directions for the directional strategy (then numeric is None and
    the wrong elements that bisection located are in `located`, with their indices).
    numeric: the numeric derivative per element (NaN where not checked); None for the directional strategy
    and for a sampled array of over DENSE_NUMERIC elements, whose `sampled` is then (flat coordinates,
    numeric values).
    failed: mismatching or non-finite checks, in the unit of `checked`; undecided: checks finite
    differences cannot decide (several kinks coincide there: not a failure, not a pass).
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
    analytic: np.ndarray | None  # None: lent to the checker as a working copy (check's keep_analytic)
    numeric: np.ndarray | None
    forwards: int
    seconds: float
    located: list[Element] = field(default_factory=list)  # directional: elements found by bisection
    convergence: object | None = None  # gradcheck.engine.convergence.Convergence at the verdict's steps
    joint: tuple[str, ...] = ()  # directional: the arrays the directions spanned together (forwards shared)
    sampled: tuple[np.ndarray, np.ndarray] | None = None  # see numeric
    sweep: object | None = None  # Convergence over the full eps sweep (check(explain=...)), for pictures
    diagnosis: list[str] = field(default_factory=list)  # sentences (check(explain=...))
    undecided: int = 0
    warnings: list[str] = field(default_factory=list)  # remarks for the Report (a limit the check hit)
    parts: bool = False  # a complex array: checked counts its real and imaginary parts (strategies.parts)
    inferred: tuple | None = None  # the structure gradcheck.engine.inference fitted (none declared)
    rechecked: int = 0  # coordinates of the inferred plan that failed or were kinks, re-checked alone
    layout: str | None = None  # axis order of a 4-D array (gradcheck.layout): "NHWC" for channels-last maps
    fallback: int = 0  # coordinates the method handed to its fallback (richardson -> central: a kink nearby)

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.undecided == 0 and self.checked > 0

    @property
    def unit(self) -> str:
        if len(self.joint) > 1:
            return f"joint directions ({', '.join(self.joint)})"
        if self.strategy == "directional":
            return "directions"
        return "parts (re, im)" if self.parts else "elements"

    def summary(self) -> str:
        from gradcheck.output.text import array_summary

        return array_summary(self)


@dataclass
class Report:
    """The check of one case: every requested input, and the requested residuals of a Sequential."""

    case: str | None
    arrays: dict[str, ArrayResult]
    residuals: dict[str, ArrayResult]
    seed: int
    strategy: str
    method: str
    seconds: float
    forwards: int
    eps: float = float("nan")
    warnings: list[str] = field(default_factory=list)  # contract remarks that do not change the verdict
    cause: str | None = None  # what makes this not a pass whatever the arrays say (wrt empty, y not finite)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)  # several outputs: name -> shape

    def results(self) -> list[ArrayResult]:
        return [*self.arrays.values(), *self.residuals.values()]

    @property
    def passed(self) -> bool:
        results = self.results()
        return self.cause is None and bool(results) and all(r.passed for r in results)

    @property
    def status(self) -> str:
        """"pass"; "undecided" when nothing failed but some checks could not be decided (coinciding kinks:
        not a pass, and not a wrong gradient); else "fail"."""
        if self.passed:
            return "pass"
        results = self.results()
        if (self.cause is None and results and all(r.failed == 0 and r.checked > 0 for r in results)
                and any(r.undecided for r in results)):
            return "undecided"
        return "fail"

    @property
    def margin(self) -> float:
        return max((r.margin for r in self.results()), default=0.0)

    @property
    def worst(self) -> Element | None:
        elements = [e for r in self.results() for e in r.worst]
        return max(elements, key=lambda e: e.ratio) if elements else None

    def shown(self, margin: float = NEAR_MISS) -> list[ArrayResult]:
        """The arrays worth drawing: failing ones, and those whose margin is above `margin`."""
        return [r for r in self.results() if not r.passed or r.margin > margin]

    def headline(self) -> str:
        from gradcheck.output.text import headline

        return headline(self)

    def __str__(self) -> str:
        from gradcheck.output.text import verdict

        return verdict(self)

    def _repr_html_(self) -> str:
        """In a notebook: the verdict, and the heat maps and error-vs-eps plot of every failing array
        (gradcheck.output.html.notebook)."""
        from gradcheck.output.html import notebook

        return notebook(self)
