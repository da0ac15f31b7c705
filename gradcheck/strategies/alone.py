"""The safety net of an inferred plan: what fails or is a kink there is checked again, one coordinate per
forward, and the values alone are what is reported.

An inferred declaration (gradcheck.engine.inference) is fitted to a few dozen probes, so it can miss a
coordinate that touches more outputs than the fit allows (one global scale among windows). Such a
footprint can only mix the output changes of coordinates that share a group, so:

- every suspect (a mismatch, a non-finite value or a kink on the grouped plan) is re-checked alone;
- a suspect whose value alone differs from its grouped one by more than its tolerance proves its group
  mixed, and every coordinate of that group is re-checked alone too: the one whose footprint was
  under-estimated is among them, and a gradient wrong in the same way as the estimate (it forgets the same
  outputs) fails there;
- beyond ALONE_LIMIT suspects (a gradient wrong nearly everywhere) the ALONE_LIMIT with the largest
  error / tolerance go first, and the rest only if one of those proves a mixed group;
- the one-sided differences are replaced too, so a failure that a grouped re-run at a smaller step
  (strategies.coordinates, more than REFINE_LIMIT failures) finds passing, its value mixed again, still
  becomes a kink only if the analytic value lies between its one-sided differences alone.

An under-estimated footprint can cost time, never a false alarm or a missed wrong element.
"""

from __future__ import annotations

import numpy as np

from gradcheck.strategies.plans import alone, run

ALONE_LIMIT = 1000  # suspects re-checked alone before the rest may keep their grouped values


def recheck(check, coords, numeric, left, right, suspect, ratio, tolerance, group):
    """(numeric, left, right, number re-checked): the suspects' values (and those of every coordinate of
    a group a suspect proved mixed) replaced by their values alone.

    coords: the flat coordinates checked; suspect: bool per coordinate; ratio: error / tolerance (inf for
    a non-finite one); tolerance: per coordinate; group: each coordinate's group on the plan.
    """
    diff, name = check.diff, check.name
    progress = check.reporter(coords.size)
    numeric = numeric.copy()
    left, right = (None, None) if left is None else (left.copy(), right.copy())
    done = np.zeros(coords.size, dtype=bool)
    todo = np.flatnonzero(suspect)
    todo = todo[np.argsort(-ratio[todo], kind="stable")][:ALONE_LIMIT]
    while todo.size:
        _, c, lft, rgt = run(diff, name, alone(coords[todo]), todo.size, progress=progress)
        mixed = np.abs(c - numeric[todo]) > tolerance[todo]
        numeric[todo] = c
        if left is not None:
            left[todo], right[todo] = lft, rgt
        done[todo] = True
        if not mixed.any():
            break
        todo = np.flatnonzero(~done & (suspect | np.isin(group, group[todo[mixed]])))
    return numeric, left, right, int(done.sum())

