"""The CUDA backend on a GPU (or on the CPU stand-in for CuPy), against the CPU path.

Tests marked ``gpu`` need CuPy and a CUDA device and are skipped (with the reason) when
either is missing; with ``LINREC_FAKE_CUPY=1`` they run on the stand-in of
``tests/fake_cupy`` (CuPy's array API on the CPU, every kernel launch checked against
``scan.cu``'s parameter lists and executed by ``tests/cuda_model.py``), which is how CI
rehearses them. Every allocation the backend makes (and every ``out``) is filled with NaN
first, so an element no kernel writes fails the comparison. Under the stand-in the one
long row is shorter (the model is slow); everything else is the same.

Hypothesis draws dtype pairs, lengths, layouts (C and Fortran order, reversed strides,
time first, last or in the middle, up to four dimensions), broadcast ``a`` and ``b``,
with and without ``h0`` / ``grad_last``. For a device run use the ``device`` profile
(more examples, no shrinking) and a fixed seed: ``LINREC_HYPOTHESIS=device pytest
--hypothesis-seed=N``. The last two tests run anywhere: ``import linrec`` must not import
CuPy, and a missing CuPy must raise an error that says what to install.
"""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import linrec
from linrec import _validate
from linrec.cuda import _cupy, _kernels, _plan, backend
from tests.helpers import random_with_phase, zero_state_through_overflow

LENGTHS = [1, 2, 31, 33, 1000, 4097, 65537, 2**20 + 3]
CHANNEL_LENGTHS = [1, 2, 3, 31, 33, 257, 1000, 4099]
MAX_ELEMENTS = 1 << 22
LAYOUTS = ["time-last", "time-first", "time-middle", "strided", "fortran", "four-dims"]
A_KINDS = ["full", "scalar", "per-chain", "shared-in-time"]
B_KINDS = ["full", "per-chain", "shared-in-time"]


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
ON_STAND_IN = _REASON is None and getattr(sys.modules["cupy"], "IS_FAKE", False)
LONG_ROW = 2**17 + 5 if ON_STAND_IN else 2**22 + 5


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

    assert isinstance(gpu_value, cupy.ndarray)
    actual = cupy.asnumpy(gpu_value)
    assert actual.shape == np.shape(cpu_value)
    assert actual.dtype == np.asarray(cpu_value).dtype
    single = actual.dtype in (np.float32, np.complex64)
    scale = 1.0 + np.abs(cpu_value).max(initial=0.0)
    np.testing.assert_allclose(actual, cpu_value, rtol=0,
                               atol=(2e-4 if single else 1e-10) * scale)


def _on_gpu(*arrays):
    import cupy

    return [None if x is None else cupy.asarray(x) for x in arrays]


