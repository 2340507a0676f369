"""The CPU backend's promises beyond the numbers: user-callable kernels, gufuncs, thread
safety, a fast import and no hidden full-size temporaries."""

import subprocess
import sys
import threading
import tracemalloc

import numba
import numpy as np
import pytest

import linrec
from linrec.cpu import gufuncs
from linrec.cpu.kernels import scan_1d, scan_vjp_1d
from tests.helpers import ref_scan, ref_vjp


def test_import_is_fast_and_imports_no_heavy_dependency():
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "import linrec\n"
        "elapsed = time.perf_counter() - start\n"
        "heavy = [m for m in ('numba', 'cupy', 'dask', 'xarray', 'hypothesis', 'scipy',"
        " 'matplotlib') if m in sys.modules]\n"
        "print(elapsed, heavy)\n"
    )
    best = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout.split()[0])
               for _ in range(3))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split(maxsplit=1)[1].strip() == "[]"
    assert best < 0.5


def test_one_dimensional_kernels_inside_user_njit_code():
    @numba.njit
    def smooth_rows(x, alpha, reverse):
        out = np.empty_like(x)
        a = np.full(x.shape[1], 1.0 - alpha)
        last = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            last[i] = scan_1d(a, alpha * x[i], 0.0, out[i], reverse)
        return out, last

    x = np.random.default_rng(0).standard_normal((3, 50))
    for reverse in (False, True):
        out, last = smooth_rows(x, 0.3, reverse)
        expected, expected_last = ref_scan(0.7, 0.3 * x, reverse=reverse)
        np.testing.assert_allclose(out, expected, atol=1e-12)
        np.testing.assert_allclose(last, expected_last, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_one_dimensional_vjp_kernel(reverse, dtype):
    rng = np.random.default_rng(1)
    T = 40
    a = (0.9 * rng.uniform(-1, 1, T)).astype(dtype)
    b = rng.uniform(-1, 1, T).astype(dtype)
    h = np.empty(T, dtype)
    scan_1d(a, b, 0.5, h, reverse)
    grad_h = rng.uniform(-1, 1, T).astype(dtype)
    grad_a, grad_b = np.empty(T, dtype), np.empty(T, dtype)
    grad_h0 = scan_vjp_1d(grad_h, a, h, 0.5, 0.25, grad_a, grad_b, reverse)
    ra, rb, rh0 = ref_vjp(grad_h, a, h, 0.5, reverse=reverse, grad_last=0.25)
    np.testing.assert_allclose(grad_a, ra, atol=1e-12)
    np.testing.assert_allclose(grad_b, rb, atol=1e-12)
    np.testing.assert_allclose(grad_h0, rh0, atol=1e-12)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float64),
                                    (np.float32, np.complex64),
                                    (np.complex128, np.complex128)])
def test_gufuncs_broadcast_and_axes(dtypes):
    a_dtype, b_dtype = dtypes
    rng = np.random.default_rng(2)
    a = (0.9 * rng.uniform(-1, 1, 33)).astype(a_dtype)
    b = rng.uniform(-1, 1, (4, 33)).astype(b_dtype)
    h0 = rng.uniform(-1, 1, 4).astype(b_dtype)
    tol = 1e-5 if np.finfo(b_dtype).bits <= 32 else 1e-12
    got = gufuncs.scan(a, b, h0)
    assert got.dtype == np.result_type(a, b)
    np.testing.assert_allclose(got, ref_scan(a, b, h0)[0], atol=tol)
    got = gufuncs.scan_reverse(a, b, h0)
    np.testing.assert_allclose(got, ref_scan(a, b, h0, reverse=True)[0], atol=tol)
    got = gufuncs.scan(a, b.T, h0, axes=[(0,), (0,), (), (0,)])
    np.testing.assert_allclose(got, ref_scan(a[:, None], b.T, h0, axis=0)[0], atol=tol)


def test_gufunc_with_xarray_apply_ufunc_and_dask_map_blocks():
    xr = pytest.importorskip("xarray")
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(3)
    b = rng.uniform(-1, 1, (6, 50))
    a = np.full(50, 0.8)
    b_da = xr.DataArray(b, dims=("x", "time"), coords={"time": np.arange(50)})
    a_da = xr.DataArray(a, dims=("time",))
    got = xr.apply_ufunc(gufuncs.scan, a_da, b_da, 0.0,
                         input_core_dims=[["time"], ["time"], []],
                         output_core_dims=[["time"]])
    np.testing.assert_allclose(got.transpose("x", "time").values, ref_scan(a, b)[0],
                               atol=1e-12)
    chunked = da.from_array(b, chunks=(2, 50))
    got = da.map_blocks(lambda block: gufuncs.scan(a, block, 0.0), chunked,
                        dtype=b.dtype).compute()
    np.testing.assert_allclose(got, ref_scan(a, b)[0], atol=1e-12)


def test_concurrent_calls_from_eight_threads_are_right():
    rng = np.random.default_rng(4)
    problems = [(0.9 * rng.uniform(-1, 1, (16, 5000)), rng.uniform(-1, 1, (16, 5000)),
                 method) for method in ("rows", "channels", "chunked", "auto") * 2]
    results = [None] * len(problems)
    errors = []

    def work(i):
        try:
            a, b, method = problems[i]
            for _ in range(5):
                h = linrec.scan(a, b, method=method)
                ga, gb, gh0 = linrec.scan_vjp(np.ones_like(h), a, h, method=method)
            results[i] = (h, gb)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for (a, b, _), (h, gb) in zip(problems, results):
        np.testing.assert_allclose(h, ref_scan(a, b)[0], atol=1e-12)
        np.testing.assert_allclose(gb, ref_vjp(np.ones_like(h), a, h)[1], atol=1e-10)


@pytest.mark.parametrize("method", ["rows", "channels", "chunked"])
def test_no_temporary_of_the_input_size(method):
    """A per-channel ``a`` is never materialised: peak NumPy allocation during a scan is
    the output (plus small per-chunk summaries)."""
    b = np.random.default_rng(5).uniform(-1, 1, (8, 2**16))
    a = np.full((8, 1), 0.9)
    linrec.scan_vjp(b, a, linrec.scan(a, b, method=method), method=method)  # compile
    tracemalloc.start()
    h = linrec.scan(a, b, method=method)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.1 * h.nbytes
    tracemalloc.start()
    linrec.scan_vjp(h, a, h, method=method)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.1 * h.nbytes + 8 * 8 * 64
