"""Jacobian structure and column grouping for the exhaustive strategy (minimal stub; full version follows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Group:
    """Coordinates perturbed together in one forward pass, and which of them touches each output element."""

    coords: np.ndarray
    labels: np.ndarray


def groups(layer, name, arrays, y_shape, rng):
    """Column groups for ``arrays[name]``, or None when the layer declares no structure for it."""
    declare = getattr(layer, "structure", None)
    if declare is None:
        return None
    return None
