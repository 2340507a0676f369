"""A forward-error bound for the recurrence, and the assertion built on it.

For ``h[t] = a[t] * h[t-1] + b[t]`` computed in a precision with unit roundoff ``u``,
the error of the computed ``h`` is bounded elementwise (derivation in
``docs/testing.md``) by

    |h_computed[t] - h[t]|  <=  gamma * (N[t] + depth * M[t])  +  f * tiny * Q[t]

where, with ``|.|`` taken elementwise and the magnitudes scanned like the recurrence,

    M[t] = |a[t]| * M[t-1] + |b[t]|,   M[-1] = |h0|     (bounds |h[t]|)
    N[t] = |a[t]| * N[t-1] + M[t],     N[-1] = 0        (sum over steps of M)
    Q[t] = |a[t]| * Q[t-1] + 1,        Q[-1] = 0        (absolute underflow errors)

``c = 2`` for real ``a`` and ``1 + sqrt(5)`` for complex ``a`` (the roundings of one
step), ``gamma = c * u / (1 - c * u * (T + depth + 1))`` and ``tiny`` is the smallest
normal number; ``f = 2`` for a real ``h`` and ``3 * sqrt(2)`` for a complex one bounds
one step's error when results below ``tiny`` are flushed to zero, as linrec's CPU kernels
do. ``depth`` is how many steps' worth of extra roundings the evaluation order
adds to each element beyond the sequential loop: 0 for the loop, 1 for linrec's chunked
scan (the carry and the fix-up), about ``log2`` of the tree size for tree-shaped scans.
``N[t] = sum_r (t - r + 1) * |a[r+1] ... a[t]| * |b[r]|``: the bound grows with the
length and with the partial products of ``|a|``.

:func:`assert_scan_close` compares with a sequential reference loop run in the widest
precision NumPy has (``longdouble``, extended precision on x86; float64 elsewhere) and
adds that loop's own bound (the formula with its ``u`` and ``depth = 0``).
"""

import math
import numbers

import numpy as np

from linrec._host import time_last, to_numpy

__all__ = ["scan_error_bound", "assert_scan_close"]

_SHOWN = 5
_WIDEST = np.longdouble if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps \
    else np.float64


def _steps(a_complex):
    """Roundings per step, relative to ``|a| |h| + |b|``."""
    return 1.0 + math.sqrt(5.0) if a_complex else 2.0


def _flushes(dtype):
    """Absolute underflow error of one step, in units of the smallest normal number,
    when results below it are flushed to zero: each operation that forms a component
    (a product, a difference of products, the sum with ``b``) errs by less than one
    unit, so a real step by 2 and each component of a complex step by 3."""
    return 3.0 * math.sqrt(2.0) if np.dtype(dtype).kind == "c" else 2.0


def _rounded(name, x, dtype):
    """NumPy ``x`` rounded to ``dtype``'s precision (real inputs stay real)."""
    x = to_numpy(x)
    if x.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        raise ValueError(f"{name} is complex but the scan's dtype {dtype} is real")
    target = np.dtype(dtype) if x.dtype.kind == "c" else np.finfo(dtype).dtype
    return x.astype(target)


