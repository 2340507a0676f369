"""Awkward inputs, dtype rules and errors of linrec.scan / linrec.scan_vjp."""

import numpy as np
import pytest

import linrec
from linrec import _dtypes, _namespace
from tests.helpers import ref_scan, ref_vjp


def rand(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.uniform(-1, 1, shape)
    return x.astype(dtype)


def coefficients(shape, dtype=np.float64, seed=1):
    return (0.9 * rand(shape, dtype, seed)).astype(dtype)


@pytest.mark.parametrize("a,b,expected", [
    (0.9, np.float32, np.float32),
    (np.float64(0.9), np.float32, np.float64),
    (0.9j, np.float32, np.complex64),
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.float64, np.float32, np.float64),
    (np.float32, np.complex64, np.complex64),
    (np.float64, np.complex64, np.complex128),
    (np.complex64, np.float32, np.complex64),
    (np.complex128, np.float64, np.complex128),
])
def test_result_dtype_follows_numpy_promotion(a, b, expected):
    b_arr = rand((3, 40), b)
    a_arr = coefficients((3, 40), a) if isinstance(a, type) else a
    h = linrec.scan(a_arr, b_arr)
    assert h.dtype == expected == np.result_type(a_arr, b_arr)
    tol = _dtypes.rtol(expected)
    np.testing.assert_allclose(h, ref_scan(a_arr, b_arr)[0], atol=tol)


def test_real_a_with_complex_b_gives_real_grad_a():
    a, b = coefficients((3, 50)), rand((3, 50), np.complex128)
    h = linrec.scan(a, b)
    grad_h = rand(h.shape, np.complex128, 5)
    ga, gb, gh0 = linrec.scan_vjp(grad_h, a, h)
    assert ga.dtype == np.float64 and gb.dtype == np.complex128
    ra, rb, rh0 = ref_vjp(grad_h, a, h)
    np.testing.assert_allclose(ga, ra, atol=1e-12)
    np.testing.assert_allclose(gb, rb, atol=1e-12)


@pytest.mark.parametrize("bad", [np.arange(5), np.arange(5, dtype=np.int32),
                                 np.ones(5, bool), np.ones(5, np.float16)])
@pytest.mark.parametrize("argument", ["a", "b", "h0"])
def test_integer_bool_and_half_inputs_raise_type_error(bad, argument):
    kwargs = {"a": 0.5 * np.ones(5), "b": np.ones(5), "h0": None}
    kwargs[argument] = bad if argument != "h0" else bad[0]
    with pytest.raises(TypeError, match=argument):
        linrec.scan(kwargs["a"], kwargs["b"], h0=kwargs["h0"])


def test_python_bool_scalar_is_rejected():
    with pytest.raises(TypeError, match="bool"):
        linrec.scan(True, np.ones(4))


