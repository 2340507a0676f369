"""Keep freed memory in the process, so a training loop's arrays are not page-faulted
fresh at every step.

A training step allocates and frees the same few dozen arrays (about 1-2 MB each on the
forecasting shapes) at every step. glibc's ``malloc`` returns freed memory at the top of
a heap to the operating system once more than ``M_TRIM_THRESHOLD`` is free (about 2 MB
after its dynamic adjustment), so the next step touches fresh pages: about 3000 page
faults per step on one thread and 12000 on two (shards in threads have their own heaps),
measured on the default BLUR step (batch 32, T 336, H 48, N 16): 10-30 % of the step's
CPU time in the kernel. :func:`keep_freed_memory` raises the thresholds once per process
(Linux with glibc only; elsewhere it does nothing): blocks below 32 MiB come from the
heaps, and up to 128 MiB free stay in each heap for reuse.
"""

import ctypes
import ctypes.util
import sys
import threading

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_done = False
_lock = threading.Lock()


def keep_freed_memory():
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` (module docstring) once
    per process. Returns True when they are set (now or before), False where the C
    library is not glibc."""
    global _done
    with _lock:
        if not _done and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            _done = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                     and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
        return _done
