"""Property tests of linrec.scan / linrec.scan_vjp against the sequential reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import linrec
from linrec._api import METHODS
from linrec._tuning import CHUNK_MIN
from linrec.testing import assert_scan_close, recurrences
from tests.helpers import assert_close, ref_scan, ref_vjp

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
AWKWARD_T = [1, 2, 3, 31, 33, 63, 64, 65, 191, 192, 193, 257, 1000]


def random_array(rng, shape, dtype, low=-1.0, high=1.0):
    x = rng.uniform(low, high, shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.uniform(low, high, shape)
    return x.astype(dtype)


def random_coefficients(rng, shape, dtype):
    """|a| < 1 so that long scans stay bounded."""
    mag = rng.uniform(0.5, 0.999, shape)
    if np.dtype(dtype).kind == "c":
        return (mag * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(dtype)
    return (mag * rng.choice([-1.0, 1.0], shape)).astype(dtype)


@st.composite
def problems(draw, dtypes=DTYPES, max_batch=5, lengths=AWKWARD_T):
    """(a, b, h0, axis, reverse) with a full, per-channel or scalar a."""
    ndim = draw(st.integers(1, 3))
    T = draw(st.sampled_from(lengths))
    axis = draw(st.integers(-ndim, ndim - 1))
    shape = [draw(st.integers(1, max_batch)) for _ in range(ndim)]
    shape[axis] = T
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = random_array(rng, shape, dtype)
    pattern = draw(st.sampled_from(["full", "channel", "scalar", "real"]))
    if pattern == "full":
        a = random_coefficients(rng, shape, dtype)
    elif pattern == "channel":
        a_shape = list(shape)
        a_shape[axis] = 1
        a = random_coefficients(rng, a_shape, dtype)
    elif pattern == "real":
        a = random_coefficients(rng, shape, np.finfo(dtype).dtype)
    else:
        a = float(rng.uniform(-0.99, 0.99))
    batch = shape[:axis % ndim] + shape[axis % ndim + 1:]
    h0 = random_array(rng, batch, dtype) if draw(st.booleans()) else None
    return a, b, h0, axis, draw(st.booleans())


@given(recurrences(max_length=2 * CHUNK_MIN + 1), st.sampled_from(METHODS))
def test_scan_matches_reference(problem, method):
    """Any dtype mix, layout (C, F, strided, reversed), broadcast pattern, length."""
    a, b, h0, axis, reverse = problem
    h, last = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse, return_last=True,
                          method=method)
    dtype = np.result_type(*[x for x in (a, b, h0) if x is not None])
    assert h.dtype == dtype and h.shape == np.broadcast_shapes(np.shape(a), b.shape)
    assert last.dtype == dtype
    assert_scan_close(h, a, b, h0=h0, axis=axis, reverse=reverse)


@given(problems(), st.sampled_from(METHODS), st.booleans())
def test_scan_vjp_matches_reference(problem, method, with_grad_last):
    a, b, h0, axis, reverse = problem
    rng = np.random.default_rng(0)
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    grad_h = random_array(rng, h.shape, h.dtype)
    batch = np.delete(np.array(h.shape), axis % h.ndim)
    grad_last = random_array(rng, batch, h.dtype) if with_grad_last else None
    ga, gb, gh0 = linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, reverse=reverse,
                                  grad_last=grad_last, method=method)
    ra, rb, rh0 = ref_vjp(grad_h, a, h, h0, axis, reverse, grad_last)
    T = h.shape[axis]
    assert np.shape(ga) == np.shape(a)
    assert gb.shape == h.shape
    assert_close(ga, ra, h.dtype, T * max(1, h.size // T))
    assert_close(gb, rb, h.dtype, T)
    assert_close(gh0, rh0, h.dtype, T)


@given(problems(dtypes=[np.float64, np.complex128]))
def test_reverse_is_flipped_forward(problem):
    a, b, h0, axis, _ = problem
    a_full = np.broadcast_to(a, b.shape)
    flipped = linrec.scan(np.flip(a_full, axis), np.flip(b, axis), h0=h0, axis=axis)
    np.testing.assert_allclose(linrec.scan(a, b, h0=h0, axis=axis, reverse=True),
                               np.flip(flipped, axis), rtol=1e-12, atol=1e-12)


@given(problems(dtypes=[np.float64, np.complex128]))
def test_h0_equals_folding_into_first_input(problem):
    a, b, h0, axis, reverse = problem
    if h0 is None:
        h0 = np.ones(np.delete(np.array(b.shape), axis % b.ndim), b.dtype)
    a_full = np.broadcast_to(a, b.shape)
    first = -1 if reverse else 0
    folded = b.copy()
    index = [slice(None)] * b.ndim
    index[axis] = first
    folded[tuple(index)] += a_full[tuple(index)] * h0
    np.testing.assert_allclose(linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse),
                               linrec.scan(a, folded, axis=axis, reverse=reverse),
                               rtol=1e-12, atol=1e-12)


@given(problems(dtypes=[np.float64, np.complex128], lengths=[2, 3, 33, 1000]),
       st.floats(0.0, 1.0))
def test_split_and_carry_equals_one_scan(problem, where):
    a, b, h0, axis, reverse = problem
    a_full = np.broadcast_to(a, b.shape)
    T = b.shape[axis]
    cut = int(round(where * T))
    first, second = (slice(cut, T), slice(0, cut)) if reverse else \
        (slice(0, cut), slice(cut, T))

    def part(x, s):
        index = [slice(None)] * x.ndim
        index[axis] = s
        return x[tuple(index)]

    h1, last1 = linrec.scan(part(a_full, first), part(b, first), h0=h0, axis=axis,
                            reverse=reverse, return_last=True)
    h2, last2 = linrec.scan(part(a_full, second), part(b, second), h0=last1, axis=axis,
                            reverse=reverse, return_last=True)
    whole, last = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse, return_last=True)
    np.testing.assert_allclose(part(whole, first), h1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(part(whole, second), h2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(last, last2, rtol=1e-12, atol=1e-12)


def compose(p, q):
    """(A1, B1) o (A2, B2): first p, then q."""
    return q[0] * p[0], q[0] * p[1] + q[1]


@given(hnp.arrays(np.float64, (3, 2, 16), elements=st.floats(-2, 2)))
def test_pair_operator_is_associative_float64(x):
    p, q, r = [(x[i, 0], x[i, 1]) for i in range(3)]
    left, right = compose(compose(p, q), r), compose(p, compose(q, r))
    for u, v in zip(left, right):
        np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-14)


@given(hnp.arrays(np.float32, (3, 2, 16), elements=st.floats(-2, 2, width=32)))
def test_pair_operator_is_associative_float32_within_bound(x):
    """Each side rounds at most 3 times per component: |diff| <= 8 eps * magnitude."""
    p, q, r = [(x[i, 0], x[i, 1]) for i in range(3)]
    left, right = compose(compose(p, q), r), compose(p, compose(q, r))
    eps = np.finfo(np.float32).eps
    magnitude = 8 * (1 + np.abs(x).max()) ** 3
    for u, v in zip(left, right):
        assert np.all(np.abs(u - v) <= 8 * eps * magnitude)


def finite_difference(loss, x, direction, step=1e-6):
    return (loss(x + step * direction) - loss(x - step * direction)) / (2 * step)


@given(problems(dtypes=[np.float64, np.complex128], lengths=[1, 2, 5, 33]),
       st.integers(0, 2**32 - 1))
def test_gradients_match_finite_differences(problem, seed):
    """Directional derivatives of L = Re(sum conj(W) h + conj(w) h_last) along random
    directions equal Re(sum conj(grad) * direction) for every input."""
    a, b, h0, axis, reverse = problem
    rng = np.random.default_rng(seed)
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    weight = random_array(rng, h.shape, h.dtype)
    weight_last = random_array(rng, np.delete(np.array(h.shape), axis % h.ndim), h.dtype)
    h0_value = np.zeros(weight_last.shape, h.dtype) if h0 is None else h0

    def loss(a_, b_, h0_):
        out, last = linrec.scan(a_, b_, h0=h0_, axis=axis, reverse=reverse,
                                return_last=True)
        return float(np.real(np.sum(np.conj(weight) * out)
                             + np.sum(np.conj(weight_last) * last)))

    ga, gb, gh0 = linrec.scan_vjp(weight, a, h, h0=h0, axis=axis, reverse=reverse,
                                  grad_last=weight_last)
    a_arr = np.asarray(a, dtype=np.result_type(a, 0.0))
    for value, grad, wrap in [
        (a_arr, ga, lambda v: loss(v, b, h0_value)),
        (b, gb, lambda v: loss(a, v, h0_value)),
        (h0_value, gh0, lambda v: loss(a, b, v)),
    ]:
        direction = random_array(rng, np.shape(value), np.asarray(value).dtype)
        numeric = finite_difference(wrap, value, direction)
        analytic = float(np.real(np.sum(np.conj(grad) * direction)))
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic))


@pytest.mark.parametrize("T", [1, 2, 3, 31, 33, 1000])
@pytest.mark.parametrize("length", [1, 2, 3, 7, 32, 999, 1000, 1001])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_chunked_kernels_equal_sequential_for_every_chunk_length(T, length, dtype):
    from linrec.cpu import _parallel

    rng = np.random.default_rng(T * 7919 + length)
    shape = (6, T)
    a = random_coefficients(rng, shape, dtype)
    b = random_array(rng, shape, dtype)
    h0 = random_array(rng, 6, dtype)
    h, last = np.empty(shape, dtype), np.empty(6, dtype)
    _parallel.forward_chunked(a, b, h, h0, last, length)
    expected, expected_last = ref_scan(a, b, h0)
    np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(last, expected_last, rtol=1e-12, atol=1e-12)

    grad_h = random_array(rng, shape, dtype)
    grad_last = random_array(rng, 6, dtype)
    for ga_time in (T, 1):
        ga = np.empty((6, ga_time), dtype)
        gb, gh0 = np.empty(shape, dtype), np.empty(6, dtype)
        a_used = a if ga_time == T else np.broadcast_to(a[:, :1], shape)
        _parallel.backward_chunked(grad_h, a_used, h, h0, grad_last, ga, gb, gh0, False,
                                   length)
        ra, rb, rh0 = ref_vjp(grad_h, a if ga_time == T else a[:, :1], h, h0, -1, False,
                              grad_last)
        np.testing.assert_allclose(ga, ra, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(gb, rb, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gh0, rh0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["rows", "channels", "chunked"])
@pytest.mark.parametrize("shape,axis", [
    ((5, 191), -1), ((5, 192), -1), ((5, 193), -1), ((7, 1000), -1), ((4, 257), -1),
    ((1000, 15), 0), ((1000, 16), 0), ((1000, 17), 0), ((500, 33), 0), ((3, 300, 65), 1),
])
@pytest.mark.parametrize("reverse", [False, True])
def test_every_schedule_around_lane_skew_and_block_boundaries(method, shape, axis,
                                                               reverse):
    rng = np.random.default_rng(1)
    a = random_coefficients(rng, shape, np.float64)
    b = random_array(rng, shape, np.float64)
    h = linrec.scan(a, b, axis=axis, reverse=reverse, method=method)
    np.testing.assert_allclose(h, ref_scan(a, b, None, axis, reverse)[0], atol=1e-12)
    grad_h = random_array(rng, shape, np.float64)
    got = linrec.scan_vjp(grad_h, a, h, axis=axis, reverse=reverse, method=method)
    for x, y in zip(got, ref_vjp(grad_h, a, h, None, axis, reverse)):
        np.testing.assert_allclose(x, y, atol=1e-11)


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_row_uses_many_chunks_and_stays_accurate(dtype):
    rng = np.random.default_rng(2)
    T = 3 * 2**15 + 7
    a = random_coefficients(rng, (1, T), dtype)
    b = random_array(rng, (1, T), dtype)
    h = linrec.scan(a, b, method="chunked")
    assert_close(h, ref_scan(a, b)[0], dtype, 1000)  # |a| <= 0.999: memory ~1000 steps
