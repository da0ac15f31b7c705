"""directional: random unit directions u per array: <g, u> against the derivative along u, one call of
the method (two forwards for central) each at any size.

First stage (check_joint): `directions` random directions spanning every checked array at once, so one
call checks x, W and b together. Only when a joint direction fails is each array checked on its own
(check_array): its own directions, one-sided differences and kinks, and bisection: the support of a
failing direction is halved, each half checked as a direction of its own (u restricted to it), and the
search descends into the failing halves down to single coordinates, which are checked as coordinates.
k wrong elements of n cost ~ 2 k log2(n) extra checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time

import numpy as np

from gradcheck.engine import kinks as kink_groups
from gradcheck.engine import structure
from gradcheck.engine import tolerance as tol_model
from gradcheck.engine.differencing import Lent
from gradcheck.engine.verdict import KINK, MISMATCH, NONFINITE, OK, UNDECIDED, Verdict, classify, failed
from gradcheck.results import SHOW_WORST, ArrayResult, Element
from gradcheck.strategies.coordinates import elements, rough
from gradcheck.strategies.setting import analytic_dtype, rng_of

DEFAULT_DIRECTIONS = 3  # directions per array
LARGE_DIRECTIONS = 2  # the default when the checked arrays hold REUSE_ELEMENTS or more elements in all
MAX_LOCATED = 10  # wrong elements bisection locates per array before it stops (a wholly wrong gradient)
MAX_LEAVES = 64  # coordinates one bisection may check in all (directions through many kinks)
MAX_PARTNERS = 64  # coordinates sharing an output with located kinks checked for tie groups (2 forwards each)
REUSE_ELEMENTS = 1 << 22  # an analytic gradient this large lends its buffer to the working copy (4M
# float64 = 32 MB; at 100M weights it saves 0.8 GB of the peak and its page faults), with a method that adopts


class Direction:
    """A random unit direction of R^size.

    Up to EXACT_NORM elements: a normalised standard normal vector drawn from `rng` (uniform on the
    sphere), stored. Above it, generated chunk by chunk from a seed drawn from `rng` and never stored
    whole: a random sign times a level bounded away from 0, u_j = c (m_j + 1/2), m_j uniform on the 2^15
    integers of [-2^15, -2^14) and [2^14, 2^15), from 16 raw bits (m = (k >> 1) ^ 2^14) of one PCG64
    stream, four per 64-bit draw. |u_j| is 0.65 to 1.31 times the RMS, so a single wrong element is always
    seen with at least 0.65 of the RMS weight (normal or uniform levels put 8% or 6% of the elements below
    0.1 of it); opposite errors cancel only when their levels tie (1 in 2^15 per direction). The stream
    can be advanced to any draw, so u[a:b] is the same generated alone (bisection) or in a pass; a thread
    generating consecutive chunks continues its stream. c gives E|u|^2 = 1 (|u| = 1 within ~1/sqrt(size)).
    """

    EXACT_NORM = 1 << 20
    LANES = 4  # 16-bit levels per 64-bit draw
    FLOOR = 1 << 14  # the smallest |m|: levels in [2^14, 2^15)

    def __init__(self, rng, size):
        self.size = int(size)
        if self.size <= self.EXACT_NORM:
            u = rng.standard_normal(self.size)
            norm = np.linalg.norm(u)
            self._u = u / norm if norm > 0 else u
            return
        self._u = None
        self._state = np.random.PCG64(int(rng.integers(2**63))).state
        self._local = threading.local()  # per thread: a bit generator and where its stream stands
        a, b = self.FLOOR, 2 * self.FLOOR  # |m + 1/2| takes the values a + 1/2, ..., b - 1/2 equally often
        rms = np.sqrt((b**3 - a**3) / (3 * (b - a)) - 1 / 12)
        self._c = 1.0 / (rms * np.sqrt(self.size))

    def values(self, a, b, scale, out):
        """out[:] = scale * u[a:b] (out: float64 of length b - a)."""
        if self._u is not None:
            return np.multiply(self._u[a:b], scale, out=out)
        lanes = self.LANES
        start = a % lanes
        first = a - start  # the first element of the first draw
        draws = -(-(b - first) // lanes)
        local = self._local
        bitgen = getattr(local, "bitgen", None)
        if bitgen is None:
            bitgen = local.bitgen = np.random.PCG64(0)
            local.at = None
        if local.at != first:  # not where this thread's stream stopped: set it there
            bitgen.state = self._state
            bitgen.advance(first // lanes)
        k = bitgen.random_raw(draws).view(np.int16)[start:start + b - a]
        local.at = first + draws * lanes
        np.right_shift(k, 1, out=k)  # [-2^14, 2^14), sign kept
        np.bitwise_xor(k, self.FLOOR, out=k)  # m: [0, 2^14) -> [2^14, 2^15), [-2^14, 0) -> [-2^15, -2^14)
        np.add(k, 0.5, out=out)  # exact; symmetric about 0
        out *= scale * self._c
        return out

    def __getitem__(self, index):
        lo, hi, _ = index.indices(self.size)
        return self.values(lo, hi, 1.0, np.empty(max(hi - lo, 0)))


def default_directions(sizes) -> int:
    """DEFAULT_DIRECTIONS, or LARGE_DIRECTIONS when the checked arrays hold REUSE_ELEMENTS or more elements
    (each direction: two forwards and two passes over all of them). An error spread over many elements is
    missed when every <e, u> is within the tolerance T: ~(0.8 T / s)^k for k directions, s the spread of
    <e, u> (two: 0.6% at s = 10 T, 6e-5 at 100 T; three: 5e-4, 5e-7). A single wrong element e_j of n is
    caught by every generated direction once |e_j| >= 1.53 T sqrt(n) (normal directions: 3 missed 11%)."""
    return LARGE_DIRECTIONS if sum(int(n) for n in sizes) >= REUSE_ELEMENTS else DEFAULT_DIRECTIONS


def random_direction(rng, size) -> Direction:
    """A random unit direction of R^size (see Direction), its seed drawn from `rng`."""
    return Direction(rng, size)


def bisect(judge, leaf, size, limit=MAX_LOCATED, leaves=MAX_LEAVES):
    """Locate the coordinates behind a failing direction.

    judge(lo, hi) -> (failed, ratio): the direction restricted to the flat slice [lo, hi).
    leaf(j) -> Element: coordinate j checked on its own (the authoritative verdict: ok, mismatch, kink).
    A slice whose halves both pass (errors that cancel, or that only add up over the whole slice) is
    followed into its worse half, so the search always ends on coordinates. It stops after `limit`
    failing coordinates or `leaves` coordinates in all (kinks: a direction through several
    non-differentiable points can fail although every coordinate is a valid subgradient).
    Returns (elements, complete): complete is False when a limit stopped the search.
    """
    found, visited = [], [0]

    def search(lo, hi):
        if sum(e.failed for e in found) >= limit or visited[0] >= leaves:
            return
        if hi - lo == 1:
            visited[0] += 1
            found.append(leaf(lo))
            return
        mid = (lo + hi) // 2
        halves = [(lo, mid), (mid, hi)]
        verdicts = [judge(a, b) for a, b in halves]
        failing = [half for half, (failed, _) in zip(halves, verdicts, strict=True) if failed]
        if not failing:
            failing = [halves[int(np.argmax([ratio for _, ratio in verdicts]))]]
        for a, b in failing:
            search(a, b)

    if size > 0:
        search(0, size)
    complete = sum(e.failed for e in found) < limit and visited[0] < leaves
    return found, complete


def _cleared(check, u, gflat, error, tolerance, rounding):
    """A failing direction that passes at a smaller step with an error that really fell (the method's
    refine_factors, retest, refined): it crosses a kink within eps, it does not point at a wrong gradient.
    tolerance, rounding: the direction's at eps."""
    method = check.method
    grows = 0.0 if check.atol_given is not None else rounding  # a caller's atol does not grow as 1/h
    for factor, h, rtol_h, atol_h in check.smaller_steps():
        if not method.retest(np.array([error]), np.array([tolerance]), grows, factor)[0]:
            return False
        along = check.diff.direction(check.name, u, gflat, 0, gflat.size, eps=h)
        atol_h = check.atol_at(h, rtol_h, along.terms, along.bound) if atol_h is None else atol_h
        err_h = np.array([abs(along.analytic - along.numeric)])
        cleared, settled = method.refined(np.array([error]), np.array([tolerance]), err_h,
                                          tol_model.tolerance(np.array([along.numeric]), rtol_h, atol_h))
        if cleared[0]:
            return True
        if settled[0]:
            return False
    return False


