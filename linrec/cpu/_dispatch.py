"""Calling the parallel kernels with few compiled variants.

Numba compiles one machine-code variant per distinct argument type, and an array's type
includes its layout (C, F or any) and whether it is read-only. The canonical views the
launcher builds would otherwise multiply variants (each operand C or not) and with them
the compile time. ``call`` types every array that is not C-contiguous as layout "A"
(any strides): each kernel is compiled lazily, at most once per dtype combination and
pattern of C-contiguous operands (contiguous rows let the compiler drop a stride
register per stream, which matters when a loop carries a dozen streams), and cached on
disk.
"""

import threading

import numba
import numpy as np

__all__ = ["call"]

_COMPILE_LOCK = threading.Lock()


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


def call(kernel, *args):
    """``kernel(*args)`` through the variant for these dtypes and C-contiguous operands."""
    key = (kernel, *map(_key, args))
    entry_point = _ENTRY_POINTS.get(key)
    if entry_point is None:
        signature = tuple(_type_of(x) for x in args)
        with _COMPILE_LOCK:
            kernel.compile(signature)
        entry_point = _ENTRY_POINTS[key] = kernel.overloads[signature].entry_point
    return entry_point(*args)
