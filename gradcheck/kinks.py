"""Per-element verdict: ok, mismatch, nonfinite, or kink (a non-differentiable point, not a failure).

    ok         |analytic - central| <= atol + rtol |central|
    nonfinite  NaN or inf in the analytic or the numeric value (always a failure)
    kink       not ok, central differences only, and both
                 - L is not smooth within [a - eps, a + eps]: the one-sided differences disagree beyond
                   what a smooth L allows, |right - left| > tolerance.kink_threshold (ReLU at 0: left = 0,
                   right = G; tied maxima in max pooling: one side moves the maximum, the other does not),
                   or the element was `cleared`: it passes at a smaller step with an error that fell
                   (a kink inside eps but not at a: see tolerance.REFINE_FACTORS), and
                 - the analytic value lies between them, within the one-sided error plus the tolerance
                   (at a kink any value of the subdifferential is a valid gradient; one outside
                   [min(left, right), max(left, right)] is not, so it stays a mismatch)
    mismatch   otherwise
"""

from __future__ import annotations

import numpy as np

from gradcheck import tolerance as tol_model

OK, MISMATCH, KINK, NONFINITE = "ok", "mismatch", "kink", "nonfinite"
KINDS = np.array([OK, MISMATCH, KINK, NONFINITE])


def classify(analytic, numeric, left, right, *, rtol, atol, eps, rounding, cleared=None):
    """Vectorised verdict. Returns (codes, error, tolerance): codes index KINDS (0 ok, 1 mismatch, 2 kink,
    3 nonfinite); error = |analytic - numeric|; tolerance = atol + rtol |numeric|.

    left/right: one-sided differences (None for complex step: no kinks); rounding: the central quotient's
    absolute rounding bound (tolerance.rounding_atol), which the one-sided quotients carry twice over.
    cleared: optional boolean mask of elements confirmed at a smaller step (see the module docstring).
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(analytic - numeric)
        tolerance = tol_model.tolerance(numeric, rtol, atol)
        nonfinite = ~(np.isfinite(analytic) & np.isfinite(numeric))
        ok = ~nonfinite & (error <= tolerance)
        codes = np.where(nonfinite, 3, np.where(ok, 0, 1))
        if left is not None:
            left = np.asarray(left, dtype=np.float64)
            right = np.asarray(right, dtype=np.float64)
            candidate = (codes == 1) & np.isfinite(left) & np.isfinite(right)
            disagree = np.abs(right - left) > tol_model.kink_threshold(left, right, eps, rounding)
            slack = tol_model.one_sided_error(left, right, eps, rounding) + tolerance
            between = ((analytic >= np.minimum(left, right) - slack)
                       & (analytic <= np.maximum(left, right) + slack))
            if cleared is not None:
                disagree = disagree | np.asarray(cleared, dtype=bool)
            codes = np.where(candidate & disagree & between, 2, codes)
    return codes, error, tolerance
