"""``scan_vjp(..., out=(grad_a, grad_b), accumulate=...)``: results written into given
arrays (no gradient array allocated), accumulation into them, and the errors for bad
``out`` arrays."""

import tracemalloc

import numpy as np
import pytest

import linrec
from tests.helpers import assert_close, random_with_phase, ref_vjp

METHODS = ["rows", "channels", "chunked"]

# (h shape, axis, a shape): a full, constant in time, broadcast over the batch, scalar;
# T around the lanes' skew (512 steps) and, for "chunked", across two chunks.
CASES = [
    ((3, 37), -1, (3, 37)),
    ((5, 513), -1, (5, 1)),
    ((37, 9), 0, (37, 9)),
    ((37, 9), 0, (1, 9)),
    ((2, 13, 3), 1, (1, 13, 1)),
    ((1, 9001), -1, (1, 9001)),
    ((4, 7), -1, ()),
]


def _problem(rng, shape, axis, a_shape, dtype, reverse):
    a = random_with_phase(rng, a_shape, dtype, 0.5, 1.0)
    if a_shape == ():
        a = a[()]
    b = random_with_phase(rng, shape, dtype)
    h0 = random_with_phase(rng, np.delete(shape, axis), dtype)
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    grad_h = random_with_phase(rng, shape, dtype)
    return grad_h, a, h, h0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("reverse", [False, True])
