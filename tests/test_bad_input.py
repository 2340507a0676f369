"""Hostile arguments to scan / scan_vjp (NumPy, Dask, xarray): a clear TypeError or
ValueError that names the argument, or the right answer; never an AttributeError, a
crash or a silently ignored mask or overlap."""

import decimal
import fractions

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import linrec
from linrec import _namespace
from linrec.testing import assert_scan_close, reference_scan, reference_scan_vjp

try:
    import dask.array as da

    import linrec.dask as ld
except ImportError:
    da = ld = None
try:
    import xarray as xr

    import linrec.xarray as lx
except ImportError:
    xr = lx = None

needs_dask = pytest.mark.skipif(da is None, reason="pip install 'linrec[dask]'")
needs_xarray = pytest.mark.skipif(xr is None or da is None,
                                  reason="pip install 'linrec[xarray]'")

A = np.linspace(0.2, 0.9, 12).reshape(2, 6)
B = np.linspace(-1.0, 1.0, 12).reshape(2, 6)
H = linrec.scan(A, B)


def scan_call(name, value):
    """``linrec.scan`` with argument ``name`` replaced by ``value``."""
    kwargs = {"a": A, "b": B}
    kwargs[name] = value
    return lambda: linrec.scan(kwargs.pop("a"), kwargs.pop("b"), **kwargs)


def vjp_call(name, value):
    """``linrec.scan_vjp`` with argument ``name`` replaced by ``value``."""
    kwargs = {"grad_h": np.ones_like(H), "a": A, "h": H}
    kwargs[name] = value
    return lambda: linrec.scan_vjp(kwargs.pop("grad_h"), kwargs.pop("a"),
                                   kwargs.pop("h"), **kwargs)


@pytest.mark.parametrize("call", [scan_call("a", None), scan_call("b", None),
                                  vjp_call("grad_h", None), vjp_call("a", None),
                                  vjp_call("h", None)], ids=["a", "b", "grad_h", "vjp-a",
                                                             "h"])
def test_missing_required_argument_is_a_type_error(call):
    with pytest.raises(TypeError, match=r"(a|b|grad_h|h) is None; it is required"):
        call()


@pytest.mark.parametrize("value", [fractions.Fraction(1, 2), decimal.Decimal("0.5")])
@pytest.mark.parametrize("call,name", [
    (scan_call, "a"), (scan_call, "h0"), (vjp_call, "a"), (vjp_call, "h0"),
    (vjp_call, "grad_last"),
])
def test_non_float_number_types_say_convert_with_float(value, call, name):
    with pytest.raises(TypeError, match=rf"{name} is a {type(value).__name__}.*"
                                        rf"float\({name}\)"):
        call(name, value)()


@pytest.mark.parametrize("out", [[[0.0] * 6] * 2, 0.0, (0.0,)])
def test_out_that_is_not_an_array_is_a_type_error(out):
    with pytest.raises(TypeError, match=r"out is a .*numpy\.empty\(\(2, 6\)"):
        linrec.scan(A, B, out=out)


@pytest.mark.parametrize("strides", [(0, 0), (0, 8), (8, 0), (8, 8), (24, 8), (8, 12)])
def test_out_whose_elements_overlap_is_rejected(strides):
    base = np.zeros(64)
    out = as_strided(base, shape=(2, 6), strides=strides)
    with pytest.raises(ValueError, match="may make its elements share memory"):
        linrec.scan(A, B, out=out)
    assert not base.any()


@pytest.mark.parametrize("strides", [(48, 8), (8, 16), (-48, 8), (56, -8), (96, 16),
                                     (8, 24)])
def test_out_with_distinct_elements_in_any_layout_is_written(strides):
    base = np.zeros(256)
    start = base[100:]
    out = as_strided(start, shape=(2, 6), strides=strides)
    assert linrec.scan(A, B, out=out) is out
    assert_scan_close(out, A, B)


def test_zero_size_out_with_zero_strides_is_fine():
    out = as_strided(np.zeros(1), shape=(2, 0), strides=(0, 0))
    assert linrec.scan(0.5, np.ones((2, 0)), out=out) is out


@pytest.mark.parametrize("value", ["no", None, 1, 0, 1.0, "False"])
@pytest.mark.parametrize("name", ["reverse", "return_last"])
def test_flags_must_be_bools(name, value):
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        linrec.scan(A, B, **{name: value})


@pytest.mark.parametrize("value", ["no", None, 1])
def test_vjp_reverse_must_be_a_bool(value):
    with pytest.raises(TypeError, match="reverse must be True or False"):
        vjp_call("reverse", value)()


