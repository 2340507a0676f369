"""Robustness of the CPU kernels (issue 10, items 1, 3, 4 and big-endian input).

- The public 1-D kernels check lengths before their loop (a mismatch once read and wrote
  past the arrays' ends) and name the argument; the gufuncs too.
- A chunk whose product of ``a`` overflows or underflows, meeting a carry of exactly 0 (or
  a carry the product cannot represent), agrees with the sequential loop in every schedule
  and in the Dask path, forwards and backwards.
- The gradient of an ``a`` constant in time meets one stated bound in every schedule,
  float32 included, at T = 2**22.
"""

import math
import subprocess
import sys
import textwrap

import dask.array as da
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter

import linrec
import linrec.dask
from linrec._api import METHODS
from linrec._tuning import CHUNK_MIN
from linrec.cpu import gufuncs
from linrec.cpu.kernels import scan_1d, scan_vjp_1d
from linrec.testing import (
    assert_scan_close,
    reference_scan,
    reference_scan_vjp,
    scan_error_bound,
)


def _run_isolated(code):
    """Run ``code`` in a fresh interpreter: a crash there cannot take pytest with it."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


# -- item 1: lengths are checked before the loop ------------------------------------------

@pytest.mark.parametrize("call, argument", [
    # the issue's reproducers: garbage in h[4:], a segfault, a corrupted heap
    ("scan_1d(np.full(4, .5), np.ones(4), 0.0, np.empty(8), False)", "a"),
    ("scan_1d(np.full(4, .5), np.ones(4), 0.0, np.empty(1 << 26), False)", "a"),
    ("scan_vjp_1d(np.ones(10), np.full(10, .5), np.ones(10), 0.0, 0.0, np.zeros(1), "
     "np.zeros(1), False)", "grad_a"),
])
def test_issue_reproducers_raise_instead_of_reading_past_the_end(call, argument):
    result = _run_isolated(f"""
        import numpy as np
        from linrec.cpu.kernels import scan_1d, scan_vjp_1d
        try:
            {call}
        except ValueError as error:
            print("ValueError:", error)
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ValueError: {call.split('(')[0]}: {argument} ")


def _vjp_args(T, short):
    args = dict(grad_h=np.ones(T), a=np.full(T, 0.5), h=np.ones(T), h0=0.0, grad_last=0.0,
                grad_a=np.zeros(T), grad_b=np.zeros(T), reverse=False)
    args[short] = np.zeros(T - 1)
    return args