def test_out_and_accumulate(method, case, dtype, reverse):
    shape, axis, a_shape = case
    rng = np.random.default_rng(11)
    grad_h, a, h, h0 = _problem(rng, shape, axis, a_shape, dtype, reverse)
    kw = dict(h0=h0, axis=axis, reverse=reverse, method=method)
    want_a, want_b, want_h0 = ref_vjp(grad_h, a, h, h0, axis, reverse)
    T = shape[axis]
    fresh_a, fresh_b, _ = linrec.scan_vjp(grad_h, a, h, **kw)

    out_a = np.full(np.shape(a), np.nan, dtype)
    out_b = np.full(shape, np.nan, dtype)
    got_a, got_b, got_h0 = linrec.scan_vjp(grad_h, a, h, out=(out_a, out_b), **kw)
    assert got_a is out_a and got_b is out_b
    assert_close(got_a, want_a, dtype, T * np.size(h) // max(np.size(a), 1))
    assert_close(got_b, want_b, dtype, T)
    assert_close(got_h0, want_h0, dtype, T)

    old_a = np.asarray(random_with_phase(rng, np.shape(a), dtype))
    old_b = random_with_phase(rng, shape, dtype)
    out_a, out_b = old_a.copy(), old_b.copy()
    got_a, got_b, _ = linrec.scan_vjp(grad_h, a, h, out=(out_a, out_b), accumulate=True,
                                      **kw)
    assert got_a is out_a and got_b is out_b
    # The kernels add the terms they would write: old + new, rounded once. A float32
    # sum over time is added in float64 before that rounding: within one rounding of
    # old + new.
    for got, old, fresh in ((got_a, old_a, fresh_a), (got_b, old_b, fresh_b)):
        if np.finfo(dtype).bits == 64:
            np.testing.assert_array_equal(got, old + fresh)
        else:
            bound = np.finfo(dtype).eps * (np.abs(old) + np.abs(fresh))
            assert np.all(np.abs(got - (old + fresh)) <= bound)


@pytest.mark.parametrize("which", [0, 1])
def test_one_output_given(which):
    rng = np.random.default_rng(3)
    grad_h, a, h, _ = _problem(rng, (3, 40), -1, (3, 40), np.float64, False)
    fresh = linrec.scan_vjp(grad_h, a, h)
    old = rng.normal(size=fresh[which].shape)
    out = [None, None]
    out[which] = old.copy()
    got = linrec.scan_vjp(grad_h, a, h, out=tuple(out), accumulate=True)
    assert got[which] is out[which]
    np.testing.assert_array_equal(got[which], old + fresh[which])
    np.testing.assert_array_equal(got[1 - which], fresh[1 - which])


@pytest.mark.parametrize("method", METHODS)
def test_no_gradient_array_allocated(method):
    """With ``out`` given, nothing of a gradient's size is allocated (NumPy reports its
    allocations to tracemalloc)."""
    rng = np.random.default_rng(5)
    grad_h, a, h, h0 = _problem(rng, (8, 4096), -1, (8, 4096), np.float64, False)
    out = (np.empty_like(a), np.empty_like(h))
    linrec.scan_vjp(grad_h, a, h, h0=h0, out=out, method=method)  # compile first
    for accumulate in (False, True):
        tracemalloc.start()
        try:
            linrec.scan_vjp(grad_h, a, h, h0=h0, out=out, accumulate=accumulate,
                            method=method)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < h.nbytes // 4, (accumulate, peak)


def test_in_place_over_grad_h_and_aliased_h():
    rng = np.random.default_rng(7)
    grad_h, a, h, h0 = _problem(rng, (3, 700), -1, (3, 700), np.float64, False)
    want = ref_vjp(grad_h, a, h, h0)
    work = grad_h.copy()
    _, got_b, _ = linrec.scan_vjp(work, a, h, h0=h0, out=(None, work))
    assert got_b is work
    assert_close(got_b, want[1], np.float64, 700)
    h_work = h.copy()
    got_a, _, _ = linrec.scan_vjp(grad_h, a, h_work, h0=h0, out=(h_work, None))
    assert got_a is h_work
    assert_close(got_a, want[0], np.float64, 700)


def test_empty_problem():
    grad_h = h = np.zeros((3, 0))
    a = np.ones((3, 0))
    out = (np.ones((3, 0)), np.ones((3, 0)))
    got = linrec.scan_vjp(grad_h, a, h, out=out, accumulate=True)
    assert got[0] is out[0] and got[1] is out[1]
    out_a = np.full((3, 1), 2.0)
    got_a, _, _ = linrec.scan_vjp(grad_h, np.ones((3, 1)), h, out=(out_a, None),
                                  accumulate=True)
    np.testing.assert_array_equal(got_a, np.full((3, 1), 2.0))
    got_a, _, _ = linrec.scan_vjp(grad_h, np.ones((3, 1)), h, out=(out_a, None))
    np.testing.assert_array_equal(got_a, np.zeros((3, 1)))


def _bad(out, accumulate=False, a=None):
    h = np.ones((3, 5))
    return linrec.scan_vjp(h, np.ones((3, 5)) if a is None else a, h, out=out,
                           accumulate=accumulate)


def test_bad_out():
    good = np.empty((3, 5))
    with pytest.raises(TypeError, match="pair"):
        _bad(good)
    with pytest.raises(TypeError, match="pair"):
        _bad((good,))
    with pytest.raises(TypeError, match=r"out\[0\] \(grad_a\) is a list"):
        _bad(([1.0], None))
    with pytest.raises(ValueError, match=r"out\[1\] \(grad_b\) has shape \(5, 3\)"):
        _bad((None, np.empty((5, 3))))
    with pytest.raises(ValueError, match=r"out\[0\] \(grad_a\) has shape \(3, 5\)"):
        _bad((good, None), a=np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"out\[0\] \(grad_a\).*float32"):
        _bad((good.astype(np.float32), None))
    frozen = np.empty((3, 5))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"out\[1\] \(grad_b\) is read-only"):
        _bad((None, frozen))
    overlapping = np.lib.stride_tricks.as_strided(np.empty(8), (3, 5), (8, 8))
    with pytest.raises(ValueError, match=r"out\[1\] \(grad_b\) has strides"):
        _bad((None, overlapping))
    with pytest.raises(ValueError, match="share memory"):
        _bad((good, good))
    with pytest.raises(ValueError, match="accumulate=True"):
        _bad(None, accumulate=True)
    with pytest.raises(TypeError, match="accumulate must be True or False"):
        _bad((good, None), accumulate=1)
