"""The Numba CPU backend.

``linrec.cpu.kernels`` holds the 1-D ``@njit`` kernels for your own Numba code,
``linrec.cpu.gufuncs`` the ``numba.guvectorize`` forms, ``linrec.cpu.backend`` the launch
logic behind ``linrec.scan`` for NumPy arrays. ``import linrec`` imports none of them.
"""

__all__ = ["CacheWarning"]


class CacheWarning(UserWarning):
    """Numba found no writable directory for its disk cache, so linrec's kernels are
    compiled in every new process; set ``NUMBA_CACHE_DIR`` to a writable directory."""
