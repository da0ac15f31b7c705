"""The verdict type, and the per-element verdict: ok, mismatch, nonfinite, or kink (a non-differentiable
point, not a failure).

    ok         |analytic - central| <= atol + rtol |central|
    nonfinite  NaN or inf in the analytic or the numeric value (always a failure)
    kink       not ok, a method with one-sided differences only, and both
                 - L is not smooth within [a - eps, a + eps]: the one-sided differences disagree beyond
                   what a smooth L allows, |right - left| > tolerance.kink_threshold (ReLU at 0: left = 0,
                   right = G; tied maxima in max pooling: one side moves the maximum, the other does not),
                   or the element was `cleared`: it passes at a smaller step with an error that fell
                   (a kink inside eps but not at a: see tolerance.REFINE_FACTORS), and
                 - the analytic value lies between them, within the one-sided error plus the tolerance
                   (at a kink any value of the subdifferential is a valid gradient; one outside
                   [min(left, right), max(left, right)] is not, so it stays a mismatch); a cleared element
                   of a method whose one-sided differences cross the same kinks (richardson's wider
                   stencil: Method.cleared_needs_between false) needs no such test
               The thresholds are central's (tolerance) or, given a method, its own (Method.kink_threshold,
               Method.one_sided_error).
    mismatch   otherwise
    undecided  a mismatch at a point where several kinks coincide (the perturbation of one element crosses
               kinks in several output elements at once: FC -> ReLU with x = 0 and b = 0): the one-sided
               differences bound no valid gradient there, so finite differences cannot tell a right
               gradient from a wrong one. Not a pass and not a failure: move the point (set by
               gradcheck.engine.kinks, never by classify())
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from gradcheck.engine import tolerance as tol_model


class Verdict(StrEnum):
    """The verdict on one compared value. A StrEnum: equal to its name in text ("kink") and JSON; its
    code indexes the vectorised arrays classify() returns."""

    OK = "ok"
    MISMATCH = "mismatch"
    KINK = "kink"
    NONFINITE = "nonfinite"
    UNDECIDED = "undecided"

    @property
    def code(self) -> int:
        return _CODES[self]

    @property
    def failed(self) -> bool:
        """A mismatch or a non-finite value fails the check; a kink does not, nor does undecided (which
        does not pass either: see passes)."""
        return self in (Verdict.MISMATCH, Verdict.NONFINITE)

    @property
    def passes(self) -> bool:
        """ok or kink: the value is consistent with the numerics."""
        return self in (Verdict.OK, Verdict.KINK)

    @classmethod
    def of(cls, code) -> Verdict:
        return _ORDER[int(code)]


_ORDER = (Verdict.OK, Verdict.MISMATCH, Verdict.KINK, Verdict.NONFINITE, Verdict.UNDECIDED)
_CODES = {v: i for i, v in enumerate(_ORDER)}
OK, MISMATCH, KINK, NONFINITE, UNDECIDED = (v.code for v in _ORDER)  # the codes, for vectorised comparisons


def failed(codes) -> np.ndarray:
    """Boolean mask of the failing codes (mismatch or nonfinite)."""
    codes = np.asarray(codes)
    return (codes == MISMATCH) | (codes == NONFINITE)


def disagreeing(left, right, eps, rounding, method=None):
    """One-sided differences that disagree beyond what a smooth L allows (tolerance.kink_threshold, or the
    method's own Method.kink_threshold): L is not differentiable within the stencil. NaN compares False."""
    left, right = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    threshold = tol_model.kink_threshold if method is None else method.kink_threshold
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(right - left) > threshold(left, right, eps, rounding)


def classify(analytic, numeric, left, right, *, rtol, atol, eps, rounding, cleared=None, method=None):
    """Vectorised verdict. Returns (codes, error, tolerance): codes are Verdict codes (OK, MISMATCH, KINK,
    NONFINITE); error = |analytic - numeric|; tolerance = atol + rtol |numeric|.

    left/right: one-sided differences (None for complex step: no kinks); rounding: the central quotient's
    absolute rounding bound (tolerance.rounding_atol), which the one-sided quotients carry twice over.
    cleared: optional boolean mask of elements confirmed at a smaller step (see the module docstring).
    method: the Method whose kink rules apply (kink_threshold, one_sided_error, cleared_needs_between;
    None: central's, tolerance's). atol and rounding may be per element.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(analytic - numeric)
        tolerance = tol_model.tolerance(numeric, rtol, atol)
        nonfinite = ~(np.isfinite(analytic) & np.isfinite(numeric))
        ok = ~nonfinite & (error <= tolerance)
        codes = np.where(nonfinite, NONFINITE, np.where(ok, OK, MISMATCH))
        if left is not None:
            left = np.asarray(left, dtype=np.float64)
            right = np.asarray(right, dtype=np.float64)
            candidate = (codes == MISMATCH) & np.isfinite(left) & np.isfinite(right)
            disagree = disagreeing(left, right, eps, rounding, method)
            one_sided_error = tol_model.one_sided_error if method is None else method.one_sided_error
            slack = one_sided_error(left, right, eps, rounding) + tolerance
            between = ((analytic >= np.minimum(left, right) - slack)
                       & (analytic <= np.maximum(left, right) + slack))
            kink = disagree & between
            if cleared is not None:
                cleared = np.asarray(cleared, dtype=bool)
                needs_between = method is None or method.cleared_needs_between
                kink = kink | (cleared & between if needs_between else cleared)
            codes = np.where(candidate & kink, KINK, codes)
    return codes, error, tolerance
