"""Tests of ``linrec.testing``: the strategies draw what they promise, the checks pass on
right scans and catch wrong ones, the error bound holds and is not loose. (The examples
of ``docs/testing.md`` run in ``tests/test_docs.py``.)"""

import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import linrec
from linrec._tuning import CHANNEL_BLOCK, CHUNK_MIN, LANES
from linrec.testing import (
    BOUNDARIES,
    assert_scan_close,
    awkward_sizes,
    check_gradients,
    compose_pairs,
    pair_triples,
    recurrences,
    reference_scan,
    reference_scan_vjp,
    scan_error_bound,
)

DTYPES = ["float32", "float64", "complex64", "complex128"]
FIND = settings(max_examples=5000, database=None, phases=[Phase.generate])
QUIET_FIND = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def _length(r):
    return r.b.shape[r.axis]


def _a_shape(r):
    """The shape of ``a`` left-padded to ``b``'s number of dims."""
    shape = np.shape(r.a)
    return (1,) * (r.b.ndim - len(shape)) + shape


def _dtype(r):
    """The dtype linrec computes a draw in (Python scalars are weak)."""
    return np.result_type(*[x for x in (r.a, r.b, r.h0) if x is not None])


def _batch(r):
    axis = r.axis % r.b.ndim
    return r.b.shape[:axis] + r.b.shape[axis + 1:]


def _loop_scan(a, b, h0, axis, reverse, dtype):
    """A plain loop computing in ``dtype`` itself (a right scan of depth 0)."""
    dtype = np.dtype(dtype)
    real = np.finfo(dtype).dtype
    a = np.asarray(a).astype(dtype if np.iscomplexobj(a) else real)
    shape = np.broadcast_shapes(a.shape, np.shape(b))
    a = np.moveaxis(np.broadcast_to(a.reshape((1,) * (len(shape) - a.ndim) + a.shape),
                                    shape), axis, -1)
    b = np.moveaxis(np.broadcast_to(np.asarray(b).astype(dtype), shape), axis, -1)
    h = np.empty(b.shape, dtype)
    state = np.zeros(b.shape[:-1], dtype)
    if h0 is not None:
        state = state + np.asarray(h0).astype(dtype)
    for t in range(b.shape[-1] - 1, -1, -1) if reverse else range(b.shape[-1]):
        state = (a[..., t] * state + b[..., t]).astype(dtype)
        h[..., t] = state
    return np.moveaxis(h, -1, axis)


def _exact_scan(a, b, axis=-1):
    """The forward scan in extended precision (longdouble), for measuring errors."""
    kind = np.clongdouble if np.iscomplexobj(a) or np.iscomplexobj(b) else np.longdouble
    a, b = np.broadcast_arrays(np.moveaxis(np.asarray(a), axis, -1).astype(kind),
                               np.moveaxis(np.asarray(b), axis, -1).astype(kind))
    h, state = np.empty(b.shape, kind), np.zeros(b.shape[:-1], kind)
    for t in range(b.shape[-1]):
        state = a[..., t] * state + b[..., t]
        h[..., t] = state
    return np.moveaxis(h, -1, axis)


# -- optional dependency --------------------------------------------------------------

