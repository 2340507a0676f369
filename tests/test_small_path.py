"""The small-problem path (``linrec.cpu._small``) against the general path and the
reference, and the cases it must take or leave.

Each problem runs twice with ``method="auto"``: once with ``SMALL_MAX`` at 0 (the general
path), once with it at its value, where a count of the small kernels' calls shows which
path ran. Both results are compared with each other and with ``linrec.reference``.
"""

import numpy as np
import pytest

import linrec
from linrec.cpu import _small
from linrec.reference import reference_scan, reference_scan_vjp
from linrec.testing import assert_scan_close
from tests import fake_cupy
from tests.helpers import assert_close, random_with_phase

LENGTHS = [1, 2, 3, 17, 255]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# (shape with T for the time axis, axis, a's shape with T / 1 for time, h0 given)
CASES = [
    ((4, "T"), -1, (4, "T"), False),
    ((1, "T"), -1, (1, 1), True),
    ((7, "T"), 1, (7, 1), True),
    (("T",), 0, ("T",), True),
    (("T", 5), 0, ("T", 5), True),
    (("T", 3), 0, (1, 3), False),
    ((2, 3, "T"), -1, (3, "T"), True),
    ((2, 3, "T"), 2, (3, 1), False),
    (("T", 2, 3), 0, ("T", 1, 3), True),
    (("T", 2, 3), -3, (), True),
]


class _Counter:
    """Wraps the small kernels (a monkeypatch) and counts their calls."""

    def __init__(self, monkeypatch):
        self.calls = 0
        for name in ("forward_kernel", "backward_kernel"):
            kernel = getattr(_small, name)
            monkeypatch.setattr(_small, name, self._counted(kernel))

    def _counted(self, kernel):
        def counted(*args):
            self.calls += 1
            return kernel(*args)
        return counted


def _shape(template, T):
    return tuple(T if n == "T" else n for n in template)


def _problem(case, T, dtype, seed):
    shape, axis, a_shape, with_h0 = case
    rng = np.random.default_rng(seed)
    shape = _shape(shape, T)
    a_shape = _shape(a_shape, T)
    a = random_with_phase(rng, a_shape, dtype, 0.5, 1.0) if a_shape else 0.9
    b = random_with_phase(rng, shape, dtype)
    batch = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    h0 = random_with_phase(rng, batch, dtype) if with_h0 else None
    return a, b, h0, axis


def _both_paths(monkeypatch, run):
    """``run()`` on the general path, then on the small one: both results, and the
    number of small-kernel calls of each."""
    counter = _Counter(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(_small, "SMALL_MAX", 0)
        general = run()
    general_calls = counter.calls
    small = run()
    return general, small, general_calls, counter.calls - general_calls


def _assert_same(small, general, dtype):
    tol = 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-13
    for s, g in zip(small, general, strict=True):
        assert s.shape == g.shape and s.dtype == g.dtype
        np.testing.assert_allclose(s, g, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_small_path_matches_general_path_and_reference(monkeypatch, case, T, dtype,
                                                       reverse):
    a, b, h0, axis = _problem(case, T, dtype, seed=T)
    general, small, general_calls, small_calls = _both_paths(
        monkeypatch, lambda: linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse,
                                         return_last=True))
    assert (general_calls, small_calls) == (0, 1)
    _assert_same(small, general, dtype)
    h, h_last = small
    assert_scan_close(h, a, b, h0=h0, axis=axis, reverse=reverse)
    want_h, want_last = reference_scan(a, b, h0, reverse, axis=axis)
    assert_close(h_last, want_last, dtype, T)

    rng = np.random.default_rng(T + 1)
    grad_h = random_with_phase(rng, h.shape, dtype)
    grad_last = random_with_phase(rng, h_last.shape, dtype)
    general, small, general_calls, small_calls = _both_paths(
        monkeypatch, lambda: linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis,
                                             reverse=reverse, grad_last=grad_last))
    assert (general_calls, small_calls) == (0, 1)
    _assert_same(small, general, dtype)
    want = reference_scan_vjp(grad_h, a, want_h, h0, reverse, grad_last, axis=axis)
    for got, expected in zip(small, want, strict=True):
        assert np.shape(got) == np.shape(expected)
        assert_close(got, expected, dtype, h.size)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5], CASES[8]])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_small_path_writes_and_adds_into_out(monkeypatch, case, accumulate, dtype):
    a, b, h0, axis = _problem(case, 17, dtype, seed=3)
    h = linrec.scan(a, b, h0=h0, axis=axis)
    grad_h = random_with_phase(np.random.default_rng(4), h.shape, dtype)
    start_a = random_with_phase(np.random.default_rng(5), np.shape(a), dtype)
    start_b = random_with_phase(np.random.default_rng(6), h.shape, dtype)

    def run():
        out = (start_a.copy(), start_b.copy())
        got = linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, out=out,
                              accumulate=accumulate)
        assert got[0] is out[0] and got[1] is out[1]
        return got

    general, small, general_calls, small_calls = _both_paths(monkeypatch, run)
    assert (general_calls, small_calls) == (0, 1)
    _assert_same(small, general, dtype)
    want_a, want_b, _ = linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, method="rows")
    if accumulate:
        want_a, want_b = want_a + start_a, want_b + start_b
    _assert_same(small[:2], (want_a, want_b), dtype)


