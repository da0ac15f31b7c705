"""exhaustive: every coordinate. With a structure, declared by the layer or inferred from its forward
(strategies.plans.declaration): one call of the method per Group, all of its coordinates perturbed at once
and the output difference split per coordinate by bincount over the group's labels; without: one
coordinate per call. On an inferred plan, what fails or is a kink is re-checked alone (strategies.alone)."""

from __future__ import annotations

import numpy as np

from gradcheck.strategies import plans
from gradcheck.strategies.coordinates import check_coordinates


def plan(check):
    """(plan, total groups) of every coordinate of the array."""
    size = check.diff.size(check.name)
    declared = plans.plan_of(check, size)
    if not plans.grouped(declared):
        return plans.alone(range(size)), size
    return ((g.coords, g.labels) for g in declared.groups()), declared.count


def evaluate(check, eps=None):
    """(coords, numeric, left, right) over every coordinate of the array."""
    groups, total = plan(check)
    progress = check.reporter(check.diff.size(check.name))
    return plans.run(check.diff, check.name, groups, total, eps, progress)


def check_array(check) -> dict:
    size = check.diff.size(check.name)

    def rerun(h):
        coords, numeric, *_ = evaluate(check, h)
        at = np.empty(size)
        at[coords] = numeric
        return at

    return check_coordinates(check, lambda: evaluate(check), rerun, dense=True,
                             group_of=lambda coords: check.declaration.group_of(coords))
