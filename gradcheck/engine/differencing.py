"""The perturbation engine: working copies of the arrays, perturbed in place, and forwards at them.

L(a) = sum(G * y(a)), y = layer.forward(**a)[0]. One working copy per array, made the first time that
array is perturbed (float64, or complex128 for a method whose perturbations are imaginary; float32
arrays are upcast exactly, so their numerics run in float64). Perturbations are written in place and
undone from the pristine values in a ``finally`` (exact: the pristine value is copied back, never
"subtract what was added"), so no call copies a big array and an exception raised by the layer
mid-forward leaves nothing perturbed. The caller's arrays are only ever read.

The Differencer knows nothing of difference formulas: gradcheck.engine.methods combine its primitives

    perturbed(name, coords, step)   y with arrays[name][coords] moved by step (real, or imaginary)
    pair(parts, h)                  y at a + h u and at a - h u (the stored step mirrored), one pass each
    imaginary(parts, h)             y at a + i h u

with the steps as actually stored (fl(a + h) - a, which is not exactly h), and split() per coordinate.
Differences of L are computed as sum(G * (y1 - y2)), not L1 - L2: outputs a perturbation cannot reach are
bit-identical in y1 and y2, so they contribute exactly 0 instead of their rounding.
"""

from __future__ import annotations

import contextlib
import linecache
import re

import numpy as np

from gradcheck.engine.passes import minus_pass, plus_pass
from gradcheck.engine.threads import in_parts
from gradcheck.errors import LayerContractError


def read_only(a: np.ndarray) -> np.ndarray:
    """A view of `a` the layer cannot write through, nor make writeable again: its base is a read-only
    buffer (memoryview.toreadonly, no copy), so ``x.flags.writeable = True`` raises ValueError, on it and
    on every view of it. An array no buffer can describe (object dtype) is copied instead."""
    a = np.asarray(a)
    try:
        v = np.asarray(memoryview(a).toreadonly())
    except (TypeError, ValueError, BufferError, NotImplementedError):
        v = None
    if v is None or v.dtype != a.dtype or v.shape != a.shape:
        v = np.array(a, copy=True)
        v.flags.writeable = False
        v = v.view()
        v.flags.writeable = False
    return v


def write_attempt(layer, arrays, error, tb) -> str | None:
    """The LayerContractError text for a ValueError raised when the layer tried to make one of the read-only
    `arrays` (name -> what it was handed) writeable, or None for any other error. tb: the traceback, whose
    innermost frame names the array (a local that is one of `arrays`)."""
    if "WRITEABLE" not in str(error):
        return None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    local = dict(tb.tb_frame.f_locals) if tb is not None else {}
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb is not None else ""
    held = {n: k for n, v in local.items() for k, a in arrays.items() if v is a}  # local name -> array
    named = [k for n, k in held.items() if re.search(rf"\b{re.escape(n)}\b", line)]
    names = list(dict.fromkeys(named or list(held.values()) or list(arrays)))
    return (f"{type(layer).__name__}: forward tried to make its read-only input {', '.join(names)} writeable "
            f"({error}): the checker's arrays must never be modified, so forward must not write into them "
            f"(work on a copy: x = x.copy())")


def _floating(a) -> bool:
    return np.asarray(a).dtype.kind in "fc"


def split(values: np.ndarray, labels: np.ndarray | None, k: int) -> np.ndarray:
    """Per-coordinate sums of `values` (output-shaped): bincount over labels, or the total when k == 1."""
    if labels is None:
        return np.array([values.sum()])
    touched = labels >= 0
    return np.bincount(labels[touched], weights=values.reshape(-1)[touched], minlength=k)


class Lent:
    """An analytic gradient g (flat float64) lent as its array's working copy (Differencer.adopt), passed to
    pair() as a part's g: the + pass that overwrites it also takes the g side of the `later` directions at
    the same step, from each chunk before it is written; afterwards .sums holds one (<g, step+>, <g,
    step->, sum|g h u|) per later direction, to pass to pair() as their g. One pass over the array instead
    of two."""

    def __init__(self, g, later):
        self.g, self.later, self.sums = g, list(later), None