@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[6]])
def test_small_path_with_a_real_a_and_a_complex_b(monkeypatch, case):
    _, b, h0, axis = _problem(case, 17, np.complex64, seed=10)
    a, _, _, _ = _problem(case, 17, np.float32, seed=11)
    general, small, general_calls, small_calls = _both_paths(
        monkeypatch, lambda: linrec.scan(a, b, h0=h0, axis=axis, return_last=True))
    assert (general_calls, small_calls) == (0, 1)
    _assert_same(small, general, np.complex64)
    h = small[0]
    assert_scan_close(h, a, b, h0=h0, axis=axis)
    grad_h = random_with_phase(np.random.default_rng(12), h.shape, np.complex64)
    general, small, general_calls, small_calls = _both_paths(
        monkeypatch, lambda: linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis))
    assert (general_calls, small_calls) == (0, 1)
    assert small[0].dtype == np.float32
    _assert_same(small, general, np.complex64)
    want_h = reference_scan(a, b, h0, axis=axis)[0]
    want = reference_scan_vjp(grad_h, a, want_h, h0, axis=axis)
    for got, expected in zip(small, want, strict=True):
        assert_close(got, expected, np.complex64, h.size)


def test_small_path_computes_in_place(monkeypatch):
    a, b, _, _ = _problem(CASES[0], 255, np.float64, seed=7)
    want = linrec.scan(a, b, method="rows")
    counter = _Counter(monkeypatch)
    h = linrec.scan(a, b, out=b)
    assert h is b and counter.calls == 1
    np.testing.assert_array_equal(h, want)


def test_the_4_by_256_float32_case_takes_the_small_path(monkeypatch):
    a = np.full((4, 256), 0.9, np.float32)
    b = np.ones((4, 256), np.float32)
    counter = _Counter(monkeypatch)
    h = linrec.scan(a, b)
    linrec.scan_vjp(np.ones_like(h), a, h)
    linrec.scan(a, b, out=h)
    linrec.scan_vjp(np.ones_like(h), a, h, out=(np.empty_like(a), np.empty_like(b)))
    assert counter.calls == 4


def _reversed_strides(x):
    return np.ascontiguousarray(x[:, ::-1])[:, ::-1]


@pytest.mark.parametrize("layout, axis, method", [
    (np.asfortranarray, -1, "auto"),
    (_reversed_strides, -1, "auto"),
    (lambda x: x.reshape(2, 3, 2, 8), 2, "auto"),
    (lambda x: x, -1, "rows"),
    (lambda x: np.ones((1, _small.SMALL_MAX + 1)), -1, "auto"),
], ids=["fortran order", "reversed strides", "time axis in the middle", "forced method",
        "over SMALL_MAX"])
def test_other_layouts_take_the_general_path(monkeypatch, layout, axis, method):
    """Every array (inputs of the scan and of its gradient) in the layout given."""
    rng = np.random.default_rng(9)
    a, b, grad_h = (layout(rng.uniform(0.5, 1, (12, 8))) for _ in range(3))
    counter = _Counter(monkeypatch)
    h = linrec.scan(a, b, axis=axis, method=method)
    assert_scan_close(h, a, b, axis=axis)
    h = layout(h)
    linrec.scan_vjp(grad_h, a, h, axis=axis, method=method)
    assert counter.calls == 0


def test_a_broadcast_along_inner_batch_axes_takes_the_general_path(monkeypatch):
    """An ``a`` of shape (2, 1, 1) against (2, 3, T) is not read as row ``i % rows``."""
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0.5, 1, (2, 1, 1)), rng.normal(size=(2, 3, 17))
    counter = _Counter(monkeypatch)
    h = linrec.scan(a, b)
    assert counter.calls == 0
    assert_scan_close(h, a, b)


@pytest.mark.skipif(not fake_cupy.enabled(),
                    reason="the CuPy stand-in is off (LINREC_FAKE_CUPY=1)")
def test_cupy_arrays_never_take_the_small_path(monkeypatch):
    import cupy

    def refuse(*args):
        raise AssertionError("CuPy arrays reached the NumPy small path")

    monkeypatch.setattr(_small, "forward_kernel", refuse)
    monkeypatch.setattr(_small, "backward_kernel", refuse)
    a = cupy.full((4, 256), 0.9, cupy.float32)
    b = cupy.ones((4, 256), cupy.float32)
    h = linrec.scan(a, b)
    grad_a, grad_b, _ = linrec.scan_vjp(cupy.ones_like(h), a, h)
    assert isinstance(h, cupy.ndarray) and isinstance(grad_a, cupy.ndarray)
    assert_scan_close(h, a, b)