def test_numpy_bools_and_integers_are_accepted_for_flags_and_axis():
    h, last = linrec.scan(A, B, reverse=np.bool_(True), return_last=np.True_,
                          axis=np.int32(1))
    ref, ref_last = reference_scan(A, B, reverse=True, axis=1)
    assert_scan_close(h, A, B, reverse=True, axis=1)
    np.testing.assert_allclose(last, ref_last, rtol=1e-14)
    grad = linrec.scan_vjp(np.ones_like(h), A, h, reverse=np.bool_(True),
                           axis=np.int64(-1))
    for got, want in zip(grad, reference_scan_vjp(np.ones_like(h), A, h, reverse=True)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("axis", [np.bool_(True), 1.0, "1", None])
def test_axis_that_is_not_an_integer_is_a_type_error(axis):
    with pytest.raises(TypeError, match="axis must be an int"):
        linrec.scan(A, B, axis=axis)


def test_nan_initial_state_propagates():
    h = linrec.scan(A, B, h0=np.nan)
    assert np.isnan(h).all()


def test_scalar_grad_last_python_or_numpy_equals_the_reference():
    want = reference_scan_vjp(np.ones_like(H), A, H, grad_last=np.full(2, 2.0))
    for grad_last in (2.0, np.float64(2.0), np.array(2.0)):
        got = linrec.scan_vjp(np.ones_like(H), A, H, grad_last=grad_last)
        for x, y in zip(got, want):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("call", [scan_call("b", np.array(1.0)),
                                  vjp_call("grad_h", np.array(1.0)),
                                  vjp_call("h", np.float64(1.0))],
                         ids=["b", "grad_h", "h"])
def test_zero_dimensional_b_grad_h_or_h_is_a_value_error(call):
    with pytest.raises(ValueError, match="at least one dimension"):
        call()


@pytest.mark.parametrize("dtype", [object, "U3", "S3", "datetime64[s]", "timedelta64[s]",
                                   [("x", "f8")], np.longdouble])
@pytest.mark.parametrize("call,name", [
    (scan_call, "a"), (scan_call, "b"), (scan_call, "h0"), (vjp_call, "grad_h"),
    (vjp_call, "grad_last"),
])
def test_unsupported_dtypes_are_type_errors_naming_the_argument(dtype, call, name):
    shape = (2,) if name in ("h0", "grad_last") else (2, 6)
    with pytest.raises(TypeError, match=rf"{name} has dtype .*\.astype"):
        call(name, np.zeros(shape, dtype))()


def test_ragged_list_is_a_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="b is a list that is not a rectangular"):
        linrec.scan(0.5, [[1.0, 2.0], [1.0]])


def test_lists_and_tuples_count_as_numpy_arrays():
    assert _namespace.namespace_of(a=[1.0], b=(2.0,), h0=3.0) is np
    h = linrec.scan([[0.5, 0.5]], ((1.0, 1.0),), h0=[2.0])
    np.testing.assert_allclose(h, [[2.0, 2.0]])


@pytest.mark.parametrize("call,name", [
    (scan_call, "a"), (scan_call, "b"), (scan_call, "h0"), (scan_call, "out"),
    (vjp_call, "grad_h"), (vjp_call, "h"), (vjp_call, "grad_last"),
])
def test_masked_arrays_are_rejected_not_silently_unmasked(call, name):
    shape = (2,) if name in ("h0", "grad_last") else (2, 6)
    masked = np.ma.array(np.ones(shape), mask=np.zeros(shape, bool))
    masked[0] = np.ma.masked
    with pytest.raises(TypeError, match=rf"{name} is a NumPy masked array.*"
                                        rf"{name}\.filled"):
        call(name, masked)()


# linrec.dask


@needs_dask
def test_dask_state_of_unknown_chunks_is_the_documented_value_error():
    values = da.from_array(np.ones(4), chunks=2)
    unknown = values[values > 0]
    b = da.ones((4, 6), chunks=2)
    with pytest.raises(ValueError, match=r"h0 has unknown chunk sizes.*compute_chunk"):
        ld.scan(0.5, b, h0=unknown)
    h = ld.scan(0.5, b)
    with pytest.raises(ValueError, match=r"grad_last has unknown chunk sizes"):
        ld.scan_vjp(da.ones_like(h), 0.5, h, grad_last=unknown)
    with pytest.raises(ValueError, match=r"h0 has unknown chunk sizes"):
        ld.scan_vjp(da.ones_like(h), 0.5, h, h0=unknown)


@needs_dask
def test_dask_bad_arguments_name_themselves():
    b = da.ones((4, 6), chunks=2)
    h = ld.scan(0.5, b)
    with pytest.raises(TypeError, match="b is None"):
        ld.scan(0.5, None, h0=da.ones(4))
    with pytest.raises(TypeError, match="a is None"):
        ld.scan_vjp(da.ones_like(h), None, h)
    with pytest.raises(TypeError, match="reverse must be True or False"):
        ld.scan(0.5, b, reverse="yes")
    with pytest.raises(TypeError, match="reverse must be True or False"):
        ld.scan_vjp(da.ones_like(h), 0.5, h, reverse=None)
    with pytest.raises(TypeError, match=r"a is a Fraction.*float\(a\)"):
        ld.scan(fractions.Fraction(1, 2), b)
    with pytest.raises(TypeError, match="h0 is a NumPy masked array"):
        ld.scan(0.5, b, h0=np.ma.array(np.ones(4), mask=[0, 1, 0, 0]))


