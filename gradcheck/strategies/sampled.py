"""sampled: `samples` distinct coordinates per array, drawn with the array's seeded rng (all of them when
the array is smaller). With a structure, declared or inferred (strategies.plans.declaration), they are
packed into groups of disjoint footprints (Declaration.pack: sampled weights of different output units
share one call of the method)."""

from __future__ import annotations

import numpy as np

from gradcheck.strategies import plans
from gradcheck.strategies.coordinates import check_coordinates

DEFAULT_SAMPLES = 16  # coordinates per array


def evaluate(check, bins=None):
    """(coords, numeric, left, right) at the sampled coordinates, in sorted coordinate order. bins: a dict
    that gets each packed coordinate's group (the safety net's groups on an inferred plan)."""
    size, rng = check.diff.size(check.name), check.rng
    coords = np.sort(rng.choice(size, size=min(int(check.samples), size), replace=False)).astype(np.int64)
    if check.lent:  # before the plan's probes make a working copy
        check.lend(coords)
    declared = plans.plan_of(check, coords.size) if coords.size > 1 else None
    progress = check.reporter(coords.size)
    if not plans.grouped(declared):
        return plans.run(check.diff, check.name, plans.alone(coords), coords.size, progress=progress)
    packed = declared.pack(coords)
    if bins is not None:
        bins.update((int(c), b) for b, g in enumerate(packed) for c in g.coords)
    result = plans.run(check.diff, check.name, ((g.coords, g.labels) for g in packed), len(packed),
                       progress=progress)
    order = np.argsort(result[0], kind="stable")  # report in sorted coordinate order, as unpacked
    return tuple(None if v is None else v[order] for v in result)


def check_array(check) -> dict:
    bins = {}
    return check_coordinates(check, lambda: evaluate(check, bins),
                             group_of=lambda coords: np.array([bins[int(c)] for c in coords], dtype=np.int64))
