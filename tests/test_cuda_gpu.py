"""The CUDA backend on a real GPU, against the CPU path; and its behaviour without one.

Tests marked ``gpu`` need CuPy and a CUDA device and are skipped (with the reason) when
either is missing. Every allocation the backend makes (and every ``out``) is filled with
NaN first, so an element no kernel writes fails the comparison. The others run anywhere:
``import linrec`` must not import CuPy, and a missing CuPy must raise an error that says
what to install.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import linrec
from linrec.cuda import _cupy, _kernels, backend
from tests.helpers import random_with_phase

LENGTHS = [1, 31, 33, 1000, 4097, 65537, 2**20 + 3]
MAX_ELEMENTS = 1 << 22


def _gpu_skip_reason():
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "no CUDA device"
    except Exception as err:  # any driver/runtime failure means: no usable GPU
        return f"no usable CUDA device ({err})"
    return None


_REASON = _gpu_skip_reason()
requires_gpu = pytest.mark.skipif(_REASON is not None, reason=str(_REASON))


class _PoisonedCupy:
    """CuPy, except that ``empty`` returns NaN-filled arrays."""

    def __init__(self, cupy):
        self._cupy = cupy

    def __getattr__(self, name):
        return getattr(self._cupy, name)

    def empty(self, shape, dtype=float, order="C"):
        return self._cupy.full(shape, np.nan, dtype, order=order)


@pytest.fixture(scope="module")
def poisoned():
    """Route the backend's allocations through :class:`_PoisonedCupy` for this module."""
    if _REASON is not None:
        pytest.skip(_REASON)
    launch = backend._cupy_launcher

    def poisoned_launcher():
        cupy, run, sms = launch()
        return _PoisonedCupy(cupy), run, sms

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "_cupy_launcher", poisoned_launcher)
        yield


def _close(gpu_value, cpu_value):
    import cupy

    actual = cupy.asnumpy(gpu_value)
    assert actual.shape == np.shape(cpu_value)
    single = actual.dtype in (np.float32, np.complex64)
    scale = 1.0 + np.abs(cpu_value).max(initial=0.0)
    np.testing.assert_allclose(actual, cpu_value, rtol=0,
                               atol=(2e-4 if single else 1e-10) * scale)


