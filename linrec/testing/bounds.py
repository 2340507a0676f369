"""A forward-error bound for the recurrence, and the assertion built on it.

For ``h[t] = a[t] * h[t-1] + b[t]`` computed in a precision with unit roundoff ``u``,
the error of the computed ``h`` is bounded elementwise (derivation in
``docs/testing.md``) by

    |h_computed[t] - h[t]|  <=  gamma * (N[t] + depth * M[t])  +  c * tiny * Q[t]

where, with ``|.|`` taken elementwise and the magnitudes scanned like the recurrence,

    M[t] = |a[t]| * M[t-1] + |b[t]|,   M[-1] = |h0|     (bounds |h[t]|)
    N[t] = |a[t]| * N[t-1] + M[t],     N[-1] = 0        (sum over steps of M)
    Q[t] = |a[t]| * Q[t-1] + 1,        Q[-1] = 0        (absolute underflow errors)

``c = 2`` for real ``a`` and ``1 + sqrt(5)`` for complex ``a`` (the roundings of one
step), ``gamma = c * u / (1 - c * u * (T + depth + 1))`` and ``tiny`` is the smallest
normal number. ``depth`` is how many steps' worth of extra roundings the evaluation order
adds to each element beyond the sequential loop: 0 for the loop, 1 for linrec's chunked
scan (the carry and the fix-up), about ``log2`` of the tree size for tree-shaped scans.
``N[t] = sum_r (t - r + 1) * |a[r+1] ... a[t]| * |b[r]|``: the bound grows with the
length and with the partial products of ``|a|``.
"""

import math

import numpy as np

from linrec.testing._host import time_last, to_numpy
from linrec.testing.reference import reference_scan

__all__ = ["scan_error_bound", "assert_scan_close"]

_SHOWN = 5


def _steps(a_complex):
    """Roundings per step, relative to ``|a| |h| + |b|``."""
    return 1.0 + math.sqrt(5.0) if a_complex else 2.0


def _rounded(name, x, dtype):
    """NumPy ``x`` rounded to ``dtype``'s precision (real inputs stay real)."""
    x = to_numpy(x)
    if x.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        raise ValueError(f"{name} is complex but the scan's dtype {dtype} is real")
    target = np.dtype(dtype) if x.dtype.kind == "c" else np.finfo(dtype).dtype
    return x.astype(target)


def _magnitudes(a, b, h0, axis, reverse):
    """``M``, ``N`` and ``Q`` (see the module docstring) in float64, time axis last."""
    (a, b), axis = time_last([np.abs(a), np.abs(b)], axis)
    a, b = np.broadcast_arrays(a.astype(np.float64), b.astype(np.float64))
    shape = b.shape
    m = np.zeros(shape[:-1]) + (0.0 if h0 is None else np.abs(to_numpy(h0)))
    n = np.zeros(shape[:-1])
    q = np.zeros(shape[:-1])
    out_m, out_n, out_q = (np.zeros(shape) for _ in range(3))
    steps = range(shape[-1] - 1, -1, -1) if reverse else range(shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in steps:
            m = a[..., t] * m + b[..., t]
            n = a[..., t] * n + m
            q = a[..., t] * q + 1.0
            out_m[..., t], out_n[..., t], out_q[..., t] = m, n, q
    return [np.moveaxis(x, -1, axis) for x in (out_m, out_n, out_q)], axis


def _gamma(c, u, k):
    denominator = 1.0 - c * u * k
    return c * u / denominator if denominator > 0 else math.inf


def _bound(a, b, h0, axis, reverse, dtype, depth):
    """Error bound of a scan in ``dtype`` plus that of the float64 reference loop."""
    if depth < 0:
        raise ValueError(f"depth must be non-negative, got {depth}")
    (m, n, q), axis = _magnitudes(a, b, h0, axis, reverse)
    T = m.shape[axis]
    c = _steps(np.iscomplexobj(a))
    info, ref = np.finfo(dtype), np.finfo(np.float64)
    u, u_ref = float(info.eps) / 2, float(ref.eps) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        return (_gamma(c, u, T + depth + 1) * (n + depth * m) + _gamma(c, u_ref, T + 1) * n
                + c * (float(info.smallest_normal) + float(ref.smallest_normal)) * q)


def scan_error_bound(a, b, *, h0=None, axis=-1, reverse=False, dtype=None, depth=1):
    """Elementwise bound on the error of any scan of ``(a, b)`` computed in ``dtype``.

    The bound of the module docstring for an evaluation order of the given ``depth``,
    with the inputs first rounded to ``dtype``'s precision; it is ``inf`` where the
    magnitudes overflow.

    Parameters
    ----------
    a, b, h0, axis, reverse : as for :func:`linrec.scan` (NumPy or CuPy arrays, scalars)
    dtype : dtype, optional
        The precision the scan computes in; default NumPy's promotion of the inputs.
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
    if dtype is None:
        dtype = np.result_type(*[to_numpy(x) for x in (a, b, h0) if x is not None])
    a, b = _rounded("a", a, dtype), _rounded("b", b, dtype)
    h0 = None if h0 is None else _rounded("h0", h0, dtype)
    return _bound(a, b, h0, axis, reverse, dtype, depth)


def _report(h, ref, err, bound, bad, context):
    count = int(bad.sum())
    ratio = np.where(bad, err / np.where(bound > 0, bound, np.nan), -np.inf)
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

    ``h`` is compared elementwise with :func:`linrec.testing.reference_scan` of the
    inputs rounded to ``h``'s precision. The tolerance is :func:`scan_error_bound` for
    ``h``'s dtype plus the bound of the float64 reference itself. Where the reference is
    NaN or infinite, ``h`` must be NaN or infinite too.

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
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
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
    ref, _ = reference_scan(a, b, h0, reverse, axis=axis)
    bound = _bound(a, b, h0, axis, reverse, h.dtype, depth)
    finite = np.isfinite(ref)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(h.astype(ref.dtype) - ref)
        bad = np.where(finite, ~(err <= bound), np.isfinite(h))
    if bad.any():
        context = (f"dtype {h.dtype}, shape {h.shape}, axis={axis}, reverse={reverse}, "
                   f"h0 {'given' if h0 is not None else 'zero'}")
        raise AssertionError(_report(h, ref, err, bound, bad, context))
