"""The fused chunked backward (``linrec.cpu._parallel.backward_chunked``): one task per
group of six chunks, tasks in order from the end of time, each reducing its chunks to
their carry maps, waiting for the carry from the group to its right, carrying it through
and rescanning; against the float64/complex128 reference (``linrec.reference``) on
awkward sizes, with ``a`` full or constant in time (grad_a summed), writing or adding
into the gradients, and chunk products that overflow across groups."""

import numpy as np
import pytest

import linrec
from linrec.cpu import _parallel
from linrec.cpu._dispatch import one_thread
from linrec.reference import reference_scan, reference_scan_vjp
from tests.helpers import assert_close
from tests.test_scan import random_array, random_coefficients

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _problem(rng, n, T, dtype, constant_a):
    """a (full, or broadcast from one step), h (the forward's), h0, grad_h, grad_last."""
    a = random_coefficients(rng, (n, T), dtype)
    if constant_a:
        a = np.broadcast_to(a[:, :1], (n, T))
    b = random_array(rng, (n, T), dtype)
    h0 = random_array(rng, n, dtype)
    h = reference_scan(a, b, h0)[0].astype(dtype)
    return a, h, h0, random_array(rng, (n, T), dtype), random_array(rng, n, dtype)


def _run(grad_h, a, h, h0, grad_last, length, add=False, old=None):
    """backward_chunked on fresh outputs, or adding into copies of ``old``."""
    n, T = h.shape
    ga_shape = (n, 1) if a.strides[1] == 0 else (n, T)
    if old is None:
        ga, gb = np.empty(ga_shape, h.dtype), np.empty((n, T), h.dtype)
    else:
        ga, gb = old[0].copy(), old[1].copy()
    gh0 = np.empty(n, h.dtype)
    _parallel.backward_chunked(grad_h, a, h, h0, grad_last, ga, gb, gh0, add, length)
    return ga, gb, gh0


def _check(got, want, dtype, T):
    for x, y in zip(got, want, strict=True):
        if np.dtype(dtype) in (np.float64, np.complex128):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-10)
        else:
            assert_close(x, y, dtype, T)


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 34, 3500])
@pytest.mark.parametrize("length", [1, 3, 1000])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("constant_a", [False, True])
def test_fused_backward_equals_reference(T, length, dtype, constant_a):
    # The kernel cuts positions 1..T-1 into groups of six chunks, six for every four
    # forward chunks of ``length``: length 1000 with T = 3500 gives one full group of
    # chunks of 583 steps (the rescan's lanes skewed: at least 8 * SKEW steps each) and
    # a short last chunk of one step; length 1 and 3 give many groups of a few steps,
    # T = 34 a partial last group.
    rng = np.random.default_rng(T * 31 + length)
    a, h, h0, grad_h, grad_last = _problem(rng, 3, T, dtype, constant_a)
    want = reference_scan_vjp(grad_h, a[:, :1] if constant_a else a, h, h0, False,
                              grad_last)
    _check(_run(grad_h, a, h, h0, grad_last, length), want, dtype, T)
    old = (random_array(rng, want[0].shape, dtype), random_array(rng, (3, T), dtype))
    got = _run(grad_h, a, h, h0, grad_last, length, add=True, old=old)
    _check(got, (old[0] + want[0], old[1] + want[1], want[2]), dtype, T)


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_more_or_fewer_task_loops_than_threads(monkeypatch, workers):
    """Any number of loops claiming tasks gives the same gradients (none waits on a task
    no loop has claimed), and so does the one-thread twin; two chains, so that tasks of
    one chain follow the other's."""
    monkeypatch.setattr(_parallel._threading, "num_threads", lambda: workers)
    rng = np.random.default_rng(workers)
    a, h, h0, grad_h, grad_last = _problem(rng, 2, 5000, np.float64, False)
    want = reference_scan_vjp(grad_h, a, h, h0, False, grad_last)
    _check(_run(grad_h, a, h, h0, grad_last, 9), want, np.float64, 5000)
    with one_thread():
        _check(_run(grad_h, a, h, h0, grad_last, 9), want, np.float64, 5000)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [1, 5, 77, 1000])
def test_scan_vjp_with_small_chunks(monkeypatch, dtype, reverse, T):
    """Through ``linrec.scan_vjp``: chunks of a few steps (``CHUNK_BYTES`` lowered),
    reverse, h0 and grad_last, a full ``a`` and a scalar one (grad_a summed)."""
    monkeypatch.setattr(_parallel, "CHUNK_BYTES", 3 * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(T)
    a = random_coefficients(rng, (1, T), dtype)
    b = random_array(rng, (1, T), dtype)
    h0, grad_last = random_array(rng, 1, dtype), random_array(rng, 1, dtype)
    grad_h = random_array(rng, (1, T), dtype)
    for a_used in (a, a[0, 0]):
        h = linrec.scan(a_used, b, h0=h0, reverse=reverse)
        got = linrec.scan_vjp(grad_h, a_used, h, h0=h0, reverse=reverse,
                              grad_last=grad_last, method="chunked")
        want = reference_scan_vjp(grad_h, a_used, h, h0, reverse, grad_last)
        _check(got, want, dtype, T)


@pytest.mark.parametrize("start", range(1, 25))
def test_overflow_inside_any_chunk_of_any_group_is_replayed(start):
    """conj(a) = 1e200, 1e200, 1e-300 at every offset across three groups of chunks of
    two steps (length 4: six chunks for every four of the forward): the carry map of a
    chunk overflows while the loop, from a carry of about 1e-100, stays finite; each
    group replays its chunk from the carry it got from the group to its right."""
    T = 26
    a = np.full((1, T), 0.999)
    grad_h = np.full((1, T), 1e-103)
    a[0, start:start + 3] = [1e-300, 1e200, 1e200][:T - start]
    h = np.ones((1, T))
    grad_last = np.array([1e-100])
    got = _run(grad_h, a, h, np.ones(1), grad_last, 4)
    want = reference_scan_vjp(grad_h, a, h, np.ones(1), False, grad_last)
    assert all(np.isfinite(w).all() for w in want)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0)


@pytest.mark.parametrize("start", range(1, 12))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflowing_carry_map_meeting_a_zero_carry(start, dtype):
    """A chunk whose product of a is inf (or NaN, inf * 0) entered with a carry of
    exactly 0 (grad_h is zero to its right) gives its adjoint from zero, as the loop
    does, in whichever group it falls (chunks of two steps, two groups)."""
    T = 16
    big = np.finfo(dtype).max / 2
    a = np.full((1, T), 0.5, dtype)
    a[0, start:start + 2] = big
    grad_h = np.where(np.arange(T) < start, 1.0, 0.0)[None].astype(dtype)
    h = np.ones((1, T), dtype)
    got = _run(grad_h, a, h, np.ones(1, dtype), np.zeros(1, dtype), 4)
    want = reference_scan_vjp(grad_h, a, h, np.ones(1, dtype))
    assert all(np.isfinite(w).all() for w in want)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=0)