@pytest.mark.parametrize("short", ["a", "b"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_1d_names_the_short_argument(short, reverse):
    args = dict(a=np.full(6, 0.5), b=np.ones(6), h0=0.0, h=np.empty(6), reverse=reverse)
    args[short] = np.ones(5)
    with pytest.raises(ValueError, match=f"scan_1d: {short} and h have different"):
        scan_1d(**args)


@pytest.mark.parametrize("short", ["grad_h", "a", "grad_a", "grad_b"])
def test_scan_vjp_1d_names_the_short_argument(short):
    with pytest.raises(ValueError, match=f"scan_vjp_1d: {short} and h have different"):
        scan_vjp_1d(**_vjp_args(6, short))


def test_lengths_are_checked_inside_user_njit_code():
    @numba.njit
    def smooth(a, b, h):
        return scan_1d(a, b, 0.0, h, False)

    @numba.njit
    def gradient(grad_h, a, h, grad_a, grad_b):
        return scan_vjp_1d(grad_h, a, h, 0.0, 0.0, grad_a, grad_b, False)

    assert smooth(np.full(3, 0.5), np.ones(3), np.empty(3)) == 1.75
    with pytest.raises(ValueError, match="scan_1d: a and h have different lengths"):
        smooth(np.full(3, 0.5), np.ones(3), np.empty(5))
    with pytest.raises(ValueError, match="scan_vjp_1d: grad_b and h have different"):
        gradient(np.ones(4), np.full(4, 0.5), np.ones(4), np.zeros(4), np.zeros(2))


def test_wrong_dimensions_or_read_only_output_name_the_argument_inside_njit_code():
    @numba.njit
    def smooth(a, b, h):
        return scan_1d(a, b, 0.0, h, False)

    with pytest.raises(numba.core.errors.TypingError, match="scan_1d: h must be a 1-D"):
        smooth(np.ones(3), np.ones(3), np.empty((3, 1)))
    read_only = np.empty(3)
    read_only.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError, match="scan_1d: h is read-only"):
        smooth(np.ones(3), np.ones(3), read_only)


@pytest.mark.parametrize("bad, error, message", [
    (dict(a=np.ones((2, 4))), ValueError, "scan_1d: a must be 1-D"),
    (dict(b=[1.0, 1.0, 1.0, 1.0]), TypeError, "scan_1d: b must be a NumPy array"),
    (dict(b=np.ones(4, np.int64)), TypeError, "scan_1d: b has dtype int64"),
    (dict(h=np.empty(4, ">f8")), ValueError, "scan_1d: h has non-native byte order"),
    (dict(h0=np.zeros(())), TypeError, "scan_1d: h0 must be a scalar"),
])
def test_python_calls_with_arguments_numba_cannot_take_name_them(bad, error, message):
    args = dict(a=np.full(4, 0.5), b=np.ones(4), h0=0.0, h=np.empty(4), reverse=False)
    args.update(bad)
    with pytest.raises(error, match=message):
        scan_1d(**args)


def test_read_only_gradient_output_is_refused():
    args = _vjp_args(4, "grad_b")
    args["grad_b"] = np.zeros(4)
    args["grad_b"].flags.writeable = False
    with pytest.raises(ValueError, match="scan_vjp_1d: grad_b is read-only"):
        scan_vjp_1d(**args)


@pytest.mark.parametrize("argument", ["a", "b"])
def test_big_endian_input_names_the_argument_and_the_fix(argument):
    args = dict(a=np.full(4, 0.5), b=np.ones(4), h0=0.0, h=np.empty(4), reverse=False)
    args[argument] = args[argument].astype(">f8")
    with pytest.raises(ValueError, match=f"{argument}.astype"):
        scan_1d(**args)
    args[argument] = args[argument].astype(args[argument].dtype.newbyteorder("="))
    assert scan_1d(**args) == 1.875


def test_gufuncs_check_core_lengths_and_take_big_endian_input():
    a, b = np.full(4, 0.5), np.ones((2, 4))
    with pytest.raises(ValueError, match="core dimension"):
        gufuncs.scan(a, np.ones((2, 5)), 0.0)
    with pytest.raises(ValueError, match="core dimension"):
        gufuncs.scan_reverse(a, b, 0.0, out=np.empty((2, 8)))
    expected = gufuncs.scan(a, b, 0.0)
    np.testing.assert_array_equal(expected[0], [1.0, 1.5, 1.75, 1.875])
    np.testing.assert_array_equal(gufuncs.scan(a.astype(">f8"), b.astype(">f8"), 0.0),
                                  expected)


# -- item 3: chunk products that overflow or underflow ------------------------------------

def _dask_scan(a, b, h0, reverse, chunk):
    chunks = (1, chunk)
    a, b = (da.from_array(x, chunks=chunks) for x in (a, b))
    return linrec.dask.scan(a, b, h0=h0, reverse=reverse).compute(scheduler="synchronous")


def _dask_vjp(grad_h, a, h, h0, reverse, chunk):
    chunks = (1, chunk)
    grads = linrec.dask.scan_vjp(*(da.from_array(x, chunks=chunks) for x in (grad_h, a, h)),
                                 h0=h0, reverse=reverse)
    return [g.compute(scheduler="synchronous") for g in grads]


def _forward_results(a, b, h0=None, reverse=False, chunk=CHUNK_MIN):
    """``h`` from every method and from the Dask path, by name."""
    results = {m: linrec.scan(a, b, h0=h0, reverse=reverse, method=m) for m in METHODS}
    results["dask"] = _dask_scan(a, b, h0, reverse, chunk)
    return results


def _backward_results(grad_h, a, h, h0=None, reverse=False, chunk=CHUNK_MIN):
    results = {m: linrec.scan_vjp(grad_h, a, h, h0=h0, reverse=reverse, method=m)
               for m in METHODS}
    results["dask"] = _dask_vjp(grad_h, a, h, h0, reverse, chunk)
    return results


def _issue_example(dtype):
    """The issue's example: a middle chunk whose product of a overflows meets a state of
    exactly 0; the loop ends at 2."""
    t = np.arange(3 * CHUNK_MIN)
    a = np.where((t >= CHUNK_MIN) & (t < 2 * CHUNK_MIN), 1.5, 0.5)[None].astype(dtype)
    b = np.where(t >= 2 * CHUNK_MIN, 1.0, 0.0)[None].astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_issue_example_overflowing_chunk_product_meeting_a_zero_state(dtype):
    a, b = _issue_example(dtype)
    for name, h in _forward_results(a, b).items():
        assert h[0, -1] == 2.0, name
        assert_scan_close(h, a, b)


def test_issue_example_reversed():
    a, b = (x[:, ::-1] for x in _issue_example(np.float64))
    for name, h in _forward_results(a, b, reverse=True).items():
        assert h[0, 0] == 2.0, name
        assert_scan_close(h, a, b, reverse=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_overflowing_chunk_product_meeting_a_zero_carry(dtype):
    """The mirror image for the gradient: grad_h is zero after the first chunk, so the
    carry flowing back through the chunk whose product overflows is exactly 0."""
    T = 3 * CHUNK_MIN + 1
    t = np.arange(T)
    a = np.where(t == CHUNK_MIN, 0.0, np.where(t > CHUNK_MIN, 1.5, 0.5))[None].astype(dtype)
    b = np.where(t < CHUNK_MIN, 1.0, 0.0)[None].astype(dtype)
    grad_h = np.where(t < CHUNK_MIN, 1.0, 0.0)[None].astype(dtype)
    h = reference_scan(a, b)[0].astype(dtype)
    ref_a, ref_b, ref_h0 = reference_scan_vjp(grad_h, a, h)
    for name, (grad_a, grad_b, grad_h0) in _backward_results(grad_h, a, h).items():
        for got, ref in ((grad_a, ref_a), (grad_b, ref_b), (grad_h0, ref_h0)):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=0, err_msg=name)


def test_overflow_from_a_finite_nonzero_state_is_replayed_exactly():
    """A product that overflows part-way through a chunk and comes back (1e200, 1e200,
    1e-300) while the state, about 1e-100, stays finite: A is inf, A * state is inf, the
    loop is finite. The chunk is replayed from its state."""
    T = 4 * CHUNK_MIN
    a = np.full((1, T), 0.999)
    b = np.full((1, T), 1e-103)
    start = CHUNK_MIN + 100
    a[0, start:start + 3] = [1e200, 1e200, 1e-300]
    h0 = 1e-100
    ref = reference_scan(a, b, h0)[0]
    assert np.isfinite(ref).all()
    for name, h in _forward_results(a, b, h0).items():
        assert np.isfinite(h).all(), name
        assert_scan_close(h, a, b, h0=h0)


_A_VALUES = [0.0, 0.5, 0.9, 1.0, 1.5, -2.0, 3.0]
_LENGTHS = [1, 5, CHUNK_MIN - 1, CHUNK_MIN, CHUNK_MIN + 1, 2 * CHUNK_MIN]


def _runs(complex_, seed, runs):
    """``a``, ``b``, ``grad_h`` (one row each) from ``runs`` of ``(length, a value, b kind,
    grad_h kind)``, a kind being "zero", "one" or "noise" (drawn from ``seed``)."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for length, value, b_kind, g_kind in runs:
        parts[0].append(np.full(length, value * (np.exp(0.5j) if complex_ else 1.0)))
        for part, kind in zip(parts[1:], (b_kind, g_kind), strict=True):
            part.append({"zero": np.zeros(length), "one": np.ones(length),
                         "noise": rng.standard_normal(length)}[kind])
    a, b, grad_h = (np.concatenate(part)[None] for part in parts)
    if complex_:
        b = b * np.exp(-0.25j)
    return a, b, grad_h


@st.composite
def _extreme_products(draw):
    """Runs of one ``a`` value (decaying, growing, zero) and one kind of ``b`` and of
    ``grad_h`` (zeros, ones, noise), about a chunk long: chunk products of ``a`` overflow
    to inf and underflow to 0, and zero states (and zero gradients) meet them."""
    complex_ = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    kinds = st.sampled_from(["zero", "one", "noise"])
    runs = draw(st.lists(st.tuples(
        st.sampled_from(_LENGTHS), st.sampled_from(_A_VALUES), kinds, kinds),
        min_size=1, max_size=4))
    h0 = draw(st.sampled_from([None, 0.0, 1.0]))
    chunk = draw(st.sampled_from([CHUNK_MIN, CHUNK_MIN + 3, 3000]))
    return *_runs(complex_, seed, runs), h0, draw(st.booleans()), chunk


def _loop_safe(ref, reverse):
    """Where the sequential loop ``ref`` (in the same precision) has stayed below
    ``max / 16`` in modulus at this step and every step before it (``reverse``: after it).

    Closer to the edge, implementations may differ: NumPy's loop and Numba's round and
    multiply in different orders. A complex product ``x * y`` is computed as
    ``(xr*yr - xi*yi) + 1j*(xr*yi + xi*yr)``; each partial product is at most
    ``|x| |y| = |x y|`` in modulus, and so is each component (Cauchy-Schwarz), so no
    intermediate overflows while ``|x y|`` is below ``max`` by more than a few roundings,
    and a step ``a * h + b`` has ``|a h| <= |h| + |b|``. Past the edge they do: at
    ``|x y| = 2.2e308`` NumPy's array multiply gave a real part of ``1.57e308``,
    Numba's (like NumPy's scalar one) ``inf``, from ``xr*yr = 1.84e308``. The factor 16
    leaves that and the few roundings by which two orders differ far behind."""
    with np.errstate(invalid="ignore", over="ignore"):
        safe = np.abs(ref) < np.finfo(ref.dtype).max / 16
    if reverse:
        safe = safe[..., ::-1]
    safe = np.logical_and.accumulate(safe, axis=-1)
    return safe[..., ::-1] if reverse else safe


def _assert_follows_loop(name, got, ref, tolerance, safe):
    """Where ``safe`` (see :func:`_loop_safe`), ``got`` is finite and within ``tolerance``
    of the sequential loop ``ref``."""
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got - ref)
    assert np.isfinite(got)[safe].all(), f"{name}: inf or NaN where the loop is finite"
    bad = safe & ~(error <= tolerance)
    assert not bad.any(), (
        f"{name}: {bad.sum()} errors over the bound, first at {np.argwhere(bad)[0]}: "
        f"got {got[bad][0]}, loop {ref[bad][0]}, bound {tolerance[bad][0]:.3e}")


def _times(x, bound):
    """``x * bound``, 0 where ``x`` is 0 (an exact zero factor, even for an inf bound)."""
    return np.where(x == 0, 0.0, x * bound)


@given(_extreme_products())
def test_every_schedule_and_dask_follow_the_loop_through_extreme_chunk_products(case):
    a, b, _, h0, reverse, chunk = case
    with np.errstate(over="ignore", invalid="ignore"):
        ref = reference_scan(a, b, h0, reverse)[0]
    # the loop's own error is within the sequential bound, which is below this one
    tolerance = 2 * scan_error_bound(a, b, h0=h0, reverse=reverse)
    safe = _loop_safe(ref, reverse)
    for name, h in _forward_results(a, b, h0, reverse, chunk).items():
        _assert_follows_loop(name, h, ref, tolerance, safe)


# A draw that failed (grad_a was held to the loop past grad_b's edge): grad_b grows by
# |a| = 3 a step until, at |grad_b| = 2.2e308, the loop's complex multiply keeps a finite
# real part (1.57e308) and the kernels' gives inf; h is 0, so the loop's grad_a is 0 there
# and the kernels' NaN.
_GRAD_B_PAST_THE_EDGE = (*_runs(True, 250, [
    (5, 0.0, "zero", "zero"), (CHUNK_MIN - 1, 0.5, "zero", "noise"),
    (CHUNK_MIN - 1, 3.0, "zero", "zero")]), None, True, CHUNK_MIN)


# A draw that failed (the bound on grad_a had no underflow term): h halves each step
# from 1 into the subnormal range, where grad_a = grad_b * h one step back (about
# 1.1e-308 after 1025 steps) is below the smallest normal number, and every kernel
# flushes it to zero, as documented.
_GRAD_A_FLUSHED = (*_runs(False, 0, [(1, 0.0, "one", "zero"),
                                     (CHUNK_MIN - 1, 0.5, "zero", "one")]), None, False,
                   CHUNK_MIN)


@given(_extreme_products())
@example(_GRAD_B_PAST_THE_EDGE)
@example(_GRAD_A_FLUSHED)
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
def test_every_backward_schedule_and_dask_follow_the_loop_through_extreme_products(case):
    a, b, grad_h, h0, reverse, chunk = case
    with np.errstate(over="ignore", invalid="ignore"):
        h = reference_scan(a, b, h0, reverse)[0]
    assume(np.isfinite(h).all())
    with np.errstate(over="ignore", invalid="ignore"):
        ref_a, ref_b, ref_h0 = reference_scan_vjp(grad_h, a, h, h0, reverse)
    # grad_b is a scan of grad_h, against the forward direction, with the coefficients
    # one step on; grad_a = grad_b * conj(h one step back), grad_h0 = conj(a) * grad_b
    # at the first step
    first, last = (-1, 0) if reverse else (0, -1)
    shifted = np.roll(np.conj(a), 1 if reverse else -1, axis=-1)
    shifted[..., last] = 1.0
    tol_b = 2 * scan_error_bound(shifted, grad_h, reverse=not reverse)
    h_prev = np.roll(h, -1 if reverse else 1, axis=-1)
    h_prev[..., first] = 0.0 if h0 is None else h0
    # ... and each of their products may be flushed to zero below the smallest normal
    # number (complex: both components, each a difference of products)
    u, flushed = 2.0**-53, 3 * np.sqrt(2) * np.finfo(np.float64).smallest_normal
    with np.errstate(invalid="ignore", over="ignore"):
        tol_a = _times(np.abs(h_prev), tol_b) + 8 * u * np.abs(ref_a) + flushed
        tol_h0 = (_times(np.abs(a[..., first]), tol_b[..., first]) +
                  8 * u * np.abs(ref_h0) + flushed)
        safe_h0 = np.abs(ref_h0) < np.finfo(ref_h0.dtype).max / 16
    # grad_a and grad_h0 are products with grad_b, so safe only where grad_b is too: past
    # its edge, an order whose grad_b is inf gives inf * conj(h_prev = 0) = NaN where
    # the loop's grad_b is finite and its grad_a 0. h0 is None (a grad_h0 a row) or a
    # scalar (one grad_h0, a sum over the rows).
    safe_b = _loop_safe(ref_b, not reverse)
    safe_a = _loop_safe(ref_a, not reverse) & safe_b
    safe_h0 = safe_h0 & (safe_b[..., first] if h0 is None else safe_b[..., first].all())
    for name, (grad_a, grad_b, grad_h0) in _backward_results(
            grad_h, a, h, h0, reverse, chunk).items():
        _assert_follows_loop(f"{name} grad_b", grad_b, ref_b, tol_b, safe_b)
        _assert_follows_loop(f"{name} grad_a", grad_a, ref_a, tol_a, safe_a)
        _assert_follows_loop(f"{name} grad_h0", *(np.reshape(x, -1) for x in (
            grad_h0, ref_h0, tol_h0, safe_h0)))


# -- item 4: the gradient of an a constant in time, in float32 ----------------------------

def _reverse_filter(alpha, x):
    """``y[t] = x[t] + alpha * y[t+1]`` in float64, by SciPy's IIR filter."""
    return lfilter([1.0], [1.0, -alpha], np.asarray(x, np.float64)[::-1])[::-1]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("a_shape", [(1, 1), ()], ids=["per-channel", "scalar"])
