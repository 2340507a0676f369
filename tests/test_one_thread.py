"""Small problems run the kernels' one-thread twins; both twins agree with the reference.

Problems of at most ``SERIAL_MAX`` elements call ``kernel.serial`` (the same source
compiled without ``parallel``), larger ones the parallel kernel. Most other tests are
small, so here the parallel kernels are also forced onto small awkward shapes, and the
twins onto them, and both are compared with the sequential reference.
"""

import numpy as np
import pytest

import linrec
from linrec.cpu import _parallel, _threading, backend
from linrec.reference import reference_scan, reference_scan_vjp
from linrec.testing import assert_scan_close
from tests.helpers import random_with_phase

METHODS = ["rows", "channels", "chunked"]
SHAPES = [((5, 4099), -1), ((4099, 7), 0), ((3, 2, 1031), -1)]


def _problem(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_with_phase(rng, shape, dtype, 0.5, 1.0)
    b = random_with_phase(rng, shape, dtype, -1.0, 1.0)
    g = random_with_phase(rng, shape, dtype, -1.0, 1.0)
    return a, b, g


@pytest.mark.parametrize("one_thread", [True, False], ids=["twin", "parallel"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("shape", "axis"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("reverse", [False, True])
def test_both_twins_match_the_reference(monkeypatch, one_thread, method, shape, axis,
                                        dtype, reverse):
    monkeypatch.setattr(backend, "SERIAL_MAX", 2**62 if one_thread else 0)
    a, b, g = _problem(shape, dtype, seed=len(shape) + axis)
    h = linrec.scan(a, b, axis=axis, reverse=reverse, method=method)
    assert_scan_close(h, a, b, axis=axis, reverse=reverse)
    grad_a, grad_b, _ = linrec.scan_vjp(g, a, h, axis=axis, reverse=reverse,
                                        method=method)
    h_exact, _ = reference_scan(a, b, reverse=reverse, axis=axis)
    want_a, want_b, _ = reference_scan_vjp(g, a, h_exact, reverse=reverse, axis=axis)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(grad_b, want_b, rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_a, want_a, rtol=tol, atol=tol)


def test_every_parallel_kernel_has_a_one_thread_twin():
    kernels = [k for k in vars(_parallel).values() if hasattr(k, "targetoptions")
               and k.targetoptions.get("parallel")]
    assert kernels
    for kernel in kernels:
        assert not kernel.serial.targetoptions.get("parallel")
        assert kernel.serial.py_func.__code__ is kernel.py_func.__code__


@pytest.mark.parametrize("method", METHODS)
def test_a_small_problem_launches_no_threads(monkeypatch, method):
    class Refuse:
        def __enter__(self):
            raise AssertionError("a small problem went through a parallel launch")

        def __exit__(self, *exc):
            return False

    a, b, g = _problem((4, 256), np.float32, seed=0)
    linrec.scan(a, b, method=method)
    monkeypatch.setattr(_threading, "_guard", Refuse())
    h = linrec.scan(a, b, method=method)
    linrec.scan_vjp(g, a, h, method=method)
