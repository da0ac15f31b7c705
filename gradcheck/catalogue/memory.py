"""Freed memory kept in the process for the next case of a run (glibc's malloc on Linux).

glibc serves each allocation over 32 MB with its own mmap and unmaps it when freed, so every 0.8 GB array
of a 102.8M-weight case (drawn weights, the working copy, dW) is faulted in page by page afresh; on a
virtual machine that also backs the pages lazily this cost 1-2 s per array (FC 7x7x512 -> 4096: the
backward's dW took 1.8 s in a new process against 0.2 s into memory used before). keep_freed_memory()
makes malloc take large blocks from the heap and keep up to TOP_PAD of freed memory at its top, so a case
reuses what the one before it freed. The peak is unchanged (the cases run one after another); the memory
returns to the system when the run ends. `gradcheck run` calls it; a library caller's process is left as
it is.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # mallopt parameters (malloc.h)
TOP_PAD = 2**31 - 1  # bytes of freed memory kept at the top of the heap (mallopt takes an int)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; False where there is no mallopt (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TOP_PAD), (M_TOP_PAD, TOP_PAD)))
