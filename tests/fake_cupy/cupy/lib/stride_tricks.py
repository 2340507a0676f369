"""``cupy.lib.stride_tricks`` of the stand-in."""

import cupy
import numpy as np

__all__ = ["as_strided"]


def as_strided(x, shape=None, strides=None):
    """A view of ``x`` with the given shape and byte strides (no ``writeable`` argument,
    as in CuPy)."""
    view = np.lib.stride_tricks.as_strided(cupy._array(x, "x")._a, shape, strides)
    return x._view(view)
