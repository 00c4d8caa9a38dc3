"""Keep freed memory in the process: large NumPy arrays are otherwise returned to the system on
free and fault in again, page by page, on the next allocation.

glibc serves an allocation above its mmap threshold (128 kB to start) with fresh pages and
unmaps them on free. Generating an example or framing a window allocates arrays of 1-60 MB
many times over, so each of them pays a page fault per 4 kB: on the virtual machines measured
here that was a fifth of the time a dataset example takes (0.84 -> 0.66 s, `lwmspectro bench
generate`). Raising the thresholds keeps those pages in the heap for the next array. There is
no library for this; `mallopt` is glibc's own interface, reached through ctypes, and elsewhere
(musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
"""glibc's largest mmap threshold: arrays up to 32 MB come from the heap."""
TRIM_THRESHOLD_BYTES = 1 << 30
"""Free memory at the heap's top kept before it is given back (up to 1 GB)."""
TOP_PAD_BYTES = 64 << 20
"""Extra heap asked for at each growth, so that the heap grows in few steps."""


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory for the next arrays (once per process); False
    where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        (M_TOP_PAD, TOP_PAD_BYTES),
    )
    return all(mallopt(option, value) == 1 for option, value in settings)
