"""The allocator setting really changes glibc's malloc (observable through mallinfo2/munmap behaviour)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = r"""
import ctypes, ctypes.util, sys
from vaeray.perf import tune_allocator
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert tune_allocator()
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblks  # blocks served by mmap so far
p = libc.malloc(64 << 20)  # 64 MiB: above glibc's default mmap threshold
print(libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_allocator_serves_big_blocks_from_the_heap():
    def mmapped(mode):
        out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"no glibc mallinfo2 here: {out.stderr.strip()[-200:]}")
        return int(out.stdout.strip())

    assert mmapped("default") == 1  # the 64 MiB block is its own mmap (and munmap on free) by default
    assert mmapped("tuned") == 0  # tuned: from the heap, kept for the next step's activations