def test_float32_gradient_of_a_constant_a_meets_the_stated_bound(method, a_shape):
    """scan_vjp's stated bound: the sum over T of g[t] * h[t-1] adds at most
    (u + T * 2**-53) * sum |g h| to the error of its terms; each term is within u of the
    product of the computed g (a scan of grad_h, within its forward-error bound) and h.
    Positive terms, so that a float32 running sum would be far off (it was, in the
    channels schedule: a relative error near 1e-1 at this T)."""
    T, alpha, u = 2**22, 0.5, 2.0**-24
    rng = np.random.default_rng(4)
    a = np.full(a_shape, alpha, np.float32)
    h = (1 + rng.random((1, T), dtype=np.float32))
    grad_h = (1 + rng.random((1, T), dtype=np.float32))
    grad_a = linrec.scan_vjp(grad_h, a, h, method=method)[0]
    assert grad_a.shape == a_shape and grad_a.dtype == np.float32
    g = _reverse_filter(alpha, grad_h[0])
    h_prev = np.concatenate([[0.0], h[0, :-1].astype(np.float64)])
    expected = math.fsum(g * h_prev)
    # forward-error bound of the float32 g (depth 1), from the magnitudes M and N
    m = _reverse_filter(alpha, np.abs(grad_h[0]))
    n = _reverse_filter(alpha, m)
    gamma = 2 * u / (1 - 2 * u * (T + 2))
    error_g = gamma * (n + m)
    terms = (np.abs(g) + error_g) * h_prev
    bound = (error_g @ h_prev + u * terms.sum() + T * 2.0**-53 * terms.sum()
             + u * abs(expected))
    assert abs(float(grad_a.sum()) - expected) <= bound
    assert bound < 1e-5 * abs(expected)
