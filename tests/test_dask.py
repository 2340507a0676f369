"""linrec.dask on the threaded scheduler: equality with the NumPy path, graph shape, errors.

The NumPy path (:func:`linrec.scan`, :func:`linrec.scan_vjp` on whole arrays) is the
oracle; chunkings are drawn at random, with chunks of size 1, uneven chunks, one chunk and
many chunks along the scan axis. Tests on a real distributed cluster are in
``test_dask_distributed.py``.
"""

import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import linrec  # noqa: E402
import linrec.dask as ld  # noqa: E402
from linrec import _dtypes  # noqa: E402

SCHEDULER = {"scheduler": "threads"}


@st.composite
def chunking(draw, n):
    """A chunking of a dimension of size ``n``: one chunk, all size 1, or random cuts."""
    kind = draw(st.sampled_from(["one", "ones", "random"]))
    if n == 0 or kind == "one":
        return (n,)
    if kind == "ones":
        return (1,) * n
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
    edges = [0, *cuts, n]
    return tuple(hi - lo for lo, hi in zip(edges[:-1], edges[1:], strict=True))


@st.composite
def problems(draw):
    """Random (a, b, h0, axis, reverse) with NumPy values and dask counterparts."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(0, ndim - 1))
    shape = shape[:axis] + (draw(st.integers(1, 40)),) + shape[axis + 1:]
    dtype = draw(st.sampled_from([np.float64, np.complex128, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        b = b + 1j * rng.standard_normal(shape)
    b = b.astype(dtype)
    a_kind = draw(st.sampled_from(["full", "constant in time", "scalar", "broadcast"]))
    if a_kind == "scalar":
        a = 0.9
    else:
        a_shape = list(shape)
        if a_kind == "constant in time":
            a_shape[axis] = 1
        elif a_kind == "broadcast":
            a_shape = [n if draw(st.booleans()) else 1 for n in shape]
        real_dtype = np.float32 if dtype == np.float32 else np.float64
        a = rng.uniform(0.5, 1.0, a_shape).astype(real_dtype)
    batch = shape[:axis] + shape[axis + 1:]
    h0 = draw(st.sampled_from([None, "numpy", "dask", "scalar"]))
    h0 = {None: None, "scalar": 0.5}.get(h0, rng.standard_normal(batch).astype(dtype))
    reverse = draw(st.booleans())
    b_chunks = tuple(draw(chunking(n)) for n in shape)
    a_dask = a if np.isscalar(a) or draw(st.booleans()) else \
        da.from_array(a, chunks=tuple(draw(chunking(n)) for n in np.shape(a)))
    h0_dask = h0 if h0 is None or np.isscalar(h0) or draw(st.booleans()) else \
        da.from_array(h0, chunks=tuple(draw(chunking(n)) for n in batch))
    return dict(a=a, b=b, h0=h0, axis=axis, reverse=reverse,
                dask=dict(a=a_dask, b=da.from_array(b, chunks=b_chunks), h0=h0_dask))


def _assert_close(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    rtol = _dtypes.rtol(want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@given(problems())
def test_scan_equals_numpy_path(p):
    d = p["dask"]
    h = ld.scan(d["a"], d["b"], h0=d["h0"], axis=p["axis"], reverse=p["reverse"])
    assert isinstance(h, da.Array)
    assert h.chunks == d["b"].chunks
    want = linrec.scan(p["a"], p["b"], h0=p["h0"], axis=p["axis"], reverse=p["reverse"])
    _assert_close(h.compute(**SCHEDULER), want)


@given(problems(), st.booleans())
def test_scan_vjp_equals_numpy_path(p, with_grad_last):
    d, axis, reverse = p["dask"], p["axis"], p["reverse"]
    h = linrec.scan(p["a"], p["b"], h0=p["h0"], axis=axis, reverse=reverse)
    rng = np.random.default_rng(0)
    grad_h = rng.standard_normal(h.shape).astype(h.dtype)
    grad_last = rng.standard_normal(np.delete(h.shape, axis)).astype(h.dtype) \
        if with_grad_last else None
    got = ld.scan_vjp(da.from_array(grad_h, chunks=d["b"].chunks), d["a"],
                      ld.scan(d["a"], d["b"], h0=d["h0"], axis=axis, reverse=reverse),
                      h0=d["h0"], axis=axis, reverse=reverse, grad_last=grad_last)
    want = linrec.scan_vjp(grad_h, p["a"], h, h0=p["h0"], axis=axis, reverse=reverse,
                           grad_last=grad_last)
    for g, w in zip(dask.compute(*got, **SCHEDULER), want, strict=True):
        _assert_close(g, w)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunks", [1, 7, 100])
def test_time_on_first_axis_complex_b_real_a(chunks, reverse):
    rng = np.random.default_rng(1)
    b = rng.standard_normal((100, 6)) + 1j * rng.standard_normal((100, 6))
    a = rng.uniform(0.8, 1.0, (100, 1))
    h = ld.scan(da.from_array(a, chunks=13), da.from_array(b, chunks=(chunks, 4)), axis=0,
                reverse=reverse)
    _assert_close(h.compute(), linrec.scan(a, b, axis=0, reverse=reverse))


def _counting(x, calls, lock):
    with lock:
        calls.append(x.shape)
    return x


def test_every_block_is_computed_once():
    calls, lock = [], threading.Lock()
    b = da.ones((3, 60), chunks=(2, 7)).map_blocks(_counting, calls, lock, dtype=float)
    a = da.full((3, 60), 0.9, chunks=(3, 11)).map_blocks(_counting, calls, lock,
                                                         dtype=float)
    h = ld.scan(a, b)
    grads = ld.scan_vjp(h, a, h)
    calls.clear()
    dask.compute(h, *grads, **SCHEDULER)
    assert len(calls) == b.npartitions + a.npartitions


def _linrec_tasks(*arrays):
    """The number of distinct tasks in the linrec layers of the arrays' graphs."""
    return len({key for x in arrays for name, layer in x.__dask_graph__().layers.items()
                if name.startswith("linrec-") for key in layer})


