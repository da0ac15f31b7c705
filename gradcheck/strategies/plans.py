"""Running a plan of coordinate groups: one call of the method per group, on threads when it pays.

A plan is a sequence of (coords, labels): one group of coordinates perturbed together (labels: output
element -> position in coords, gradcheck.engine.structure), or one coordinate (labels None). The
exhaustive and sampled strategies make plans from the declaration this module chooses (the layer's own,
else one inferred from the forward: gradcheck.engine.inference); this module evaluates them, calling a
progress callback now and then.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gradcheck.engine import inference, structure
from gradcheck.engine.threads import blas_threads, cpu_count

# Plans run their forwards on one BLAS thread each and spread the groups over threads of their own (one
# Differencer fork, i.e. one set of working copies, per thread) when the working copies are small and the
# remaining groups would take a while.
FORK_BYTES = 256 << 20  # largest set of working copies a thread may copy
PARALLEL_AFTER = 0.05  # seconds of estimated remaining work before threads are started
MEMORY_SHARE = 0.5  # of the memory available when threads start, what their forwards and forks may take
PROGRESS_EVERY = 0.2  # seconds between two calls of a progress callback


def available_bytes() -> int:
    """Memory the process may still take: MemAvailable (Linux), else the free physical pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not limit


def _measured(differencer, name, c, labels, eps):
    """(coordinates of one group, the peak bytes its forwards allocated): tracemalloc sees numpy's buffers
    as well as Python's objects. A caller's own tracing is left running (its peak may then overstate)."""
    ours = not tracemalloc.is_tracing()
    if ours:
        tracemalloc.start()
    else:
        tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = differencer.coordinates(name, c, labels, eps)
        return result, max(tracemalloc.get_traced_memory()[1] - base, 0)
    finally:
        if ours:
            tracemalloc.stop()


