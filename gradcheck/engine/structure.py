"""Jacobian structure and Curtis-Powell-Reid column grouping for the coordinate strategies.

Perturbing every coordinate of an input one forward at a time costs one forward per coordinate. When two
coordinates can never touch the same output element, their effects on the output are disjoint, so both
can be perturbed in one forward and the output difference split back per coordinate (Curtis, Powell and
Reid's column grouping of a sparse Jacobian). The structure comes from the layer's declaration (its
language: gradcheck.engine.declarations); one group per colour. A Group's labels over several outputs are
the outputs' labels concatenated.

A declaration is not trusted: ``declaration`` first perturbs a few random single coordinates and raises
:class:`StructureMismatch` if the output moved outside the declared footprint.

``declaration`` returns the validated declaration as a :class:`Declaration` (groups, count, pack); for an
array with none, gradcheck.engine.inference fits one to the forward and the strategies use it the same way
(``Declaration.inferred`` then says so, and the checker re-checks alone what fails on it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gradcheck.engine.declarations import (
    Axis,
    Part,
    PerOutput,
    StructureMismatch,
    output_element,
    part_of,
    parts_of,
)

PROBES = 3  # random single-coordinate probes that check a declaration before it is used
# Outside the footprint, a change above PROBE_NOISE * eps * scale(y) is a leak, not rounding (FFT convs).
PROBE_NOISE = 1000
COLOUR_CACHE = 64  # colour groups (an output-sized int64 labels array each) pack and footprints keep


@dataclass(frozen=True)
class Group:
    """One forward's worth of coordinates with disjoint output footprints.

    coords: int64 (K,), flat indices into arrays[name].
    labels: int64 (prod(y_shape),), for each flat output element the position in ``coords`` of the one
            coordinate that can touch it, or -1 (untouched by this group).
    """

    coords: np.ndarray
    labels: np.ndarray


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
                f"perturbed {name}{tuple(int(i) for i in index)} and output {output_element(parts, o)} "
                f"changed by {diff[o]:.3g}, outside the declared footprint ({int(leak.sum())} elements "
                f"leaked)")


@dataclass(frozen=True)
class Declaration:
    """A validated declaration for one array: the entries as written, their parts (one per output) on a
    common colouring, and where they came from.

    inferred: None for the layer's own declaration, else the gradcheck.engine.inference.Inferred it was
    fitted as (the checker then re-checks alone every coordinate that fails or is a kink on it).
    """

    entries: object  # a tuple (one entry per axis), or a PerOutput
    parts: tuple[Part, ...]
    shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    inferred: object | None = None

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The input's axes with the colouring every output shares."""
        return self.parts[0].axes

    @property
    def count(self) -> int:
        """Number of groups (forwards, two for central differences) of every coordinate."""
        return int(np.prod([axis.colours for axis in self.axes], dtype=np.int64))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def group_of(self, coords) -> np.ndarray:
        """The group (colour, numbered as groups() yields them) of each flat coordinate."""
        index = np.unravel_index(np.asarray(coords, dtype=np.int64), self.shape)
        group = np.zeros(np.size(coords), dtype=np.int64)
        for axis, i in zip(self.axes, index, strict=True):
            group = group * axis.colours + i % axis.step
        return group

    def groups(self) -> Iterator[Group]:
        """One Group per colour, produced lazily."""
        return (_group(self.parts, self.shape, colour)
                for colour in itertools.product(*(range(axis.colours) for axis in self.axes)))

    def footprints(self):
        """A function flat coordinate -> boolean mask over the flat output: the elements it can touch."""
        return _footprint_of(self.parts, self.shape)

    def pack(self, coords) -> list[Group]:
        """Groups for an arbitrary set of flat coordinates: each coordinate's footprint is the set of outputs
        its own colour group gives it; coordinates are packed first-fit into groups whose footprints stay
        disjoint, so k sampled weights of different output units cost one forward (two for central)."""
        footprint_of = self.footprints()
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

    def touching(self, output, limit) -> np.ndarray | None:
        """Flat coordinates whose footprint holds the flat output element `output`, or None when there are
        more than `limit` of them."""
        part = part_of(self.parts, int(output))
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
        return np.ravel_multi_index(np.ix_(*ranges), self.shape).ravel().astype(np.int64)


def declaration(layer, name, arrays, y_shape, rng, *, probes=PROBES, scratch=None, base=None, entries=None,
                inferred=None) -> Declaration | None:
    """The layer's declaration for ``arrays[name]`` (or `entries`, when given: an inferred one), validated;
    a declared one is checked by ``probes`` random single-coordinate perturbations (in `scratch`, against
    `base`, see _probe) unless every axis is unrestricted on every output (nothing to contradict). None when
    there is none."""
    if entries is None:
        declare = getattr(layer, "structure", None)
        entries = None if declare is None else declare(name, {k: np.shape(v) for k, v in arrays.items()})
    if entries is None:
        return None
    shape, y_shape = tuple(np.shape(arrays[name])), tuple(int(n) for n in y_shape)
    parts = parts_of(layer, name, shape, y_shape, entries)
    if (inferred is None and probes and np.size(arrays[name])
            and any(axis.kind != "full" for part in parts for axis in part.axes)):
        _probe(layer, name, arrays, y_shape, parts, rng, probes, scratch, base)
    return Declaration(entries if isinstance(entries, PerOutput) else tuple(entries), parts, shape, y_shape,
                       inferred)


def groups(layer, name, arrays, y_shape, rng, *, probes=PROBES, scratch=None,
           base=None) -> Iterator[Group] | None:
    """Column groups for ``arrays[name]``, or None when the layer declares no structure for it.

    Validates the declaration and checks it with ``probes`` random single-coordinate perturbations
    (1 + probes forwards, or probes with `base`, see _probe) before returning; the groups themselves are
    produced lazily, one per colour.
    Raises StructureMismatch naming the layer, input and probe when the forward contradicts it.
    """
    declared = declaration(layer, name, arrays, y_shape, rng, probes=probes, scratch=scratch, base=base)
    return None if declared is None else declared.groups()


def touching(layer, name, arrays, y_shape, output, limit) -> np.ndarray | None:
    """Flat coordinates of arrays[name] whose declared footprint holds the flat output element `output`
    (a footprint's inverse: the partners of a tied maximum, its window), or None without a declaration or
    when there are more than `limit` of them. Not probed: for a declaration the check already probed."""
    declared = declaration(layer, name, arrays, y_shape, None, probes=0)
    return None if declared is None else declared.touching(output, limit)


def footprints(layer, name, arrays, y_shape):
    """A function flat coordinate -> boolean mask over the flat output (the elements that coordinate of
    arrays[name] can touch, by the declaration), or None without one. Not probed: for a declaration the
    check already probed."""
    declared = declaration(layer, name, arrays, y_shape, None, probes=0)
    return None if declared is None else declared.footprints()


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
    declared = declaration(layer, name, arrays, y_shape, None, probes=0)
    return None if declared is None else declared.count


def pack(layer, name, arrays, y_shape, coords, rng, *, probes=PROBES, scratch=None,
         base=None) -> list[Group] | None:
    """Groups for an arbitrary set of flat coordinates (the sampled strategy; see Declaration.pack), or None
    without structure. The declaration is probed as for ``groups``."""
    declared = declaration(layer, name, arrays, y_shape, rng, probes=probes, scratch=scratch, base=base)
    return None if declared is None else declared.pack(coords)