@pytest.mark.parametrize("batch_blocks", [1, 3])
def test_graph_grows_linearly_with_chunks(batch_blocks):
    def tasks(n):
        b = da.ones((batch_blocks, 64 * n), chunks=(1, 64))
        h = ld.scan(0.9, b)
        grads = ld.scan_vjp(b, 0.9, h)
        return _linrec_tasks(h), _linrec_tasks(h, *grads), b.npartitions

    (s1, v1, n1), (s2, v2, n2) = tasks(50), tasks(100)
    assert s1 < 3 * n1 and s2 < 3 * n2
    assert v1 < 10 * n1 and v2 < 10 * n2
    assert s2 - s1 <= 3 * (n2 - n1) and v2 - v1 <= 10 * (n2 - n1)


def test_broadcast_a_stays_small():
    b = da.ones((4, 1000), chunks=(2, 100))
    a = da.from_array(np.full((4, 1), 0.5), chunks=(2, 1))
    h = ld.scan(a, b)
    layers = h.__dask_graph__().layers
    assert not any("broadcast" in name or "rechunk" in name for name in layers)
    got = h.compute(**SCHEDULER)
    _assert_close(got, linrec.scan(np.full((4, 1), 0.5), np.ones((4, 1000))))
    grad_a = ld.scan_vjp(da.ones_like(h), a, h)[0]
    assert grad_a.shape == (4, 1)


def test_mixed_chunkings_are_unified_to_b():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 1, (5, 90)), rng.standard_normal((5, 90))
    h = ld.scan(da.from_array(a, chunks=(2, 13)), da.from_array(b, chunks=(3, 20)))
    assert h.chunks == ((3, 2), (20, 20, 20, 20, 10))
    _assert_close(h.compute(), linrec.scan(a, b))


