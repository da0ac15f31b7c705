"""Threads: the BLAS libraries' own thread limits, the CPUs this process may use, and chunked passes over
long flat slices split across threads (numpy releases the GIL in its kernels)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

CHUNK = 1 << 16  # elements per chunk of a pass (0.5 MB of float64: stays in cache)
PARALLEL_ELEMENTS = 1 << 22  # a pass over more elements than this is split over cpu_count() threads
SMALL_BYTES = 256 << 20  # a check of arrays holding less than this runs every forward on one BLAS thread

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


def one_blas_thread_when_small(check):
    """Decorator for check(layer, arrays, ...): with arrays of under SMALL_BYTES in all, the whole check
    (structure probes, convergence sweeps and kink analyses included, not only the grouped plans) runs on
    one BLAS thread; its many small products would otherwise wait for OpenBLAS's second thread on a busy
    machine (a 16x800 @ 800x500 forward took 60-80 ms instead of 1 ms in a probe at load 3). Larger
    problems keep BLAS's threads: one forward is then big enough to use them."""

    @functools.wraps(check)
    def run(layer, arrays, *args, **kwargs):
        values = arrays.values() if isinstance(arrays, dict) else ()
        small = isinstance(arrays, dict) and sum(int(getattr(v, "nbytes", 0)) for v in values) < SMALL_BYTES
        with blas_threads(1) if small else contextlib.nullcontext():
            return check(layer, arrays, *args, **kwargs)

    return run


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def in_parts(lo, hi, run):
    """Sum of the tuples run(a, b) returns over [lo, hi), split into CHUNK-aligned parts, one per CPU,
    run in threads when the slice is long."""
    workers = cpu_count() if hi - lo >= PARALLEL_ELEMENTS else 1
    if workers < 2:
        return run(lo, hi)
    step = -(-(hi - lo) // workers // CHUNK) * CHUNK
    bounds = [(a, min(a + step, hi)) for a in range(lo, hi, step)]
    # one BLAS thread per worker: a threaded dot per chunk from each worker oversubscribes the cores
    with blas_threads(1), ThreadPoolExecutor(len(bounds)) as pool:
        parts = list(pool.map(lambda ab: run(*ab), bounds))
    return tuple(float(sum(v)) for v in zip(*parts, strict=True))
