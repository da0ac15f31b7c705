"""Which perturbations to make: every coordinate, a seeded sample of them, or random directions.

    exhaustive   every coordinate. With gradcheck.structure.groups: one forward (two for central) per
                 Group, all of its coordinates perturbed at once and the output difference split per
                 coordinate by bincount over the group's labels; without structure: one coordinate per
                 forward.
    sampled      `samples` distinct coordinates per array, drawn with the array's seeded rng.
    directional  `directions` random unit directions u per array: <g, u> against the derivative along u,
                 one forward (two for central) each at any size. A failing direction is then bisected:
                 the support is halved, each half checked as a direction of its own (u restricted to it),
                 and the search descends into the failing halves down to single coordinates, which are
                 checked as coordinates. k wrong elements of n cost ~ 2 k log2(n) extra checks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gradcheck import structure
from gradcheck.differencing import blas_threads, cpu_count

DEFAULT_SAMPLES = 16  # coordinates per array for "sampled"
DEFAULT_DIRECTIONS = 3  # directions per array for "directional"
MAX_LOCATED = 10  # wrong elements bisection locates per array before it stops (a wholly wrong gradient)
MAX_LEAVES = 64  # coordinates one bisection may check in all (directions through many kinks)

STRATEGIES = ("directional", "sampled", "exhaustive")

# Coordinate strategies run their forwards on one BLAS thread each and spread the groups over threads of
# their own (one Differencer fork, i.e. one set of working copies, per thread) when the working copies are
# small and the remaining groups would take a while.
FORK_BYTES = 256 << 20  # largest set of working copies a thread may copy
PARALLEL_AFTER = 0.05  # seconds of estimated remaining work before threads are started


class _Counted:
    """Delegates to a layer and counts its forward calls on the differencer (structure probes)."""

    def __init__(self, layer, differencer):
        self._layer, self._differencer = layer, differencer

    def __getattr__(self, attr):
        return getattr(self._layer, attr)

    def forward(self, **arrays):
        self._differencer.forwards += 1
        return self._layer.forward(**arrays)


def _counted(layer, differencer):
    # keep the layer's class name: structure's error messages name it
    return type(type(layer).__name__, (_Counted,), {})(layer, differencer)


def exhaustive(differencer, name, shape, y_shape, rng):
    """Every coordinate of arrays[name]. Returns (coords, central, left, right); left/right may be None."""
    size = int(np.prod(shape, dtype=np.int64))
    scratch = differencer.scratch(name)
    plan = structure.groups(_counted(differencer.layer, differencer), name, differencer.arrays(),
                            y_shape, rng, scratch=scratch)
    if plan is None:
        plan, total = ((np.array([j], dtype=np.int64), None) for j in range(size)), size
    else:
        plan = ((group.coords, group.labels) for group in plan)
        total = structure.count(differencer.layer, name, differencer.arrays(), y_shape)
    return _run(differencer, name, plan, total)


def sampled(differencer, name, shape, samples, rng):
    """`samples` distinct coordinates (all of them when the array is smaller), sorted. With structure,
    packed into groups of disjoint footprints (structure.pack: sampled weights of different output units
    share a forward); without, one per forward."""
    size = int(np.prod(shape, dtype=np.int64))
    coords = np.sort(rng.choice(size, size=min(int(samples), size), replace=False)).astype(np.int64)
    packed = None
    if coords.size > 1:
        scratch = differencer.scratch(name)
        packed = structure.pack(_counted(differencer.layer, differencer), name, differencer.arrays(),
                                differencer.G.shape, coords, rng, scratch=scratch)
    if packed is None:
        return _run(differencer, name, ((np.array([j], dtype=np.int64), None) for j in coords), coords.size)
    result = _run(differencer, name, ((g.coords, g.labels) for g in packed), len(packed))
    order = np.argsort(result[0], kind="stable")  # report in sorted coordinate order, as unpacked
    return tuple(None if v is None else v[order] for v in result)


def _evaluate(differencer, name, plan, total):
    """(coords, central, left, right) per non-empty group of `plan` (`total` groups), in plan order.

    Small problems (working copies under FORK_BYTES): one BLAS thread per forward; after two groups, if
    the rest is estimated to take over PARALLEL_AFTER seconds, the remaining groups go to cpu_count()
    threads, each with its own fork of the differencer (numpy releases the GIL in the forward's kernels).
    Large problems: serial, BLAS keeps its threads (one forward is then big enough to use them).
    """
    plan = ((c, labels) for c, labels in plan if c.size)
    if differencer.work_bytes() > FORK_BYTES:
        for c, labels in plan:
            yield (c, *differencer.coordinates(name, c, labels))
        return
    workers = cpu_count()
    with blas_threads(1):
        t0, done = time.perf_counter(), 0
        for c, labels in plan:
            yield (c, *differencer.coordinates(name, c, labels))
            done += 1
            if done == 2:
                break
        remaining = total - done
        if workers < 2 or done < 2 or (time.perf_counter() - t0) / done * remaining < PARALLEL_AFTER:
            for c, labels in plan:
                yield (c, *differencer.coordinates(name, c, labels))
            return
        if differencer.method == "central":
            differencer.y0  # noqa: B018  (the base point, computed once and shared by the forks)
        local, forks, lock = threading.local(), [], threading.Lock()

        def task(c, labels):
            d = getattr(local, "differencer", None)
            if d is None:
                d = local.differencer = differencer.fork()
                with lock:
                    forks.append(d)
            return (c, *d.coordinates(name, c, labels))

        try:
            with ThreadPoolExecutor(workers) as pool:
                pending = deque()
                for c, labels in plan:
                    pending.append(pool.submit(task, c, labels))
                    if len(pending) >= 2 * workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
        finally:
            differencer.forwards += sum(d.forwards for d in forks)


def _run(differencer, name, plan, total):
    coords, central, left, right = [], [], [], []
    for c, d, lft, rgt in _evaluate(differencer, name, plan, total):
        coords.append(c)
        central.append(d)
        left.append(lft)
        right.append(rgt)
    if not coords:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), empty, None, None
    coords, central = np.concatenate(coords), np.concatenate(central)
    if left[0] is None:
        return coords, central, None, None
    return coords, central, np.concatenate(left), np.concatenate(right)


class Direction:
    """A random unit direction of R^size.

    Up to EXACT_NORM elements: a normalised standard normal vector drawn from `rng` (uniform on the
    sphere), stored. Above it, generated chunk by chunk from a seed drawn from `rng` and never stored
    whole: entries u_j = c (2 r_j - 1 + 2^-24), r_j a float32 uniform on the 2^24-level grid of [0, 1):
    symmetric, never 0, and two errors of opposite sign cancel only when their levels tie (1 in 2^24).
    They come from one PCG64 stream advanced to any (even) position, so u[a:b] is the same whether
    generated alone (bisection) or as part of a pass; c gives E|u|^2 = 1 (|u| = 1 within ~1/sqrt(size):
    1e-4 at 100M). A pass over a 100M-element array then costs ~0.1 s and chunk-sized buffers, not the
    1.6 GB and seconds of normalised standard normals.
    """

    EXACT_NORM = 1 << 20

    def __init__(self, rng, size):
        self.size = int(size)
        if self.size <= self.EXACT_NORM:
            u = rng.standard_normal(self.size)
            norm = np.linalg.norm(u)
            self._u = u / norm if norm > 0 else u
            return
        self._u = None
        self._state = np.random.PCG64(int(rng.integers(2**63))).state
        self._local = threading.local()  # per thread: a bit generator and a float32 scratch buffer
        rms = np.sqrt(1 / 3 - 2.0**-48 / 3)  # RMS of the levels 2 r - 1 + 2^-24 (r = k 2^-24)
        self._c = 1.0 / (rms * np.sqrt(self.size))

    def values(self, a, b, scale, out):
        """out[:] = scale * u[a:b] (out: float64 of length b - a)."""
        if self._u is not None:
            return np.multiply(self._u[a:b], scale, out=out)
        start = a % 2  # a 64-bit draw holds two float32 uniforms
        n = b - a + start
        local = self._local
        if getattr(local, "r", None) is None or local.r.size < n:
            local.bitgen, local.r = np.random.PCG64(0), np.empty(n, dtype=np.float32)
        bitgen = local.bitgen
        bitgen.state = self._state
        bitgen.advance((a - start) // 2)
        r = local.r[:n]
        np.random.Generator(bitgen).random(out=r, dtype=np.float32)
        np.multiply(r[start:], 2 * scale * self._c, out=out)
        out += scale * self._c * (2.0**-24 - 1)
        return out

    def __getitem__(self, index):
        lo, hi, _ = index.indices(self.size)
        return self.values(lo, hi, 1.0, np.empty(max(hi - lo, 0)))


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
