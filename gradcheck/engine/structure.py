"""Jacobian structure and Curtis-Powell-Reid column grouping for the exhaustive strategy.

Perturbing every coordinate of an input one forward at a time costs one forward per coordinate. When two
coordinates can never touch the same output element, their effects on the output are disjoint, so both
can be perturbed in one forward and the output difference split back per coordinate (Curtis, Powell and
Reid's column grouping of a sparse Jacobian). The structure comes from the layer.

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

Colouring: a coordinate's colour is its full index on unrestricted axes and its residue modulo the period
``P = min(size, length)`` on window axes (two coordinates P apart never share an output: each window
holds ``size`` consecutive indices); identity axes are shared by all colours. One group per colour.

A declaration is not trusted: ``groups`` first perturbs a few random single coordinates and raises
:class:`StructureMismatch` if the output moved outside the declared footprint.

Several outputs (gradcheck.engine.outputs): the checker sees their concatenation, one flat output, and
the layer declares per output, ``layer.structure(name, shapes, output)``, which comes here as a
:class:`PerOutput`. Each output's declaration is parsed against that output's shape; the colouring of an
input axis must hold on every output at once, so it is the finest one: an axis unrestricted on any output
is coloured by its full index, else by the residue modulo the least common multiple of its periods
(identity 1, window ``min(size, length)``). A Group's labels are the outputs' labels concatenated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

PROBES = 3  # random single-coordinate probes that check a declaration before it is used
# Outside the footprint, a change above PROBE_NOISE * eps * scale(y) is a leak, not rounding (FFT convs).
PROBE_NOISE = 1000
COLOUR_CACHE = 64  # colour groups (an output-sized int64 labels array each) pack and footprints keep


class StructureMismatch(ValueError):
    """A layer's structure declaration is malformed or contradicted by its forward."""


@dataclass(frozen=True)
class Group:
    """One forward's worth of coordinates with disjoint output footprints.

    coords: int64 (K,), flat indices into arrays[name].
    labels: int64 (prod(y_shape),), for each flat output element the position in ``coords`` of the one
            coordinate that can touch it, or -1 (untouched by this group).
    """

    coords: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class PerOutput:
    """The declaration of a layer with several outputs, seen as one flat output (their concatenation).

    outputs: (name, shape) per output, in order; entries: one declaration (as above) per output, for the
    same input array.
    """

    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    entries: tuple


