"""Calling the parallel kernels with few compiled variants.

Numba compiles one machine-code variant per distinct argument type, and an array's type
includes its layout (C, F or any) and whether it is read-only. The canonical views the
launcher builds would otherwise multiply variants (each operand C or not) and with them
the compile time. ``call`` types every array that is not C-contiguous as layout "A"
(any strides): each kernel is compiled lazily, at most once per dtype combination and
pattern of C-contiguous operands (contiguous rows let the compiler drop a stride
register per stream, which matters when a loop carries a dozen streams), and cached on
disk.

Inside ``one_thread()`` a kernel's one-thread twin runs instead (small problems, where
waking threads costs more than the scan). Compilation happens outside the launch lock
(``linrec.cpu._threading``), so a thread compiling a new variant never delays another
thread's call of a compiled one. Numba's own compiler lock keeps two threads from
compiling the same variant twice. With ``NUMBA_DISABLE_JIT=1`` the kernels are plain
Python functions and ``call`` runs them as such (slowly: for debugging).
"""

import threading

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

from linrec.cpu import _threading

__all__ = ["call", "one_thread"]

_local = threading.local()


class _OneThread:
    """Within it, this Python thread's ``call``s run each kernel's one-thread twin
    (``kernel.serial``, see ``linrec.cpu._jit.parallel_njit``): no threads are launched.
    A class rather than a generator context manager: entered on every small call."""

    def __enter__(self):
        _local.one_thread = True

    def __exit__(self, *exc):
        _local.one_thread = False


_ONE_THREAD = _OneThread()


def one_thread():
    """The context manager of :class:`_OneThread` (reusable, not reentrant)."""
    return _ONE_THREAD


def _type_of(x):
    kind = numba.typeof(x)
    if isinstance(x, np.ndarray) and kind.layout != "C":
        return kind.copy(layout="A")
    return kind


_ENTRY_POINTS = {}


def _key(x):
    """What the compiled variant depends on, cheaper to compute than a Numba type."""
    if isinstance(x, np.ndarray):
        return x.dtype.char, x.ndim, x.flags.c_contiguous, x.flags.writeable
    return type(x)


def _entry_point(kernel, args):
    """The compiled variant for ``args`` (compiled or loaded from the disk cache now if
    needed) and whether it launches threads."""
    signature = tuple(_type_of(x) for x in args)
    kernel.compile(signature)
    return kernel.overloads[signature].entry_point, kernel.targetoptions.get("parallel")


def call(kernel, *args):
    """``kernel(*args)`` through the variant for these dtypes and C-contiguous operands."""
    if getattr(_local, "one_thread", False):
        kernel = getattr(kernel, "serial", kernel)
    if not isinstance(kernel, Dispatcher):
        return kernel(*args)
    key = (kernel, *map(_key, args))
    found = _ENTRY_POINTS.get(key)
    if found is None:
        found = _ENTRY_POINTS[key] = _entry_point(kernel, args)
    entry_point, parallel = found
    if not parallel:
        return entry_point(*args)
    with _threading.launch_guard():
        return entry_point(*args)
