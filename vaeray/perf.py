"""Process-level speed settings for CPU training.

glibc's default malloc returns every buffer over 32 MiB (and trims the heap) after each use, so a training
step re-faults its activation memory from the kernel every time: on a 2-core machine that is a quarter to a
half of CPU time in page faults (``../shared/research/performance.md``; our own measurement is in
``docs/performance.md``). ``mallopt`` can switch that off at run time, which is what the
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` environment variables do at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def tune_allocator(trim_threshold: int = 1 << 32) -> bool:
    """Keep freed memory in the heap instead of returning it to the kernel. Linux/glibc only; True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok_mmap = mallopt(M_MMAP_MAX, 0) == 1
    ok_trim = mallopt(M_TRIM_THRESHOLD, min(trim_threshold, 2**31 - 1)) == 1
    return ok_mmap and ok_trim