@dataclass(frozen=True)
class _Axis:
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
class _Part:
    """The declaration for one output: its name (None for a single-output layer), its shape, where its
    elements start in the flat output, and the input's axes."""

    output: str | None
    shape: tuple[int, ...]
    offset: int
    axes: tuple[_Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _parse(layer, name, shape, y_shape, entries, output=None) -> tuple[_Axis, ...]:
    """Validate a declaration against the input and output shapes."""
    where = f"{type(layer).__name__}.structure({name!r}" + ("" if output is None else f", {output!r}") + ")"
    if not isinstance(entries, tuple | list) or len(entries) != len(shape):
        raise StructureMismatch(
            f"{where}: expected one entry per axis of {name} (shape {tuple(shape)}), got {entries!r}")
    axes, used = [], set()
    for k, (entry, length) in enumerate(zip(entries, shape, strict=True)):
        if entry is None:
            axes.append(_Axis("full", length))
            continue
        if isinstance(entry, int | np.integer):
            axis = _Axis("same", length, int(entry))
        elif isinstance(entry, tuple | list) and len(entry) == 4:
            out, stride, start, size = (int(v) for v in entry)
            if stride < 1 or size < 1:
                raise StructureMismatch(f"{where}: axis {k} window {entry!r} needs stride >= 1 and size >= 1")
            axis = _Axis("window", length, out, stride, start, size)
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


def _parts(layer, name, shape, y_shape, entries) -> tuple[_Part, ...]:
    """The parts of a declaration (one, or one per output of a PerOutput), on a common colouring."""
    if not isinstance(entries, PerOutput):
        return (_Part(None, tuple(y_shape), 0, _parse(layer, name, shape, y_shape, entries)),)
    parts, offset = [], 0
    for (output, out_shape), declared in zip(entries.outputs, entries.entries, strict=True):
        out_shape = tuple(int(n) for n in out_shape)
        axes = _parse(layer, name, shape, out_shape, declared, output)
        parts.append(_Part(output, out_shape, offset, axes))
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


def _labels(axes, members, y_shape, colour) -> np.ndarray:
    """For each element of one output: the position in the group's coords of the coordinate touching it,
    or -1 (flat, C order)."""
    sizes = [len(m) for m in members]
    strides = np.cumprod([1, *sizes[:0:-1]])[::-1]  # C-order strides of the group's grid of members
    labels = np.zeros(y_shape, dtype=np.int64)
    valid = np.ones(y_shape, dtype=bool)
    for axis, c, stride in zip(axes, colour, strides, strict=True):
        if axis.kind == "full":
            continue
        pos = axis.positions(c, y_shape[axis.out])
        bshape = [1] * len(y_shape)
        bshape[axis.out] = len(pos)
        labels += (pos * stride).reshape(bshape)
        valid &= (pos >= 0).reshape(bshape)
    labels[~valid] = -1
    return labels.ravel()


def _group(parts, shape, colour) -> Group:
    """coords and labels of one colour (one colour index per input axis), vectorised over the output;
    the labels of several outputs concatenated."""
    members = [axis.members(c) for axis, c in zip(parts[0].axes, colour, strict=True)]
    coords = np.ravel_multi_index(np.ix_(*members), shape).ravel().astype(np.int64)
    labels = [_labels(p.axes, members, p.shape, colour) for p in parts]
    return Group(coords, labels[0] if len(labels) == 1 else np.concatenate(labels))


def _colour_of(axes, index) -> tuple[int, ...]:
    return tuple(i % axis.step for axis, i in zip(axes, index, strict=True))


def _position_in_group(axes, index) -> int:
    """Position of a coordinate in the coords of its own group (C order over the group's members)."""
    pos = 0
    for axis, c, i in zip(axes, _colour_of(axes, index), index, strict=True):
        pos = pos * len(axis.members(c)) + i // axis.step
    return pos


def _part_of(parts, o) -> _Part | None:
    """The part (output) that flat output element o belongs to."""
    return next((p for p in parts if p.offset <= o < p.offset + p.size), None)


def _output_element(parts, o) -> str:
    """Flat output element o in the layer's own terms: ``y(1, 2)``, or ``c[1, 2]`` of an output c."""
    p = _part_of(parts, o)
    if p is None:
        return f"y[{o}]"
    index = tuple(int(i) for i in np.unravel_index(o - p.offset, p.shape))
    return f"y{index}" if p.output is None else f"{p.output}{list(index)}"


def _probe(layer, name, arrays, y_shape, parts, rng, probes, scratch=None, base=None) -> None:
    """Perturb single random coordinates; the output must not move outside the declared footprint.

    scratch: a writable array equal to arrays[name] (may be its memory) to perturb in place, each element
    put back at once; else one copy is made for all probes (at 100M weights a copy is 0.8 GB and its page
    faults: the checker lends its working copy). base: None, or a callable giving the output at `arrays`
    already computed (the Differencer's y0: one forward for every array probed, not one each)."""
    x = arrays[name]
    shape = x.shape
    y0 = np.asarray(layer.forward(**arrays)[0] if base is None else base())
    xp = np.array(x, copy=True) if scratch is None else scratch
    footprint_of = _footprint_of(parts, shape)
    for p in range(probes):
        flat = int(rng.integers(x.size))
        index = np.unravel_index(flat, shape)
        old = xp.flat[flat]
        h = (1.0 + abs(old)) * rng.choice([-1.0, 1.0])
        xp.flat[flat] = old + h
        try:
            y1 = np.asarray(layer.forward(**{**arrays, name: xp})[0])
        finally:
            xp.flat[flat] = old
        if y1.shape != tuple(y_shape):
            raise StructureMismatch(
                f"{type(layer).__name__}: output shape {y1.shape} under probe {p} of {name}, "
                f"expected {y_shape}"
            )
        same = (y1 == y0) | (np.isnan(y1) & np.isnan(y0))
        diff = np.where(same, 0.0, np.abs(y1 - y0)).ravel()
        footprint = footprint_of(flat)
        finite = np.isfinite(y0) & np.isfinite(y1)
        scale = max(np.max(np.abs(y0[finite]), initial=0.0), np.max(np.abs(y1[finite]), initial=0.0), 1.0)
        eps = np.finfo(y0.dtype).eps if np.issubdtype(y0.dtype, np.inexact) else 0.0
        leak = ~footprint & ~(diff <= PROBE_NOISE * eps * scale)
        if leak.any():
            o = int(np.flatnonzero(leak)[0])
            raise StructureMismatch(
                f"{type(layer).__name__}: structure declared for input {name!r} is wrong: probe {p} "
                f"perturbed {name}{tuple(int(i) for i in index)} and output {_output_element(parts, o)} "
                f"changed by {diff[o]:.3g}, outside the declared footprint ({int(leak.sum())} elements "
                f"leaked)")


def _declared(layer, name, arrays, y_shape, rng, probes, scratch=None, base=None):
    """(parts, shape) of the layer's declaration for ``arrays[name]``, checked by ``probes`` random
    single-coordinate perturbations (in `scratch`, see _probe); None when the layer declares nothing."""
    declare = getattr(layer, "structure", None)
    entries = None if declare is None else declare(name, {k: np.shape(v) for k, v in arrays.items()})
    if entries is None:
        return None
    shape, y_shape = tuple(np.shape(arrays[name])), tuple(int(n) for n in y_shape)
    parts = _parts(layer, name, shape, y_shape, entries)
    if probes and np.size(arrays[name]):
        _probe(layer, name, arrays, y_shape, parts, rng, probes, scratch, base)
    return parts, shape


def groups(layer, name, arrays, y_shape, rng, *, probes=PROBES, scratch=None,
           base=None) -> Iterator[Group] | None:
    """Column groups for ``arrays[name]``, or None when the layer declares no structure for it.

    Validates the declaration and checks it with ``probes`` random single-coordinate perturbations
    (1 + probes forwards, or probes with `base`, see _probe) before returning; the groups themselves are
    produced lazily, one per colour.
    Raises StructureMismatch naming the layer, input and probe when the forward contradicts it.
    """
    declared = _declared(layer, name, arrays, y_shape, rng, probes, scratch, base)
    if declared is None:
        return None
    parts, shape = declared
    return (_group(parts, shape, colour)
            for colour in itertools.product(*(range(axis.colours) for axis in parts[0].axes)))


def touching(layer, name, arrays, y_shape, output, limit) -> np.ndarray | None:
    """Flat coordinates of arrays[name] whose declared footprint holds the flat output element `output`
    (a footprint's inverse: the partners of a tied maximum, its window), or None without a declaration or
    when there are more than `limit` of them. Not probed: for a declaration the check already probed."""
    declared = _declared(layer, name, arrays, y_shape, None, 0)
    if declared is None:
        return None
    parts, shape = declared
    part = _part_of(parts, int(output))
    o = np.unravel_index(int(output) - part.offset, part.shape)
    ranges = []
    for axis in part.axes:
        if axis.kind == "full":
            r = np.arange(axis.length)
        elif axis.kind == "same":
            r = np.arange(o[axis.out], min(o[axis.out] + 1, axis.length))
        else:
            lo = o[axis.out] * axis.stride + axis.start
            r = np.arange(max(lo, 0), min(lo + axis.size, axis.length))
        ranges.append(r.astype(np.int64))
    if int(np.prod([r.size for r in ranges], dtype=np.int64)) > limit:
        return None
    return np.ravel_multi_index(np.ix_(*ranges), shape).ravel().astype(np.int64)


def footprints(layer, name, arrays, y_shape):
    """A function flat coordinate -> boolean mask over the flat output (the elements that coordinate of
    arrays[name] can touch, by the declaration), or None without one. Not probed: for a declaration the
    check already probed."""
    declared = _declared(layer, name, arrays, y_shape, None, 0)
    if declared is None:
        return None
    return _footprint_of(*declared)


def _footprint_of(parts, shape):
    """flat coordinate -> its footprint mask over the flat output; coordinates of one colour share their
    group's labels (a cache of at most COLOUR_CACHE groups)."""
    axes = parts[0].axes
    colours: dict[tuple[int, ...], Group] = {}

    def footprint(flat):
        index = np.unravel_index(int(flat), shape)
        colour = _colour_of(axes, index)
        if colour not in colours:
            if len(colours) >= COLOUR_CACHE:
                colours.clear()
            colours[colour] = _group(parts, shape, colour)
        return colours[colour].labels == _position_in_group(axes, index)

    return footprint


def count(layer, name, arrays, y_shape) -> int | None:
    """Number of groups (forwards) ``groups`` would yield for ``arrays[name]``, without probing."""
    declared = _declared(layer, name, arrays, y_shape, None, 0)
    return None if declared is None else int(np.prod([axis.colours for axis in declared[0][0].axes]))


def pack(layer, name, arrays, y_shape, coords, rng, *, probes=PROBES, scratch=None,
         base=None) -> list[Group] | None:
    """Groups for an arbitrary set of flat coordinates (the sampled strategy), or None without structure.

    Each coordinate's footprint is the set of outputs its own colour group gives it; coordinates are packed
    first-fit into groups whose footprints stay disjoint, so k sampled weights of different output units
    cost one forward (two for central) instead of k. The declaration is probed as for ``groups``.
    """
    declared = _declared(layer, name, arrays, y_shape, rng, probes, scratch, base)
    if declared is None:
        return None
    footprint_of = _footprint_of(*declared)
    bins: list[tuple[list[int], np.ndarray, np.ndarray]] = []  # (coords, used outputs, labels)
    for flat in np.asarray(coords, dtype=np.int64):
        footprint = footprint_of(flat)
        for members, used, labels in bins:
            if not (used & footprint).any():
                labels[footprint] = len(members)
                members.append(int(flat))
                used |= footprint
                break
        else:
            labels = np.full(footprint.size, -1, dtype=np.int64)
            labels[footprint] = 0
            bins.append(([int(flat)], footprint.copy(), labels))
    return [Group(np.array(members, dtype=np.int64), labels) for members, _, labels in bins]