@pytest.mark.parametrize("T", [1, 2, 3, 5, 31, 33, 97, 1000])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_any_axis_and_length(T, axis):
    shape = [3, 4, 5]
    shape[axis] = T
    a, b = coefficients(shape), rand(shape)
    h = linrec.scan(a, b, axis=axis)
    np.testing.assert_allclose(h, ref_scan(a, b, axis=axis)[0], atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_zero_length_returns_empty_and_h0_as_last(reverse):
    b = np.ones((3, 0))
    h0 = np.array([1.0, 2.0, 3.0])
    h, last = linrec.scan(0.5, b, h0=h0, return_last=True, reverse=reverse)
    assert h.shape == (3, 0) and h.dtype == np.float64
    np.testing.assert_array_equal(last, h0)
    ga, gb, gh0 = linrec.scan_vjp(np.ones((3, 0)), 0.5, h, h0=h0, grad_last=np.ones(3))
    assert gb.shape == (3, 0) and np.shape(ga) == ()
    assert ga == 0
    np.testing.assert_array_equal(gh0, np.ones(3))


def test_zero_size_batch():
    h, last = linrec.scan(0.5, np.ones((0, 7)), return_last=True)
    assert h.shape == (0, 7) and last.shape == (0,)
    ga, gb, gh0 = linrec.scan_vjp(np.ones((0, 7)), np.ones((0, 7)), h)
    assert ga.shape == (0, 7) and gb.shape == (0, 7) and gh0.shape == (0,)


def test_zero_dimensional_a_and_one_dimensional_b():
    b = rand(50)
    h = linrec.scan(np.float64(0.7), b)
    np.testing.assert_allclose(h, ref_scan(0.7, b)[0], atol=1e-12)
    h2 = linrec.scan(np.array(0.7), b)
    np.testing.assert_array_equal(h, h2)
    ga, _, _ = linrec.scan_vjp(np.ones(50), np.array(0.7), h)
    assert ga.shape == ()


def test_zero_dimensional_b_is_rejected():
    with pytest.raises(ValueError, match="at least one dimension"):
        linrec.scan(0.5, np.float64(1.0))


@pytest.mark.parametrize("make_view", [
    lambda x: x[:, ::2],
    lambda x: x[:, ::-1],
    lambda x: x[::-2, 3:-1],
    lambda x: np.asfortranarray(x),
    lambda x: x.T.copy().T,
    lambda x: x[:, :, None][:, :, 0],
])
@pytest.mark.parametrize("axis", [0, 1])
def test_strided_and_f_ordered_views(make_view, axis):
    base_a, base_b = coefficients((20, 90)), rand((20, 90))
    a, b = make_view(base_a), make_view(base_b)
    h = linrec.scan(a, b, axis=axis)
    np.testing.assert_allclose(h, ref_scan(a, b, axis=axis)[0], atol=1e-12)
    grad_h = make_view(rand((20, 90), seed=4))
    got = linrec.scan_vjp(grad_h, a, h, axis=axis)
    for x, y in zip(got, ref_vjp(grad_h, a, h, axis=axis)):
        np.testing.assert_allclose(x, y, atol=1e-11)


def test_four_dimensional_batch_that_cannot_be_merged():
    """Batch dims that no view can merge are looped over, still without copies."""
    a = coefficients((3, 1, 4, 1))
    b = rand((3, 5, 4, 60))[:, ::2, :, :]
    for axis in range(4):
        h = linrec.scan(a, b, axis=axis, h0=0.5)
        np.testing.assert_allclose(h, ref_scan(a, b, 0.5, axis=axis)[0], atol=1e-12)


def test_read_only_inputs():
    a, b, h0 = coefficients((4, 30)), rand((4, 30)), rand(4)
    for x in (a, b, h0):
        x.setflags(write=False)
    h = linrec.scan(a, b, h0=h0)
    np.testing.assert_allclose(h, ref_scan(a, b, h0)[0], atol=1e-12)
    h.setflags(write=False)
    ga, gb, gh0 = linrec.scan_vjp(h, a, h, h0=h0)
    np.testing.assert_allclose(gb, ref_vjp(h, a, h, h0)[1], atol=1e-12)


@pytest.mark.parametrize("a_shape", [(), (1,), (6, 1), (1, 40), (6, 40), (1, 1)])
@pytest.mark.parametrize("reverse", [False, True])
def test_broadcast_a_gradient_has_a_shape(a_shape, reverse):
    a = coefficients(a_shape) if a_shape else 0.8
    b = rand((6, 40))
    h = linrec.scan(a, b, reverse=reverse)
    np.testing.assert_allclose(h, ref_scan(a, b, reverse=reverse)[0], atol=1e-12)
    grad_h = rand(h.shape, seed=3)
    ga, gb, gh0 = linrec.scan_vjp(grad_h, a, h, reverse=reverse)
    assert np.shape(ga) == a_shape
    ra, rb, rh0 = ref_vjp(grad_h, a, h, reverse=reverse)
    np.testing.assert_allclose(ga, ra, atol=1e-10)
    np.testing.assert_allclose(gh0, rh0, atol=1e-12)


def test_b_may_broadcast_too():
    a = coefficients((5, 30))
    h = linrec.scan(a, np.ones((1, 30)))
    assert h.shape == (5, 30)
    np.testing.assert_allclose(h, ref_scan(a, np.ones((5, 30)))[0], atol=1e-12)


def test_h0_broadcasts_and_reduces_in_gradient():
    a, b = coefficients((3, 4, 20)), rand((3, 4, 20))
    h = linrec.scan(a, b, h0=np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(h, ref_scan(a, b, np.array([1.0, 2, 3, 4]))[0], atol=1e-12)
    _, _, gh0 = linrec.scan_vjp(np.ones_like(h), a, h, h0=np.ones(4))
    _, _, full = linrec.scan_vjp(np.ones_like(h), a, h, h0=np.ones((3, 4)))
    assert gh0.shape == (4,)
    np.testing.assert_allclose(gh0, full.sum(axis=0))
    _, _, scalar = linrec.scan_vjp(np.ones_like(h), a, h, h0=1.0)
    assert np.shape(scalar) == () and np.isclose(scalar, full.sum())


def test_out_receives_result_and_may_alias_b():
    a, b = coefficients((5, 64)), rand((5, 64))
    expected = ref_scan(a, b)[0]
    out = np.empty_like(b)
    assert linrec.scan(a, b, out=out) is out
    np.testing.assert_allclose(out, expected, atol=1e-12)
    in_place = b.copy()
    assert linrec.scan(a, in_place, out=in_place) is in_place
    np.testing.assert_allclose(in_place, expected, atol=1e-12)
    in_place = b.copy()
    linrec.scan(a, in_place, out=in_place, reverse=True)
    np.testing.assert_allclose(in_place, ref_scan(a, b, reverse=True)[0], atol=1e-12)


def test_out_overlapping_an_input_in_another_layout_is_still_right():
    a, b = coefficients((5, 64)), rand((5, 64))
    expected = ref_scan(a, b[:, ::-1])[0]
    buffer = b.copy()
    linrec.scan(a, buffer[:, ::-1], out=buffer)
    np.testing.assert_allclose(buffer, expected, atol=1e-12)


@pytest.mark.parametrize("out,match", [
    (np.empty((5, 63)), "shape"), (np.empty((5, 64), np.float32), "dtype"),
    (np.empty((64, 5)).T, None),
])
def test_out_checks(out, match):
    a, b = coefficients((5, 64)), rand((5, 64))
    if match is None:
        linrec.scan(a, b, out=out)
        np.testing.assert_allclose(out, ref_scan(a, b)[0], atol=1e-12)
        return
    with pytest.raises(ValueError, match=match):
        linrec.scan(a, b, out=out)


def test_read_only_out_is_rejected():
    out = np.empty((2, 3))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        linrec.scan(0.5, np.ones((2, 3)), out=out)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="do not broadcast"):
        linrec.scan(np.ones((3, 4)), np.ones((5, 4)))
    with pytest.raises(np.exceptions.AxisError, match="axis=2"):
        linrec.scan(0.5, np.ones((3, 4)), axis=2)
    with pytest.raises(ValueError, match="axis=-3"):
        linrec.scan(0.5, np.ones((3, 4)), axis=-3)
    with pytest.raises(TypeError, match="axis must be an int"):
        linrec.scan(0.5, np.ones((3, 4)), axis=1.0)
    with pytest.raises(ValueError, match="h0 has shape"):
        linrec.scan(0.5, np.ones((3, 4)), h0=np.ones(4))
    with pytest.raises(ValueError, match="squeeze"):
        linrec.scan(0.5, np.ones((3, 4)), h0=np.ones((3, 1)))
    with pytest.raises(ValueError, match="method"):
        linrec.scan(0.5, np.ones((3, 4)), method="fast")
    h = linrec.scan(0.5, np.ones((3, 4)))
    with pytest.raises(ValueError, match="grad_h has shape"):
        linrec.scan_vjp(np.ones((3, 5)), 0.5, h)
    with pytest.raises(ValueError, match="do not broadcast: a"):
        linrec.scan_vjp(np.ones((3, 4)), np.ones((2, 4)), h)
    with pytest.raises(ValueError, match="grad_last has shape"):
        linrec.scan_vjp(np.ones((3, 4)), 0.5, h, grad_last=np.ones(4))


def test_foreign_array_types_are_rejected_with_a_fix():
    class Foreign:
        shape, dtype, ndim = (3,), np.dtype(np.float64), 1

        def __array_namespace__(self):
            return None

    with pytest.raises(TypeError, match="np.asarray"):
        linrec.scan(0.5, Foreign())


def test_mixing_numpy_and_cupy_is_a_type_error(monkeypatch):
    class FakeGpuArray:
        pass

    original = _namespace._kind
    monkeypatch.setattr(_namespace, "_kind",
                        lambda x: "cupy" if isinstance(x, FakeGpuArray) else original(x))
    with pytest.raises(TypeError, match="NumPy arrays but .* CuPy"):
        linrec.scan(FakeGpuArray(), np.ones(3))


def test_lists_are_accepted_as_numpy():
    h = linrec.scan([0.5, 0.5, 0.5], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(h, [1.0, 1.5, 1.75])


def test_nan_and_inf_propagate_as_ieee_says():
    b = np.ones((2, 10))
    b[:, 4] = np.nan
    a = np.full((2, 10), 0.5)
    a[:, 6] = 0.0
    for method in ("rows", "channels", "chunked"):
        h = linrec.scan(a, b, method=method)
        assert np.all(np.isfinite(h[:, :4])) and np.all(np.isnan(h[:, 4:]))
        h = linrec.scan(a, b, method=method, reverse=True)
        assert np.all(np.isnan(h[:, :5])) and np.all(np.isfinite(h[:, 5:]))
    growing = linrec.scan(np.full(2000, 2.0), np.ones(2000))
    assert np.isinf(growing[-1]) and not np.isnan(growing).any()