@needs_dask
def test_dask_masked_blocks_are_rejected_before_computing():
    masked = np.ma.array(np.ones((2, 6)), mask=np.eye(2, 6, dtype=bool))
    b = da.from_array(masked, chunks=3)
    with pytest.raises(TypeError, match=r"b has masked blocks.*dask\.array\.ma\.filled"):
        ld.scan(0.5, b)
    h = ld.scan(0.5, da.ones((2, 6), chunks=3))
    with pytest.raises(TypeError, match="grad_h has masked blocks"):
        ld.scan_vjp(b, 0.5, h)


# linrec.xarray


def _data_array():
    rng = np.random.default_rng(3)
    return xr.DataArray(rng.uniform(-1, 1, (3, 7, 2)), dims=("site", "time", "band"),
                        coords={"time": np.arange(7)})


@needs_xarray
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("make_a", [
    lambda b: np.linspace(0.1, 0.9, b.size).reshape(b.shape),
    lambda b: np.linspace(0.1, 0.9, 2),
    lambda b: np.linspace(0.1, 0.9, 14).reshape(7, 2),
    lambda b: np.linspace(0.1, 0.9, 3).reshape(3, 1, 1),
    lambda b: list(np.linspace(0.1, 0.9, 2)),
    lambda b: da.from_array(np.linspace(0.1, 0.9, 14).reshape(7, 1, 2)[:, 0], chunks=3),
], ids=["full", "band", "time-band", "site", "list", "dask"])
def test_xarray_plain_a_broadcasts_by_position_as_numpy_does(make_a, chunked):
    b = _data_array()
    a = make_a(b)
    values = np.broadcast_to(np.asarray(a), b.shape)
    h = lx.scan(a, b.chunk({"time": 3}) if chunked else b, dim="time")
    assert h.dims == b.dims and h.shape == b.shape
    assert_scan_close(h.values, values, b.values, axis=1)

@needs_xarray
def test_xarray_plain_h0_broadcasts_against_the_batch_dims():
    b = _data_array()
    h = lx.scan(0.5, b, h0=np.array([1.0, -1.0]))
    assert_scan_close(h.values, 0.5, b.values, h0=np.array([[1.0, -1.0]] * 3), axis=1)


@needs_xarray
@pytest.mark.parametrize("name,value", [
    ("da_a", np.ones((3, 7))), ("da_a", np.ones((1, 3, 7, 2))), ("h0", np.ones(3)),
    ("h0", np.ones((3, 7, 2))),
])
def test_xarray_plain_array_that_does_not_broadcast_says_wrap_it(name, value):
    kwargs = {"da_a": 0.5, "h0": None, name: value}
    with pytest.raises(ValueError, match=rf"{name} is a plain array.*DataArray"):
        lx.scan(kwargs["da_a"], _data_array(), h0=kwargs["h0"])

@needs_xarray
def test_xarray_bad_arguments_name_themselves():
    b = _data_array()
    with pytest.raises(TypeError, match="da_a is None"):
        lx.scan(None, b)
    with pytest.raises(TypeError, match="da_a is a str"):
        lx.scan("0.5", b)
    with pytest.raises(TypeError, match="da_a is a NumPy masked array"):
        lx.scan(np.ma.array(np.ones(2)), b)
    with pytest.raises(TypeError, match="reverse must be True or False"):
        lx.scan(0.5, b, reverse="yes")


@needs_xarray
@pytest.mark.parametrize("chunked", [None, "b", "h0", "both"])
@pytest.mark.parametrize("reverse", [False, True])
def test_xarray_h0_with_its_own_dimension_adds_it_to_the_result(chunked, reverse):
    b = _data_array()
    h0 = xr.DataArray(np.array([0.0, 2.0, -3.0, 10.0]), dims="member",
                      coords={"member": list("wxyz")})
    a = xr.DataArray(np.array([0.5, 0.9]), dims="band")
    if chunked in ("b", "both"):
        b = b.chunk({"time": 2, "site": 2})
    if chunked in ("h0", "both"):
        h0 = h0.chunk({"member": 3})
    h = lx.scan(a, b, dim="time", h0=h0, reverse=reverse)
    assert h.dims == ("site", "time", "band", "member")
    assert isinstance(h.data, np.ndarray) == (chunked is None)
    assert list(h.member.values) == list("wxyz")
    values = h.values
    for m, start in enumerate(h0.values):
        assert_scan_close(values[..., m], a.values, b.values, h0=np.full((3, 2), start),
                          axis=1, reverse=reverse)

@needs_xarray
def test_xarray_h0_and_a_with_dimensions_b_lacks():
    b = xr.DataArray(np.linspace(-1, 1, 5), dims="time")
    a = xr.DataArray(np.array([0.3, 0.6, 0.9]), dims="channel")
    h0 = xr.DataArray(np.array([1.0, -2.0]), dims="member")
    h = lx.scan(a, b, h0=h0)
    assert h.dims == ("time", "channel", "member") and h.shape == (5, 3, 2)
    for c in range(3):
        for m in range(2):
            assert_scan_close(h.values[:, c, m], a.values[c], b.values, h0=h0.values[m])
