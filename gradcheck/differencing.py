"""Numeric derivatives of L(a) = sum(G * y(a)), y = layer.forward(**a)[0], by central or complex step.

One working copy per array, made the first time that array is perturbed (float64 for central, complex128
for complex step; float32 arrays are upcast exactly, so their numerics run in float64). Perturbations
are written in place and undone from the pristine values in a ``finally`` (exact: the pristine value is
copied back, never "subtract what was added"), so no call copies a big array and an exception raised by
the layer mid-forward leaves nothing perturbed. The caller's arrays are only ever read (the layer gets
read-only views, so a layer that writes into its inputs fails loudly instead of corrupting them).

Per coordinate set (one Group of gradcheck.structure, or one coordinate), with steps h+ and h- as
actually stored (fl(a + h) - a, which is not exactly h)::

    central   (L(a + h+ e_C) - L(a - h- e_C)) / (h+ + h-)     split per coordinate by bincount over labels
    right     (L(a + h+ e_C) - L(a)) / h+                      one-sided, for kinks
    left      (L(a) - L(a - h- e_C)) / h-
    complex   Im L(a + i h e_C) / h

Differences of L are computed as sum(G * (y1 - y2)), not L1 - L2: outputs a perturbation cannot reach are
bit-identical in y1 and y2, so they contribute exactly 0 instead of their rounding.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

_blas_lock = threading.Lock()
_controller: tuple[int, ThreadpoolController] | None = None  # (len(sys.modules) when made, controller)


def blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the BLAS libraries loaded in this process (numpy's and scipy's OpenBLAS),
    made again when modules were imported since (a new one may have brought its own BLAS)."""
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with the BLAS libraries limited to n threads (restored afterwards).

    Many small matrix products (one forward per column group) are where OpenBLAS's own threads hurt: on a
    busy 2-core machine each tiny product waits for a second thread that is not scheduled, and a 0.4 ms
    16x800 @ 800x500 product takes 40 ms. The checker parallelises over groups itself instead.
    """
    with _blas_lock:
        limiter = blas_controller().limit(limits=int(n), user_api="blas")
    try:
        yield
    finally:
        with _blas_lock:
            limiter.restore_original_limits()


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
    G: float64, the output's shape. method: "central" | "complex". eps: the step h.
    S: sum(|G * y|) at the base point, the size of L's terms (the central rounding bound scales with it).
    """

    def __init__(self, layer, arrays, G, method, eps, S=0.0):
        self.layer, self.method, self.eps, self.S = layer, method, float(eps), float(S)
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
            if k in self._inputs and method == "complex":
                self._make_work(k, v)
            elif _floating(v) and v.dtype != np.float64 and v.dtype.kind == "f":
                self._args[k] = read_only(v.astype(np.float64))  # float32 numerics run in float64
            else:
                self._args[k] = read_only(v)

    # -- working copies -------------------------------------------------------------------------------

    def _make_work(self, name, v, fill=True):
        """The working copy of `name`. fill=False: left unwritten and marked dirty in full, for a caller
        that overwrites every element before the next forward (a direction over the whole array)."""
        dtype = np.complex128 if self.method == "complex" else np.float64
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
        if (self.method != "central" or name in self._work or buffer.dtype != np.float64
                or buffer.shape != v.shape or not buffer.flags.c_contiguous or not buffer.flags.writeable):
            raise ValueError(f"cannot adopt a {buffer.dtype} {buffer.shape} buffer as the working copy of "
                             f"{name} {v.shape} ({self.method})")
        self._work[name] = buffer
        self._args[name] = read_only(buffer)
        self._pristine[name] = read_only(v)
        self._dirty[name] = (0, buffer.size)

    def scratch(self, name):
        """The working copy of `name` at the base point, writable and shaped, for a caller that puts back
        every element it changes before anything else runs (structure probes: no copy of their own); None
        for complex step, whose working copy is complex128."""
        if self.method != "central":
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
        itemsize = 16 if self.method == "complex" else 8
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

    # -- coordinates ----------------------------------------------------------------------------------

    def coordinates(self, name, coords, labels=None):
        """Derivatives of L along each coordinate of `coords` (flat indices into arrays[name]).

        labels: None for a single coordinate, else a Group's labels (output element -> position in coords).
        Returns (central, left, right) arrays of len(coords); left and right are None for complex step.
        """
        coords = np.asarray(coords, dtype=np.int64)
        k, h = coords.size, self.eps
        w, p = self._flat(name)
        if self.method == "complex":
            wi = w.imag
            try:
                wi[coords] = h
                y = self._forward()
            finally:
                w[coords] = p[coords]
            return split(self.G * y.imag, labels, k) / h, None, None
        y0 = self.y0
        w, p = self._flat(name)
        pc = p[coords]
        try:
            w[coords] = pc + h
            hp = w[coords] - pc
            yp = self._forward()
            w[coords] = pc - h
            hm = pc - w[coords]
            ym = self._forward()
        finally:
            w[coords] = pc
        G = self.G
        central = split(G * (yp - ym), labels, k) / (hp + hm)
        right = split(G * (yp - y0), labels, k) / hp
        left = split(G * (y0 - ym), labels, k) / hm
        return central, left, right

    # -- directions -----------------------------------------------------------------------------------

    def direction(self, name, u, g, lo=0, hi=None, one_sided=True):
        """Derivative of L along u restricted to the flat slice [lo, hi) of arrays[name].

        u: a flat float64 direction or a strategies.Direction (generated chunk by chunk, never stored);
        g: flat float64 analytic gradient, or the triple sums() returned for this u.
        Returns (analytic, central, left, right): analytic is <g, step> / h along the steps as stored
        (so the rounding of a + h u cancels out of the comparison); left/right None for complex step.
        one_sided: True, False, or a predicate (analytic, central, terms) -> bool, terms = sum|g u| over
        the slice (the size of <g, u>'s terms); when false, left/right are None and the base point's
        forward is not spent (a passing direction does not need them). A predicate is called for complex
        step too (which has no one-sided differences).
        """
        return self.directions([(name, u, g, lo, u.size if hi is None else hi)], one_sided)

    def directions(self, parts, one_sided=True):
        """Derivative of L along one direction spanning several arrays: the sum over the parts
        (name, u, g, lo, hi), each u on the flat slice [lo, hi) of arrays[name] (u, g as for direction).
        Every part is perturbed before the same forward, so a joint direction costs 2 forwards (central)
        or 1 (complex step) however many arrays it spans. Returns and one_sided as for direction.

        Works in chunks of CHUNK elements (no temporary of an array's size). The working copies are left
        perturbed along -h u afterwards and restored only before they are next used, and not at all when
        the next direction overwrites the same slice (at 100M weights every pass over the array counts).
        """
        h = self.eps
        for name, _, _, lo, hi in parts:
            self._ensure_work(name, lo, hi)
        self._restore(keep={name: (lo, hi) for name, _, _, lo, hi in parts})
        imag = self.method == "complex"
        a_plus = a_minus = terms = 0.0
        flats = []
        for name, u, g, lo, hi in parts:
            self._dirty[name] = (lo, hi)
            w, p = self._work[name].reshape(-1), self._pristine[name].reshape(-1)
            flats.append((w, p, lo, hi))
            known = isinstance(g, tuple)
            sums = _in_parts(lo, hi, lambda a, b, w=w, p=p, u=u, g=None if known else g: _plus_pass(
                u, w, p, g, h, a, b, imag=imag))
            a, m, t = g if known else sums
            a_plus, a_minus, terms = a_plus + a, a_minus + m, terms + t
        if imag:
            y = self._forward()
            analytic, central = a_plus / h, float(np.sum(self.G * y.imag)) / h
            if callable(one_sided):
                one_sided(analytic, central, terms / h)
            return analytic, central, None, None
        yp = self._forward()
        # - pass: w = p - (w - p), the stored step mirrored (its <g, -step> was summed in the + pass, so g
        # is read once, and may be the working copy's own buffer: adopt)
        for w, p, lo, hi in flats:
            _in_parts(lo, hi, lambda a, b, w=w, p=p: _minus_pass(w, p, a, b))
        ym = self._forward()
        G = self.G
        central = float(np.sum(G * (yp - ym))) / (2 * h)
        analytic = (a_plus + a_minus) / (2 * h)
        if not (one_sided(analytic, central, terms / h) if callable(one_sided) else one_sided):
            return analytic, central, None, None
        y0 = self.y0
        return analytic, central, float(np.sum(G * (y0 - ym))) / h, float(np.sum(G * (yp - y0))) / h

    def sums(self, name, u, g, lo=0, hi=None):
        """The g side of a later direction along u, from the pristine values and g alone (nothing written):
        (<g, step+>, <g, step->, sum|g h u|) at the current eps, to pass to direction() as its g once g's
        buffer has been handed over as the working copy (adopt)."""
        hi = u.size if hi is None else hi
        p = np.ascontiguousarray(self._pristine[name], dtype=np.float64).reshape(-1)
        return _in_parts(lo, hi, lambda a, b: _plus_pass(u, None, p, g, self.eps, a, b,
                                                          imag=self.method == "complex"))