class Differencer:
    """Numeric derivatives of L with respect to one array at a time; counts forwards.

    layer, arrays: as for gradcheck.check (arrays holds inputs and constants; never written).
    G: float64, the output's shape (complex128 for a complex output: L = Re(sum(conj(G) * y))). method: a
    gradcheck.engine.methods name or Method. eps: the default step h (every primitive and
    coordinates()/directions() take their own).
    S: sum(|G * y|) at the base point, the size of L's terms (the central rounding bound scales with it).

    A complex input z of shape S is perturbed as its parts: its working copy is the float64 (*S, 2) view
    (re, im) of a complex128 array, whose flat coordinate 2 j + c is part c of element j, and forward gets
    the complex view of the same memory. Its numeric derivatives are dL/dRe(z_j) and dL/dIm(z_j), each
    part moved on its own (a real step), which complex step cannot do.
    y0: the output at the base point when the caller already has it from a forward of these very arrays
    (the analytic side's): used as y0 when the numerics see the same arrays (a real method, no float32
    array upcast), which spares a forward of the layer.
    """

    def __init__(self, layer, arrays, G, method, eps, S=0.0, y0=None):
        from gradcheck.engine import methods
        from gradcheck.engine.methods.base import Bounds

        self.method = methods.get(method)
        self.layer, self.eps, self.S = layer, float(eps), float(S)
        self.G = np.asarray(G, dtype=np.complex128 if np.iscomplexobj(G) else np.float64)
        self.forwards = 0
        self._y0 = None
        self._inputs = tuple(layer.inputs)
        self._work: dict[str, np.ndarray] = {}
        self._pristine: dict[str, np.ndarray] = {}
        self._args: dict[str, np.ndarray] = {}
        self._dirty: dict[str, tuple[int, int]] = {}  # name -> flat slice left perturbed (restored lazily)
        self._parts: dict[str, tuple[int, ...]] = {}  # complex input -> its shape (perturbed as re, im)
        self._bounds = Bounds()  # what a bounded method measured, per array and coordinate (bound())
        self._given = arrays
        for k, v in arrays.items():
            v = np.asarray(v)
            if k in self._inputs and v.dtype.kind == "c":
                if self.method.complex_work:
                    raise ValueError(f"complex step does not apply to complex input {k} ({v.dtype}): its "
                                     f"imaginary part is a coordinate of its own; use method='central'")
                z = np.ascontiguousarray(v, dtype=np.complex128)
                self._parts[k] = v.shape
                self._pristine[k] = read_only(z.reshape(-1).view(np.float64).reshape(*v.shape, 2))
                self._args[k] = read_only(z)
                continue
            self._pristine[k] = v
            if k in self._inputs and self.method.complex_work:
                self._make_work(k, v)
            elif _floating(v) and v.dtype != np.float64 and v.dtype.kind == "f":
                self._args[k] = read_only(v.astype(np.float64))  # float32 numerics run in float64
            else:
                self._args[k] = read_only(v)
        same = all(self._args.get(k) is not None and self._args[k].dtype == np.asarray(arrays[k]).dtype
                   for k in arrays)
        if y0 is not None and same and np.asarray(y0).dtype == np.float64:
            self._y0 = read_only(np.asarray(y0))

    # -- working copies -------------------------------------------------------------------------------

    def _make_work(self, name, v, fill=True):
        """The working copy of `name`. fill=False: left unwritten and marked dirty in full, for a caller
        that overwrites every element before the next forward (a direction over the whole array)."""
        dtype = np.complex128 if self.method.complex_work else np.float64
        if v.dtype != np.float64 or not v.flags.c_contiguous:
            v = np.ascontiguousarray(v, dtype=np.float64)
        if fill:
            work = np.array(v, dtype=dtype, order="C", copy=True)
        else:
            work = np.empty(v.shape, dtype=dtype)
            self._dirty[name] = (0, work.size)
        self._work[name] = work
        self._args[name] = self._arg(name, work)
        self._pristine[name] = read_only(v)

    def _arg(self, name, work):
        """What forward gets for a working copy: read-only, complex for a complex input (the same memory)."""
        if name in self._parts:
            return read_only(work.reshape(-1).view(np.complex128).reshape(self._parts[name]))
        return read_only(work)

    def parts(self, name) -> bool:
        """Whether `name` is a complex input, perturbed as its (re, im) parts (shape (*S, 2))."""
        return name in self._parts

    def size(self, name) -> int:
        """Coordinates of `name`: its elements, or 2 per element of a complex input."""
        return int(np.size(self._pristine[name]))

    def _flat(self, name, lo=None, hi=None):
        """(working copy, pristine) of `name`, both flat views, every element pristine except, when lo and
        hi are given, those in [lo, hi), which the caller is about to overwrite."""
        self._ensure_work(name, lo, hi)
        self._restore(keep={} if lo is None else {name: (lo, hi)})
        return self._work[name].reshape(-1), self._pristine[name].reshape(-1)

    def _ensure_work(self, name, lo=None, hi=None):
        if name not in self._work:
            size = int(np.size(self._pristine[name]))
            self._make_work(name, self._pristine[name], fill=not (lo == 0 and hi == size))

    def _restore(self, keep=None):
        """Copy the pristine values back over every perturbed slice, except one inside keep[name]'s slice
        (keep: name -> (lo, hi), slices the caller is about to overwrite)."""
        keep = keep or {}
        for k, (a, b) in list(self._dirty.items()):
            if k in keep and keep[k][0] <= a and b <= keep[k][1]:
                continue
            self._work[k].reshape(-1)[a:b] = self._pristine[k].reshape(-1)[a:b]
            del self._dirty[k]

    def adopt(self, name, buffer):
        """Make `buffer` the working copy of `name` instead of allocating one (central differences only).

        buffer: float64, C-contiguous, writable, the shape of arrays[name]; its values are not needed once
        the next pass has read them. The checker hands over an analytic gradient it no longer needs: at 100M
        weights that saves a 0.8 GB allocation, its page faults, and a third of the peak memory.
        """
        v = np.ascontiguousarray(self._pristine[name], dtype=np.float64)
        if (self.method.complex_work or name in self._work or name in self._parts
                or buffer.dtype != np.float64 or buffer.shape != v.shape or not buffer.flags.c_contiguous
                or not buffer.flags.writeable):
            raise ValueError(f"cannot adopt a {buffer.dtype} {buffer.shape} buffer as the working copy of "
                             f"{name} {v.shape} ({self.method.name})")
        self._work[name] = buffer
        self._args[name] = self._arg(name, buffer)
        self._pristine[name] = read_only(v)
        self._dirty[name] = (0, buffer.size)

    def scratch(self, name):
        """The working copy of `name` at the base point, writable and shaped, for a caller that puts back
        every element it changes before anything else runs (structure probes: no copy of their own); None
        for complex step, whose working copy is complex128."""
        if self.method.complex_work:
            return None
        w, _ = self._flat(name)
        return w.reshape(np.shape(self._pristine[name]))

    def fork(self) -> Differencer:
        """A Differencer for another thread: the same layer, G and base point, its own working copies."""
        self._restore()
        arrays = {k: self._given[k] if k in self._parts else v for k, v in self._pristine.items()}
        d = Differencer(self.layer, arrays, self.G, self.method, self.eps, self.S)
        d._y0 = self._y0
        d._bounds = self._bounds  # shared: what a fork measures is looked up on this one (bound())
        return d

    def work_bytes(self) -> int:
        """Bytes a fork copies: a working copy of every input (complex128 or float64)."""
        itemsize = 16 if self.method.complex_work else 8
        return sum(int(np.size(self._pristine[k])) * itemsize for k in self._inputs)

    def arrays(self) -> dict[str, np.ndarray]:
        """The (read-only) arrays forward is called with, at the base point."""
        self._restore()
        return dict(self._args)

    def forward(self) -> np.ndarray:
        """The output at the base point (every working copy restored first)."""
        self._restore()
        return self._forward()

    def _forward(self) -> np.ndarray:
        self.forwards += 1
        try:
            return np.asarray(self.layer.forward(**self._args)[0])
        except ValueError as e:
            text = write_attempt(self.layer, self._args, e, e.__traceback__)
            if text is None:
                raise
            raise LayerContractError(text) from e

    @property
    def y0(self) -> np.ndarray:
        """The float64 output at the base point (central differences and kinks need it)."""
        if self._y0 is None:
            self._y0 = self.forward()
        return self._y0

    # -- primitives the methods combine -------------------------------------------------------------

    def weigh(self, dy):
        """Each output element's term of a difference of L = Re(sum(conj(G) * y)): G * dy for real G and dy,
        Re(conj(G) dy) = Re(G) Re(dy) + Im(G) Im(dy) otherwise; output-shaped, real."""
        if np.iscomplexobj(self.G):
            return self.G.real * dy.real + self.G.imag * np.imag(dy)
        return self.G * (dy.real if np.iscomplexobj(dy) else dy)

    def perturbed(self, name, coords, step):
        """(y, stored): the output with arrays[name] at the flat indices `coords` moved by `step`, every
        other element pristine (restored after the forward, also when it raises). A real step is stored as
        fl(a + step), stored = fl(a + step) - a per coordinate; an imaginary step (complex working copy)
        sets the imaginary part to step.imag, stored = step.imag."""
        coords = np.asarray(coords, dtype=np.int64)
        w, p = self._flat(name)
        if isinstance(step, complex):
            if not np.iscomplexobj(w):
                raise ValueError(f"an imaginary step needs a complex working copy ({self.method.name})")
            try:
                w.imag[coords] = step.imag
                y = self._forward()
            finally:
                w[coords] = p[coords]
            return y, np.full(coords.size, step.imag)
        pc = p[coords]
        try:
            w[coords] = pc + step
            stored = w[coords] - pc
            y = self._forward()
        finally:
            w[coords] = pc
        return y, stored

    def _start_pass(self, parts):
        for name, _, _, lo, hi in parts:
            self._ensure_work(name, lo, hi)
        self._restore(keep={name: (lo, hi) for name, _, _, lo, hi in parts})
        flats = []
        for name, _, _, lo, hi in parts:
            self._dirty[name] = (lo, hi)
            flats.append((self._work[name].reshape(-1), self._pristine[name].reshape(-1), lo, hi))
        return flats

    def pair(self, parts, h):
        """(y+, y-, <g, step+>, <g, step->, sum|g u|) along one direction spanning several arrays.

        parts: (name, u, g, lo, hi) each: u a flat float64 direction or a strategies Direction (generated
        chunk by chunk, never stored) on the flat slice [lo, hi) of arrays[name]; g the flat float64
        analytic gradient, a Lent one, or the triple a Lent's pass gave for this u and h. Every part is
        perturbed before the same forward, so a pair costs 2 forwards however many arrays it spans. The
        - pass mirrors the stored + step (w = p - (w - p)), so u is generated once and g read once (it may
        be the working copy's own buffer: adopt). Chunks of CHUNK elements only; the working copies are
        left perturbed and restored only before they are next used (or not at all when the next pass
        overwrites them).
        """
        flats = self._start_pass(parts)
        a_plus = a_minus = terms = 0.0
        for (w, p, lo, hi), (_, u, g, _, _) in zip(flats, parts, strict=True):
            known, lent = isinstance(g, tuple), isinstance(g, Lent)
            later, flat = (g.later, g.g) if lent else ((), None if known else g)
            sums = in_parts(lo, hi, lambda a, b, w=w, p=p, u=u, flat=flat, later=later: plus_pass(
                u, w, p, flat, h, a, b, later=later))
            a, m, t = g if known else sums[:3]
            if lent:
                g.sums = [tuple(sums[3 * i:3 * i + 3]) for i in range(1, len(later) + 1)]
            a_plus, a_minus, terms = a_plus + a, a_minus + m, terms + t
        yp = self._forward()
        for w, p, lo, hi in flats:
            in_parts(lo, hi, lambda a, b, w=w, p=p: minus_pass(w, p, a, b))
        ym = self._forward()
        return yp, ym, a_plus, a_minus, terms / h

    def imaginary(self, parts, h):
        """(y, <g, h u>, sum|g u|) at a + i h u (complex working copies), parts as for pair(); 1 forward."""
        flats = self._start_pass(parts)
        dot = terms = 0.0
        for (w, p, lo, hi), (_, u, g, _, _) in zip(flats, parts, strict=True):
            known = isinstance(g, tuple)
            sums = in_parts(lo, hi, lambda a, b, w=w, p=p, u=u, g=None if known else g: plus_pass(
                u, w, p, g, h, a, b, imag=True))
            a, _, t = g if known else sums
            dot, terms = dot + a, terms + t
        return self._forward(), dot, terms / h

    # -- what the strategies call ----------------------------------------------------------------------

    def coordinates(self, name, coords, labels=None, eps=None):
        """Derivatives of L along each coordinate of `coords` (flat indices into arrays[name]) at step eps
        (default self.eps). labels: None for a single coordinate, else a Group's labels (output element ->
        position in coords). Returns (numeric, left, right), left/right None without one-sided differences.
        A bounded method's Bound of these values is kept for bound() (the strategies' plans pass along
        (numeric, left, right) only, in whatever order their groups ran).
        """
        coords = np.asarray(coords, dtype=np.int64)
        numeric, left, right, *bound = self.method.coordinates(self, name, coords, labels,
                                                               self.eps if eps is None else float(eps))
        if bound:
            self._bounds.add(name, coords, bound[0])
        return numeric, left, right

    def bound(self, name, coords):
        """The Bound (per coordinate of `coords`) of the values a bounded method last measured at them, on
        this differencer or its forks; None for a method with an a-priori model, or where it measured none.
        Call it after the values' plan has run (not while forks are still measuring)."""
        return self._bounds.get(name, coords) if self.method.bounded else None

    @contextlib.contextmanager
    def using(self, method):
        """The block with another method of the same working copies (a real one for a real one: a method's
        fallback, gradcheck.engine.methods.base.Method.fallback): the base point and every working copy
        serve both; forks made in the block use it too."""
        from gradcheck.engine import methods

        method, saved = methods.get(method), self.method
        if method.complex_work != saved.complex_work:
            raise ValueError(f"{saved.name} and {method.name} do not share working copies")
        self.method = method
        try:
            yield self
        finally:
            self.method = saved

    def directions(self, parts, eps=None):
        """The derivative of L along one direction spanning `parts` (see pair()) at step eps: an Along."""
        return self.method.direction(self, parts, self.eps if eps is None else float(eps))

    def direction(self, name, u, g, lo=0, hi=None, eps=None):
        """directions() of one array's flat slice [lo, hi) (default: all of u)."""
        return self.directions([(name, u, g, lo, u.size if hi is None else hi)], eps)

    @contextlib.contextmanager
    def aside(self):
        """Forwards run inside the block are not counted in self.forwards; the yielded list gets their
        number appended on exit (a convergence measurement is reported apart from the check's cost)."""
        spent, f0 = [], self.forwards
        try:
            yield spent
        finally:
            spent.append(self.forwards - f0)
            self.forwards = f0
