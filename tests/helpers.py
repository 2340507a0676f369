"""Helpers shared by the core tests: the references of ``linrec.testing`` with the
argument order of these tests, and a tolerance for hand-picked problems."""

import numpy as np

from linrec.testing import reference_scan, reference_scan_vjp


def ref_scan(a, b, h0=None, axis=-1, reverse=False):
    """(h, h_last) in float64/complex128 along ``axis``."""
    return reference_scan(a, b, h0, reverse, axis=axis)


def ref_vjp(grad_h, a, h, h0=None, axis=-1, reverse=False, grad_last=None):
    """(grad_a, grad_b, grad_h0) shaped as linrec.scan_vjp returns them."""
    return reference_scan_vjp(grad_h, a, h, h0, reverse, grad_last, axis=axis)


def tolerance(dtype, T):
    """Absolute error allowed per unit of magnitude for a scan of length T with |a| <= 1."""
    eps = np.finfo(dtype).eps
    return 16 * eps * (T + 1)


def assert_close(actual, expected, dtype, T):
    expected = np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance(dtype, T) * scale)


def random_with_phase(rng, shape, dtype, low=-1.0, high=1.0):
    """Uniform magnitudes in [low, high); complex dtypes get a uniform random phase."""
    dtype = np.dtype(dtype)
    x = rng.uniform(low, high, shape)
    if dtype.kind == "c":
        x = x * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))
    return x.astype(dtype)
