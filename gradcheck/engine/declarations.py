"""The structure declaration language: what ``layer.structure`` returns, parsed and validated.

The declaration (plain data, so ``layers`` never imports ``gradcheck``)::

    layer.structure(name, shapes) -> tuple, one entry per axis of arrays[name], or None (no structure)

``shapes`` maps every array name forward takes to its shape. Each entry says which output elements a
coordinate with index ``i`` on that input axis can touch:

    None                              unrestricted: i may touch the whole output
    a (an int)                        identity onto output axis a: i touches only o = i on axis a
    (a, stride, start, size)          window onto output axis a: i touches o with
                                      o*stride + start <= i <= o*stride + start + size - 1

Output axes no input axis maps to are touched in full. Examples: FC ``x (N, D) -> y (N, F)``: ``(0, None)``;
``W (D, F)``: ``(None, 1)``; ``b (F,)``: ``(1,)``; conv ``x (N, C, H, W)`` with kernel kh x kw, stride s,
pad p: ``(0, None, (2, s, -p, kh), (3, s, -p, kw))``; elementwise on 4-D: ``(0, 1, 2, 3)``.

Colouring (used by gradcheck.engine.structure to group coordinates): a coordinate's colour is its full
index on unrestricted axes and its residue modulo the period ``P = min(size, length)`` on window axes (two
coordinates P apart never share an output: each window holds ``size`` consecutive indices); identity axes
are shared by all colours.

Several outputs (gradcheck.engine.outputs): the checker sees their concatenation, one flat output, and
the layer declares per output, ``layer.structure(name, shapes, output)``, which comes here as a
:class:`PerOutput`. Each output's declaration is parsed against that output's shape; the colouring of an
input axis must hold on every output at once, so it is the finest one: an axis unrestricted on any output
is coloured by its full index, else by the residue modulo the least common multiple of its periods
(identity 1, window ``min(size, length)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


class StructureMismatch(ValueError):
    """A layer's structure declaration is malformed or contradicted by its forward."""


@dataclass(frozen=True)
class PerOutput:
    """The declaration of a layer with several outputs, seen as one flat output (their concatenation).

    outputs: (name, shape) per output, in order; entries: one declaration (as above) per output, for the
    same input array.
    """

    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    entries: tuple


@dataclass(frozen=True)
class Axis:
    """One input axis of a validated declaration: kind is "full", "same" or "window" (how it maps onto
    the output); period: its colouring (0: the kind's own; several outputs may make it finer)."""

    kind: str
    length: int
    out: int | None = None
    stride: int = 1
    start: int = 0
    size: int = 1
    period: int = 0

    @property
    def step(self) -> int:
        """Two indices of one colour are `step` apart (full: one index per colour)."""
        if self.period:
            return self.period
        own = {"full": self.length, "same": 1, "window": min(self.size, self.length)}[self.kind]
        return max(own, 1)

    @property
    def colours(self) -> int:
        return 0 if self.length == 0 else self.step

    def members(self, colour: int) -> np.ndarray:
        """Indices on this axis belonging to a colour (in the order they are laid out in coords)."""
        return np.arange(colour, self.length, self.step, dtype=np.int64)

    def positions(self, colour: int, n_out: int) -> np.ndarray:
        """For each index o of output axis ``out``: position in members(colour) of the one index touching
        it, or -1."""
        o = np.arange(n_out, dtype=np.int64)
        step = self.step
        if self.kind == "same":
            return np.where((o < self.length) & (o % step == colour), o // step, -1)
        lo = np.maximum(o * self.stride + self.start, 0)
        hi = np.minimum(o * self.stride + self.start + self.size - 1, self.length - 1)
        i = lo + (colour - lo) % step  # smallest index >= lo of this residue
        return np.where(i <= hi, (i - colour) // step, -1)


@dataclass(frozen=True)
class Part:
    """The declaration for one output: its name (None for a single-output layer), its shape, where its
    elements start in the flat output, and the input's axes."""

    output: str | None
    shape: tuple[int, ...]
    offset: int
    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def parse(layer, name, shape, y_shape, entries, output=None) -> tuple[Axis, ...]:
    """Validate a declaration against the input and output shapes."""
    where = f"{type(layer).__name__}.structure({name!r}" + ("" if output is None else f", {output!r}") + ")"
    if not isinstance(entries, tuple | list) or len(entries) != len(shape):
        raise StructureMismatch(
            f"{where}: expected one entry per axis of {name} (shape {tuple(shape)}), got {entries!r}")
    axes, used = [], set()
    for k, (entry, length) in enumerate(zip(entries, shape, strict=True)):
        if entry is None:
            axes.append(Axis("full", length))
            continue
        if isinstance(entry, int | np.integer):
            axis = Axis("same", length, int(entry))
        elif isinstance(entry, tuple | list) and len(entry) == 4:
            out, stride, start, size = (int(v) for v in entry)
            if stride < 1 or size < 1:
                raise StructureMismatch(f"{where}: axis {k} window {entry!r} needs stride >= 1 and size >= 1")
            axis = Axis("window", length, out, stride, start, size)
        else:
            raise StructureMismatch(
                f"{where}: axis {k} entry {entry!r} is not None, an output axis, "
                "or (axis, stride, start, size)"
            )
        if not 0 <= axis.out < len(y_shape):
            what = "the output" if output is None else f"output {output!r}"
            raise StructureMismatch(
                f"{where}: axis {k} maps to output axis {axis.out}, but {what} has shape {tuple(y_shape)}"
            )
        if axis.out in used:
            raise StructureMismatch(f"{where}: two axes of {name} map to output axis {axis.out}")
        used.add(axis.out)
        axes.append(axis)
    return tuple(axes)


def parts_of(layer, name, shape, y_shape, entries) -> tuple[Part, ...]:
    """The parts of a declaration (one, or one per output of a PerOutput), on a common colouring."""
    if not isinstance(entries, PerOutput):
        return (Part(None, tuple(y_shape), 0, parse(layer, name, shape, y_shape, entries)),)
    parts, offset = [], 0
    for (output, out_shape), declared in zip(entries.outputs, entries.entries, strict=True):
        out_shape = tuple(int(n) for n in out_shape)
        axes = parse(layer, name, shape, out_shape, declared, output)
        parts.append(Part(output, out_shape, offset, axes))
        offset += math.prod(out_shape)
    if offset != math.prod(y_shape):
        raise StructureMismatch(f"{type(layer).__name__}: the outputs hold {offset} elements, the flat "
                                f"output {math.prod(y_shape)}")
    steps = []
    for j, length in enumerate(shape):
        axes = [p.axes[j] for p in parts]
        full = any(a.kind == "full" for a in axes)
        step = length if full else math.lcm(*(a.step for a in axes))
        steps.append(max(min(step, length), 1))
    return tuple(replace(p, axes=tuple(replace(a, period=s) for a, s in zip(p.axes, steps, strict=True)))
                 for p in parts)


def part_of(parts, o) -> Part | None:
    """The part (output) that flat output element o belongs to."""
    return next((p for p in parts if p.offset <= o < p.offset + p.size), None)


def output_element(parts, o) -> str:
    """Flat output element o in the layer's own terms: ``y(1, 2)``, or ``c[1, 2]`` of an output c."""
    p = part_of(parts, o)
    if p is None:
        return f"y[{o}]"
    index = tuple(int(i) for i in np.unravel_index(o - p.offset, p.shape))
    return f"y{index}" if p.output is None else f"{p.output}{list(index)}"
