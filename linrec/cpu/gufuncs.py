"""``numba.guvectorize`` forms of the scan, for ``xarray.apply_ufunc``, ``dask.array``
and anyone who wants NumPy's gufunc broadcasting.

``scan(a, b, h0)`` and ``scan_reverse(a, b, h0)`` have the layout signature
``(n),(n),()->(n)``: the scan runs along the last axis of ``a`` and ``b`` (both of the
same length n: broadcast ``a`` first with ``np.broadcast_to``, which does not copy), and
``h0`` broadcasts against the other dimensions. Pick another axis with
``axes=[(ax,), (ax,), (), (ax,)]``. Every dtype NumPy promotes to float32, float64,
complex64 or complex128 works, and a real ``a`` with a complex ``b``; the loops are compiled
when this module is first imported and cached on disk. Import it once before starting
several processes that import it (e.g. Dask workers) on a cold cache: Numba 0.63 can
write mismatched cache files when two processes compile these loops at once, and the
next import then crashes (Numba issue 10128).
These run sequentially within one call; use ``linrec.scan`` for the parallel kernels.

Example
-------
>>> import numpy as np
>>> from linrec.cpu import gufuncs
>>> b = np.ones((2, 4))
>>> gufuncs.scan(np.full(4, 0.5), b, 0.0)
array([[1.   , 1.5  , 1.75 , 1.875],
       [1.   , 1.5  , 1.75 , 1.875]])
>>> gufuncs.scan(np.full(2, 0.5), b, 0.0, axes=[(0,), (0,), (), (0,)])
array([[1. , 1. , 1. , 1. ],
       [1.5, 1.5, 1.5, 1.5]])

With xarray (``dim`` becomes the last core dimension):

>>> import xarray as xr  # doctest: +SKIP
>>> xr.apply_ufunc(gufuncs.scan, a_da, b_da, 0.0,
...                input_core_dims=[["time"], ["time"], []],
...                output_core_dims=[["time"]], dask="parallelized")  # doctest: +SKIP
"""

import numba

from linrec import _dtypes
from linrec.cpu import _jit
from linrec.cpu.kernels import scan_1d

__all__ = ["scan", "scan_reverse"]

_LOOPS = [
    (numba.from_dtype(ta)[:], numba.from_dtype(tb)[:], numba.from_dtype(tb),
     numba.from_dtype(tb)[:])
    for ta, tb in _dtypes.PAIRS
]


@_jit.guvectorize(_LOOPS, "(n),(n),()->(n)", nopython=True)
def scan(a, b, h0, h):
    """Forward scan along the core dimension: ``h[t] = a[t] * h[t-1] + b[t]``."""
    scan_1d(a, b, h0, h, False)


@_jit.guvectorize(_LOOPS, "(n),(n),()->(n)", nopython=True)
def scan_reverse(a, b, h0, h):
    """Reverse scan along the core dimension: ``h[t] = a[t] * h[t+1] + b[t]``."""
    scan_1d(a, b, h0, h, True)
