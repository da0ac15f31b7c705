"""The check of a set of coordinates, shared by the exhaustive and sampled strategies.

Per coordinate: analytic g[j] against the method's numeric derivative, classified by
gradcheck.engine.verdict. With a method that has one-sided differences, a failure is re-tested at the
smaller steps eps/10, eps/100 (tolerance.REFINE_FACTORS) before it is reported: a right gradient next to
a kink within eps passes there with an error that really fell; a wrong one plateaus. On an inferred plan
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
from gradcheck.strategies.setting import rms

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


def _cleared(check, coords, analytic, error, failing, rerun):
    """Which failing coordinates pass at a smaller step with an error that really fell: a kink within
    eps, not a wrong gradient. rerun(h) -> numeric at every coordinate (one more pass of the plan), used
    when there are more than REFINE_LIMIT failures."""
    diff, name = check.diff, check.name
    cleared = np.zeros(coords.size, dtype=bool)
    scale = rms(check.g)
    for h, rtol_h, atol_h in check.smaller_steps():
        atol_h = check.atol_at(h, rtol_h, scale) if atol_h is None else atol_h
        todo = np.flatnonzero(failing & ~cleared)
        if todo.size == 0:
            break
        if todo.size <= tol_model.REFINE_LIMIT or rerun is None:
            picked = coords[todo]
            numeric = np.concatenate([diff.coordinates(name, picked[i:i + 1], eps=h)[0]
                                      for i in range(picked.size)])
        else:  # many failures (most likely a wrong gradient): one more pass of the grouped plan
            numeric = rerun(h)[coords[todo]]
        err_h = np.abs(analytic[todo] - numeric)
        ok = ((err_h <= tol_model.tolerance(numeric, rtol_h, atol_h))
              & (err_h <= tol_model.REFINE_DROP * error[todo]))
        cleared[todo[ok]] = True
    return cleared


def check_coordinates(check, evaluate, rerun=None, dense=False, group_of=None) -> dict:
    """Compare the coordinates evaluate() returns, (coords, numeric, left, right), with the analytic
    gradient; the fields of an ArrayResult. rerun(h): see _cleared. dense: every coordinate is evaluated
    (numeric is kept as an array; otherwise as (coords, values) above DENSE_NUMERIC elements).
    group_of(coords): each coordinate's group on the plan evaluate() ran (the safety net's groups when
    that plan was inferred, check.declaration)."""
    diff, shape = check.diff, check.shape
    t0, f0 = time.perf_counter(), diff.forwards
    coords, numeric, left, right = evaluate()
    analytic = check.g.reshape(-1)[coords].astype(np.float64)
    atol = check.coordinate_atol()
    judge = dict(rtol=check.rtol, atol=atol, eps=check.eps, rounding=check.rounding)
    codes, error, tolerance = classify(analytic, numeric, left, right, **judge)
    rechecked = 0
    if plans.inferred(check.declaration) and group_of is not None and (codes != OK).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.nan_to_num(np.where(error == 0, 0.0, error / tolerance), nan=np.inf)
        numeric, left, right, rechecked = alone.recheck(check, coords, numeric, left, right, codes != OK,
                                                        ratio, tolerance, group_of(coords))
        codes, error, tolerance = classify(analytic, numeric, left, right, **judge)
    if left is not None and (codes == MISMATCH).any():  # re-test failures at smaller steps
        cleared = _cleared(check, coords, analytic, error, codes == MISMATCH, rerun)
        if cleared.any():
            codes, error, tolerance = classify(analytic, numeric, left, right, cleared=cleared, **judge)
    ties, warnings = [], []
    if left is not None:  # kinks that coincide: tie groups, and points finite differences cannot decide
        codes, ties, warnings = kink_groups.refine(check, coords, analytic, left, right, codes)
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
                seconds=time.perf_counter() - t0, atol=atol,
                undecided=int(np.count_nonzero(codes == UNDECIDED)), warnings=warnings,
                inferred=plans.inferred_entries(check.declaration), rechecked=rechecked)
