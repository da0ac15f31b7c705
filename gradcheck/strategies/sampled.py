"""sampled: `samples` distinct coordinates per array, drawn with the array's seeded rng (all of them when
the array is smaller). With a structure they are packed into groups of disjoint footprints
(structure.pack: sampled weights of different output units share one call of the method)."""

from __future__ import annotations

import numpy as np

from gradcheck.engine import structure
from gradcheck.strategies.coordinates import check_coordinates
from gradcheck.strategies.plans import counted, run

DEFAULT_SAMPLES = 16  # coordinates per array


def evaluate(diff, name, samples, rng, eps=None):
    """(coords, numeric, left, right) at the sampled coordinates, in sorted coordinate order."""
    size = diff.size(name)
    coords = np.sort(rng.choice(size, size=min(int(samples), size), replace=False)).astype(np.int64)
    packed = None
    if coords.size > 1 and not diff.parts(name):
        packed = structure.pack(counted(diff.layer, diff), name, diff.arrays(), diff.G.shape, coords, rng,
                                scratch=diff.scratch(name), base=lambda: diff.y0)
    if packed is None:
        return run(diff, name, ((np.array([j], dtype=np.int64), None) for j in coords), coords.size, eps)
    result = run(diff, name, ((g.coords, g.labels) for g in packed), len(packed), eps)
    order = np.argsort(result[0], kind="stable")  # report in sorted coordinate order, as unpacked
    return tuple(None if v is None else v[order] for v in result)


def check_array(check) -> dict:
    return check_coordinates(check, lambda: evaluate(check.diff, check.name, check.samples, check.rng))
