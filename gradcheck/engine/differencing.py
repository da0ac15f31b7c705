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

import numpy as np

from gradcheck.engine.threads import CHUNK, in_parts


def read_only(a: np.ndarray) -> np.ndarray:
    """A view of `a` the layer cannot write through."""
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


def _floating(a) -> bool:
    return np.asarray(a).dtype.kind in "fc"


def split(values: np.ndarray, labels: np.ndarray | None, k: int) -> np.ndarray:
    """Per-coordinate sums of `values` (output-shaped): bincount over labels, or the total when k == 1."""
    if labels is None:
        return np.array([values.sum()])
    touched = labels >= 0
    return np.bincount(labels[touched], weights=values.reshape(-1)[touched], minlength=k)


class Differencer:
    """Numeric derivatives of L with respect to one array at a time; counts forwards.

    layer, arrays: as for gradcheck.check (arrays holds inputs and constants; never written).
    G: float64, the output's shape. method: a gradcheck.engine.methods name or Method. eps: the default
    step h (every primitive and coordinates()/directions() take their own).
    S: sum(|G * y|) at the base point, the size of L's terms (the central rounding bound scales with it).
    y0: the output at the base point when the caller already has it from a forward of these very arrays
    (the analytic side's): used as y0 when the numerics see the same arrays (a real method, no float32
    array upcast), which spares a forward of the layer.
    """

    def __init__(self, layer, arrays, G, method, eps, S=0.0, y0=None):
        from gradcheck.engine import methods

        self.method = methods.get(method)
        self.layer, self.eps, self.S = layer, float(eps), float(S)
        self.G = np.asarray(G, dtype=np.float64)
        self.forwards = 0
        self._y0 = None
        self._inputs = tuple(layer.inputs)
        self._work: dict[str, np.ndarray] = {}
        self._pristine: dict[str, np.ndarray] = {}
        self._args: dict[str, np.ndarray] = {}
        self._dirty: dict[str, tuple[int, int]] = {}  # name -> flat slice left perturbed (restored lazily)
        for k, v in arrays.items():
            v = np.asarray(v)
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
        self._args[name] = read_only(work)
        self._pristine[name] = read_only(v)

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
        if (self.method.complex_work or name in self._work or buffer.dtype != np.float64
                or buffer.shape != v.shape or not buffer.flags.c_contiguous or not buffer.flags.writeable):
            raise ValueError(f"cannot adopt a {buffer.dtype} {buffer.shape} buffer as the working copy of "
                             f"{name} {v.shape} ({self.method.name})")
        self._work[name] = buffer
        self._args[name] = read_only(buffer)
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
        d = Differencer(self.layer, self._pristine, self.G, self.method, self.eps, self.S)
        d._y0 = self._y0
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
        return np.asarray(self.layer.forward(**self._args)[0])

    @property
    def y0(self) -> np.ndarray:
        """The float64 output at the base point (central differences and kinks need it)."""
        if self._y0 is None:
            self._y0 = self.forward()
        return self._y0

    # -- primitives the methods combine -------------------------------------------------------------

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
        analytic gradient, or the triple sums() gave for this u and h. Every part is perturbed before the
        same forward, so a pair costs 2 forwards however many arrays it spans. The - pass mirrors the
        stored + step (w = p - (w - p)), so u is generated once and g read once (it may be the working
        copy's own buffer: adopt). Chunks of CHUNK elements only; the working copies are left perturbed
        and restored only before they are next used (or not at all when the next pass overwrites them).
        """
        flats = self._start_pass(parts)
        a_plus = a_minus = terms = 0.0
        for (w, p, lo, hi), (_, u, g, _, _) in zip(flats, parts, strict=True):
            known = isinstance(g, tuple)
            sums = in_parts(lo, hi, lambda a, b, w=w, p=p, u=u, g=None if known else g: _plus_pass(
                u, w, p, g, h, a, b))
            a, m, t = g if known else sums
            a_plus, a_minus, terms = a_plus + a, a_minus + m, terms + t
        yp = self._forward()
        for w, p, lo, hi in flats:
            in_parts(lo, hi, lambda a, b, w=w, p=p: _minus_pass(w, p, a, b))
        ym = self._forward()
        return yp, ym, a_plus, a_minus, terms / h

    def imaginary(self, parts, h):
        """(y, <g, h u>, sum|g u|) at a + i h u (complex working copies), parts as for pair(); 1 forward."""
        flats = self._start_pass(parts)
        dot = terms = 0.0
        for (w, p, lo, hi), (_, u, g, _, _) in zip(flats, parts, strict=True):
            known = isinstance(g, tuple)
            sums = in_parts(lo, hi, lambda a, b, w=w, p=p, u=u, g=None if known else g: _plus_pass(
                u, w, p, g, h, a, b, imag=True))
            a, _, t = g if known else sums
            dot, terms = dot + a, terms + t
        return self._forward(), dot, terms / h

    def sums(self, name, us, g, h, lo=0, hi=None):
        """The g side of later passes along each direction of `us` at step h, from the pristine values and
        g alone (nothing written), in one pass over g: a list of (<g, step+>, <g, step->, sum|g h u|), one
        per direction, to pass to pair() as its g once g's buffer has been handed over as the working copy
        (adopt)."""
        us = list(us)
        if not us:
            return []
        hi = us[0].size if hi is None else hi
        p = np.ascontiguousarray(self._pristine[name], dtype=np.float64).reshape(-1)
        if self.method.complex_work:
            return [in_parts(lo, hi, lambda a, b, u=u: _plus_pass(u, None, p, g, h, a, b, imag=True))
                    for u in us]
        flat = in_parts(lo, hi, lambda a, b: _sums_pass(us, p, g, h, a, b))
        return [tuple(flat[3 * i:3 * i + 3]) for i in range(len(us))]

    # -- what the strategies call ----------------------------------------------------------------------

    def coordinates(self, name, coords, labels=None, eps=None):
        """Derivatives of L along each coordinate of `coords` (flat indices into arrays[name]) at step eps
        (default self.eps). labels: None for a single coordinate, else a Group's labels (output element ->
        position in coords). Returns (numeric, left, right), left/right None without one-sided differences.
        """
        return self.method.coordinates(self, name, np.asarray(coords, dtype=np.int64), labels,
                                       self.eps if eps is None else float(eps))

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


def _values(u, a, b, scale, out):
    """out[:] = scale * u[a:b] for an ndarray u or a strategies.Direction."""
    if isinstance(u, np.ndarray):
        return np.multiply(u[a:b], scale, out=out)
    return u.values(a, b, scale, out)


def _plus_pass(u, w, p, g, h, lo, hi, imag=False):
    """w = p + h u over [lo, hi) (imag: w = p + i h u). Returns (<g, step+>, <g, step->, sum|g h u|): step+
    = w - p as stored, step- = p - (p - step+) as the - pass will store it (imag: h u and 0).

    w None: the sums only, nothing written; g None: w only, sums 0. Each chunk of g is read before that
    chunk of w is written, so w may be g's own buffer (adopt). Chunk-sized scratch buffers only: a fresh
    temporary of a chunk's size is an mmap and its page faults.
    """
    if g is not None and w is None and not imag:
        return _sums_pass([u], p, g, h, lo, hi)
    scratch = np.empty((4, min(CHUNK, max(hi - lo, 0))))
    direct = w is not None and (g is None or not np.may_share_memory(w, g))  # write w in place
    dot = dot_minus = terms = 0.0
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        us, ga, va, t = (buf[:b - a] for buf in scratch)
        _values(u, a, b, h, us)
        ps = p[a:b]
        if imag:
            if g is not None:
                gs = g[a:b]
                dot += float(np.dot(gs, us))
                terms += float(np.dot(np.abs(gs, out=ga), np.abs(us, out=va)))
            if w is not None:
                w[a:b].real = ps
                w[a:b].imag = us
            continue
        wp = w[a:b] if direct else va
        np.add(ps, us, out=wp)  # w+ = p + h u
        if g is not None:
            gs = g[a:b]  # read here, before w[a:b] is written (adopt: w is g)
            terms += float(np.dot(np.abs(gs, out=ga), np.abs(us, out=t)))
            np.subtract(wp, ps, out=us)  # step+ as stored
            dot += float(np.dot(gs, us))
            np.subtract(ps, us, out=t)  # w- = p - step+
            np.subtract(ps, t, out=t)  # step- as stored
            dot_minus += float(np.dot(gs, t))
        if not direct and w is not None:
            w[a:b] = wp
    return dot, dot_minus, terms


def _sums_pass(us, p, g, h, lo, hi):
    """The sums of _plus_pass (nothing written) for several directions `us` in one pass over g and p:
    (<g, step+>, <g, step->, sum|g h u|) of each direction in turn, flattened; |g| once per chunk."""
    scratch = np.empty((4, min(CHUNK, max(hi - lo, 0))))
    sums = np.zeros((len(us), 3))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        s, ga, t, wp = (buf[:b - a] for buf in scratch)
        ps, gs = p[a:b], g[a:b]
        np.abs(gs, out=ga)
        for i, u in enumerate(us):
            _values(u, a, b, h, s)
            np.add(ps, s, out=wp)  # w+ = p + h u
            sums[i, 2] += float(np.dot(ga, np.abs(s, out=t)))
            np.subtract(wp, ps, out=s)  # step+ as stored
            sums[i, 0] += float(np.dot(gs, s))
            np.subtract(ps, s, out=t)  # w- = p - step+
            np.subtract(ps, t, out=t)  # step- as stored
            sums[i, 1] += float(np.dot(gs, t))
    return tuple(sums.reshape(-1))


def _minus_pass(w, p, lo, hi):
    """w = p - (w - p) over [lo, hi): the + step mirrored."""
    buf = np.empty(min(CHUNK, max(hi - lo, 0)))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        ws, ps, s = w[a:b], p[a:b], buf[:b - a]
        np.subtract(ws, ps, out=s)
        np.subtract(ps, s, out=ws)
    return ()
