"""The fused chunked forward (``linrec.cpu._parallel.forward_chunked``): one task per
group of four chunks that reduces, waits for the state before the group, carries it
through and rescans, against the sequential reference on awkward sizes."""

import numba
import numpy as np
import pytest

import linrec
from linrec.cpu import _atomic, _parallel
from linrec.cpu._dispatch import one_thread
from linrec.testing import assert_scan_close, reference_scan
from tests.test_scan import random_array, random_coefficients

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _run(a, b, h0, length):
    n, T = b.shape
    h, last = np.empty((n, T), b.dtype), np.empty(n, b.dtype)
    _parallel.forward_chunked(a, b, h, h0, last, length)
    return h, last


def _check(h, last, a, b, h0):
    want, want_last = reference_scan(a, b, h0)
    if h.dtype in (np.float64, np.complex128):
        np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(last, want_last, rtol=1e-12, atol=1e-12)
    else:
        assert_scan_close(h, a, b, h0=h0)
        np.testing.assert_allclose(last, h[:, -1], rtol=0, atol=0)


@pytest.mark.parametrize("T", [1, 2, 5, 33, 2403])
@pytest.mark.parametrize("length", [1, 3, 600])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("constant_a", [False, True])
def test_fused_forward_equals_sequential(T, length, dtype, constant_a):
    # length 600 runs the skewed lanes (at least 8 * SKEW steps) in full groups when
    # T = 2403, with a partial last group (T is not a multiple of 4 * length).
    rng = np.random.default_rng(T * 31 + length)
    n = 3
    a = random_coefficients(rng, (n, T), dtype)
    if constant_a:
        a = np.broadcast_to(a[:, :1], (n, T))
    b = random_array(rng, (n, T), dtype)
    h0 = random_array(rng, n, dtype)
    h, last = _run(a, b, h0, length)
    _check(h, last, a, b, h0)


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_more_or_fewer_task_loops_than_threads(monkeypatch, workers):
    """Any number of loops claiming tasks gives the same result (none waits on a task no
    loop has claimed), and so does the one-thread twin."""
    monkeypatch.setattr(_parallel._threading, "num_threads", lambda: workers)
    rng = np.random.default_rng(workers)
    a = random_coefficients(rng, (2, 5000), np.float64)
    b = random_array(rng, (2, 5000), np.float64)
    h0 = random_array(rng, 2, np.float64)
    _check(*_run(a, b, h0, 9), a, b, h0)
    with one_thread():
        _check(*_run(a, b, h0, 9), a, b, h0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [1, 5, 77, 1000])
def test_scan_with_small_chunks(monkeypatch, dtype, reverse, T):
    """Through ``linrec.scan``: chunks of a few steps (``CHUNK_BYTES`` lowered), reverse,
    h0, a scalar and a full ``a``, 1-D and one batch row."""
    monkeypatch.setattr(_parallel, "CHUNK_BYTES", 3 * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(T)
    b = random_array(rng, (1, T), dtype)
    a = random_coefficients(rng, (1, T), dtype)
    h0 = random_array(rng, 1, dtype)
    for a_used in (a, a[0, 0]):
        h = linrec.scan(a_used, b, h0=h0, reverse=reverse, method="chunked")
        assert_scan_close(h, np.broadcast_to(a_used, b.shape), b, h0=h0, reverse=reverse)
        h1 = linrec.scan(a_used if np.ndim(a_used) == 0 else a[0], b[0], h0=h0[0],
                         reverse=reverse, method="chunked")
        np.testing.assert_array_equal(h1, h[0])


@pytest.mark.parametrize("start", range(0, 24))
def test_overflow_inside_any_chunk_of_a_group_is_replayed(start):
    """a = 1e200, 1e200, 1e-300 at every offset across three groups of chunks of 2:
    the product of a chunk (or of two) overflows while the loop, from a state of about
    1e-100, stays finite."""
    T = 26
    a = np.full((1, T), 0.999)
    b = np.full((1, T), 1e-103)
    a[0, start:start + 3] = [1e200, 1e200, 1e-300][:T - start]
    h0 = np.array([1e-100])
    h, last = _run(a, b, h0, 2)
    want, want_last = reference_scan(a, b, h0)
    assert np.isfinite(want).all()
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(last, want_last, rtol=1e-12, atol=0)


@pytest.mark.parametrize("start", range(0, 12))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflowing_product_meeting_a_zero_state(start, dtype):
    """A chunk whose product of a is inf (or NaN, inf * 0) entered with a state of
    exactly 0 gives its scan from zero, as the loop does."""
    T = 16
    big = np.finfo(dtype).max / 2
    a = np.full((1, T), 0.5, dtype)
    a[0, start:start + 2] = big
    b = np.where(np.arange(T) >= start + 2, 1.0, 0.0)[None].astype(dtype)
    h, last = _run(a, b, np.zeros(1, dtype), 3)
    want, want_last = reference_scan(a, b)
    assert np.isfinite(want).all()
    np.testing.assert_allclose(h, want, rtol=1e-6, atol=0)
    np.testing.assert_allclose(last, want_last, rtol=1e-6, atol=0)


def _use_atomics(counter, flags):
    old = [_atomic.fetch_add(counter, 0, 2) for _ in range(3)]
    _atomic.store_release(flags, 1, 7)
    _atomic.wait_until_set(flags, 1)
    return old, _atomic.load_acquire(flags, 1)


@pytest.mark.parametrize("compiled", [False, True])
def test_atomics(compiled):
    run = numba.njit(_use_atomics) if compiled else _use_atomics
    counter, flags = np.zeros(1, np.int64), np.zeros(3, np.int64)
    old, seen = run(counter, flags)
    assert list(old) == [0, 2, 4] and seen == 7
    assert counter[0] == 6 and list(flags) == [0, 7, 0]
