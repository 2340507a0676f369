"""Helpers shared by the core tests: reference results along any axis and tolerances."""

import numpy as np

from linrec.reference import reference_scan, reference_scan_vjp


def ref_scan(a, b, h0=None, axis=-1, reverse=False):
    """reference_scan along ``axis``: (h, h_last) in float64/complex128."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    a = np.broadcast_to(a, shape)
    b = np.broadcast_to(b, shape)
    h, last = reference_scan(np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1), h0=h0,
                             reverse=reverse)
    return np.moveaxis(h, -1, axis), last


def ref_vjp(grad_h, a, h, h0=None, axis=-1, reverse=False, grad_last=None):
    """reference_scan_vjp along ``axis``; grad_a reduced to ``a``'s shape."""
    a_shape = np.shape(a)
    a_full = np.broadcast_to(a, h.shape)
    ga, gb, gh0 = reference_scan_vjp(np.moveaxis(grad_h, axis, -1),
                                     np.moveaxis(a_full, axis, -1),
                                     np.moveaxis(h, axis, -1), h0=h0, reverse=reverse,
                                     grad_last=grad_last)
    ga = np.moveaxis(ga, -1, axis)
    padded = (1,) * (ga.ndim - len(a_shape)) + tuple(a_shape)
    axes = tuple(i for i, n in enumerate(padded) if n == 1 and ga.shape[i] != 1)
    ga = ga.sum(axis=axes, keepdims=True).reshape(a_shape)
    if not np.iscomplexobj(a):
        ga = ga.real
    return ga, np.moveaxis(gb, -1, axis), gh0


def tolerance(dtype, T):
    """Absolute error allowed per unit of magnitude for a scan of length T with |a| <= 1."""
    eps = np.finfo(dtype).eps
    return 16 * eps * (T + 1)


def assert_close(actual, expected, dtype, T):
    expected = np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance(dtype, T) * scale)
