"""The one table of the dtypes linrec computes in.

Each row names a compute dtype, its C++ type in the CUDA kernels (``traits`` in
``linrec/cuda/linrec_scalar.cuh`` must know it) and a loose relative tolerance for
comparing two results of that precision. Everything else is derived: the supported
dtypes, the ``(a dtype, b dtype)`` pairs the kernels are compiled for (each dtype with
itself, and a real ``a`` with the complex ``b`` of its precision), the item sizes.
Adding a dtype is one row here plus its C++ trait.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["DTYPES", "SUPPORTED", "NAMES", "PAIRS", "ITEMSIZES", "cxx_name", "rtol",
           "real_of"]


class _Row(NamedTuple):
    dtype: np.dtype
    cxx: str
    rtol: float


DTYPES = (
    _Row(np.dtype(np.float32), "float", 1e-4),
    _Row(np.dtype(np.float64), "double", 1e-10),
    _Row(np.dtype(np.complex64), "complex64", 1e-4),
    _Row(np.dtype(np.complex128), "complex128", 1e-10),
)

SUPPORTED = tuple(row.dtype for row in DTYPES)
NAMES = tuple(d.name for d in SUPPORTED)
_BY_DTYPE = {row.dtype: row for row in DTYPES}
_REAL = {d: np.finfo(d).dtype for d in SUPPORTED}


def real_of(dtype):
    """The real dtype of ``dtype``'s precision (``dtype`` itself when real)."""
    real = _REAL.get(dtype)
    return np.finfo(dtype).dtype if real is None else real


# Real pairs first, then mixed, then complex: NumPy's gufunc type resolution picks the
# first loop the inputs cast to safely, and a real ``a`` should stay real.
PAIRS = tuple(
    [(d, d) for d in SUPPORTED if d.kind == "f"]
    + [(real_of(d), d) for d in SUPPORTED if d.kind == "c"]
    + [(d, d) for d in SUPPORTED if d.kind == "c"]
)

ITEMSIZES = tuple(sorted({d.itemsize for d in SUPPORTED}))


def cxx_name(dtype):
    """The C++ type of ``dtype`` in the CUDA kernels."""
    return _BY_DTYPE[np.dtype(dtype)].cxx


def rtol(dtype):
    """A loose relative tolerance for comparing two results computed in ``dtype``."""
    return _BY_DTYPE[np.dtype(dtype)].rtol
