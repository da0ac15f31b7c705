"""The check of a set of coordinates, shared by the exhaustive and sampled strategies.

Per coordinate: analytic g[j] against the method's numeric derivative, classified by
gradcheck.engine.verdict. With a method that has one-sided differences, a failure is re-tested at the
smaller steps eps/10, eps/100 (the method's refine_factors) before it is reported: a right gradient next
to a kink within eps passes there with an error that really fell; a wrong one plateaus. A method with a
fallback (richardson: central) hands the coordinates whose one-sided differences disagree (a kink within
its wider stencil) to it: their values, verdicts and tolerances are the fallback's. On an inferred plan
(strategies.plans.inferred) every suspect is first re-checked alone (strategies.alone).
"""

from __future__ import annotations

import time

import numpy as np

from gradcheck.engine import kinks as kink_groups
from gradcheck.engine import tolerance as tol_model
from gradcheck.engine.verdict import KINK, MISMATCH, NONFINITE, OK, UNDECIDED, Verdict, classify, failed
from gradcheck.results import SHOW_WORST, Element
from gradcheck.strategies import alone, plans

DENSE_NUMERIC = 1 << 22  # sampled: above this many elements the report keeps (coords, values), not an array


def elements(key, shape, coords, analytic, numeric, left, right, codes, error, tolerance):
    """(kinks, worst up to SHOW_WORST by ratio, margin) from vectorised results over `coords` (None: one
    value per direction, no index)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0, 0.0, error / tolerance)
    ratio = np.where(np.isnan(ratio) | (codes == NONFINITE), np.inf, ratio)

    def element(i):
        index = tuple(int(v) for v in np.unravel_index(int(coords[i]), shape)) if coords is not None else None
        return Element(key, index, float(analytic[i]), float(numeric[i]), float(error[i]),
                       float(tolerance[i]), Verdict.of(codes[i]), None if left is None else float(left[i]),
                       None if right is None else float(right[i]))

    kink = codes == KINK
    kinks = [element(i) for i in np.flatnonzero(kink)]
    rest = np.where(kink, -1.0, ratio)
    margin = float(rest.max()) if rest.size and (~kink).any() else 0.0
    order = np.argsort(-rest, kind="stable")[:SHOW_WORST]
    worst = [element(i) for i in order if not kink[i]]
    return kinks, worst, margin


def _cleared(check, coords, analytic, error, tolerance, rounding, failing, rerun):
    """Which failing coordinates pass at a smaller step with an error that really fell: a kink within
    eps, not a wrong gradient (the method's re-test rules: Method.refine_factors, retest, refined).
    rerun(h) -> numeric at every coordinate (one more pass of the plan), used when there are more than
    REFINE_LIMIT failures. tolerance, rounding: at eps, per coordinate or one for all."""
    diff, name, method = check.diff, check.name, check.method
    cleared = np.zeros(coords.size, dtype=bool)
    pending = np.array(failing, dtype=bool)
    grows = 0.0 if check.atol_given is not None else rounding  # a caller's atol does not grow as 1/h
    scale = check.scale
    for factor, h, rtol_h, atol_h in check.smaller_steps():
        todo = np.flatnonzero(pending & method.retest(error, tolerance, grows, factor))
        if todo.size == 0:
            break
        if todo.size <= tol_model.REFINE_LIMIT or rerun is None:
            picked = coords[todo]
            numeric = np.concatenate([diff.coordinates(name, picked[i:i + 1], eps=h)[0]
                                      for i in range(picked.size)])
        else:  # many failures (most likely a wrong gradient): one more pass of the grouped plan
            numeric = rerun(h)[coords[todo]]
        if atol_h is None:
            atol_h = check.atol_at(h, rtol_h, scale, diff.bound(name, coords[todo]))
        err_h = np.abs(analytic[todo] - numeric)
        ok, settled = method.refined(error[todo], tolerance[todo], err_h,
                                     tol_model.tolerance(numeric, rtol_h, atol_h))
        cleared[todo[ok]] = True
        pending[todo[settled]] = False
    return cleared


def _verdicts(check, coords, analytic, numeric, left, right, rerun, retested=None):
    """(codes, error, tolerance, atol, ties, warnings) of values the check's method measured at `coords`:
    classify() under its error model (its own Bound per element when it measured one) and its kink rules,
    the failures among `retested` (default all) re-tested at smaller steps, and the kinks that coincide
    analysed (gradcheck.engine.kinks; not for a method that hands its kinks to a fallback)."""
    bound = check.diff.bound(check.name, coords)
    atol, rounding = check.coordinate_atol(bound), check.rounding_of(bound)
    judge = dict(rtol=check.rtol, atol=atol, eps=check.eps, rounding=rounding, method=check.method)
    codes, error, tolerance = classify(analytic, numeric, left, right, **judge)
    failing = (codes == MISMATCH) if retested is None else (codes == MISMATCH) & retested
    if left is not None and failing.any():  # re-test failures at smaller steps
        cleared = _cleared(check, coords, analytic, error, tolerance, rounding, failing, rerun)
        if cleared.any():
            codes, error, tolerance = classify(analytic, numeric, left, right, cleared=cleared, **judge)
    ties, warnings = [], []
    if left is not None and check.method.fallback is None:  # kinks that coincide: tie groups, and points
        # finite differences cannot decide
        codes, ties, warnings = kink_groups.refine(check, coords, analytic, left, right, codes)
    return codes, error, tolerance, atol, ties, warnings


def rough(check, coords, left, right):
    """Which coordinates a method with a fallback (Method.fallback) hands to it: its one-sided differences
    disagree beyond its own kink_threshold (a kink within its stencil)."""
    if check.method.fallback is None or left is None:
        return np.zeros(np.size(coords), dtype=bool)
    rounding = check.rounding_of(check.diff.bound(check.name, coords))
    with np.errstate(invalid="ignore", over="ignore"):  # NaN compares False: not rough, a failure of its own
        return np.abs(right - left) > check.method.kink_threshold(left, right, check.eps, rounding)


def fallback(check, coords, analytic):
    """(numeric, left, right, codes, error, tolerance, atol, ties, warnings) of `coords` measured one at a
    time by the method's fallback, and judged by it (its step, error model, kink rules and re-tests)."""
    with check.as_fallback() as fb:
        rows = [fb.diff.coordinates(fb.name, coords[i:i + 1], eps=fb.eps) for i in range(coords.size)]
        numeric, left, right = (np.concatenate([r[k] for r in rows]) for k in range(3))
        return (numeric, left, right, *_verdicts(fb, coords, analytic, numeric, left, right, None))


def _recheck_inferred(check, coords, analytic, numeric, left, right, group_of):
    """(numeric, left, right, rechecked): on an inferred plan, every coordinate that is not ok is measured
    again alone (strategies.alone) before any verdict; elsewhere the values as they are."""
    if not plans.inferred(check.declaration) or group_of is None:
        return numeric, left, right, 0
    bound = check.diff.bound(check.name, coords)
    codes, error, tolerance = classify(analytic, numeric, left, right, rtol=check.rtol,
                                       atol=check.coordinate_atol(bound), eps=check.eps,
                                       rounding=check.rounding_of(bound), method=check.method)
    if not (codes != OK).any():
        return numeric, left, right, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(np.where(error == 0, 0.0, error / tolerance), nan=np.inf)
    return alone.recheck(check, coords, numeric, left, right, codes != OK, ratio, tolerance, group_of(coords))


def check_coordinates(check, evaluate, rerun=None, dense=False, group_of=None) -> dict:
    """Compare the coordinates evaluate() returns, (coords, numeric, left, right), with the analytic
    gradient; the fields of an ArrayResult. rerun(h): see _cleared. dense: every coordinate is evaluated
    (numeric is kept as an array; otherwise as (coords, values) above DENSE_NUMERIC elements). The
    coordinates whose stencil holds a kink (rough) are measured and judged by the method's fallback.
    group_of(coords): each coordinate's group on the plan evaluate() ran (the safety net's groups when
    that plan was inferred, check.declaration)."""
    diff, shape = check.diff, check.shape
    t0, f0 = time.perf_counter(), diff.forwards
    coords, numeric, left, right = evaluate()
    analytic = check.analytic_at(coords)
    numeric, left, right, rechecked = _recheck_inferred(check, coords, analytic, numeric, left, right,
                                                        group_of)
    handed = rough(check, coords, left, right)
    codes, error, tolerance, atol, ties, warnings = _verdicts(check, coords, analytic, numeric, left, right,
                                                              rerun, ~handed)
    if handed.any():  # their values, verdicts and tolerances are the fallback's
        at = np.flatnonzero(handed)
        numeric, left, right, error, tolerance = (np.array(v, dtype=np.float64)
                                                  for v in (numeric, left, right, error, tolerance))
        codes = np.array(codes)
        atol = np.full(coords.shape, atol) if np.ndim(atol) == 0 else np.array(atol, dtype=np.float64)
        sub = fallback(check, coords[at], analytic[at])
        for whole, part in zip((numeric, left, right, codes, error, tolerance, atol), sub[:7], strict=True):
            whole[at] = part
        ties, warnings = [*ties, *sub[7]], [*warnings, *sub[8]]
    kinks, worst, margin = elements(check.key, shape, coords, analytic, numeric, left, right, codes, error,
                                    tolerance)
    if ties:
        worst = kink_groups.with_ties(worst, ties, SHOW_WORST)
        margin = max(margin, *(e.ratio for e in ties))
    values, sampled = None, None
    if dense or coords.size == 0 or int(np.prod(shape, dtype=np.int64)) <= DENSE_NUMERIC:
        values = np.full(shape, np.nan)
        values.reshape(-1)[coords] = numeric
    else:  # a few samples of a huge array: not an array-sized NaN (0.8 GB and its page faults at 100M)
        sampled = (coords, numeric)
    return dict(checked=int(coords.size), failed=int(np.count_nonzero(failed(codes))), kinks=kinks,
                worst=worst, margin=margin, numeric=values, sampled=sampled, forwards=diff.forwards - f0,
                seconds=time.perf_counter() - t0, atol=reported_atol(atol, codes),
                undecided=int(np.count_nonzero(codes == UNDECIDED)), warnings=warnings,
                fallback=int(np.count_nonzero(handed)), inferred=plans.inferred_entries(check.declaration),
                rechecked=rechecked)


def reported_atol(atol, codes) -> float:
    """One atol for the report: the atol itself, or of a per-element one (a method's Bound) its largest
    value off the kinks (whose a-posteriori truncation bound is the kink itself)."""
    if np.ndim(atol) == 0:
        return float(atol)
    atol = np.asarray(atol)
    smooth = atol[np.asarray(codes) != KINK]
    return float(np.max(smooth if smooth.size else atol, initial=0.0))
