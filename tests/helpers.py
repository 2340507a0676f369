"""Helpers shared by the core tests: the references of ``linrec.testing`` with the
argument order of these tests, a tolerance for hand-picked problems, and a loader for
the benchmark scripts that some tests exercise."""

import importlib.util

import numpy as np

from linrec.testing import reference_scan, reference_scan_vjp


def load_script(path, name):
    """The Python file at ``path`` (a benchmark script, not a package module) imported
    as a module called ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def zero_state_through_overflow(ta, tb, span=4096):
    """Two one-row problems, in iteration order, whose sequential loops stay finite while
    the product of ``a`` over a few dozen steps overflows to inf (``|a| = 1e6``) and meets
    a state of exactly 0; ``a`` has a phase when ``ta`` is complex.

    - ``forward = (a, b)``: ``a`` is 0.5, 1e6, 0.5 over three spans of ``span`` steps,
      ``b`` is 1 on the last span only: ``h`` is 0 up to it, then tends to 2.
    - ``backward = (a, b, grad_h)``, ``3 * span + 1`` steps: ``a`` is 0.5 on the first
      span, 0 at the next step and 1e6 after it; ``b`` and ``grad_h`` are 1 on the first
      span only: ``h`` is 0 after it, and the adjoint's state is 0 from the end down to it.
    """
    phase = np.exp(0.3j) if np.dtype(ta).kind == "c" else 1.0
    t = np.arange(3 * span)
    a = np.where((t >= span) & (t < 2 * span), 1e6, 0.5) * phase
    b = np.where(t >= 2 * span, 1.0, 0.0)
    forward = (a[None].astype(ta), b[None].astype(tb))
    t = np.arange(3 * span + 1)
    a = np.where(t == span, 0.0, np.where(t > span, 1e6, 0.5)) * phase
    first = np.where(t < span, 1.0, 0.0)[None].astype(tb)
    backward = (a[None].astype(ta), first, first.copy())
    return forward, backward


def route_numpy_to(patch, backend_for):
    """Make ``linrec.scan`` / ``linrec.scan_vjp`` send NumPy arrays to the backend that
    ``backend_for(xp)`` returns (``patch``: a ``pytest.MonkeyPatch``), and past the CPU's
    direct path for small calls (``linrec.cpu._direct``), which would otherwise answer
    them before any backend is asked."""
    import types

    from linrec import _api, _namespace

    declined = types.SimpleNamespace(scan=lambda *args: None, scan_vjp=lambda *args: None)
    patch.setattr(_namespace, "backend_for", backend_for)
    patch.setattr(_api, "_direct_path", lambda: declined)
