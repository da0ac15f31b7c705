"""Infer a structure declaration (gradcheck.engine.structure's language) from a layer's own forward.

A layer that declares no ``structure`` for an array would cost one forward per coordinate. Instead the
checker probes the forward at the checked point and fits a declaration to what it sees:

1. Footprints. A probe of coordinate j is two forwards: x[j] = NaN (NaN reaches every output x[j] can
   reach, and more, since 0 * NaN is NaN: it can only over-estimate) and x[j] + h, h = +-(1 + |x[j]|) (a
   maximum written with np.where or argmax that drops the NaN still moves under a large step). The
   footprint is the union of the outputs either forward moved beyond rounding noise; the fit uses its
   extent [lo, hi] along each output axis.
2. Fit. For input axis k and output axis a, the tightest window (stride s, start, size) that contains
   every probe's extent on a, given the probe's index i on k: for each s, start = min(i - s hi) and
   size = max(i - s lo) - start + 1, so that o s + start <= i <= o s + start + size - 1 for every touched
   o. The pair costs min(size, len k) colours, an unrestricted axis its length; the assignment of input
   axes to distinct output axes with the fewest groups (a linear assignment on the logarithms) is the
   declaration. A window of stride 1, start 0, size 1 is written as the identity. Windows the probes
   cannot tell apart are told apart as a layer would (see _window).
3. Verify. VERIFY more probes at random coordinates; one whose footprint leaves the fitted one on some
   output axis joins the data and the fit is made again, and after VERIFY_ROUNDS rounds the input axes
   still contradicted are unrestricted.

The fit probes are FIT_RUNS runs of RUN coordinates, each run stepping by one along every axis at once:
from the first corner, from the last, and from random coordinates (consecutive indices show a stride,
random ones tell the axes apart, the corners show the edges). Probes write into the checker's working copy
(Differencer.scratch) and put each element back at once; every forward goes through the caller's layer,
so the checker counts them.

What inference cannot see is a coordinate no probe reached that touches more than the fit allows. The
checker therefore re-checks alone every coordinate that fails or is a kink on an inferred plan
(gradcheck.strategies.alone): an under-estimated footprint can cost time, never a false alarm.
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from gradcheck.engine import structure
from gradcheck.engine.differencing import Differencer

RUN = 3  # consecutive coordinates per fit run
FIT_RUNS = 4  # the first corner, the last corner, and FIT_RUNS - 2 random coordinates
VERIFY = 6  # random probes per verification round
VERIFY_ROUNDS = 3  # fits verified before a contradicted axis is made unrestricted
MAX_STRIDE = 4096  # largest window stride tried
PROBE_NOISE = 1000  # a change below PROBE_NOISE * eps * scale(y) is rounding, not a footprint (structure's)


def probe_forwards(size: int) -> int:
    """Forwards an inference of an array of `size` coordinates costs at least (the base point, then two per
    probe of one fit and one verification round): when one coordinate per forward is cheaper, the checker
    does not infer."""
    return 1 + 2 * min(int(size), FIT_RUNS * RUN + VERIFY)


@dataclass(frozen=True)
class Inferred:
    """What inference found for one array.

    entries: the declaration, one entry per axis (None | output axis | (axis, stride, start, size)).
    probed: coordinates probed (two forwards each). note: why every axis is unrestricted, when nothing fit.
    """

    entries: tuple
    probed: int
    note: str = ""

    @property
    def unrestricted(self) -> bool:
        return all(e is None for e in self.entries)


class _ProbeFailed(Exception):
    """A finite probe's forward raised or changed the output's shape: no declaration is inferred."""


class _Prober:
    """Footprints of single coordinates of arrays[name], probed in `scratch` (or one copy of the array)."""

    def __init__(self, layer, name, arrays, scratch):
        self.layer, self.name, self.arrays = layer, name, arrays
        self.x = np.array(arrays[name], copy=True) if scratch is None else scratch
        self.y0 = self._forward()
        finite = np.isfinite(self.y0)
        self.scale = max(float(np.max(np.abs(self.y0[finite]), initial=0.0)), 1.0)
        kind = self.y0.dtype
        self.eps = float(np.finfo(kind).eps) if np.issubdtype(kind, np.inexact) else 0.0
        self.nan_ok = True  # cleared when the forward raises on a NaN: finite steps of both signs instead
        self.probed = 0

    def _forward(self):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.layer.forward(**{**self.arrays, self.name: self.x})[0])

    def _moved(self, y1):
        if y1.shape != self.y0.shape:
            raise _ProbeFailed(f"the output's shape changed to {y1.shape} under a probe")
        with np.errstate(invalid="ignore", over="ignore"):
            same = (y1 == self.y0) | (np.isnan(y1) & np.isnan(self.y0))
            small = np.abs(y1 - self.y0) <= PROBE_NOISE * self.eps * self.scale
        return ~same & ~small

    def _at(self, flat, value):
        old = self.x.flat[flat]
        self.x.flat[flat] = value
        try:
            return self._forward()
        finally:
            self.x.flat[flat] = old

    def extent(self, flat, sign):
        """Per output axis, (lo, hi) of the outputs coordinate `flat` moved; None when it moved none."""
        self.probed += 1
        old = self.x.flat[flat]
        moved = np.zeros(self.y0.shape, dtype=bool)
        if self.nan_ok:
            try:
                moved |= self._moved(self._at(flat, np.nan))
            except _ProbeFailed:
                raise
            except Exception:  # the layer refuses NaN: two finite steps instead
                self.nan_ok = False
        h = (1.0 + abs(old)) * sign
        for step in (h,) if self.nan_ok else (h, -h):
            try:
                moved |= self._moved(self._at(flat, old + step))
            except _ProbeFailed:
                raise
            except Exception as exc:
                raise _ProbeFailed(f"the forward raised under a probe: {type(exc).__name__}: {exc}") from None
        if not moved.any():
            return None
        out = []
        for a in range(moved.ndim):
            line = moved.any(axis=tuple(b for b in range(moved.ndim) if b != a))
            hit = np.flatnonzero(line)
            out.append((int(hit[0]), int(hit[-1])))
        return tuple(out)


def _fit_runs(shape, rng):
    """Flat indices of the fit probes: RUN-long diagonal runs from both corners and from random points."""
    starts = [tuple(0 for _ in shape), tuple(n - 1 for n in shape)]
    starts += [tuple(int(rng.integers(max(n - RUN + 1, 1))) for n in shape) for _ in range(FIT_RUNS - 2)]
    flats = []
    for r, start in enumerate(starts):
        step = -1 if r == 1 else 1
        for t in range(RUN):
            index = tuple(min(max(b + step * t, 0), n - 1) for b, n in zip(start, shape, strict=True))
            flats.append(int(np.ravel_multi_index(index, shape)))
    return list(dict.fromkeys(flats))


def _window(i, lo, hi, length, n_out):
    """(colours, size, stride, start) of the tightest window, over the strides tried, containing every
    probe's extent [lo, hi] at input index i (colours = min(size, length)).

    Among windows of as few colours, which the probes cannot tell apart (a stride 2 and a stride 3 that
    agree on every index seen), the one that extrapolates like a layer: its output length is that of a
    window sliding over the input padded by -start on both sides, then it leaves the fewest input
    indices touching nothing, then the narrowest and the smallest stride.
    """
    strides = np.arange(1, min(max(length, 1), MAX_STRIDE) + 1, dtype=np.int64)[:, None]
    start = (i[None, :] - strides * hi[None, :]).min(axis=1)
    size = (i[None, :] - strides * lo[None, :]).max(axis=1) - start + 1
    colours = np.minimum(size, length)
    ties = np.flatnonzero(colours == colours.min())
    ties = ties[np.lexsort((strides[ties, 0], size[ties]))][:64]
    o = np.arange(n_out, dtype=np.int64)

    def key(c):
        s, st, sz = int(strides[c, 0]), int(start[c]), int(size[c])
        expected = (length + 2 * max(0, -st) - sz) // s + 1
        a, b = np.clip(o * s + st, 0, length), np.clip(o * s + st + sz, 0, length)  # [a, b) covered
        edges = np.zeros(length + 1, dtype=np.int64)
        np.add.at(edges, a, 1)
        np.add.at(edges, b, -1)
        uncovered = int(np.count_nonzero(np.cumsum(edges[:-1]) == 0))
        return expected != n_out, uncovered, sz, s

    best = min(ties, key=key)
    return int(colours[best]), int(size[best]), int(strides[best, 0]), int(start[best])


def _entry(a, stride, start, size):
    return int(a) if (stride, start, size) == (1, 0, 1) else (int(a), int(stride), int(start), int(size))


def _fit(points, shape, y_shape):
    """The declaration with the fewest groups that contains every probed footprint (see the module doc)."""
    seen = [(index, ext) for index, ext in points if ext is not None]
    d, m = len(shape), len(y_shape)
    if not seen or m == 0:
        return (None,) * d
    idx = np.array([index for index, _ in seen], dtype=np.int64).reshape(len(seen), d)
    lo = np.array([[e[0] for e in ext] for _, ext in seen], dtype=np.int64).reshape(len(seen), m)
    hi = np.array([[e[1] for e in ext] for _, ext in seen], dtype=np.int64).reshape(len(seen), m)
    cost = np.empty((d, m + d))
    windows = {}
    for k, length in enumerate(shape):
        unrestricted = math.log(max(length, 1))
        cost[k, m:] = unrestricted
        for a in range(m):
            cost[k, a] = unrestricted + 1.0  # no gain: worse than unrestricted (a claim to no purpose)
            if length <= 1 or y_shape[a] <= 1:
                continue
            colours, size, stride, start = _window(idx[:, k], lo[:, a], hi[:, a], length, y_shape[a])
            if colours < length:
                windows[k, a] = (stride, start, size)
                cost[k, a] = math.log(colours) + 1e-9 * size + 1e-12 * abs(k - a)  # ties: narrow, in order
    rows, cols = linear_sum_assignment(cost)
    entries = [None] * d
    for k, a in zip(rows, cols, strict=True):
        if (k, a) in windows:
            entries[k] = _entry(a, *windows[k, a])
    return tuple(entries)


def _contradicted(entries, points, y_shape):
    """Input axes whose declared footprint some probe's extent leaves."""
    bad = set()
    for index, ext in points:
        if ext is None:
            continue
        for k, e in enumerate(entries):
            if e is None:
                continue
            a, stride, start, size = (e, 1, 0, 1) if isinstance(e, int) else e
            i = index[k]
            lo = max(0, -((start + size - 1 - i) // stride))  # ceil((i - start - size + 1) / stride)
            hi = min(y_shape[a] - 1, (i - start) // stride)
            if ext[a][0] < lo or ext[a][1] > hi:
                bad.add(k)
    return bad


def infer(layer, name, arrays, y_shape, rng, *, scratch=None) -> Inferred:
    """Fit a declaration for arrays[name] to probes of layer.forward at `arrays` (see the module doc).

    layer: called as layer.forward(**arrays) with arrays[name] replaced (a counted layer counts the
    probes); scratch: a writable array equal to arrays[name] to probe in place (each element put back at
    once), else one copy is made. Never raises for a layer that misbehaves under probes: every axis is then
    unrestricted, with the reason in Inferred.note.
    """
    shape, y_shape = tuple(np.shape(arrays[name])), tuple(int(n) for n in y_shape)
    size = int(np.prod(shape, dtype=np.int64))
    unrestricted = (None,) * len(shape)
    if size <= 1:
        return Inferred(unrestricted, 0, "a single coordinate")
    if int(np.prod(y_shape, dtype=np.int64)) <= 1:
        return Inferred(unrestricted, 0, "every coordinate touches the one output")
    prober = _Prober(layer, name, arrays, scratch)
    probed, points = set(), []

    def probe(flats, sign):
        out = []
        for n, flat in enumerate(flats):
            probed.add(flat)
            index = tuple(int(v) for v in np.unravel_index(flat, shape))
            out.append((index, prober.extent(flat, sign if sign else (1.0 if n % 2 == 0 else -1.0))))
        return out

    try:
        points += probe(_fit_runs(shape, rng), 1.0)
        entries = _fit(points, shape, y_shape)
        for round_ in range(VERIFY_ROUNDS):
            if all(e is None for e in entries) or len(probed) >= size:
                break
            fresh = [f for f in rng.choice(size, size=min(size, VERIFY + len(probed)), replace=False)
                     if int(f) not in probed][:VERIFY]
            new = probe([int(f) for f in fresh], 0.0)
            points += new
            bad = _contradicted(entries, new, y_shape)
            if not bad:
                break
            if round_ == VERIFY_ROUNDS - 1:
                entries = tuple(None if k in bad else e for k, e in enumerate(entries))
            else:
                entries = _fit(points, shape, y_shape)
    except _ProbeFailed as exc:
        return Inferred(unrestricted, prober.probed, str(exc))
    note = "" if any(e is not None for e in entries) else "no axis fits a window: every coordinate alone"
    return Inferred(tuple(entries), prober.probed, note)


@dataclass(frozen=True)
class Found:
    """One array's declaration as the checker would group it (``gradcheck structure CASE``).

    source: "declared" (the layer's own, probed) or "inferred"; groups: forwards (two for central) of
    every coordinate; note: why nothing fit, or the error a wrong declaration raised (then inferred).
    """

    name: str
    entries: tuple
    source: str
    groups: int
    coordinates: int
    note: str = ""


def declarations(layer, arrays, *, seed=0) -> tuple[tuple[int, ...], list[Found]]:
    """(output shape, a Found per input of the layer): its own declaration when it has one that its forward
    does not contradict, else the one inferred at `arrays` (always inferred, however small the array);
    gradcheck.output.declaration prints them. Each array is probed with the rng the checker gives it."""
    y_shape = tuple(np.shape(layer.forward(**arrays)[0]))
    diff = Differencer(layer, arrays, np.zeros(y_shape), "central", 1e-6)
    found = []
    for name in layer.inputs:
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        scratch = diff.scratch(name)
        note, declared = "", None
        try:
            declared = structure.declaration(layer, name, diff.arrays(), y_shape, rng, scratch=scratch)
        except structure.StructureMismatch as exc:
            note = f"the declared structure is wrong: {exc}"
        if declared is None:
            guess = infer(layer, name, diff.arrays(), y_shape, rng, scratch=scratch)
            declared = structure.declaration(layer, name, diff.arrays(), y_shape, rng, entries=guess.entries,
                                             inferred=guess)
            note = note or guess.note
        found.append(Found(name, declared.entries, "inferred" if declared.inferred else "declared",
                           declared.count, declared.size, note))
    return y_shape, found