def _judge(check, u, gflat, lo, hi):
    """(along, left, right, code, error, tolerance, atol) of u restricted to [lo, hi); one-sided
    differences (a forward at the base point) only for a failing direction."""
    along = check.diff.direction(check.name, u, gflat, lo, hi)
    atol = check.direction_atol(along.terms, along.bound)
    a, n = along.analytic, along.numeric
    left = right = None
    if not abs(a - n) <= tol_model.tolerance(n, check.rtol, atol):
        left, right = along.one_sided()
    codes, error, tolerance = classify([a], [n], None if left is None else [left],
                                       None if right is None else [right], rtol=check.rtol, atol=atol,
                                       eps=check.eps, rounding=check.rounding_of(along.bound),
                                       method=check.method)
    return along, left, right, int(codes[0]), float(error[0]), float(tolerance[0]), atol


def _coordinate(check, j, analytic):
    """(numeric, left, right, code, error, tolerance) of coordinate j checked on its own by the method, or,
    when its one-sided differences say its stencil holds a kink, by the method's fallback."""
    c = np.array([j], dtype=np.int64)
    numeric, left, right = check.diff.coordinates(check.name, c)
    if rough(check, c, left, right)[0]:
        with check.as_fallback() as fb:
            return _coordinate(fb, j, analytic)
    bound = check.diff.bound(check.name, c)
    codes, error, tolerance = classify(analytic, numeric, left, right, rtol=check.rtol,
                                       atol=check.coordinate_atol(bound), eps=check.eps,
                                       rounding=check.rounding_of(bound), method=check.method)
    return numeric, left, right, codes[0], error, tolerance