def _sweep(a, b, h0, axis, reverse, with_reference):
    """One sequential pass: ``[M, N, Q]`` in float64 (see the module docstring) and, if
    asked, the reference ``h`` in the widest precision; each the broadcast shape."""
    (a, b), axis = time_last([a, b], axis)
    a, b = np.broadcast_arrays(a, b)
    shape = b.shape
    abs_a, abs_b = np.abs(a).astype(np.float64), np.abs(b).astype(np.float64)
    m = np.zeros(shape[:-1]) + (0.0 if h0 is None else np.abs(h0).astype(np.float64))
    n, q = np.zeros(shape[:-1]), np.zeros(shape[:-1])
    out = [np.zeros(shape) for _ in range(3)]
    if with_reference:
        wide = np.result_type(_WIDEST, a, b, 0.0 if h0 is None else h0)
        a, b = a.astype(wide), b.astype(wide)
        h = np.zeros(shape[:-1], wide) + (0.0 if h0 is None else h0.astype(wide))
        out.append(np.zeros(shape, wide))
    steps = range(shape[-1] - 1, -1, -1) if reverse else range(shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in steps:
            # a zero coefficient cuts the chain, also where a magnitude overflowed to inf
            # (0 * inf would be NaN); the magnitudes are never NaN otherwise
            at = abs_a[..., t]
            m = np.where(at == 0, 0.0, at * m) + abs_b[..., t]
            n = np.where(at == 0, 0.0, at * n) + m
            q = np.where(at == 0, 0.0, at * q) + 1.0
            out[0][..., t], out[1][..., t], out[2][..., t] = m, n, q
            if with_reference:
                h = a[..., t] * h + b[..., t]
                out[3][..., t] = h
    return [np.moveaxis(x, -1, axis) for x in out], axis


def _gamma(c, u, k):
    denominator = 1.0 - c * u * k
    return c * u / denominator if denominator > 0 else math.inf


def _bound(m, n, q, T, c, dtype, depth):
    """The module docstring's bound for an order of ``depth`` in ``dtype``'s precision
    (the underflow term's factor is :func:`_flushes`, not ``c``)."""
    info = np.finfo(dtype)
    u = float(info.eps) / 2
    tiny = float(info.smallest_normal)
    with np.errstate(over="ignore", invalid="ignore"):
        # skip the terms whose factor is 0 (depth 0; longdouble's ``tiny``, below
        # float64's range): where the magnitudes overflowed, 0 * inf would make it NaN
        extra = depth * m if depth else 0.0
        underflow = _flushes(dtype) * tiny * q if tiny else 0.0
        return _gamma(c, u, T + depth + 1) * (n + extra) + underflow


def _check_depth(depth):
    if depth < 0:
        raise ValueError(f"depth must be non-negative, got {depth}")


def scan_error_bound(a, b, *, h0=None, axis=-1, reverse=False, dtype=None, depth=1):
    """Elementwise bound on the error of a scan of ``(a, b)`` computed in ``dtype``.

    The bound of the module docstring for an evaluation order of the given ``depth``,
    with the inputs first rounded to ``dtype``'s precision; it is ``inf`` where the
    magnitudes overflow. (:func:`assert_scan_close` adds its reference's own bound.)

    Parameters
    ----------
    a, b, h0, axis, reverse : as for :func:`linrec.scan` (NumPy or CuPy arrays, scalars)
    dtype : dtype, optional
        The precision the scan computes in; default NumPy's promotion of the inputs
        (Python scalars are weak, as in :func:`linrec.scan`).
    depth : int
        Extra roundings per element beyond the sequential loop, in steps: 0 for a
        sequential loop, 1 (default) for linrec's CPU schedules, ``ceil(log2(n))`` for an
        order that combines ``n`` partial results in a tree (a block-wide GPU scan).

    Returns
    -------
    ndarray, float64, the broadcast shape of ``a`` and ``b``

    Raises
    ------
    ValueError
        Complex inputs with a real ``dtype``; shapes that do not broadcast; a negative
        ``depth``.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    _check_depth(depth)
    if dtype is None:
        dtype = np.result_type(*[x if isinstance(x, numbers.Number) else to_numpy(x)
                                 for x in (a, b, h0) if x is not None])
    a, b = _rounded("a", a, dtype), _rounded("b", b, dtype)
    h0 = None if h0 is None else _rounded("h0", h0, dtype)
    (m, n, q), axis = _sweep(a, b, h0, axis, reverse, with_reference=False)
    return _bound(m, n, q, m.shape[axis], _steps(a.dtype.kind == "c"), dtype, depth)


def _report(h, ref, err, bound, bad, context):
    count = int(bad.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bad, err / bound, -np.inf)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = np.unravel_index(int(np.argmax(ratio)), h.shape)
    shown = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)[:_SHOWN]]
    return (
        f"{count} of {h.size} elements of h differ from the reference scan by more than "
        f"the forward-error bound ({context}).\n"
        f"worst at index {tuple(int(i) for i in worst)}: h={h[worst]!r}, "
        f"reference={ref[worst]!r}, |error|={err[worst]:.3e}, bound={bound[worst]:.3e}\n"
        f"first mismatches at {shown}"
    )


def assert_scan_close(h, a, b, *, h0=None, axis=-1, reverse=False, depth=1):
    """Assert that ``h`` is the scan of ``(a, b)`` to within the forward-error bound.

    ``h`` is compared elementwise with a sequential reference loop over the inputs
    rounded to ``h``'s precision, run in the widest precision available. The tolerance
    is :func:`scan_error_bound` for ``h``'s dtype plus the reference loop's own bound.
    Where the reference is NaN or infinite, ``h`` must be NaN or infinite too.

    Parameters
    ----------
    h : array (NumPy or CuPy), float or complex
        The scan to check: the broadcast shape of ``a`` and ``b``.
    a, b, h0, axis, reverse : as given to :func:`linrec.scan`.
    depth : int
        The evaluation order's extra roundings, as for :func:`scan_error_bound`.

    Raises
    ------
    AssertionError
        ``h`` has the wrong shape, is real where the inputs are complex, or differs
        from the reference by more than the bound somewhere (the message names the
        worst element, its error and its bound).
    ValueError
        A negative ``depth``.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    _check_depth(depth)
    h = to_numpy(h)
    if h.dtype.kind not in "fc":
        raise AssertionError(f"h has dtype {h.dtype}; a scan returns floats or complex")
    try:
        a, b = _rounded("a", a, h.dtype), _rounded("b", b, h.dtype)
        h0 = None if h0 is None else _rounded("h0", h0, h.dtype)
    except ValueError as error:
        raise AssertionError(f"h is real: {error}") from None
    shape = np.broadcast_shapes(a.shape, b.shape)
    if h.shape != shape:
        raise AssertionError(f"h has shape {h.shape}; the scan's shape is {shape}")
    (m, n, q, ref), axis_ = _sweep(a, b, h0, axis, reverse, with_reference=True)
    T, c = shape[axis_], _steps(a.dtype.kind == "c")
    bound = _bound(m, n, q, T, c, h.dtype, depth) + _bound(m, n, q, T, c, _WIDEST, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(h.astype(ref.dtype) - ref).astype(np.float64)
        bad = np.where(np.isfinite(ref), ~(err <= bound), np.isfinite(h))
    if bad.any():
        context = (f"dtype {h.dtype}, shape {h.shape}, axis={axis}, reverse={reverse}, "
                   f"depth={depth}, h0 {'given' if h0 is not None else 'zero'}")
        raise AssertionError(_report(h, ref, err, bound, bad, context))
