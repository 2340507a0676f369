"""linrec.xarray.scan: equality with linrec.scan, coords and attrs kept, laziness."""

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

import linrec  # noqa: E402
import linrec.xarray as lx  # noqa: E402


def _inputs(dtype=np.float64):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3, 40, 2))
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(values.shape)
    b = xr.DataArray(
        values.astype(dtype), dims=("site", "time", "band"), name="flow",
        coords={"site": ["a", "b", "c"], "time": np.arange(40) * 0.5, "band": [1, 2],
                "elevation": ("site", [10.0, 20.0, 30.0])},
        attrs={"units": "m3/s"})
    a = xr.DataArray(rng.uniform(0.5, 1.0, (2, 3)), dims=("band", "site"),
                     coords={"band": [1, 2], "site": ["a", "b", "c"]})
    return a, b


def _expected(a, b, reverse=False, h0=None):
    """linrec.scan on the raw arrays, time moved last, result in b's dim order."""
    a_values = a.transpose("site", "band").values[:, :, None]
    h = linrec.scan(a_values, b.transpose("site", "band", "time").values, h0=h0,
                    reverse=reverse)
    return np.moveaxis(h, -1, 1)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("time_chunks", [None, 1, 7, 40])
def test_scan_equals_linrec_scan(time_chunks, reverse, dtype):
    a, b = _inputs(dtype)
    if time_chunks is not None:
        b = b.chunk({"time": time_chunks, "site": 2})
    h = lx.scan(a, b, dim="time", reverse=reverse)
    assert isinstance(h.data, np.ndarray) == (time_chunks is None)
    np.testing.assert_allclose(h.values, _expected(a, b.compute(), reverse), rtol=1e-12)


def test_coords_attrs_name_and_dim_order_are_kept():
    a, b = _inputs()
    h = lx.scan(a, b.chunk({"time": 5}), dim="time")
    assert h.dims == b.dims and h.name == "flow" and h.attrs == {"units": "m3/s"}
    for name, coord in b.coords.items():
        assert h.coords[name].equals(coord)


def test_a_without_time_scalar_a_and_h0():
    a, b = _inputs()
    h0 = xr.DataArray(np.arange(3.0), dims="site", coords={"site": ["a", "b", "c"]})
    got = lx.scan(a, b.chunk({"time": 3}), dim="time", h0=h0.chunk())
    want = _expected(a, b, h0=np.arange(3.0)[:, None])
    np.testing.assert_allclose(got.values, want, rtol=1e-12)
    got = lx.scan(0.5, b, dim="time", h0=1.0)
    want = np.moveaxis(linrec.scan(0.5, b.transpose(..., "time").values, h0=1.0), -1, 1)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)


def test_a_with_time_and_dask_a():
    _, b = _inputs()
    a = xr.DataArray(np.linspace(0.5, 1.0, 40), dims="time",
                     coords={"time": b.time}).chunk({"time": 9})
    got = lx.scan(a, b, dim="time")
    assert isinstance(got.data, da.Array)
    want = linrec.scan(a.values[:, None], b.values, axis=1)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)


def test_errors():
    a, b = _inputs()
    with pytest.raises(TypeError, match="DataArray"):
        lx.scan(a, b.values, dim="time")
    with pytest.raises(ValueError, match="without dim='day'"):
        lx.scan(a, b, dim="day")
    with pytest.raises(ValueError, match="must not have the scan dimension"):
        lx.scan(a, b, dim="time", h0=b)
    shifted = a.expand_dims(time=b.time + 100.0)
    with pytest.raises(ValueError, match="exact"):
        lx.scan(shifted, b, dim="time")
