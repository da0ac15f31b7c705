"""Observed convergence order: how |analytic - numeric| changes as the step eps shrinks.

A verdict at one eps can be unlucky (a tolerance a hair too tight or too loose). Along one direction u of
an array a (entries of size 1 on its support), the directional error

    e(h) = |<g, u> - D_h|,   D_h = (L(a + h u) - L(a - h u)) / 2h   (central)
                             D_h = Im L(a + i h u) / h              (complex step)
                             D_h = (4 D(h) - D(2h)) / 3             (richardson)

behaves, for h above the rounding floor, like

    a right gradient:   e(h) ~ C h^2    (truncation h^2 L'''/6, central and complex step): order 2
                        e(h) ~ C h^4    (truncation h^4 L5/30, richardson): order 4 (Method.order)
    a wrong gradient:   e(h) -> |<g - dL/da, u>| > 0, a plateau no h gets under: order 0

and below it rounding takes over (central, richardson: ~ u S / h grows as h shrinks; complex step: flat
at ~ u |g|).
A layer that is linear in the array (FC, conv in x, k or b) has no truncation error at all: e(h) sits at
the rounding floor for every h and the order is "n/a" (exact along u), unless the gradient is wrong.

The observed order p is the least-squares slope of log e against log h over the steps whose error is above
FLOOR_SAFETY times the rounding floor (analytic rounding + the numeric side's rounding at that h).
p >= 1.5 "converges" (richardson's ~4 too); p < 0.5 with errors flat within a factor 2 "plateau"; else
"irregular" (kinks within the step, a steep function). A layer with kinks (not complex_safe) crosses them
at the larger steps: there an array that passed its check is never called a plateau, only irregular.

u: for an array with failing elements, +-1 on up to SHOW_WORST of them (the sign of analytic - numeric, so
their errors add up); otherwise standard normal entries on a random block of at most MAX_BLOCK consecutive
elements (the whole array when smaller), so a step perturbs each element by about h. Cost: len(steps)
forwards (complex), 2 len(steps) (central) or 4 len(steps) (richardson) per array and passes over u's
support only (not over a 100M-element kernel); the checker's verdict uses VERDICT_STEPS (3 steps).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from gradcheck.engine import tolerance as tol_model
from gradcheck.engine.methods import get as get_method
from gradcheck.results import SHOW_WORST

VERDICT_STEPS = (1e-1, 1e-2, 1e-3)  # truncation dominates rounding here for unit-sized inputs
FLOOR_SAFETY = 4.0  # an error within this factor of the rounding floor is rounding, not truncation
RIGHT_ORDER = 1.5  # p above this: the error shrinks like h^2 (truncation): the gradient converges
WRONG_ORDER = 0.5  # p below this, above the floor, and flat within a factor FLAT: a plateau
FLAT = 2.0
MAX_BLOCK = 1 << 16  # a random direction covers at most this many consecutive elements (cheap passes)
# A passing array's convergence order is measured when it costs at most BUDGET_FRACTION of that array's own
# check, or BUDGET_SECONDS, whichever is larger (a failing array's always: the diagnosis rests on it). At
# 102.8M weights one forward is ~0.1 s and a directional check spends 2 of them: 6 more would triple it.
BUDGET_FRACTION = 0.5
BUDGET_SECONDS = 0.1


def sweep_steps(case_eps: float | None = None) -> np.ndarray:
    """eps from 1e-1 down to 1e-12 in half decades, extended down to case_eps when it is smaller
    (complex step's 1e-20)."""
    low = -12.0 if case_eps is None else min(-12.0, np.floor(np.log10(case_eps)))
    return 10.0 ** np.arange(-1.0, low - 0.25, -0.5)


@dataclass
class Convergence:
    """e(h) along one direction, and what its slope says.

    steps, errors, floors: per step h (errors |analytic - numeric| along u; floors the rounding floor).
    order: fitted slope of log e vs log h over the resolved steps (None when fewer than two are above
    the floor). verdict: "converges" | "plateau" | "exact" | "irregular" | "nonfinite" (no finite error).
    """

    array: str
    method: str
    steps: np.ndarray
    errors: np.ndarray
    floors: np.ndarray
    order: float | None
    verdict: str
    direction: str  # "worst k" or "random"
    forwards: int = 0
    analytic: np.ndarray = field(default_factory=lambda: np.zeros(0))  # <g, u> per step
    expected: int = 2  # the method's order (Method.order): a right gradient's error ~ eps**expected

    def __str__(self) -> str:
        if self.verdict == "skipped":
            return f"convergence order n/a ({self.direction})"
        errs = ", ".join(f"{e:.2g}" for e in self.errors)
        steps = ", ".join(f"{h:.0e}" for h in self.steps)
        order = "n/a" if self.order is None else f"{0.0 if abs(self.order) < 0.05 else self.order:.1f}"
        power = self.expected
        meaning = {
            "converges": f"error ~ eps^{power}: converges",
            "plateau": "a plateau no eps gets under: a wrong gradient",
            "exact": "rounding only at every eps: linear along u, agrees",
            "irregular": f"neither eps^{power} nor a plateau: kinks or a steep function",
            "nonfinite": "NaN or inf at every eps: no order to measure",
        }[self.verdict]
        return f"convergence order {order} ({meaning}); |error| {errs} at eps {steps} along {self.direction}"

class SparseDirection:
    """u = weights at flat indices, 0 elsewhere (the strategies.Direction interface: size, values)."""

    def __init__(self, size, indices, weights):
        order = np.argsort(indices)
        self.size = int(size)
        self.indices = np.asarray(indices, dtype=np.int64)[order]
        self.weights = np.asarray(weights, dtype=np.float64)[order]

    def values(self, a, b, scale, out):
        out[:] = 0.0
        lo, hi = np.searchsorted(self.indices, [a, b])
        out[self.indices[lo:hi] - a] = scale * self.weights[lo:hi]
        return out


class BlockDirection:
    """u = v on the flat slice [lo, lo + v.size), 0 elsewhere (passes over the array touch only the slice)."""

    def __init__(self, size, lo, v):
        self.size, self.lo, self.v = int(size), int(lo), np.asarray(v, dtype=np.float64)

    def values(self, a, b, scale, out):
        np.multiply(self.v[a - self.lo:b - self.lo], scale, out=out)
        return out


def _failing_elements(result):
    """(flat indices, signs) of the failing elements with a known index (worst list and bisection)."""
    seen, idx, sign = set(), [], []
    for e in [*result.worst, *getattr(result, "located", [])]:
        if not e.failed or e.index is None or e.index in seen:
            continue
        seen.add(e.index)
        idx.append(int(np.ravel_multi_index(e.index, result.shape)))
        d = e.analytic - e.numeric
        sign.append(1.0 if not np.isfinite(d) or d >= 0 else -1.0)
    return idx, sign


def direction_for(result):
    """(u, lo, hi, description) for an ArrayResult: its failing elements, else a seeded random direction."""
    size = int(np.prod(result.shape, dtype=np.int64))
    idx, sign = _failing_elements(result)
    if idx:
        idx, sign = idx[:SHOW_WORST], sign[:SHOW_WORST]
        u = SparseDirection(size, idx, sign)
        return u, int(u.indices[0]), int(u.indices[-1]) + 1, f"the {len(idx)} failing element(s) shown"
    rng = np.random.default_rng([zlib.crc32(result.name.encode()), 7])
    n = min(size, MAX_BLOCK)
    lo = int(rng.integers(0, size - n + 1))
    u = BlockDirection(size, lo, rng.standard_normal(n))
    if n == size:
        return u, 0, size, "a random direction"
    return u, lo, lo + n, f"a random direction on {n} consecutive elements"


def _floor(method, h, dtype, a, terms, S):
    analytic = tol_model.analytic_rtol(dtype) * (terms + abs(a))
    return FLOOR_SAFETY * (analytic + method.floor(h, S, terms + abs(a)))


def classify(steps, errors, floors):
    """(order, verdict) from e(h): the slope over the steps above the floor (see the module docstring)."""
    steps, errors, floors = (np.asarray(v, dtype=np.float64) for v in (steps, errors, floors))
    finite = np.isfinite(errors)
    if not finite.all():
        return None, "nonfinite" if not finite.any() else "irregular"
    resolved = errors > floors
    if resolved.sum() < 2:
        return None, "plateau" if resolved.any() and resolved[-1] else "exact"
    # the truncation range: the first run of steps above the floor, from the largest step down
    first = int(np.flatnonzero(resolved)[0])
    stop = first + (int(np.argmin(resolved[first:])) if not resolved[first:].all() else resolved[first:].size)
    if stop - first < 2:
        return None, "plateau" if resolved[-1] else "irregular"
    x, y = np.log10(steps[first:stop]), np.log10(errors[first:stop])
    order = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
    if order >= RIGHT_ORDER:
        return order, "converges"
    run = errors[first:stop]
    if order < WRONG_ORDER and run.max() <= FLAT * run.min():
        return order, "plateau"
    return order, "irregular"


def affordable(result, method: str, steps=VERDICT_STEPS) -> bool:
    """Whether to measure `result`'s convergence in the verdict (BUDGET_FRACTION, BUDGET_SECONDS)."""
    if not result.passed:
        return True
    per_forward = result.seconds / max(result.forwards, 1)
    cost = per_forward * len(steps) * get_method(method).forwards
    return cost <= max(BUDGET_FRACTION * result.seconds, BUDGET_SECONDS)


def not_measured(result, method: str, steps=VERDICT_STEPS, why=None) -> Convergence:
    """The verdict's line for a passing array whose measurement would cost more than its check (or `why`
    it was not measured)."""
    method = get_method(method)
    n = len(steps) * method.forwards
    why = why or (f"not measured: passing, and {n} more forwards would cost more than half this array's "
                  f"check")
    return Convergence(result.name, method.name, np.asarray(steps, float), np.zeros(0), np.zeros(0), None,
                       "skipped", f"{why}; gradcheck explain sweeps eps")


def measure(diff, name: str, g, result, steps=VERDICT_STEPS, key=None) -> Convergence:
    """e(h) for each h in `steps` along direction_for(result), using the checker's Differencer `diff`.

    The forwards spent are counted in the Convergence, not in diff (the check's own forward counts stay
    what the strategy spent).
    """
    key = result.name if key is None else key
    method = diff.method
    gflat = np.ascontiguousarray(np.real(g), dtype=np.float64).reshape(-1)
    if gflat.size == 0 or not np.all(np.isfinite(gflat)):
        return Convergence(key, method.name, np.asarray(steps, float), np.zeros(0), np.zeros(0), None,
                           "skipped", "analytic gradient not finite" if gflat.size else "empty array")
    u, lo, hi, description = direction_for(result)
    dtype = np.dtype(result.dtype) if np.dtype(result.dtype).kind in "fc" else np.dtype(np.float64)
    if np.asarray(g).dtype.kind == "f" and tol_model.unit_roundoff(g.dtype) > tol_model.unit_roundoff(dtype):
        dtype = np.asarray(g).dtype
    errors, floors, analytic = [], [], []
    with diff.aside() as spent:
        for h in steps:
            along = diff.direction(name, u, gflat, lo, hi, eps=float(h))
            errors.append(abs(along.analytic - along.numeric))
            floors.append(_floor(method, float(h), dtype, along.analytic, along.terms, diff.S))
            analytic.append(along.analytic)
    order, verdict = classify(steps, errors, floors)
    if verdict == "plateau" and result.failed == 0 and not getattr(diff.layer, "complex_safe", False):
        verdict = "irregular"  # kinks (ReLU, max pool) crossed by the larger steps (or coinciding at an
        # undecided point), not a wrong gradient
    return Convergence(key, method.name, np.asarray(steps, float), np.asarray(errors), np.asarray(floors),
                       order, verdict, description, spent[0], np.asarray(analytic), method.order)


def sweep(diff, name: str, g, result, steps=None) -> Convergence:
    """e(h) over `steps` (default sweep_steps(result.eps)): the error-vs-eps picture of one array (computed
    by the check when asked to explain, so renderers only draw it)."""
    return measure(diff, name, g, result, sweep_steps(result.eps) if steps is None else steps)
