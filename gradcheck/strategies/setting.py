"""What checking one array needs, resolved once: the problem, the method, the tolerances, the rng."""

from __future__ import annotations

import contextlib
import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.engine import tolerance as tol_model


def rng_of(seed, key):
    """The rng of one array: depends on the seed and the array's name only (not on what else is checked)."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def rms(a) -> float:
    """RMS of the finite values of `a` (one BLAS dot, no array-sized temporaries, for float64)."""
    a = np.asarray(a)
    if a.dtype == np.float64 and a.size:
        flat = a.reshape(-1)
        ss = float(np.dot(flat, flat))
        if np.isfinite(ss):
            return float(np.sqrt(ss / flat.size))
    a = np.abs(a).astype(np.float64)
    finite = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(finite * finite))) if finite.size else 0.0


def analytic_dtype(array_dtype, g):
    """The precision of the analytic side: the coarser of the array's dtype and its gradient's."""
    g = np.asarray(g)
    dtypes = (np.dtype(array_dtype), g.dtype if g.dtype.kind in "fc" else np.dtype(np.float64))
    return max(dtypes, key=tol_model.unit_roundoff)


@dataclass
class ArrayCheck:
    """One array to check.

    diff: the Differencer of the problem; key: the reported name ("W", "conv.delta"); name: the array in
    diff's arrays (a residual's tail input "x"); g: the analytic gradient (the array's shape); dtype: the
    analytic side's precision; rtol: resolved; rtol_given / atol_given: the caller's (None: the error
    model's); rounding: the method's rounding floor at eps (tolerance.rounding_atol).
    infer: an array the layer declares no structure for gets one inferred (gradcheck.engine.inference);
    progress: check()'s progress(array, groups done, groups total, coordinates), or None.
    declaration: the structure.Declaration the coordinate strategies use, once planned (plans.plan_of).
    lent: g's buffer may serve as the array's working copy once the coordinates to check are known
    (lend(); the sampled strategy at REUSE_ELEMENTS or more): the result's analytic is then None.
    """

    diff: object
    key: str
    name: str
    g: np.ndarray
    dtype: np.dtype
    eps: float
    rtol: float
    rtol_given: float | None
    atol_given: float | None
    rounding: float
    rng: np.random.Generator
    y_shape: tuple[int, ...]
    samples: int
    directions: int
    infer: bool = True
    progress: Callable | None = None
    declaration: object | None = None
    planned: bool = False
    lent: bool = False
    _scale: float | None = None
    _kept: tuple | None = None  # (sorted flat coordinates, g there), once g's buffer was lent

    @property
    def scale(self) -> float:
        """RMS of the analytic gradient (the atol scale of a coordinate check), computed once."""
        if self._scale is None:
            self._scale = rms(self.g)
        return self._scale

    def analytic_at(self, coords) -> np.ndarray:
        """The analytic gradient at flat coordinates `coords`, float64 (from the values kept by lend())."""
        if self._kept is None:
            return self.g.reshape(-1)[coords].astype(np.float64)
        kept, values = self._kept
        return values[np.searchsorted(kept, coords)]

    def lend(self, coords) -> None:
        """Keep g at the flat coordinates `coords` (all that will be checked) and its RMS, then hand g's
        buffer to the differencer as this array's working copy (Differencer.adopt): no allocation, and
        no page faults, of a second array-sized copy. g is not read again."""
        kept = np.unique(np.asarray(coords, dtype=np.int64))
        self._kept = (kept, self.g.reshape(-1)[kept].astype(np.float64))
        self.scale  # noqa: B018  (computed while g holds the gradient)
        self.diff.adopt(self.name, self.g)

    @property
    def method(self):
        return self.diff.method

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.g.shape)

    def coordinate_atol(self, bound=None):
        """The atol of a coordinate check: the caller's, or rtol * RMS(g) + the rounding floor (or the
        method's own Bound of the values, per element: Differencer.bound)."""
        if self.atol_given is not None:
            return float(self.atol_given)
        return tol_model.default_atol(self.method, self.eps, self.rtol, self.scale, self.diff.S, bound)

    def direction_atol(self, terms: float, bound=None) -> float:
        """The atol of a directional check whose <g, u> has terms of total size `terms` (bound: Along's)."""
        if self.atol_given is not None:
            return float(self.atol_given)
        return tol_model.default_atol(self.method, self.eps, self.rtol, terms, self.diff.S, bound)

    def rounding_of(self, bound=None):
        """The numeric values' rounding bound the kink rules scale with: the method's Bound (per element)
        when it measured one, else its rounding floor at eps."""
        return self.rounding if bound is None else bound.rounding

    def smaller_steps(self):
        """(factor, h, rtol_h, atol_h or None) for each re-test step h = eps / factor (the method's
        refine_factors: eps/10, eps/100 for central): the error model at that step, or the caller's own
        rtol/atol when given (atol None: the caller computes it from its scale)."""
        for factor in self.method.refine_factors:
            h = self.eps / factor
            rtol_h = (tol_model.default_rtol(self.method, h, self.dtype) if self.rtol_given is None
                      else self.rtol_given)
            yield factor, h, rtol_h, self.atol_given

    def atol_at(self, h, rtol_h, scale, bound=None):
        return tol_model.default_atol(self.method, h, rtol_h, scale, self.diff.S, bound)

    @contextlib.contextmanager
    def as_fallback(self):
        """The block with the differencer on the method's fallback (Method.fallback), yielding this array's
        check under that method: its default step, its rtol (or the caller's), its rounding floor."""
        with self.diff.using(self.method.fallback) as diff:
            method = diff.method
            eps = method.default_eps()
            rtol = self.rtol_given
            rtol = tol_model.default_rtol(method, eps, self.dtype) if rtol is None else rtol
            yield dataclasses.replace(self, eps=eps, rtol=rtol, rounding=method.rounding_atol(eps, diff.S))

    def reporter(self, coordinates: int) -> Callable[[int, int], None] | None:
        """progress(done, total) for a plan's run (strategies.plans.run): check()'s progress callback with
        this array's key and its `coordinates`; None without one."""
        if self.progress is None:
            return None
        progress, key = self.progress, self.key
        return lambda done, total: progress(key, done, total, int(coordinates))


def make(diff, key, name, g, array_dtype, *, eps, rtol, atol, seed, y_shape, samples, directions, infer=True,
         progress=None, lent=False):
    g = np.asarray(g)
    dtype = analytic_dtype(array_dtype, g)
    method = diff.method
    rtol_ = tol_model.default_rtol(method, eps, dtype) if rtol is None else float(rtol)
    return ArrayCheck(diff, key, name, g, dtype, eps, rtol_, rtol, atol,
                      tol_model.rounding_atol(method, eps, diff.S), rng_of(seed, key), tuple(y_shape),
                      samples, directions, bool(infer), progress, lent=bool(lent))