def _problem(rng, pair, T, layout, a_kind, reverse):
    """NumPy inputs ``(a, b, h0, axis)`` for one case."""
    ta, tb = pair
    batch = max(1, min(6, MAX_ELEMENTS // T))
    if layout == "time-last":
        b, axis = random_with_phase(rng, (batch, T), tb), -1
    elif layout == "time-first":
        b, axis = random_with_phase(rng, (T, batch), tb), 0
    elif layout == "time-middle":
        b, axis = random_with_phase(rng, (2, T, (batch + 1) // 2), tb), 1
    else:
        b, axis = random_with_phase(rng, (batch, 2 * T), tb)[:, ::-2], -1
    shape, ax = b.shape, axis % b.ndim
    a_shape = {
        "full": shape,
        "scalar": (),
        "per-chain": tuple(1 if d == ax else n for d, n in enumerate(shape)),
        "shared-in-time": tuple(n if d == ax else 1 for d, n in enumerate(shape)),
    }[a_kind]
    a = random_with_phase(rng, a_shape, ta, 0.3, 0.99)
    h0 = random_with_phase(rng, shape[:ax] + shape[ax + 1:], tb)
    return a, b, h0, axis


CASES = dict(
    pair=st.sampled_from(_kernels.PAIRS),
    T=st.sampled_from(LENGTHS),
    layout=st.sampled_from(["time-last", "time-first", "time-middle", "strided"]),
    a_kind=st.sampled_from(["full", "scalar", "per-chain", "shared-in-time"]),
    reverse=st.booleans(),
    seed=st.integers(0, 2**16),
)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
@given(**CASES)
def test_forward_matches_cpu(pair, T, layout, a_kind, reverse, seed):
    import cupy

    a, b, h0, axis = _problem(np.random.default_rng(seed), pair, T, layout, a_kind, reverse)
    h_cpu, last_cpu = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse,
                                  return_last=True)
    out = cupy.full(h_cpu.shape, np.nan, h_cpu.dtype)
    h_gpu, last_gpu = linrec.scan(cupy.asarray(a), cupy.asarray(b), h0=cupy.asarray(h0),
                                  axis=axis, reverse=reverse, return_last=True, out=out)
    assert h_gpu is out
    _close(h_gpu, h_cpu)
    _close(last_gpu, last_cpu)
    _close(linrec.scan(cupy.asarray(a), cupy.asarray(b), axis=axis, reverse=reverse),
           linrec.scan(a, b, axis=axis, reverse=reverse))


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
@given(**CASES)
def test_backward_matches_cpu(pair, T, layout, a_kind, reverse, seed):
    import cupy

    rng = np.random.default_rng(seed)
    a, b, h0, axis = _problem(rng, pair, T, layout, a_kind, reverse)
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    gh = random_with_phase(rng, h.shape, h.dtype)
    gl = random_with_phase(rng, h0.shape, h.dtype)
    cpu = linrec.scan_vjp(gh, a, h, h0=h0, axis=axis, reverse=reverse, grad_last=gl)
    on_gpu = [cupy.asarray(x) for x in (gh, a, h, h0, gl)]
    got = linrec.scan_vjp(*on_gpu[:3], h0=on_gpu[3], axis=axis, reverse=reverse,
                          grad_last=on_gpu[4])
    for g, c in zip(got, cpu, strict=True):
        assert g.dtype == c.dtype
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=["float32", "complex64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.gpu
@requires_gpu
def test_one_long_row_uses_the_whole_gpu(dtype, reverse):
    import cupy

    rng = np.random.default_rng(7)
    T = 2**22 + 5
    a = random_with_phase(rng, (1, T), np.float32, 0.3, 0.99)
    b = random_with_phase(rng, (1, T), dtype)
    h = linrec.scan(a, b, reverse=reverse)
    _close(linrec.scan(cupy.asarray(a), cupy.asarray(b), reverse=reverse), h)
    gh = random_with_phase(rng, (1, T), dtype)
    cpu = linrec.scan_vjp(gh, np.float32(0.9), h, reverse=reverse)
    got = linrec.scan_vjp(cupy.asarray(gh), np.float32(0.9), cupy.asarray(h),
                          reverse=reverse)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.parametrize(("ta", "tb"), _kernels.PAIRS, ids=lambda t: t.name)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.gpu
@requires_gpu
def test_time_first_with_many_chains(ta, tb, reverse):
    """Enough chains for the one-thread-per-chain (channels) kernels."""
    import cupy

    rng = np.random.default_rng(9)
    chains = backend.CHANNEL_CHAINS_PER_SM * _cupy.sm_count(cupy) + 3
    a = random_with_phase(rng, (257, chains), ta, 0.3, 0.99)
    b = random_with_phase(rng, (257, chains), tb)
    h = linrec.scan(a, b, axis=0, reverse=reverse)
    _close(linrec.scan(cupy.asarray(a), cupy.asarray(b), axis=0, reverse=reverse), h)
    gh = random_with_phase(rng, h.shape, tb)
    cpu = linrec.scan_vjp(gh, a[:1], h, axis=0, reverse=reverse)
    got = linrec.scan_vjp(cupy.asarray(gh), cupy.asarray(a[:1]), cupy.asarray(h), axis=0,
                          reverse=reverse)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_in_place_and_result_namespace():
    import cupy

    rng = np.random.default_rng(8)
    b = random_with_phase(rng, (4, 3000), np.float32)
    expected = linrec.scan(np.float32(0.8), b)
    b_gpu = cupy.asarray(b)
    assert linrec.scan(np.float32(0.8), b_gpu, out=b_gpu) is b_gpu
    _close(b_gpu, expected)
    assert isinstance(linrec.scan(0.5, cupy.ones((2, 5), cupy.float64)), cupy.ndarray)


@pytest.mark.gpu
@requires_gpu
def test_mixed_numpy_and_cupy_is_a_type_error():
    import cupy

    with pytest.raises(TypeError, match="cupy.asarray"):
        linrec.scan(np.ones(4), cupy.ones(4))


def test_import_linrec_does_not_import_cupy():
    code = ("import sys, numpy as np, linrec; linrec.scan(0.5, np.ones(3)); "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_missing_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ImportError, match=r"linrec\[cuda12\].*linrec\[cuda13\]"):
        _cupy.require()
    with pytest.raises(ImportError, match="pip install"):
        backend.forward(np.ones(3), np.ones(3), None, None, axis=0, reverse=False,
                        method="auto")
