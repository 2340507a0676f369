"""The direct path: plain small NumPy calls of ``linrec.scan`` and ``linrec.scan_vjp``,
recognised before the general checks and sent straight to the small-problem kernels.

A (4, 256) float32 ``scan_vjp`` computes in about 3 µs, kernel dispatch included, but
the general entry around it (``linrec._api``: the argument checks, dtype promotion,
broadcasting, the alias checks, ``linrec._validate.Problem``, then
``linrec.cpu._small``'s own layout checks) cost about 15 µs more. Most small calls need
none of it. :func:`scan` and :func:`scan_vjp` here take a call when, read from a few
attributes:

- every array argument is an exact ``np.ndarray`` (no subclass, no masked array), all
  of one shape and one supported dtype, C-contiguous, with 1 to ``SMALL_MAX`` elements
  and at least one dimension; except ``a``, which may also have extent 1 along the time
  axis (one coefficient per chain, e.g. ``(C, 1)`` for ``b`` of shape ``(C, T)``) or be
  a Python ``float`` (one real coefficient for every chain; not with ``scan_vjp``'s
  ``out``);
- ``h0`` and ``grad_last`` are None or such arrays of the batch shape (the shape
  without the time axis);
- ``axis`` is a Python ``int`` naming the first or the last axis, ``reverse``,
  ``return_last`` and ``accumulate`` are Python bools, and ``method`` is "auto";
- every output given (``out``; both arrays of ``scan_vjp``'s pair) is such an array,
  writeable, and shares no memory with the inputs or with the other output, except
  ``scan``'s ``out`` being ``a`` or ``b`` itself (the in-place scan the general path
  allows too); ``accumulate`` needs both outputs.

For such a call no check of the general path can fail, the result dtype is the inputs'
dtype, and the general path would reach ``linrec.cpu._small``'s kernels with the very
views made here, so the results are the same bits (``tests/test_direct_path.py``
compares them). Every other call returns None here and takes the general path, which
also raises every error.
"""

import numpy as np

from linrec._dtypes import SUPPORTED, real_of
from linrec._validate import sum_to
from linrec.cpu import _small

__all__ = ["scan", "scan_vjp"]

_DTYPES = frozenset(SUPPORTED)


def _time_last(axis, ndim):
    """True for the last axis, False for the first, None for any other or an ``axis``
    that is not a Python int (a 1-D array's only axis counts as last)."""
    if type(axis) is not int:
        return None
    if axis == -1 or axis == ndim - 1:
        return True
    if axis == 0 or axis == -ndim:
        return False
    return None


def _plain(x, shape, dtype):
    """Whether ``x`` is an exact, C-contiguous ``np.ndarray`` of ``shape`` and ``dtype``."""
    return type(x) is np.ndarray and x.shape == shape and x.dtype == dtype and \
        x.flags.c_contiguous


def _output(x, shape, dtype, inputs):
    """Whether ``x`` is :func:`_plain`, writeable, and shares no memory with
    ``inputs``."""
    return _plain(x, shape, dtype) and x.flags.writeable and \
        not any(np.may_share_memory(x, y) for y in inputs)


def _problem(x, a, h0, axis, reverse, flag, method):
    """``(time_last, n, T, a_chains, state)`` for a call whose ``x`` (``b`` of a scan,
    ``h`` of a gradient) sets the shape and dtype: ``n`` chains of ``T`` steps, ``a``
    and ``h0`` as the kernels read them (:func:`_coefficients`, :func:`_state`); None
    when the call is not one the module docstring lists (``flag``: ``return_last`` or
    ``accumulate``)."""
    if type(x) is not np.ndarray or type(reverse) is not bool or type(flag) is not bool \
            or type(method) is not str or method != "auto":
        return None
    shape, dtype = x.shape, x.dtype
    if not shape or not 0 < x.size <= _small.SMALL_MAX or dtype not in _DTYPES or \
            not x.flags.c_contiguous:
        return None
    time_last = _time_last(axis, len(shape))
    if time_last is None:
        return None
    T = shape[-1] if time_last else shape[0]
    n = x.size // T
    a_chains = _coefficients(a, shape, dtype, time_last, n, T)
    state = _state(h0, _batch(shape, time_last), dtype)
    if a_chains is None or state is None:
        return None
    return time_last, n, T, a_chains, state


