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
import ctypes
import os
import threading

import numpy as np

# OpenBLAS entry points that set / get its thread count, as the numpy and scipy wheels export them
_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
        "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
        "openblas_get_num_threads")
_blas_lock = threading.Lock()


def _openblas_libraries():
    """(set, get) function pairs of every OpenBLAS loaded in this process (Linux: read /proc/self/maps)."""
    found, seen = [], set()
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return found
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        set_ = next((getattr(lib, n) for n in _SET if hasattr(lib, n)), None)
        get_ = next((getattr(lib, n) for n in _GET if hasattr(lib, n)), None)
        if set_ is not None and get_ is not None and path not in seen:
            seen.add(path)
            set_.argtypes, get_.restype = [ctypes.c_int], ctypes.c_int
            found.append((set_, get_))
    return found


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with OpenBLAS limited to n threads (restored afterwards; a no-op without OpenBLAS).

    Many small matrix products (one forward per column group) are where OpenBLAS's own threads hurt: on a
    busy 2-core machine each tiny product waits for a second thread that is not scheduled, and a 0.4 ms
    16x800 @ 800x500 product takes 40 ms. The checker parallelises over groups itself instead.
    """
    with _blas_lock:
        libs = _openblas_libraries()
        before = [get() for _, get in libs]
        for set_, _ in libs:
            set_(int(n))
    try:
        yield
    finally:
        with _blas_lock:
            for (set_, _), k in zip(libs, before, strict=True):
                set_(k)


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

    def _make_work(self, name, v):
        dtype = np.complex128 if self.method == "complex" else np.float64
        work = np.array(v, dtype=dtype, order="C", copy=True)
        self._work[name] = work
        self._args[name] = read_only(work)
        if v.dtype != np.float64 or not v.flags.c_contiguous:
            v = np.ascontiguousarray(v, dtype=np.float64)
        self._pristine[name] = read_only(v)

    def _flat(self, name):
        """(working copy, pristine) of `name`, both flat views."""
        if name not in self._work:
            self._make_work(name, self._pristine[name])
        return self._work[name].reshape(-1), self._pristine[name].reshape(-1)

    def fork(self) -> Differencer:
        """A Differencer for another thread: the same layer, G and base point, its own working copies."""
        d = Differencer(self.layer, self._pristine, self.G, self.method, self.eps, self.S)
        d._y0 = self._y0
        return d

    def work_bytes(self) -> int:
        """Bytes a fork copies: a working copy of every input (complex128 or float64)."""
        itemsize = 16 if self.method == "complex" else 8
        return sum(int(np.size(self._pristine[k])) * itemsize for k in self._inputs)

    def arrays(self) -> dict[str, np.ndarray]:
        """The (read-only) arrays forward is called with, at the base point."""
        return dict(self._args)

    def forward(self) -> np.ndarray:
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
                y = self.forward()
            finally:
                w[coords] = p[coords]
            return split(self.G * y.imag, labels, k) / h, None, None
        y0 = self.y0
        pc = p[coords]
        try:
            w[coords] = pc + h
            hp = w[coords] - pc
            yp = self.forward()
            w[coords] = pc - h
            hm = pc - w[coords]
            ym = self.forward()
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

        u: flat float64 direction; g: flat float64 analytic gradient.
        Returns (analytic, central, left, right): analytic is <g, step> / h along the steps as stored
        (so the rounding of a + h u cancels out of the comparison); left/right None for complex step.
        one_sided: True, False, or a predicate (analytic, central) -> bool; when false, left/right are
        None and the base point's forward is not spent (a passing direction does not need them).
        """
        hi = u.size if hi is None else hi
        h = self.eps
        w, p = self._flat(name)
        ws, ps, us, gs = w[lo:hi], p[lo:hi], u[lo:hi], g[lo:hi]
        if self.method == "complex":
            try:
                ws.imag[:] = us * h
                y = self.forward()
                analytic = float(np.dot(gs, ws.imag)) / h
            finally:
                ws[:] = ps
            return analytic, float(np.sum(self.G * y.imag)) / h, None, None
        step = np.empty_like(ps)
        try:
            np.multiply(us, h, out=step)
            np.add(ps, step, out=ws)
            np.subtract(ws, ps, out=step)
            a_plus = float(np.dot(gs, step))
            yp = self.forward()
            np.multiply(us, -h, out=step)
            np.add(ps, step, out=ws)
            np.subtract(ps, ws, out=step)
            a_minus = float(np.dot(gs, step))
            ym = self.forward()
        finally:
            ws[:] = ps
        G = self.G
        central = float(np.sum(G * (yp - ym))) / (2 * h)
        analytic = (a_plus + a_minus) / (2 * h)
        if not (one_sided(analytic, central) if callable(one_sided) else one_sided):
            return analytic, central, None, None
        y0 = self.y0
        return analytic, central, float(np.sum(G * (y0 - ym))) / h, float(np.sum(G * (yp - y0))) / h