def test_hypothesis_is_needed_only_by_the_strategies():
    code = (
        "import sys\n"
        "import linrec, linrec.testing\n"
        "print('imported:', 'hypothesis' in sys.modules)\n"
        "for name in [m for m in sys.modules if m.startswith('linrec.testing')]:\n"
        "    del sys.modules[name]\n"
        "sys.modules['hypothesis'] = None\n"
        "import linrec.testing as t\n"
        "t.assert_scan_close(t.reference_scan(0.5, [1.0, 2.0])[0], 0.5, [1.0, 2.0])\n"
        "try:\n"
        "    t.recurrences\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert "imported: False" in result.stdout
    assert "pip install 'linrec[testing]'" in result.stdout


# -- awkward sizes and the strategies -------------------------------------------------

def test_awkward_sizes_surround_every_boundary():
    sizes = awkward_sizes(3 * CHUNK_MIN)
    assert list(sizes) == sorted(set(sizes))
    assert {0, 1, 2, 3, 5, 7, 31, 127, 509, 4093} <= set(sizes)
    for n in BOUNDARIES:
        assert {n - 1, n, n + 1} <= set(sizes)
    assert max(awkward_sizes(100)) <= 100
    assert {95, 96, 97} <= set(awkward_sizes(100, boundaries=[96]))


@QUIET_FIND
@pytest.mark.parametrize("n", [0, 1, 2, CHUNK_MIN + 1, 2 * CHUNK_MIN + 1])
def test_find_awkward_lengths(n):
    lean = recurrences(max_batch_dims=0, a_patterns=["full"], layouts=["C"])
    assert _length(find(lean, lambda r: _length(r) == n, settings=FIND)) == n


@QUIET_FIND
@pytest.mark.parametrize("n", [LANES + 1, CHANNEL_BLOCK + 1])
def test_find_awkward_batch_sizes(n):
    find(recurrences(), lambda r: n in _batch(r), settings=FIND)


@QUIET_FIND
@pytest.mark.parametrize("condition", [
    lambda r: isinstance(r.a, float),
    lambda r: isinstance(r.a, complex),
    lambda r: _a_shape(r)[r.axis] == 1 and np.size(r.a) > 1,
    lambda r: np.ndim(r.a) == r.b.ndim and r.a.shape == r.b.shape and r.b.ndim > 1,
    lambda r: np.ndim(r.a) < r.b.ndim and np.size(r.a) == _length(r) > 1,
    lambda r: r.b.ndim > 1 and r.b.flags.f_contiguous and not r.b.flags.c_contiguous,
    lambda r: r.b.size > 1 and min(r.b.strides) < 0,
    lambda r: r.b.size > 1 and not r.b.flags.c_contiguous and not r.b.flags.f_contiguous,
    lambda r: np.isrealobj(r.a) and np.iscomplexobj(r.b) and r.h0 is not None,
    lambda r: np.iscomplexobj(r.a) and np.isrealobj(r.b),
    lambda r: r.reverse and r.axis < 0 and r.b.ndim == 3,
    lambda r: np.size(r.a) > 3 and np.any(np.asarray(r.a) == 0)
    and np.any(np.abs(np.asarray(r.a)) == 1),
], ids=["scalar", "complex-scalar", "per-channel", "full", "per-time", "F-ordered",
        "negative-strides", "strided", "real-a-complex-b", "complex-a-real-b",
        "reverse-negative-axis", "exact-0-and-1"])
def test_find_every_kind_of_draw(condition):
    find(recurrences(max_length=64), condition, settings=FIND)


@given(recurrences(dtypes=["float32", "complex128"], max_length=300, max_elements=4096))
def test_draws_keep_their_promises(r):
    assert _dtype(r) in (np.float32, np.complex128)
    assert np.broadcast_shapes(np.shape(r.a), r.b.shape) == r.b.shape
    assert -r.b.ndim <= r.axis < r.b.ndim
    assert r.h0 is None or r.h0.shape == _batch(r)
    assert r.b.size <= 4096 or all(n <= 1 for n in _batch(r))
    assert np.all(np.abs(np.asarray(r.a).astype(np.complex128)) <= 1.0)
    assert np.all(np.isfinite(reference_scan(r.a, r.b, r.h0, r.reverse, axis=r.axis)[0]))


@given(recurrences(dtypes=["complex64"], mixed=False, with_h0=True, axis=0, reverse=True,
                   a_patterns=["full"], layouts=["F"], max_length=40))
def test_fixed_choices_are_kept(r):
    assert r.b.dtype == np.complex64 and r.a.dtype == np.complex64
    assert r.h0.dtype == np.complex64
    assert r.axis == 0 and r.reverse and r.a.shape == r.b.shape
    assert r.b.flags.f_contiguous


def _window_products(a, axis):
    """The largest product of |a| over consecutive steps ending at each step."""
    moved = np.moveaxis(np.abs(np.asarray(a, dtype=np.complex128)), axis, -1)
    window, largest = np.zeros(moved.shape[:-1]), 0.0
    for t in range(moved.shape[-1]):
        window = moved[..., t] * np.maximum(1.0, window)
        largest = max(largest, float(np.max(window, initial=0.0)))
    return largest


@given(recurrences(abs_a=(0.5, 3.0), max_growth=20.0, max_length=600,
                   a_patterns=["full", "time", "channel"]))
def test_stability_bound_is_respected(r):
    a = np.broadcast_to(np.asarray(r.a), np.broadcast_shapes(np.shape(r.a), r.b.shape))
    assert np.all(np.abs(a.astype(np.complex128)) <= 3.0)
    assert _window_products(a, r.axis % r.b.ndim) <= 20.0 * (1 + 1e-9)


@given(recurrences(abs_a=(0.25, 0.5), max_length=100))
def test_abs_a_range_is_respected(r):
    magnitude = np.abs(np.asarray(r.a).astype(np.complex128))
    assert np.all((magnitude >= 0.25 * (1 - 1e-5)) & (magnitude <= 0.5))


class _Tagged(np.ndarray):
    """Stands for another namespace's array type."""


_FAKE_XP = types.SimpleNamespace(
    zeros=lambda *args, **kw: np.zeros(*args, **kw).view(_Tagged),
    empty=lambda *args, **kw: np.empty(*args, **kw).view(_Tagged),
    asarray=np.asarray,
)


@given(recurrences(xp=_FAKE_XP, max_length=20, with_h0=True),
       pair_triples(xp=_FAKE_XP))
def test_arrays_come_from_the_requested_namespace(r, triple):
    assert isinstance(r.b, _Tagged) and isinstance(r.h0, _Tagged)
    assert isinstance(r.a, float | complex | _Tagged)
    assert all(isinstance(x, _Tagged) for pair in triple for x in pair)


@given(pair_triples())
def test_pair_triples_compose_associatively(triple):
    p, q, r = triple
    shapes = {x.shape for pair in triple for x in pair}
    assert len(shapes) == 1
    left = compose_pairs(compose_pairs(p, q), r)
    right = compose_pairs(p, compose_pairs(q, r))
    for x, y in zip(left, right, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * (1 + np.max(np.abs(y),
                                                                              initial=0)))


def test_strategies_reject_bad_arguments():
    for kwargs in [{"dtypes": ["float16"]}, {"a_patterns": ["diagonal"]},
                   {"layouts": []}, {"abs_a": (1.0, 0.5)}, {"max_growth": 0.0},
                   {"max_length": -1}]:
        with pytest.raises(ValueError):
            recurrences(**kwargs)


# -- the reference along any axis ----------------------------------------------------

@given(recurrences(dtypes=["float64", "complex128"], max_length=40))
def test_reference_moves_the_axis_and_reduces_like_scan_vjp(r):
    axis = r.axis % r.b.ndim
    a = np.broadcast_to(np.asarray(r.a).reshape(_a_shape(r)), r.b.shape)
    a_last, b_last = np.moveaxis(a, axis, -1), np.moveaxis(r.b, axis, -1)
    h, h_last = reference_scan(r.a, r.b, r.h0, r.reverse, axis=r.axis)
    want, want_last = reference_scan(a_last, b_last, r.h0, r.reverse)
    np.testing.assert_array_equal(np.moveaxis(h, axis, -1), want)
    np.testing.assert_array_equal(h_last, want_last)
    grad_h = np.cos(np.arange(h.size)).reshape(h.shape)
    grads = reference_scan_vjp(grad_h, r.a, h, r.h0, r.reverse, axis=r.axis)
    ga, gb, g0 = reference_scan_vjp(np.moveaxis(grad_h, axis, -1), a_last,
                                    np.moveaxis(h, axis, -1), r.h0, r.reverse)
    assert np.shape(grads[0]) == np.shape(r.a)
    if np.ndim(r.a) == 0:
        np.testing.assert_allclose(grads[0], ga.sum())
    np.testing.assert_array_equal(grads[1], np.moveaxis(gb, -1, axis))
    np.testing.assert_array_equal(grads[2], g0)
    if r.h0 is not None:
        assert np.iscomplexobj(grads[2]) == np.iscomplexobj(r.h0)


# -- assert_scan_close: passes on right scans -----------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_passes_on_a_loop_in_every_dtype(dtype, data):
    r = data.draw(recurrences(dtypes=[dtype], max_length=700))
    assert _dtype(r) == dtype
    h = _loop_scan(r.a, r.b, r.h0, r.axis % r.b.ndim, r.reverse, dtype)
    assert_scan_close(h, r.a, r.b, **r.kwargs, depth=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_passes_on_linrec_in_every_dtype(dtype):
    rng = np.random.default_rng(5)
    b = rng.standard_normal((4, 3, 67)).astype(dtype)
    for a, h0, axis, reverse in [
        (rng.uniform(-1, 1, b.shape).astype(dtype), None, -1, False),
        (rng.uniform(-1, 1, (4, 3, 1)).astype(dtype), b[..., 0], -1, True),
        (0.75, b[:, 0, :], 1, False),
        (rng.uniform(-1, 1, (3, 1)).astype(dtype), b[:, 0, :], 1, True),
    ]:
        h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
        assert_scan_close(h, a, b, h0=h0, axis=axis, reverse=reverse)


# -- assert_scan_close: fails on wrong scans ------------------------------------------

def _problem(dtype, reverse, T=40):
    rng = np.random.default_rng(7)
    complex_ = np.dtype(dtype).kind == "c"
    phase = np.exp(1j * rng.uniform(-3, 3, (3, T))) if complex_ else 1.0
    a = (rng.uniform(0.5, 0.99, (3, T)) * phase).astype(dtype)
    b = (rng.standard_normal((3, T)) + (1j * rng.standard_normal((3, T)) if complex_
                                        else 0)).astype(dtype)
    h0 = (rng.standard_normal(3) + 2.0).astype(dtype)
    return a, b, h0, reverse


def _wrong_scan(kind, a, b, h0, reverse):
    start = -1 if reverse else 0
    if kind == "off-by-one":
        h = _loop_scan(a, b, h0, 1, reverse, a.dtype)
        return np.roll(h, 1 if not reverse else -1, axis=-1)
    if kind == "missing-conjugate":
        return _loop_scan(np.conj(a), b, h0, 1, reverse, a.dtype)
    if kind == "h0-not-multiplied":
        b = b.copy()
        b[:, start] += h0
        return _loop_scan(a, b, None, 1, reverse, a.dtype)
    if kind == "h0-at-the-other-end":
        b = b.copy()
        b[:, -1 - start] += h0
        return _loop_scan(a, b, None, 1, reverse, a.dtype)
    return _loop_scan(a, b, h0, 1, not reverse, a.dtype)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["off-by-one", "missing-conjugate", "h0-not-multiplied",
                                  "h0-at-the-other-end", "wrong-direction"])
def test_fails_on_a_wrong_scan(kind, dtype, reverse):
    a, b, h0, reverse = _problem(dtype, reverse)
    if kind == "missing-conjugate" and np.dtype(dtype).kind != "c":
        pytest.skip("a real coefficient has no conjugate to miss")
    assert_scan_close(_loop_scan(a, b, h0, 1, reverse, dtype), a, b, h0=h0,
                      reverse=reverse)
    with pytest.raises(AssertionError, match="differ from the reference scan"):
        assert_scan_close(_wrong_scan(kind, a, b, h0, reverse), a, b, h0=h0,
                          reverse=reverse)


def test_fails_on_wrong_shape_kind_or_nan():
    a, b, h0, _ = _problem("complex64", False)
    h = _loop_scan(a, b, h0, 1, False, "complex64")
    with pytest.raises(AssertionError, match="shape"):
        assert_scan_close(h[:, 1:], a, b, h0=h0)
    with pytest.raises(AssertionError, match="real"):
        assert_scan_close(h.real, a, b, h0=h0)
    h[1, 5] = np.nan
    with pytest.raises(AssertionError, match=r"worst at index \(1, 5\)"):
        assert_scan_close(h, a, b, h0=h0)


def test_nan_in_the_input_must_propagate():
    b = np.array([1.0, np.nan, 1.0, 1.0], np.float32)
    a = np.float32(0.5)
    assert_scan_close(linrec.scan(a, b), a, b)
    with pytest.raises(AssertionError):
        assert_scan_close(np.array([1.0, 0.0, 1.0, 1.0], np.float32), a, b)


# -- the error bound: holds on adversarial problems, is tight on typical ones ---------

def _adversarial(name, dtype, T, rng):
    complex_ = np.dtype(dtype).kind == "c"
    real = np.finfo(dtype).dtype
    phase = np.exp(1j * rng.uniform(-np.pi, np.pi, (2, T))) if complex_ else 1.0
    if name == "running-sum-with-cancellation":
        a = np.ones((2, 1), real)
        b = np.where(np.arange(T) % 2 == 0, 1e3, -1e3) + rng.uniform(-1e-3, 1e-3, (2, T))
    elif name == "long-memory":
        a = (1 - 2.0**-12) * phase
        b = 10.0 ** rng.uniform(-3, 3, (2, T)) * rng.choice([-1, 1], (2, T))
    elif name == "growth-then-decay":
        magnitude = np.where(np.arange(T) % 400 < 200, 1.03, 1 / 1.03)
        a = magnitude * phase
        b = rng.uniform(-1, 1, (2, T))
    else:
        a = rng.uniform(0.999, 1.0, (2, T)) * phase
        b = rng.uniform(-1e-6, 1e-6, (2, T))
    b = b * (phase if complex_ else 1.0)
    a = np.asarray(a).astype(dtype if complex_ and np.iscomplexobj(a) else real)
    h0 = np.full(2, 1e4, dtype) if name == "dominant-h0" else None
    return a, np.asarray(b).astype(dtype), h0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["running-sum-with-cancellation", "long-memory",
                                  "growth-then-decay", "dominant-h0"])