CHUNK = 1 << 16  # elements per chunk of a direction (0.5 MB of float64: stays in cache)


PARALLEL_ELEMENTS = 1 << 22  # a pass over more elements than this is split over cpu_count() threads


def _in_parts(lo, hi, run):
    """Sum of the tuples run(a, b) returns over [lo, hi), split into CHUNK-aligned parts, one per CPU,
    run in threads (numpy releases the GIL in its kernels) when the slice is long."""
    workers = cpu_count() if hi - lo >= PARALLEL_ELEMENTS else 1
    if workers < 2:
        return run(lo, hi)
    step = -(-(hi - lo) // workers // CHUNK) * CHUNK
    bounds = [(a, min(a + step, hi)) for a in range(lo, hi, step)]
    # one BLAS thread per worker: a threaded dot per chunk from each worker oversubscribes the cores
    with blas_threads(1), ThreadPoolExecutor(len(bounds)) as pool:
        parts = list(pool.map(lambda ab: run(*ab), bounds))
    return tuple(float(sum(v)) for v in zip(*parts, strict=True))


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
    scratch = np.empty((4, min(CHUNK, max(hi - lo, 0))))
    dot = dot_minus = terms = 0.0
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        us, ga, va, gs = (buf[:b - a] for buf in scratch)
        _values(u, a, b, h, us)
        ps = p[a:b]
        if g is not None:
            np.copyto(gs, g[a:b])
            np.abs(gs, out=ga)
            np.abs(us, out=va)
            terms += float(np.dot(ga, va))
        if imag:
            if g is not None:
                dot += float(np.dot(gs, us))
            if w is not None:
                w[a:b].real = ps
                w[a:b].imag = us
            continue
        np.add(ps, us, out=va)  # w+ = p + h u
        if g is not None:
            np.subtract(va, ps, out=us)  # step+ as stored
            dot += float(np.dot(gs, us))
            np.subtract(ps, us, out=ga)  # w- = p - step+
            np.subtract(ps, ga, out=ga)  # step- as stored
            dot_minus += float(np.dot(gs, ga))
        if w is not None:
            w[a:b] = va
    return dot, dot_minus, terms


def _minus_pass(w, p, lo, hi):
    """w = p - (w - p) over [lo, hi): the + step mirrored."""
    buf = np.empty(min(CHUNK, max(hi - lo, 0)))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        ws, ps, s = w[a:b], p[a:b], buf[:b - a]
        np.subtract(ws, ps, out=s)
        np.subtract(ps, s, out=ws)
    return ()