def _chains(x, n, T, time_last):
    return x.reshape(n, T) if time_last else x.reshape(T, n)


def _coefficients(a, shape, dtype, time_last, n, T):
    """``a`` as the small kernels read it, ``(n, Ta)`` (``(Ta, n)`` time-first) or
    ``(1, 1)`` for a float, or None when the direct path does not take this ``a``: the
    full shape, or extent 1 along time with the full batch, in ``dtype``, C-contiguous;
    or a Python float (real, of ``dtype``'s precision, as NumPy's promotion makes it)."""
    if type(a) is float:
        return np.full((1, 1), a, real_of(dtype))
    if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
        return None
    if a.shape == shape:
        return _chains(a, n, T, time_last)
    if a.shape == ((*shape[:-1], 1) if time_last else (1, *shape[1:])):
        return _chains(a, n, 1, time_last)
    return None


def _batch(shape, time_last):
    return shape[:-1] if time_last else shape[1:]


def _state(x, batch, dtype):
    """A state argument as the small kernels read it, ``(n,)`` (a zero ``(1,)`` for
    None), or None when it is not :func:`_plain` of the batch shape."""
    if x is None:
        return np.zeros(1, dtype)
    return x.reshape(-1) if _plain(x, batch, dtype) else None


def scan(a, b, h0, axis, reverse, return_last, out, method):
    """What ``linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse,
    return_last=return_last, out=out, method=method)`` returns, or None when the call
    is not one the module docstring lists."""
    found = _problem(b, a, h0, axis, reverse, return_last, method)
    if found is None:
        return None
    time_last, n, T, a_chains, state = found
    shape, dtype = b.shape, b.dtype
    if out is None:
        h = np.empty(shape, dtype)
    elif _plain(out, shape, dtype) and out.flags.writeable and \
            (out is b or not np.may_share_memory(out, b)) and \
            (out is a or not np.may_share_memory(out, a_chains)) and \
            (h0 is None or not np.may_share_memory(out, h0)):
        h = out
    else:
        return None
    h_last = np.empty(_batch(shape, time_last), dtype)
    _small.forward_kernel(a_chains, _chains(b, n, T, time_last),
                          _chains(h, n, T, time_last), state, h_last.reshape(-1),
                          reverse, time_last)
    return (h, h_last) if return_last else h


def scan_vjp(grad_h, a, h, h0, axis, reverse, grad_last, out, accumulate, method):
    """What ``linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, reverse=reverse,
    grad_last=grad_last, out=out, accumulate=accumulate, method=method)`` returns, or
    None when the call is not one the module docstring lists."""
    found = _problem(h, a, h0, axis, reverse, accumulate, method)
    if found is None:
        return None
    time_last, n, T, a_chains, state = found
    shape, dtype = h.shape, h.dtype
    batch = _batch(shape, time_last)
    last = _state(grad_last, batch, dtype)
    if last is None or not _plain(grad_h, shape, dtype):
        return None
    # grad_a as the kernels write it: a's shape, or one value per chain for a float
    ga_shape = a.shape if type(a) is np.ndarray else \
        (*shape[:-1], 1) if time_last else (1, *shape[1:])
    if out is None:
        if accumulate:
            return None
        grad_a, grad_b = np.empty(ga_shape, a_chains.dtype), np.empty(shape, dtype)
    elif type(out) in (tuple, list) and len(out) == 2 and type(a) is np.ndarray:
        grad_a, grad_b = out
        inputs = (grad_h, a, h, *(x for x in (h0, grad_last) if x is not None))
        if not _output(grad_a, ga_shape, dtype, inputs) or \
                not _output(grad_b, shape, dtype, (*inputs, grad_a)):
            return None
    else:
        return None
    Ta = ga_shape[-1] if time_last else ga_shape[0]
    grad_h0 = np.empty(batch, dtype)
    _small.backward_kernel(
        _chains(grad_h, n, T, time_last), a_chains, _chains(h, n, T, time_last), state,
        last, _chains(grad_a, n, Ta, time_last), _chains(grad_b, n, T, time_last),
        grad_h0.reshape(-1), reverse, accumulate, time_last)
    if type(a) is not np.ndarray:
        grad_a = sum_to(np, grad_a, ())
    return grad_a, grad_b, grad_h0
