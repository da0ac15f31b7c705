"""exhaustive: every coordinate. With a structure (gradcheck.engine.structure.groups): one call of the
method per Group, all of its coordinates perturbed at once and the output difference split per coordinate
by bincount over the group's labels; without: one coordinate per call."""

from __future__ import annotations

import numpy as np

from gradcheck.engine import structure
from gradcheck.strategies.coordinates import check_coordinates
from gradcheck.strategies.plans import counted, run


def plan(diff, name, y_shape, rng):
    """(plan, total groups) of every coordinate of arrays[name]."""
    size = diff.size(name)
    groups = None if diff.parts(name) else structure.groups(counted(diff.layer, diff), name, diff.arrays(),
                                                             y_shape, rng, scratch=diff.scratch(name),
                                                             base=lambda: diff.y0)
    if groups is None:  # no declaration, or a complex array (its parts: the declaration is per element)
        return ((np.array([j], dtype=np.int64), None) for j in range(size)), size
    return ((g.coords, g.labels) for g in groups), structure.count(diff.layer, name, diff.arrays(), y_shape)


def evaluate(diff, name, y_shape, rng, eps=None):
    """(coords, numeric, left, right) over every coordinate of arrays[name]."""
    groups, total = plan(diff, name, y_shape, rng)
    return run(diff, name, groups, total, eps)


def check_array(check) -> dict:
    diff, name = check.diff, check.name
    size = int(np.prod(check.shape, dtype=np.int64))

    def rerun(h):
        coords, numeric, *_ = evaluate(diff, name, check.y_shape, check.rng, h)
        at = np.empty(size)
        at[coords] = numeric
        return at

    return check_coordinates(check, lambda: evaluate(diff, name, check.y_shape, check.rng), rerun, dense=True)