def _kinks_check(check):
    """The check under which located kinks are analysed (gradcheck.engine.kinks): the method's fallback's,
    which judged every coordinate with a kink in its stencil, or the check itself."""
    return check.as_fallback() if check.method.fallback is not None else contextlib.nullcontext(check)


def check_array(check) -> dict:
    """`check.directions` directions of one array, failures located by bisection; ArrayResult fields."""
    diff, key, shape = check.diff, check.key, check.shape
    t0, f0 = time.perf_counter(), diff.forwards
    gflat = np.ascontiguousarray(check.g, dtype=np.float64).reshape(-1)
    size = gflat.size

    def leaf(j):
        numeric, left, right, c, e, t = _coordinate(check, j, gflat[j:j + 1])
        index = tuple(int(v) for v in np.unravel_index(j, shape))
        return Element(key, index, float(gflat[j]), float(numeric[0]), float(e[0]), float(t[0]),
                       Verdict.of(c), None if left is None else float(left[0]),
                       None if right is None else float(right[0]))

    results, located, atols = [], [], []
    cache, warnings, kink_searched = {}, [], False  # cache: coordinate -> its non-smooth output elements
    for _ in range(int(check.directions) if size else 0):  # no direction of an empty array: nothing checked
        u = random_direction(check.rng, size)
        along, lft, rgt, code, error, tolerance, atol = _judge(check, u, gflat, 0, size)
        atols.append(atol)
        if code == MISMATCH and lft is not None and _cleared(check, u, gflat, error, tolerance,
                                                             check.rounding_of(along.bound)):
            code = KINK
        budget = MAX_LOCATED - sum(e.failed for e in located)

        def half(lo, hi, u=u):
            _, _, _, c, e, t, _ = _judge(check, u, gflat, lo, hi)
            ratio = np.inf if c == NONFINITE or t <= 0 else e / t
            return c in (MISMATCH, NONFINITE), ratio

        if code in (MISMATCH, NONFINITE) and budget > 0:
            found, complete = bisect(half, leaf, size, budget)
            found, ties, notes = _refine_leaves(check, gflat, found, cache)
            warnings += notes
            _add(located, [*ties, *found])
            # non-differentiable along u (one-sided differences disagree), and every coordinate the search
            # reached is ok, a kink or undecided: several kinks at once, not a failure
            if (code == MISMATCH and lft is not None and complete and not any(e.failed for e in ties + found)
                    and abs(rgt - lft) > check.method.kink_threshold(lft, rgt, check.eps,
                                                                     check.rounding_of(along.bound))):
                if any(e.kind == Verdict.UNDECIDED for e in found):
                    code = UNDECIDED
                elif any(e.kind == Verdict.KINK for e in found):
                    code = KINK
        elif code == KINK and lft is not None and not kink_searched:  # one kink located, for the tie check
            kink_searched = True
            _add(located, [e for e in bisect(half, leaf, size, 1, leaves=1)[0] if e.kind == Verdict.KINK])
        results.append((along.analytic, along.numeric, lft, rgt, code, error, tolerance))
    ties, notes = ([], []) if not any(r[4] == KINK for r in results) else _ties(check, gflat, located, cache,
                                                                                 leaf)
    if ties:  # the kinks that excused these directions include tied ones whose sum is wrong
        _add(located, ties)
        results = [(*r[:4], MISMATCH if r[4] == KINK else r[4], *r[5:]) for r in results]
    warnings += notes

    values = np.array([r[:2] for r in results], dtype=np.float64).reshape(-1, 2)
    codes = np.array([r[4] for r in results], dtype=np.int64)
    error = np.array([r[5] for r in results])
    tolerance = np.array([r[6] for r in results])
    one_sided = results and all(r[2] is not None for r in results)
    left = np.array([r[2] for r in results], dtype=np.float64) if one_sided else None
    right = np.array([r[3] for r in results], dtype=np.float64) if one_sided else None
    if left is None and any(r[2] is not None for r in results):  # some directions passed: no one-sided
        left = np.array([np.nan if r[2] is None else r[2] for r in results])
        right = np.array([np.nan if r[3] is None else r[3] for r in results])
    kinks, worst, margin = elements(key, shape, None, values[:, 0], values[:, 1], left, right, codes, error,
                                    tolerance)
    bad_located = [e for e in located if e.failed]
    worst = (sorted(bad_located, key=lambda e: -e.ratio)[:SHOW_WORST] + worst)[:SHOW_WORST]
    return dict(checked=len(results), failed=int(np.count_nonzero(failed(codes))), kinks=kinks, worst=worst,
                margin=margin, numeric=None, forwards=diff.forwards - f0, seconds=time.perf_counter() - t0,
                atol=max(atols) if atols else 0.0, located=located,
                undecided=int(np.count_nonzero(codes == UNDECIDED)), warnings=warnings)