def thread_count(workers: int, work_bytes: int, peak: int) -> int:
    """Threads whose forks (work_bytes each) and forwards (peak bytes each) fit MEMORY_SHARE of the memory
    available: a forward that allocates a lot runs on fewer threads, down to one, instead of multiplying
    its memory by the thread count until the process is killed."""
    per_thread = max(work_bytes + peak, 1)
    return max(1, min(workers, int(MEMORY_SHARE * available_bytes()) // per_thread))


class Counted:
    """Delegates to a layer and counts its forward calls on the differencer (structure probes)."""

    def __init__(self, layer, differencer):
        self._layer, self._differencer = layer, differencer

    def __getattr__(self, attr):
        return getattr(self._layer, attr)

    def forward(self, **arrays):
        self._differencer.forwards += 1
        return self._layer.forward(**arrays)


def counted(layer, differencer):
    # keep the layer's class name: structure's error messages name it
    return type(type(layer).__name__, (Counted,), {})(layer, differencer)


def declaration(diff, name, y_shape, rng, *, coordinates, infer=True) -> structure.Declaration | None:
    """The declaration the coordinate strategies group arrays[name] with, or None (one coordinate per
    forward): the layer's own (validated and probed), else, with `infer`, one inferred from the forward
    when probing costs fewer forwards than checking `coordinates` one at a time. Probes are counted in
    diff.forwards. An inferred declaration that groups nothing is returned too (ArrayResult.inferred says
    what was found); grouped() tells whether it is used. A complex array (checked as its parts) has none:
    a declaration is per element."""
    if diff.parts(name):
        return None
    layer, scratch = counted(diff.layer, diff), diff.scratch(name)
    declared = structure.declaration(layer, name, diff.arrays(), y_shape, rng, scratch=scratch,
                                     base=lambda: diff.y0)
    if declared is not None or not infer:
        return declared
    if int(coordinates) * diff.method.forwards <= inference.probe_forwards(diff.size(name)):
        return None
    found = inference.infer(layer, name, diff.arrays(), y_shape, rng, scratch=scratch)
    return structure.declaration(layer, name, diff.arrays(), y_shape, rng, entries=found.entries,
                                 inferred=found)


def plan_of(check, coordinates) -> structure.Declaration | None:
    """declaration() for an ArrayCheck, made once per array: a re-run at a smaller step (or of the
    coordinates that failed) reuses it, probes and all."""
    if not check.planned:
        check.declaration = declaration(check.diff, check.name, check.y_shape, check.rng,
                                        coordinates=coordinates, infer=check.infer)
        check.planned = True
    return check.declaration


def grouped(declared) -> bool:
    """Whether a plan groups with `declared`: a declaration, and not an inferred one with a group per
    coordinate (no axis fits)."""
    return declared is not None and (declared.inferred is None or declared.count < declared.size)


def inferred(declared) -> bool:
    """Whether `declared` groups coordinates on an inferred declaration (what the safety net re-checks)."""
    return grouped(declared) and declared.inferred is not None


def inferred_entries(declared) -> tuple | None:
    """The entries of an inferred declaration (ArrayResult.inferred), None for a declared one or none."""
    return None if declared is None or declared.inferred is None else tuple(declared.entries)


def alone(coords):
    """The plan of `coords` one coordinate per forward."""
    return ((np.array([j], dtype=np.int64), None) for j in coords)


def _evaluate(differencer, name, plan, total, eps=None):
    """(coords, central, left, right) per non-empty group of `plan` (`total` groups), in plan order.

    Small problems (working copies under FORK_BYTES): one BLAS thread per forward; after two groups, if
    the rest is estimated to take over PARALLEL_AFTER seconds, the remaining groups go to cpu_count()
    threads (fewer when the memory the first two groups' forwards allocated, times the threads, would not
    fit: thread_count), each with its own fork of the differencer (numpy releases the GIL in the forward's
    kernels). Large problems: serial, BLAS keeps its threads (one forward is then big enough to use them).
    """
    plan = ((c, labels) for c, labels in plan if c.size)
    if differencer.work_bytes() > FORK_BYTES:
        for c, labels in plan:
            yield (c, *differencer.coordinates(name, c, labels, eps))
        return
    workers = cpu_count()
    with blas_threads(1):
        t0, done, peak = time.perf_counter(), 0, 0
        for c, labels in plan:
            result, used = _measured(differencer, name, c, labels, eps) if workers > 1 else (
                differencer.coordinates(name, c, labels, eps), 0)
            peak = max(peak, used)
            yield (c, *result)
            done += 1
            if done == 2:
                break
        remaining = total - done
        workers = thread_count(workers, differencer.work_bytes(), peak)
        if workers < 2 or done < 2 or (time.perf_counter() - t0) / done * remaining < PARALLEL_AFTER:
            for c, labels in plan:
                yield (c, *differencer.coordinates(name, c, labels, eps))
            return
        if differencer.method.one_sided:
            differencer.y0  # noqa: B018  (the base point, computed once and shared by the forks)
        local, forks, lock = threading.local(), [], threading.Lock()

        def task(c, labels):
            d = getattr(local, "differencer", None)
            if d is None:
                d = local.differencer = differencer.fork()
                with lock:
                    forks.append(d)
            return (c, *d.coordinates(name, c, labels, eps))

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


def run(differencer, name, plan, total, eps=None, progress=None):
    """(coords, numeric, left, right) over every group of `plan` (`total` groups), concatenated in plan
    order; left/right None without one-sided differences. progress(done, total): called with 0 first, then
    every PROGRESS_EVERY seconds with the groups done, and with total at the end."""
    coords, central, left, right = [], [], [], []
    last = time.perf_counter()
    if progress is not None:
        progress(0, total)
    for c, d, lft, rgt in _evaluate(differencer, name, plan, total, eps):
        coords.append(c)
        central.append(d)
        left.append(lft)
        right.append(rgt)
        if progress is not None and time.perf_counter() - last >= PROGRESS_EVERY:
            progress(min(len(coords), total), total)
            last = time.perf_counter()
    if progress is not None:
        progress(total, total)
    if not coords:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), empty, None, None
    coords, central = np.concatenate(coords), np.concatenate(central)
    if left[0] is None:
        return coords, central, None, None
    return coords, central, np.concatenate(left), np.concatenate(right)