def test_bound_holds_on_adversarial_problems(name, dtype):
    a, b, h0 = _adversarial(name, dtype, CHUNK_MIN + 7, np.random.default_rng(3))
    for method in ("rows", "channels", "chunked"):
        h = linrec.scan(a, b, h0=h0, method=method)
        assert_scan_close(h, a, b, h0=h0)
    assert_scan_close(_loop_scan(a, b, h0, 1, False, dtype), a, b, h0=h0, depth=0)


@given(recurrences(abs_a=(0.9, 1.0), dtypes=["float32", "complex64"], max_length=1100))
def test_bound_holds_on_drawn_long_memories(r):
    h = _loop_scan(r.a, r.b, r.h0, r.axis % r.b.ndim, r.reverse, _dtype(r))
    assert_scan_close(h, r.a, r.b, **r.kwargs, depth=0)


@given(recurrences(abs_a=(0.5, 2.0), max_growth=1e4, max_length=3000),
       st.sampled_from(["rows", "channels", "chunked"]))
def test_bound_holds_on_linrec_for_drawn_growth(r, method):
    h = linrec.scan(r.a, r.b, **r.kwargs, method=method)
    assert_scan_close(h, r.a, r.b, **r.kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bound_is_within_ten_times_the_error_on_typical_problems(dtype):
    complex_ = np.dtype(dtype).kind == "c"
    for seed, T in enumerate([64, 333, 1000]):
        rng = np.random.default_rng(seed)
        shape = (16, T)
        sign = np.exp(1j * rng.uniform(-3, 3, shape)) if complex_ \
            else rng.choice([-1.0, 1.0], shape)
        a = (rng.uniform(0, 1, shape) * sign).astype(dtype)
        b = (rng.uniform(-1, 1, shape) + (1j * rng.uniform(-1, 1, shape) if complex_
                                          else 0)).astype(dtype)
        exact = _exact_scan(a, b)
        error = np.abs(linrec.scan(a, b).astype(exact.dtype) - exact).astype(np.float64)
        ratio = np.max(error / scan_error_bound(a, b))
        assert 0.1 <= ratio <= 1.0, (seed, T, ratio)


def test_bound_grows_with_length_and_partial_products():
    b = np.ones(64, np.float32)
    short = scan_error_bound(np.float32(0.5), b)
    long_memory = scan_error_bound(np.float32(1.0), b)
    assert np.all(np.diff(long_memory) > 0)
    assert long_memory[-1] > 100 * short[-1]
    assert scan_error_bound(0.5, b, depth=5)[-1] > short[-1]
    with pytest.raises(ValueError):
        scan_error_bound(0.5, b, depth=-1)


# -- check_gradients --------------------------------------------------------------------

def _energy(axis=-1, reverse=False, conj_a=False, shift=0, reduce_a=True):
    """L = sum(w * |h|^2) and its gradients through scan / scan_vjp, with bugs on demand."""
    def fn(a, b, h0):
        h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
        w = np.cos(np.arange(h.size)).reshape(h.shape)
        loss = np.sum(w * np.abs(h) ** 2)
        grad_a, grad_b, grad_h0 = linrec.scan_vjp(2 * w * h, a, h, h0=h0, axis=axis,
                                                  reverse=reverse)
        if conj_a:
            grad_a = np.conj(grad_a)
        if not reduce_a:
            grad_a = np.broadcast_to(grad_a, h.shape)
        grad_b = np.roll(grad_b, shift, axis=axis)
        return loss, (grad_a, grad_b if np.iscomplexobj(b) else grad_b.real, grad_h0)
    return fn


def _gradient_inputs(kind):
    rng = np.random.default_rng(11)
    a = rng.uniform(0.3, 0.95, (3, 1))
    b = rng.standard_normal((3, 9))
    h0 = rng.standard_normal(3)
    if kind in ("complex", "complex-a"):
        a = a * np.exp(1j * rng.uniform(-3, 3, a.shape))
    if kind in ("complex", "real-a"):
        b = b + 1j * rng.standard_normal(b.shape)
    return [a, b, h0]


@pytest.mark.parametrize("kind", ["real", "complex", "real-a", "complex-a"])
@pytest.mark.parametrize(("axis", "reverse"), [(-1, False), (-1, True)])
def test_check_gradients_passes_on_scan_vjp(kind, axis, reverse):
    check_gradients(_energy(axis, reverse), _gradient_inputs(kind), max_elements=8)


def test_check_gradients_passes_on_full_a_and_time_axis_0():
    a, b, h0 = _gradient_inputs("complex")
    a = np.broadcast_to(a, b.shape).T.copy()
    check_gradients(_energy(axis=0), [a, b.T.copy(), h0], max_elements=10)


@pytest.mark.parametrize(("bug", "message"), [
    ({"conj_a": True}, "imaginary part"),
    ({"shift": 1}, "input 1"),
    ({"reduce_a": False}, "shape"),
])
def test_check_gradients_catches_a_wrong_gradient(bug, message):
    with pytest.raises(AssertionError, match=message):
        check_gradients(_energy(**bug), _gradient_inputs("complex"))


def test_check_gradients_skips_none_and_checks_scalars():
    def fn(a, b):
        h = linrec.scan(a, b)
        grad_a, grad_b, _ = linrec.scan_vjp(2 * h, a, h)
        return np.sum(h**2), (grad_a, None)

    check_gradients(fn, [0.7, np.linspace(-1, 1, 6)])

    def wrong(a, b):
        loss, (grad_a, _) = fn(a, b)
        return loss, (2 * grad_a, None)

    with pytest.raises(AssertionError, match="input 0"):
        check_gradients(wrong, [0.7, np.linspace(-1, 1, 6)])


def test_check_gradients_rejects_a_complex_loss():
    with pytest.raises(TypeError, match="real scalar loss"):
        check_gradients(lambda x: (np.sum(x) * 1j, (x,)), [np.ones(2)])