def _add(located, elements):
    """Append the elements whose index (or tie group) is not located yet."""
    seen = {(e.index, e.tied) for e in located}
    for e in elements:
        if (e.index, e.tied) not in seen:
            located.append(e)
            seen.add((e.index, e.tied))


def _refine_leaves(check, gflat, found, cache):
    """The coordinates bisection reached, through gradcheck.engine.kinks: (found with kink-like mismatches
    at degenerate points made undecided, failing tie groups among them, warnings)."""
    leaves = [e for e in found if e.index is not None and e.left is not None]
    if not leaves:
        return found, [], []
    coords = np.array([np.ravel_multi_index(e.index, check.shape) for e in leaves], dtype=np.int64)
    codes = np.array([e.kind.code for e in leaves])
    left, right = np.array([e.left for e in leaves]), np.array([e.right for e in leaves])
    with _kinks_check(check) as kc:
        new, ties, notes = kink_groups.refine(kc, coords, gflat[coords], left, right, codes, packed=False,
                                              cache=cache)
    kinds = {id(e): Verdict.of(c) for e, c in zip(leaves, new, strict=True)}
    return [dataclasses.replace(e, kind=kinds.get(id(e), e.kind)) for e in found], ties, notes


def _ties(check, gflat, located, cache, leaf):
    """Failing tie groups among the located kinks and their partners (the coordinates whose declared
    footprint holds one of their non-smooth output elements: the rest of a max-pool window), each
    partner checked as a coordinate (MAX_PARTNERS at most). Returns (tie Elements, warnings)."""
    kinks = [e for e in located if e.kind == Verdict.KINK and e.index is not None and not e.tied]
    if not kinks:
        return [], []
    diff = check.diff
    coords = {int(np.ravel_multi_index(e.index, check.shape)): e for e in kinks}
    with _kinks_check(check) as kc:
        sets = kink_groups.nonsmooth_outputs(kc, list(coords), packed=False, cache=cache)
    partners = set()
    for n in (() if diff.parts(check.name) else sets.values()):
        for o in n[:SHOW_WORST].tolist():
            near = structure.touching(diff.layer, check.name, diff.arrays(), diff.G.shape, o, MAX_PARTNERS)
            partners.update(() if near is None else near.tolist())
    for j in sorted(partners - set(coords))[:MAX_PARTNERS]:
        e = leaf(j)
        if e.kind == Verdict.KINK:
            coords[j] = e
    if len(coords) < 2:
        return [], []
    flat = np.array(sorted(coords), dtype=np.int64)
    es = [coords[int(j)] for j in flat]
    with _kinks_check(check) as kc:
        left, right = np.array([e.left for e in es]), np.array([e.right for e in es])
        _, ties, notes = kink_groups.refine(kc, flat, gflat[flat], left, right,
                                            np.array([e.kind.code for e in es]), packed=False, cache=cache)
    return ties, notes


def lendable(diff, grads, k) -> bool:
    """Whether grads[k] may become its array's working copy (Differencer.adopt): REUSE_ELEMENTS or more
    elements of a real array, a method that adopts, a gradient only the grads dict holds."""
    return (diff.method.adopts and not diff.parts(k) and grads.get(k) is not None
            and np.size(grads[k]) >= REUSE_ELEMENTS and _own_buffer(grads, k))