def _full_shape(rng, T, layout, dtype):
    """``(b, axis)``: a full random ``b`` laid out as ``layout``."""
    batch = max(1, min(6, MAX_ELEMENTS // T))
    if layout == "time-last":
        return random_with_phase(rng, (batch, T), dtype), -1
    if layout == "time-first":
        return random_with_phase(rng, (T, batch), dtype), 0
    if layout == "time-middle":
        return random_with_phase(rng, (2, T, (batch + 1) // 2), dtype), 1
    if layout == "strided":
        return random_with_phase(rng, (batch, 2 * T), dtype)[:, ::-2], -1
    if layout == "fortran":
        b = random_with_phase(rng, (2, (batch + 1) // 2, T), dtype)
        return np.asfortranarray(b), -1
    T = min(T, MAX_ELEMENTS // 12)  # four dims; the reversed one keeps a loop over it
    return random_with_phase(rng, (2, 3, T, 2), dtype)[:, ::-1], 2


def _broadcast(rng, shape, axis, kind, dtype, low, high):
    """An operand of ``kind`` (full, scalar, per-chain, shared-in-time) for ``shape``."""
    ax = axis % len(shape)
    kind_shape = {
        "full": shape,
        "scalar": (),
        "per-chain": tuple(1 if d == ax else n for d, n in enumerate(shape)),
        "shared-in-time": tuple(n if d == ax else 1 for d, n in enumerate(shape)),
    }[kind]
    return random_with_phase(rng, kind_shape, dtype, low, high)


def _problem(rng, pair, T, layout, a_kind, b_kind="full"):
    """NumPy inputs ``(a, b, h0, axis)`` of one case; ``h0`` has the batch shape."""
    ta, tb = pair
    b, axis = _full_shape(rng, T, layout, tb)
    shape, ax = b.shape, axis % b.ndim
    if b_kind != "full":
        b = _broadcast(rng, shape, axis, b_kind, tb, -1, 1)
        a_kind = "full"  # so that a and b still broadcast to the whole shape
    a = _broadcast(rng, shape, axis, a_kind, ta, 0.3, 0.99)
    h0 = random_with_phase(rng, shape[:ax] + shape[ax + 1:], tb)
    return a, b, h0, axis


CASES = dict(
    pair=st.sampled_from(_kernels.PAIRS),
    T=st.sampled_from(LENGTHS),
    layout=st.sampled_from(LAYOUTS),
    a_kind=st.sampled_from(A_KINDS),
    reverse=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
@given(**CASES, b_kind=st.sampled_from(B_KINDS), use_out=st.booleans())
def test_forward_matches_cpu(pair, T, layout, a_kind, reverse, with_h0, seed, b_kind,
                             use_out):
    import cupy

    a, b, h0, axis = _problem(np.random.default_rng(seed), pair, T, layout, a_kind, b_kind)
    h0 = h0 if with_h0 else None
    h_cpu, last_cpu = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse,
                                  return_last=True)
    out = cupy.full(h_cpu.shape, np.nan, h_cpu.dtype) if use_out else None
    a_gpu, b_gpu, h0_gpu = _on_gpu(a, b, h0)
    h_gpu, last_gpu = linrec.scan(a_gpu, b_gpu, h0=h0_gpu, axis=axis, reverse=reverse,
                                  return_last=True, out=out)
    assert out is None or h_gpu is out
    _close(h_gpu, h_cpu)
    _close(last_gpu, last_cpu)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
@given(**CASES, with_grad_last=st.booleans())
def test_backward_matches_cpu(pair, T, layout, a_kind, reverse, with_h0, seed,
                              with_grad_last):
    rng = np.random.default_rng(seed)
    a, b, h0, axis = _problem(rng, pair, T, layout, a_kind)
    h0 = h0 if with_h0 else None
    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
    gh = random_with_phase(rng, h.shape, h.dtype)
    gl = random_with_phase(rng, h.shape[:axis % h.ndim] + h.shape[axis % h.ndim + 1:],
                           h.dtype) if with_grad_last else None
    cpu = linrec.scan_vjp(gh, a, h, h0=h0, axis=axis, reverse=reverse, grad_last=gl)
    gh_gpu, a_gpu, h_gpu, h0_gpu, gl_gpu = _on_gpu(gh, a, h, h0, gl)
    got = linrec.scan_vjp(gh_gpu, a_gpu, h_gpu, h0=h0_gpu, axis=axis, reverse=reverse,
                          grad_last=gl_gpu)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
@given(pair=st.sampled_from(_kernels.PAIRS), T=st.sampled_from(CHANNEL_LENGTHS),
       a_kind=st.sampled_from(["full", "per-chain"]), reverse=st.booleans(),
       with_h0=st.booleans(), seed=st.integers(0, 2**16))
def test_channels_kernels(pair, T, a_kind, reverse, with_h0, seed):
    """Time first with enough chains for the one-thread-per-chain kernels."""
    import cupy

    rng = np.random.default_rng(seed)
    ta, tb = pair
    chains = backend.CHANNEL_CHAINS_PER_SM * _cupy.sm_count(cupy) + 3
    T = min(T, max(1, 2 * MAX_ELEMENTS // chains))  # 248 steps on 132 SMs
    b = random_with_phase(rng, (T, chains), tb)
    a = random_with_phase(rng, b.shape if a_kind == "full" else (1, chains), ta, 0.3, 0.99)
    h0 = random_with_phase(rng, (chains,), tb) if with_h0 else None
    h, last = linrec.scan(a, b, h0=h0, axis=0, reverse=reverse, return_last=True)
    a_gpu, b_gpu, h0_gpu = _on_gpu(a, b, h0)
    got = linrec.scan(a_gpu, b_gpu, h0=h0_gpu, axis=0, reverse=reverse, return_last=True)
    _close(got[0], h)
    _close(got[1], last)
    gh = random_with_phase(rng, h.shape, tb)
    cpu = linrec.scan_vjp(gh, a, h, h0=h0, axis=0, reverse=reverse, grad_last=last)
    gh_gpu, h_gpu, gl_gpu = _on_gpu(gh, h, last)
    got = linrec.scan_vjp(gh_gpu, a_gpu, h_gpu, h0=h0_gpu, axis=0, reverse=reverse,
                          grad_last=gl_gpu)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=["float32", "complex64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("scalar", [np.float32, float], ids=["np.float32", "float"])
@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_one_long_row_uses_the_whole_gpu(dtype, reverse, scalar):
    """One row: the three-phase scan over many segments; ``a`` a NumPy or Python scalar
    in the backward pass (a NumPy scalar once reached the kernels by value)."""
    import cupy

    rng = np.random.default_rng(7)
    a = random_with_phase(rng, (1, LONG_ROW), np.float32, 0.3, 0.99)
    b = random_with_phase(rng, (1, LONG_ROW), dtype)
    h = linrec.scan(a, b, reverse=reverse)
    _close(linrec.scan(cupy.asarray(a), cupy.asarray(b), reverse=reverse), h)
    gh = random_with_phase(rng, (1, LONG_ROW), dtype)
    cpu = linrec.scan_vjp(gh, scalar(0.9), h, reverse=reverse)
    got = linrec.scan_vjp(cupy.asarray(gh), scalar(0.9), cupy.asarray(h), reverse=reverse)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.parametrize("pair", _kernels.PAIRS, ids=lambda p: f"{p[0].name}-{p[1].name}")
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("rows", ["one", "many"])
@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_zero_state_through_an_overflowing_product(pair, reverse, rows):
    """A state of exactly 0 carried across steps whose product of a overflows to inf
    gives what the CPU gives (finite, as the sequential loop), not inf * 0 = NaN: one row
    (look-back kernels) and enough rows to fill the GPU (tiled kernels), forward and
    backward."""
    import cupy

    ta, tb = pair
    n = 1 if rows == "one" else _plan.MIN_BLOCKS_PER_SM * _cupy.sm_count(cupy)
    forward, backward = zero_state_through_overflow(ta, tb)
    step = -1 if reverse else 1
    a, b = (np.repeat(x[:, ::step], n, axis=0) for x in forward)
    h = linrec.scan(a, b, reverse=reverse)
    assert np.isfinite(h).all()
    _close(linrec.scan(*_on_gpu(a, b), reverse=reverse), h)
    a, b, gh = (np.repeat(x[:, ::step], n, axis=0) for x in backward)
    h = linrec.scan(a, b, reverse=reverse)
    cpu = linrec.scan_vjp(gh, a, h, reverse=reverse)
    got = linrec.scan_vjp(*_on_gpu(gh, a, h), reverse=reverse)
    for g, c in zip(got, cpu, strict=True):
        assert np.isfinite(c).all()
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_small_scan_and_gradients():
    """The plainest call (CuPy arrays once failed on ``flags.writeable``)."""
    import cupy

    rng = np.random.default_rng(1)
    a = random_with_phase(rng, (3, 40), np.float64, 0.3, 0.99)
    b = random_with_phase(rng, (3, 40), np.float64)
    h = linrec.scan(a, b)
    _close(linrec.scan(cupy.asarray(a), cupy.asarray(b)), h)
    cpu = linrec.scan_vjp(b, a, h)
    got = linrec.scan_vjp(cupy.asarray(b), cupy.asarray(a), cupy.asarray(h))
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_numpy_scalars_reach_the_kernels_as_device_arrays():
    """``cp.float32(0.9)`` is ``np.float32(0.9)``: as ``a``, ``h0`` and ``grad_last`` it
    must be moved to the device (CuPy passes NumPy values to kernels by value)."""
    import cupy

    rng = np.random.default_rng(2)
    b = random_with_phase(rng, (2, 3, 50), np.complex64)
    a, h0, gl = cupy.float32(0.9), np.complex64(0.5 - 0.25j), np.float32(2.0)
    h, last = linrec.scan(a, b, h0=h0, return_last=True)
    got = linrec.scan(a, cupy.asarray(b), h0=h0, return_last=True)
    _close(got[0], h)
    _close(got[1], last)
    cpu = linrec.scan_vjp(b, a, h, h0=h0, grad_last=gl)
    got = linrec.scan_vjp(cupy.asarray(b), a, cupy.asarray(h), h0=h0, grad_last=gl)
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_docs_example():
    """The example of ``docs/cuda.md``, on a smaller ``b``."""
    import cupy as cp

    b = cp.random.standard_normal((4, 16, 2048), dtype=cp.float32)
    h, h_last = linrec.scan(cp.float32(0.9), b, return_last=True)
    grad_a, grad_b, grad_h0 = linrec.scan_vjp(cp.ones_like(h), cp.float32(0.9), h)
    b_cpu = cp.asnumpy(b)
    expected = linrec.scan(np.float32(0.9), b_cpu, return_last=True)
    _close(h, expected[0])
    _close(h_last, expected[1])
    cpu = linrec.scan_vjp(np.ones_like(b_cpu), np.float32(0.9), expected[0])
    for g, c in zip((grad_a, grad_b, grad_h0), cpu, strict=True):
        _close(g, c)


@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_out_of_a_large_scan_is_checked_for_overlap_by_bounds():
    """A disjoint ``out`` of many elements: the overlap check must not be CuPy's exact
    ``shares_memory`` (seconds and GBs per call at 10**9 elements; the stand-in refuses
    it), and an ``out`` that overlaps ``b`` still gives the right answer."""
    import cupy

    rng = np.random.default_rng(3)
    b = random_with_phase(rng, (8, 4096), np.float32)
    expected = linrec.scan(np.float32(0.7), b)
    b_gpu = cupy.asarray(b)
    out = cupy.full(b.shape, np.nan, np.float32)
    assert linrec.scan(0.7, b_gpu, out=out) is out
    _close(out, expected)
    buffer = cupy.zeros((9, 4096), np.float32)
    buffer[:8] = b_gpu
    shifted = buffer[1:]  # overlaps the rows of b it is about to read
    assert linrec.scan(0.7, buffer[:8], out=shifted) is shifted
    _close(shifted, expected)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.usefixtures("poisoned")
@pytest.mark.gpu
@requires_gpu
def test_misaligned_complex_views_are_copied_or_refused(dtype):
    """A complex view that starts half an element into a real buffer (4 bytes for
    complex64, 8 for complex128) is not aligned as CUDA needs: inputs are copied, an
    ``out`` is refused; nothing faults."""
    import cupy

    real = np.finfo(dtype).dtype
    rng = np.random.default_rng(4)
    b = random_with_phase(rng, (3, 100), dtype)
    a = random_with_phase(rng, (3, 100), dtype, 0.3, 0.99)

    def misaligned(x):
        flat = cupy.zeros(2 * x.size + 1, real)
        view = flat[1:].view(dtype).reshape(x.shape)
        view[...] = cupy.asarray(x)
        assert view.data.ptr % view.itemsize != 0
        return view

    h, last = linrec.scan(a, b, return_last=True)
    got = linrec.scan(misaligned(a), misaligned(b), return_last=True)
    _close(got[0], h)
    _close(got[1], last)
    cpu = linrec.scan_vjp(b, a, h, grad_last=last)
    got = linrec.scan_vjp(misaligned(b), misaligned(a), misaligned(h),
                          grad_last=misaligned(last))
    for g, c in zip(got, cpu, strict=True):
        _close(g, c)
    with pytest.raises(ValueError, match="out .*aligned"):
        linrec.scan(cupy.asarray(a), cupy.asarray(b), out=misaligned(h))


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
        problem = _validate.scan_problem(0.5, np.ones(3), None, axis=0, reverse=False,
                                         method="auto")
        backend.forward(problem, np.ones(3), np.ones(3), problem.zero_state(np), None)
