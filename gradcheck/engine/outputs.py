"""Layers with several outputs, seen by the rest of the checker as a layer with one flat output.

The contract (README, "The layer contract"): a layer with an ``outputs`` tuple of names returns them
from forward as a tuple before the cache, and takes their cotangents in backward as a tuple in the same
order::

    layer.outputs               -> ("h", "c")
    layer.forward(**arrays)     -> ((h, c), cache)
    layer.backward(dy, cache)   -> {name: gradient},   dy = (dh, dc)
    layer.structure(name, shapes, output) -> the declaration of one output (gradcheck.engine.structure)

With one seeded cotangent G_k per output, the checked loss is

    L = sum_k sum(G_k * y_k) = sum(G * y),   y = concat_k(ravel(y_k)),  G = concat_k(ravel(G_k))

so the problem, the differencer, every method's ``split(G * (y1 - y2), labels, k)`` and the strategies
work on the flat y unchanged: ``flattened`` wraps the layer once, at the base point, and only this module
knows where one output ends and the next begins. A layer without ``outputs`` (or with ``outputs = None``)
has one output, returned as it is.
"""

from __future__ import annotations

import math

import numpy as np

from gradcheck.engine.declarations import PerOutput
from gradcheck.errors import LayerContractError


def names_of(layer) -> tuple[str, ...] | None:
    """The layer's output names, or None for a single-output layer."""
    names = getattr(layer, "outputs", None)
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, tuple | list) or not names \
            or not all(isinstance(n, str) for n in names):
        raise LayerContractError(f"{type(layer).__name__}: outputs must be a tuple of output names, got "
                                 f"{names!r}")
    return tuple(names)


def values_of(layer, names, ys) -> tuple[np.ndarray, ...]:
    if not isinstance(ys, tuple | list) or len(ys) != len(names):
        got = (f"a {type(ys).__name__} of {len(ys)}" if isinstance(ys, tuple | list)
               else "an array" if isinstance(ys, np.ndarray) else f"a {type(ys).__name__}")
        raise LayerContractError(
            f"{type(layer).__name__}: forward must return (({', '.join(names)}), cache), one array per name "
            f"in outputs; its first value is {got}")
    return tuple(np.asarray(y) for y in ys)


def shapes_of(layer, y) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    """The shape of forward's first value `y`: a shape, or {output name: shape} for several outputs."""
    names = names_of(layer)
    if names is None:
        return tuple(np.shape(y))
    return {n: tuple(a.shape) for n, a in zip(names, values_of(layer, names, y), strict=True)}


class Flattened:
    """A layer with several outputs as one with a single flat output (see the module's docstring).

    layer: the user's layer; shapes: {output name: shape} at the base point. inputs, constants,
    complex_safe and anything else are the layer's own; ``output_shapes`` names the outputs.
    """

    outputs = None  # one (flat) output, as far as the checker is concerned

    def __init__(self, layer, shapes: dict[str, tuple[int, ...]]):
        self.layer = layer
        self.output_shapes = dict(shapes)
        self._names = tuple(shapes)
        ends = np.cumsum([math.prod(s) for s in shapes.values()])
        self._bounds = list(zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True))

    def __getattr__(self, attr):
        if attr == "layer":  # not set yet (copy, pickle): no recursion
            raise AttributeError(attr)
        return getattr(self.layer, attr)

    def join(self, ys) -> np.ndarray:
        """The flat output: every output raveled, concatenated in ``outputs`` order."""
        ys = values_of(self.layer, self._names, ys)
        for n, y in zip(self._names, ys, strict=True):
            if y.shape != self.output_shapes[n]:
                raise LayerContractError(
                    f"{type(self.layer).__name__}: output {n} has shape {y.shape} here and "
                    f"{self.output_shapes[n]} at the base point: an output's shape must not depend on the "
                    "values of the arrays")
        return np.concatenate([y.reshape(-1) for y in ys])

    def split(self, flat) -> tuple[np.ndarray, ...]:
        """The per-output views of a flat array (a cotangent G): (G_h, G_c), each its output's shape."""
        flat = np.asarray(flat).reshape(-1)
        return tuple(flat[a:b].reshape(self.output_shapes[n])
                     for n, (a, b) in zip(self._names, self._bounds, strict=True))

    def element(self, o: int) -> tuple[str, tuple[int, ...]]:
        """Flat output element o as (output name, index in that output)."""
        for n, (a, b) in zip(self._names, self._bounds, strict=True):
            if a <= o < b:
                return n, tuple(int(i) for i in np.unravel_index(o - a, self.output_shapes[n]))
        raise IndexError(f"flat output element {o} is outside the {self._bounds[-1][1]} elements")

    def forward(self, **arrays):
        ys, cache = self.layer.forward(**arrays)
        return self.join(ys), cache

    def backward(self, dy, cache):
        return self.layer.backward(self.split(dy), cache)

    def structure(self, name, shapes):
        """The layer's per-output declarations for input `name` as one PerOutput, or None when it declares
        nothing for some output (then nothing is grouped)."""
        declare = getattr(self.layer, "structure", None)
        if declare is None:
            return None
        entries = []
        for output in self._names:
            try:
                entry = declare(name, shapes, output)
            except TypeError as exc:
                raise LayerContractError(
                    f"{type(self.layer).__name__}: a layer with outputs declares its structure per output, "
                    f"structure(name, shapes, output); calling it with output {output!r} failed: {exc}"
                ) from None
            if entry is None:
                return None
            entries.append(entry)
        return PerOutput(tuple(self.output_shapes.items()), tuple(entries))


def flattened(layer, y):
    """(layer, y) for the checker: as given for a single-output layer; for several outputs, a Flattened
    layer (named as the user's, so every message names it) and the flat concatenation of forward's
    outputs `y` at the base point."""
    names = names_of(layer)
    if names is None:
        return layer, y
    shapes = shapes_of(layer, y)
    flat = type(type(layer).__name__, (Flattened,), {})(layer, shapes)
    return flat, flat.join(y)