def test_numpy_b_with_dask_a_and_dask_h0_alone():
    b = np.arange(12.0).reshape(2, 6)
    want = linrec.scan(0.5, b, h0=np.ones(2))
    _assert_close(ld.scan(da.from_array(np.full((1, 6), 0.5)), b, h0=np.ones(2)).compute(),
                  want)
    _assert_close(ld.scan(0.5, b, h0=da.ones(2)).compute(), want)


def test_same_graph_twice_gives_same_bytes():
    b = da.random.default_rng(3).standard_normal((4, 5000), chunks=(2, 333))
    h = ld.scan(0.99, b, h0=1.0)
    grads = ld.scan_vjp(da.ones_like(h), 0.99, h, h0=1.0)
    first = dask.compute(h, *grads, **SCHEDULER)
    second = dask.compute(h, *grads, **SCHEDULER)
    for x, y in zip(first, second, strict=True):
        assert x.tobytes() == y.tobytes()


def test_empty_and_single_step():
    b = da.ones((3, 0), chunks=(1, 0))
    assert ld.scan(0.5, b).compute().shape == (3, 0)
    b = da.ones((3, 1), chunks=(1, 1))
    _assert_close(ld.scan(0.5, b, h0=2.0).compute(), np.full((3, 1), 2.0))


def test_not_dask_is_a_type_error():
    with pytest.raises(TypeError, match="linrec.dask.scan needs dask arrays.*linrec.scan"):
        ld.scan(0.5, np.ones(4))
    with pytest.raises(TypeError, match="scan_vjp needs dask arrays"):
        ld.scan_vjp(np.ones(4), 0.5, np.ones(4))
    with pytest.raises(TypeError, match="linrec.dask.scan"):
        linrec.scan(0.5, da.ones(4))


def test_unknown_chunks_cannot_be_aligned():
    b = da.ones(10, chunks=3)
    b = b[b > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        ld.scan(0.5, b)


@pytest.mark.parametrize("h0_shape", [(3, 7), (4,), (2, 2)])
def test_wrong_h0_shape(h0_shape):
    with pytest.raises(ValueError, match="h0"):
        ld.scan(0.5, da.ones((3, 7)), h0=np.ones(h0_shape))


def test_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="do not broadcast"):
        ld.scan(da.ones((3, 5)), da.ones((3, 7)))
    with pytest.raises(ValueError, match="grad_h"):
        ld.scan_vjp(da.ones((3, 6)), 0.5, da.ones((3, 7)))
    with pytest.raises(TypeError, match="integer"):
        ld.scan(0.5, da.ones(4, dtype=int))
    with pytest.raises(np.exceptions.AxisError):
        ld.scan(0.5, da.ones(4), axis=1)


def test_import_linrec_does_not_import_dask_or_xarray():
    code = ("import sys, linrec; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'dask', 'distributed', 'xarray'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _cupy_or_skip():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no CUDA device")
    except cp.cuda.runtime.CUDARuntimeError as error:
        pytest.skip(f"no CUDA device: {error}")
    return cp


@pytest.mark.gpu
def test_cupy_blocks_are_scanned_on_the_gpu_with_a_scalar_or_numpy_a():
    cp = _cupy_or_skip()
    rng = np.random.default_rng(4)
    b = rng.standard_normal((4, 1000))
    b_gpu = da.from_array(b, chunks=(2, 128)).map_blocks(cp.asarray)
    for a in (0.9, np.linspace(0.5, 0.99, 4)[:, None]):
        h = ld.scan(a, b_gpu, h0=np.ones(4), reverse=True)
        got = h.compute(**SCHEDULER)
        assert isinstance(got, cp.ndarray)
        want = linrec.scan(a, b, h0=np.ones(4), reverse=True)
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-10)
        grad_a, grad_b, grad_h0 = dask.compute(
            *ld.scan_vjp(h, a, h, h0=np.ones(4), reverse=True), **SCHEDULER)
        want = linrec.scan_vjp(want, a, want, h0=np.ones(4), reverse=True)
        for g, w in zip((grad_a, grad_b, grad_h0), want, strict=True):
            np.testing.assert_allclose(cp.asnumpy(g), w, rtol=1e-9)
