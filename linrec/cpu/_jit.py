"""The decorators every linrec kernel is compiled through: Numba's, with the disk cache
when there is somewhere to write it.

Numba caches compiled kernels in a ``__pycache__`` directory next to the source, else in
the user's cache directory (``$XDG_CACHE_HOME/numba``), else in ``$NUMBA_CACHE_DIR``
when that is set. When none of them is writable (a read-only system or container
install, a shared cluster install) ``cache=True`` makes the decorator raise
``RuntimeError: cannot cache function ...: no locator available``. Here the kernels are
then compiled without the disk cache, in every new process, and one
:class:`linrec.cpu.CacheWarning` says how to enable caching.

With ``NUMBA_DISABLE_JIT=1`` Numba's ``njit`` returns the Python function itself (the
kernels then run as plain Python, for debugging), but ``guvectorize`` still compiles, and
cannot compile code that calls those Python functions: the gufuncs then raise a
``RuntimeError`` naming the variable when called.
"""

import functools
import types
import warnings

import numba

from linrec.cpu import CacheWarning

__all__ = ["njit", "parallel_njit", "guvectorize"]

_warned = False


def _cached(decorator, options):
    """``decorator(cache=True, **options)``, or without the cache when Numba finds no
    writable cache location."""
    def decorate(func):
        try:
            return decorator(cache=True, **options)(func)
        except RuntimeError:
            compiled = decorator(cache=False, **options)(func)
        _warn_once(func)
        return compiled
    return decorate


def _warn_once(func):
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"linrec: Numba found no writable cache directory for {func.__module__} (the "
        "package directory and the user cache directory are read-only), so linrec's "
        "kernels are compiled again in every process. Set the environment variable "
        "NUMBA_CACHE_DIR to a writable directory to cache them.",
        CacheWarning, stacklevel=4)


def njit(**options):
    """``numba.njit(cache=True, **options)`` with the fallback above."""
    return _cached(numba.njit, options)


def parallel_njit(**options):
    """``njit(parallel=True, **options)``, with a one-thread twin as ``.serial``: the same
    source compiled without ``parallel`` (``prange`` is then ``range``), under a name of
    its own so that the two never share a disk-cache entry. Small problems call the twin:
    it runs on the calling thread, with no launch through the threading layer (about
    0.1 ms under workqueue, more than the whole scan of a few thousand elements)."""
    def decorate(func):
        kernel = njit(parallel=True, **options)(func)
        twin = types.FunctionType(func.__code__, func.__globals__, func.__name__,
                                  func.__defaults__, func.__closure__)
        twin.__qualname__ = f"{func.__qualname__}_one_thread"
        twin.__module__ = func.__module__
        twin.__doc__ = func.__doc__
        kernel.serial = njit(**options)(twin)
        return kernel
    return decorate


def guvectorize(signatures, layout, **options):
    """``numba.guvectorize(signatures, layout, cache=True, **options)`` with the fallback
    above; under ``NUMBA_DISABLE_JIT`` a function that raises ``RuntimeError``."""
    if numba.config.DISABLE_JIT:
        return _needs_jit
    return _cached(lambda **kw: numba.guvectorize(signatures, layout, **kw), options)


def _needs_jit(func):
    @functools.wraps(func)
    def needs_jit(*args, **kwargs):
        raise RuntimeError(
            f"linrec.cpu.gufuncs.{func.__name__} is a compiled gufunc, and the environment "
            "variable NUMBA_DISABLE_JIT=1 turns Numba's compiler off: unset it, or use "
            "linrec.scan or linrec.cpu.kernels.scan_1d, which run as plain Python under "
            "it.")
    return needs_jit
