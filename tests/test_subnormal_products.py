"""The chunk reductions' running products of ``a`` (``linrec.cpu._lanes``) are rescaled
before they become subnormal: each reduction returns the product of its lane to within
rounding, also when the product passes below the dtype's range and comes back; and a
chunked scan whose state stays normal (not flushed to zero) while the product over part
of a chunk does not gives the sequential loop's result (the unscaled product underflowed
to zero there). That a chunk's whole product must be representable is unchanged."""

import math

import numpy as np
import pytest

from linrec.cpu import _lanes, _parallel
from linrec.reference import reference_scan, reference_scan_vjp

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
LANE = 2400  # at least 8 * SKEW steps: the skewed three-part loops run in full


def _exact_product(a):
    """The product of ``a`` rounded to complex128, kept in range by powers of two."""
    p, e = 1 + 0j, 0
    for x in a.astype(np.complex128):
        p *= x
        if 0 < abs(p) < 2.0 ** -500:
            p, e = p * 2.0 ** 500, e - 500
        elif abs(p) > 2.0 ** 500:
            p, e = p * 2.0 ** -500, e + 500
    return complex(math.ldexp(p.real, e), math.ldexp(p.imag, e))


def _lanes_of_a(pattern, dtype, rng, lanes):
    if pattern == "down and back up":  # 2**-1200, then back to 2**-20: exact
        one = np.concatenate([np.full(1200, 0.5), np.full(1180, 2.0)])
        one = np.concatenate([one, np.ones(LANE - one.size)])
        return [one.astype(dtype) for _ in range(lanes)]
    out = []
    for _ in range(lanes):
        a = rng.uniform(0.5, 1.0, LANE)
        if np.iscomplexobj(np.zeros(0, dtype)):
            a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, LANE))
        out.append(a.astype(dtype))
    return out


def _assert_products(got, lanes, dtype, conj=False):
    info = np.finfo(dtype)
    for p, a in zip(got, lanes, strict=True):
        want = _exact_product(np.conj(a) if conj else a)
        want_rounded = np.asarray(want if np.iscomplexobj(p) else want.real).astype(dtype)
        tol = 4 * LANE * info.eps * abs(want) + info.smallest_subnormal
        assert abs(complex(p) - complex(want_rounded)) <= tol, (p, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pattern", ["falling", "down and back up"])
def test_forward_reductions_return_the_product(dtype, pattern):
    rng = np.random.default_rng(7)
    lanes = _lanes_of_a(pattern, dtype, rng, 4)
    b = [np.zeros(LANE, dtype)] * 4
    zero = np.dtype(dtype).type(0)
    products, _ = _lanes.reduce_lanes(tuple(lanes), tuple(b), zero)
    _assert_products(products, lanes, dtype)
    _assert_products([_lanes.reduce_one(lanes[0], b[0], zero)[0]], lanes[:1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pattern", ["falling", "down and back up"])
def test_adjoint_reductions_return_the_product(dtype, pattern):
    rng = np.random.default_rng(8)
    # the adjoint walks from the end: reversed, its product dips and comes back too
    lanes = [x[::-1].copy() for x in _lanes_of_a(pattern, dtype, rng, 6)]
    zero = np.dtype(dtype).type(0)
    grad_h = np.zeros(6 * LANE, dtype)
    products, _ = _lanes.adjoint_reduce_span_lanes(grad_h, np.concatenate(lanes), zero)
    _assert_products(products, lanes, dtype, conj=True)
    one = _lanes.adjoint_reduce_one(grad_h[:LANE], lanes[0], zero)[0]
    _assert_products([one], lanes[:1], dtype, conj=True)


# (state entering the dip, steps of a = 1/2, steps of a = 2): the state stays normal
# (down to 2**-120 and 2**-1000: a subnormal state would be flushed to zero, see
# tests/test_flush_to_zero.py), the dip's product alone does not (2**-2000) in float64;
# float32 chunks carry their products in float64, where 2**-240 is in range.
DIPS = {np.float32: (120, 240, 200), np.float64: (1000, 2000, 1500)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_forward_through_a_product_below_the_range(dtype):
    """The dip in the first of four chunks (one full group: the four-lane reduction)."""
    exponent, down, up = DIPS[dtype]
    length = down + up
    a = np.ones((1, 4 * length), dtype)
    a[0, :down], a[0, down:length] = 0.5, 2.0
    b = np.zeros_like(a)
    h0 = np.array([2.0 ** exponent], dtype)
    h, last = np.empty_like(b), np.empty(1, dtype)
    _parallel.forward_chunked(a, b, h, h0, last, length)
    want = reference_scan(a, b, h0)[0]
    assert want[0, -1] == 2.0 ** (exponent - down + up)
    np.testing.assert_array_equal(h, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_backward_through_a_product_below_the_range(dtype):
    """The dip in the last of six chunks (one full group: the six-lane reduction); the
    backward cuts positions 1 .. T-1 into six chunks when ``length`` is 1.5 times theirs.
    """
    exponent, down, up = DIPS[dtype]
    length = down + up
    T = 1 + 6 * length
    a = np.ones((1, T), dtype)
    a[0, T - length:T - down], a[0, T - down:] = 2.0, 0.5  # from the end: down, then up
    h = np.ones((1, T), dtype)
    h0, grad_h = np.ones(1, dtype), np.zeros((1, T), dtype)
    grad_last = np.array([2.0 ** exponent], dtype)
    grad_a, grad_b, grad_h0 = np.empty_like(h), np.empty_like(h), np.empty(1, dtype)
    _parallel.backward_chunked(grad_h, a, h, h0, grad_last, grad_a, grad_b, grad_h0,
                               False, 3 * length // 2)
    want_a, want_b, want_h0 = reference_scan_vjp(grad_h, a, h, h0=h0, grad_last=grad_last)
    assert want_h0[0] == 2.0 ** (exponent - down + up)
    np.testing.assert_array_equal(grad_b, want_b)
    np.testing.assert_array_equal(grad_a, want_a)
    np.testing.assert_array_equal(grad_h0, want_h0)
