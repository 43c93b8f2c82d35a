"""Keeping freed buffers from piling up in the allocator.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB); after that,
band-sized buffers come from per-thread heaps, which fragment and are seldom given back. With
a model's producer, prefetch and libvips threads each holding a heap, resident memory grew
with the image's width several times over what the bands need. Fixing the threshold (what the
``MALLOC_MMAP_THRESHOLD_`` variable does, set from here because the variable must be set
before the process starts) sends every block of a megabyte or more to mmap, and back to the
system when it is freed. The measured effect is in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import ctypes
import functools

M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 1 << 20


@functools.cache
def return_large_blocks() -> bool:
    """Fix the allocator's mmap threshold at :data:`LARGE_BLOCK`, once per process; False
    where the C library has no ``mallopt`` (not glibc)."""
    try:
        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
    except (OSError, AttributeError):
        return False


def give_back() -> None:
    """Return the allocator's free memory to the system (glibc's ``malloc_trim``): after a run
    that held a lot (one stopped at the memory budget, say), its freed buffers would otherwise
    stay resident in the heaps of the threads that held them, and count against the next run.
    Nothing where the C library has no ``malloc_trim``."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
