"""The CPU kernels flush results below the smallest normal number to zero
(``linrec.cpu._fpmode``): a decaying state reaches 0 instead of staying subnormal, in
every schedule, the small path and the one-thread and threaded launches, forward and
backward. Subnormal inputs are still used as they are, and the caller's floating-point
mode is unchanged after a call."""

import numpy as np
import pytest

import linrec
from linrec._tuning import SERIAL_MAX
from linrec.testing import assert_scan_close
from tests.helpers import assert_close, ref_vjp

# (method, launch, axis): the small path (method "auto", one chain: at most SMALL_MAX
# elements), and each schedule on one thread (three chains: at most SERIAL_MAX elements)
# and on threads (more than SERIAL_MAX elements)
LAUNCHES = [("auto", "small", -1), ("auto", "small", 0),
            ("rows", "one thread", -1), ("channels", "one thread", 0),
            ("chunked", "one thread", -1),
            ("rows", "threads", -1), ("channels", "threads", 0), ("chunked", "threads", -1)]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
DECAY = 0.9


def _steps(dtype):
    """Enough steps for DECAY**t to pass below the smallest normal number, and a third
    more: with gradual underflow, a subnormal times 0.9 rounds back to a subnormal."""
    tiny = np.finfo(dtype).smallest_normal
    return int(np.log(tiny) / np.log(DECAY) * 4 / 3)


def _chains(launch, T):
    return {"small": 1, "one thread": 3, "threads": SERIAL_MAX // T + 3}[launch]


def _impulse(dtype, launch, axis, at_end):
    """``a`` of magnitude DECAY (a phase of 0.3 rad for complex dtypes) and a ``b`` that
    is one at the first step (the last when ``at_end``) and zero elsewhere."""
    T = _steps(dtype)
    chains = _chains(launch, T)
    shape = (chains, T) if axis == -1 else (T, chains)
    a = np.full(shape, DECAY * (np.exp(0.3j) if np.dtype(dtype).kind == "c" else 1),
                dtype)
    b = np.zeros(shape, dtype)
    index = (-1 if at_end else 0)
    if axis == -1:
        b[:, index] = 1
    else:
        b[index] = 1
    return a, b, T, chains


def _assert_no_subnormals(x):
    parts = [x.real, x.imag] if np.iscomplexobj(x) else [x]
    tiny = np.finfo(x.dtype).smallest_normal
    for part in parts:
        subnormal = (part != 0) & (np.abs(part) < tiny)
        assert not subnormal.any(), f"{subnormal.sum()} subnormal values"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method,launch,axis", LAUNCHES)
def test_a_decaying_state_reaches_zero(method, launch, axis, dtype):
    a, b, _, _ = _impulse(dtype, launch, axis, at_end=False)
    h = linrec.scan(a, b, axis=axis, method=method)
    _assert_no_subnormals(h)
    last = h[:, -1] if axis == -1 else h[-1]
    assert (last == 0).all()
    assert_scan_close(h, a, b, axis=axis)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method,launch,axis", LAUNCHES)
def test_a_decaying_adjoint_reaches_zero(method, launch, axis, dtype):
    a, grad_h, T, _ = _impulse(dtype, launch, axis, at_end=True)
    h = linrec.scan(a, np.ones_like(a), axis=axis, method=method)
    grad_a, grad_b, _ = linrec.scan_vjp(grad_h, a, h, axis=axis, method=method)
    _assert_no_subnormals(grad_a)
    _assert_no_subnormals(grad_b)
    first = grad_b[:, 0] if axis == -1 else grad_b[0]
    assert (first == 0).all()
    want_a, want_b, _ = ref_vjp(grad_h, a, h, axis=axis)
    assert_close(grad_b, want_b, dtype, T)
    assert_close(grad_a, want_a, dtype, T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method,launch,axis", LAUNCHES)
def test_subnormal_inputs_are_used(method, launch, axis, dtype):
    """A subnormal ``a`` times a large state is a normal number: not flushed."""
    info = np.finfo(dtype)
    a_value = dtype(info.smallest_normal / 64)
    h0_value = dtype(2.0 ** (info.maxexp // 2))
    T = 3000
    chains = _chains(launch, T)
    shape = (chains, T) if axis == -1 else (T, chains)
    a = np.full(shape, a_value)
    b = np.zeros(shape, dtype)
    h0 = np.full(chains, h0_value)
    h = linrec.scan(a, b, h0=h0, axis=axis, method=method)
    first = h[:, 0] if axis == -1 else h[0]
    np.testing.assert_array_equal(first, a_value * h0_value)
    assert (first != 0).all()


@pytest.mark.parametrize("launch", ["small", "one thread", "threads"])
def test_the_callers_mode_is_unchanged(launch):
    a, b, _, _ = _impulse(np.float32, launch, -1, at_end=False)
    h = linrec.scan(a, b)
    linrec.scan_vjp(b, a, h)
    tiny = np.finfo(np.float32).smallest_normal
    assert np.float32(tiny) * np.float32(0.25) != 0
    assert np.multiply(np.full(4, tiny, np.float32), np.float32(0.25)).all()