def _own_buffer(grads, k) -> bool:
    """grads[k] is a float64, C-contiguous, writable array whose memory nothing but the grads dict reaches
    (a layer that keeps or shares its gradient keeps it intact): it owns its memory, or it is a reshape of
    a whole array that nothing else holds (Conv2D's dk, its matrix product reshaped)."""
    g = grads[k]
    if not (type(g) is np.ndarray and g.dtype == np.float64 and g.flags.c_contiguous and g.flags.writeable
            and sys.getrefcount(g) <= 3):  # grads' entry, g, getrefcount's argument
        return False
    base = g.base
    if base is None:
        return g.flags.owndata
    return (type(base) is np.ndarray and base.base is None and base.flags.owndata and base.nbytes == g.nbytes
            and sys.getrefcount(base) <= 3)  # g's base, this name, getrefcount's argument


def check_joint(diff, grads, arrays, names, *, directions, seed, rtol, atol, eps, keep_analytic):
    """The first stage: `directions` random directions spanning all arrays at once.

    Direction i is, on each array k, the i-th direction the per-array check of k draws (random_direction
    from rng_of(seed, k)), so the joint derivative is the sum of the per-array ones, and one call of the
    method checks every array. Returns {name: ArrayResult} when every joint direction passes, or None
    (after the first failure): the caller then checks each array on its own.

    Unless keep_analytic, an analytic gradient of at least REUSE_ELEMENTS elements that the check owns
    becomes its array's working copy (Differencer.adopt) once its sums along the directions are taken;
    such a result's analytic is None, and grads[k] is set to None (the caller recomputes on a failure).
    """
    method = diff.method
    t0, f0 = time.perf_counter(), diff.forwards
    sizes = {k: int(np.size(grads[k])) for k in names}
    dtypes = {k: analytic_dtype(np.asarray(arrays[k]).dtype, grads[k]) for k in names}
    rtols = {k: float(rtol) if rtol is not None else tol_model.default_rtol(method, eps, d)
             for k, d in dtypes.items()}
    if len(set(rtols.values())) != 1 or min(sizes.values()) == 0 or any(diff.parts(k) for k in names):
        return None  # mixed precisions (one rtol cannot serve all), an empty or a complex array: per array
    rtol_ = rtols[names[0]]
    rounding = tol_model.rounding_atol(method, eps, diff.S)
    rngs = {k: rng_of(seed, k) for k in names}
    us = [{k: random_direction(rngs[k], sizes[k]) for k in names} for _ in range(int(directions))]
    gflat, consumed = {}, []
    for k in names:
        if not keep_analytic and lendable(diff, grads, k):
            g = grads[k].reshape(-1)
            grads[k] = None
            diff.adopt(k, g.reshape(np.shape(arrays[k])))
            gflat[k] = [Lent(g, [u[k] for u in us[1:]])]  # the first pass takes the later directions' sums
            consumed.append(k)
        else:
            g = np.ascontiguousarray(grads[k], dtype=np.float64).reshape(-1)
            gflat[k] = [g] * len(us)
    label = names[0] if len(names) == 1 else f"({', '.join(names)})"
    found, atols = [], []
    for i, u in enumerate(us):
        along = diff.directions([(k, u[k], gflat[k][i], 0, sizes[k]) for k in names], eps)
        if i == 0:
            for k in consumed:  # the later directions' sums, taken by this first pass (Lent)
                gflat[k] += gflat[k][0].sums
        dir_atol = (float(atol) if atol is not None
                    else tol_model.default_atol(method, eps, rtol_, along.terms, diff.S, along.bound))
        codes, error, tolerance = classify([along.analytic], [along.numeric], None, None, rtol=rtol_,
                                           atol=dir_atol, eps=eps, rounding=rounding)
        if codes[0] != OK:
            return None
        found.append(Element(label, None, float(along.analytic), float(along.numeric), float(error[0]),
                             float(tolerance[0]), Verdict.OK))
        atols.append(dir_atol)
    margin = max(e.ratio for e in found) if found else 0.0
    worst = sorted(found, key=lambda e: -e.ratio)[:SHOW_WORST]
    forwards, seconds = diff.forwards - f0, time.perf_counter() - t0
    return {k: ArrayResult(name=k, shape=tuple(np.shape(arrays[k])), dtype=str(np.asarray(arrays[k]).dtype),
                           strategy="directional", method=method.name, eps=eps, rtol=rtol_, atol=max(atols),
                           checked=len(found), failed=0, kinks=[], worst=list(worst), margin=margin,
                           analytic=None if k in consumed else grads[k], numeric=None, forwards=forwards,
                           seconds=seconds, joint=tuple(names))
            for k in names}
