"""The direct path (``linrec.cpu._direct``) against the general path and the reference,
and the calls it must leave to the general path.

The general path is ``linrec._api._scan_checked`` / ``_scan_vjp_checked``: what
``linrec.scan`` / ``linrec.scan_vjp`` run when the direct path declines. Both reach the
same small-problem kernels on the same views, so the taken calls must agree bit for bit.
"""

import numpy as np
import pytest

import linrec
from linrec import _api
from linrec.cpu import _direct, _small
from linrec.reference import reference_scan, reference_scan_vjp
from tests.helpers import assert_close, random_with_phase

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# (shape with "T" for the time axis, the axes that name it)
CASES = [
    (("T",), [0, -1]),
    ((1, "T"), [-1, 1]),
    ((5, "T"), [-1, 1]),
    (("T", 7), [0, -2]),
    ((2, 3, "T"), [-1, 2]),
    (("T", 3, 2), [0, -3]),
]
LENGTHS = [1, 2, 3, 17, 254]


def _shape(template, T):
    return tuple(T if n == "T" else n for n in template)


def _arrays(shape, dtype, seed, count):
    rng = np.random.default_rng(seed)
    return [random_with_phase(rng, shape, dtype, *bounds)
            for bounds in [(0.5, 1.0)] + [(-1.0, 1.0)] * (count - 1)]


def _assert_identical(got, want):
    for g, w in zip(got, want, strict=True):
        assert type(g) is np.ndarray and g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def _coefficients(kind, template, T, dtype, seed):
    """``a`` of the full shape, one per chain (extent 1 along time) or a Python float."""
    if kind == "float":
        return 0.93
    shape = _shape(template, T if kind == "full" else 1)
    return _arrays(shape, dtype, seed, count=1)[0]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("a_kind", ["full", "per chain", "float"])
@pytest.mark.parametrize("states", [False, True], ids=["no states", "h0 and grad_last"])
def test_direct_path_matches_general_path_and_reference(case, T, dtype, reverse, a_kind,
                                                         states):
    template, axes = case
    shape = _shape(template, T)
    b, grad_h = _arrays(shape, dtype, seed=T * 7 + len(shape), count=2)
    a = _coefficients(a_kind, template, T, dtype, seed=T)
    batch = tuple(n for n in template if n != "T")
    h0, grad_last = (np.asarray(x) for x in _arrays(batch, dtype, seed=T + 1, count=2)) \
        if states else (None, None)
    for axis in axes:
        args = (a, b, h0, axis, reverse, True, None, "auto")
        direct = _direct.scan(*args)
        assert direct is not None
        _assert_identical(direct, _api._scan_checked(*args))
        _assert_identical(linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse,
                                      return_last=True), direct)
        h, h_last = direct
        want_h, want_last = reference_scan(a, b, h0, reverse, axis=axis)
        assert_close(h, want_h, dtype, T)
        assert_close(h_last, want_last, dtype, T)

        args = (grad_h, a, h, h0, axis, reverse, grad_last, None, False, "auto")
        direct = _direct.scan_vjp(*args)
        assert direct is not None
        _assert_identical(direct, _api._scan_vjp_checked(*args))
        _assert_identical(linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, reverse=reverse,
                                          grad_last=grad_last), direct)
        assert direct[0].shape == np.shape(a)
        want = reference_scan_vjp(grad_h, a, want_h, h0, reverse, grad_last, axis=axis)
        for got, expected in zip(direct, want, strict=True):
            assert np.shape(got) == np.shape(expected)
            assert_close(got, expected, dtype, h.size)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("case", [CASES[2], CASES[3]])
@pytest.mark.parametrize("a_kind", ["full", "per chain"])
def test_direct_path_writes_and_adds_into_out(case, accumulate, dtype, a_kind):
    template, (axis, _) = case
    shape = _shape(template, 17)
    b, grad_h, start_b = _arrays(shape, dtype, seed=5, count=3)
    a = _coefficients(a_kind, template, 17, dtype, seed=6)
    start_a = _arrays(a.shape, dtype, seed=7, count=1)[0]
    h = np.empty(shape, dtype)
    assert linrec.scan(a, b, axis=axis, out=h) is h
    np.testing.assert_array_equal(h, _api._scan_checked(a, b, None, axis, False, False,
                                                        None, "auto"))
    runs = []
    for entry in (_direct.scan_vjp, _api._scan_vjp_checked):
        out = [start_a.copy(), start_b.copy()]
        got = entry(grad_h, a, h, None, axis, False, None, out, accumulate, "auto")
        assert got[0] is out[0] and got[1] is out[1]
        runs.append(got)
    _assert_identical(*runs)
    want_a, want_b, _ = linrec.scan_vjp(grad_h, a, h, axis=axis, method="rows")
    if accumulate:
        want_a, want_b = want_a + start_a, want_b + start_b
    assert_close(runs[0][0], want_a, dtype, h.size)
    assert_close(runs[0][1], want_b, dtype, h.size)


@pytest.mark.parametrize("alias", ["b", "a"])
def test_direct_path_scans_in_place(alias):
    a, b = _arrays((3, 40), np.float64, seed=6, count=2)
    want = _api._scan_checked(a, b, None, -1, False, False, None, "auto")
    out = {"a": a, "b": b}[alias]
    assert _direct.scan(a, b, None, -1, False, False, out, "auto") is out
    np.testing.assert_array_equal(out, want)


def _scan_declines():
    """``(name, a, b, kwargs)`` calls of scan the direct path must leave alone."""
    a, b = _arrays((4, 16), np.float32, seed=1, count=2)
    read_only = np.empty_like(b)
    read_only.flags.writeable = False
    shared = np.concatenate([a, a[:1]])

    class Sub(np.ndarray):
        pass

    return [
        ("b a subclass", a, b.view(Sub), {}),
        ("b masked", a, np.ma.masked_array(b), {}),
        ("a an int", 1, b, {}),
        ("a a complex", 0.9 + 0j, b, {}),
        ("a a NumPy scalar", np.float32(0.9), b, {}),
        ("a broadcast along the batch", a[:1].copy(), b, {}),
        ("a per chain, another dtype", a[:, :1].astype(np.float64), b, {}),
        ("a per chain, not contiguous", a[:, :2][:, ::2], b, {}),
        ("a another dtype", a.astype(np.float64), b, {}),
        ("a a list", a.tolist(), b, {}),
        ("b not contiguous", a[:, ::2], b[:, ::2], {}),
        ("b Fortran-ordered", np.asfortranarray(a), np.asfortranarray(b), {}),
        ("b 0-d", a[0, 0], b[0, 0], {}),
        ("b empty", a[:, :0], b[:, :0], {}),
        ("b over SMALL_MAX", np.ones((1, _small.SMALL_MAX + 1), np.float32),
         np.ones((1, _small.SMALL_MAX + 1), np.float32), {}),
        ("b float16", a.astype(np.float16), b.astype(np.float16), {}),
        ("b big-endian", a.astype(">f4"), b.astype(">f4"), {}),
        ("h0 broadcast", a, b, {"h0": np.zeros(1, np.float32)}),
        ("h0 another dtype", a, b, {"h0": np.zeros(4, np.float64)}),
        ("h0 a float", a, b, {"h0": 0.5}),
        ("h0 not contiguous", a, b, {"h0": np.zeros(8, np.float32)[::2]}),
        ("out overlapping h0", a, b, {"h0": shared[4, :4], "out": shared[1:]}),
        ("axis in the middle", a.reshape(2, 2, 16), b.reshape(2, 2, 16), {"axis": 1}),
        ("axis a NumPy int", a, b, {"axis": np.int64(-1)}),
        ("axis a bool", a, b, {"axis": True}),
        ("axis out of range", a, b, {"axis": 2}),
        ("reverse a NumPy bool", a, b, {"reverse": np.True_}),
        ("reverse an int", a, b, {"reverse": 1}),
        ("return_last an int", a, b, {"return_last": 1}),
        ("method rows", a, b, {"method": "rows"}),
        ("method unknown", a, b, {"method": "fast"}),
        ("out read-only", a, b, {"out": read_only}),
        ("out another dtype", a, b, {"out": np.empty((4, 16), np.float64)}),
        ("out Fortran-ordered", a, b, {"out": np.empty((4, 16), np.float32, order="F")}),
        ("out a view of b", a, b, {"out": b[...]}),
        ("out overlapping a", shared[:4], b, {"out": shared[1:]}),
        ("out a list", a, b, {"out": [0.0] * 16}),
    ]


SCAN_DECLINES = [c[0] for c in _scan_declines()]


@pytest.mark.parametrize("name", SCAN_DECLINES)
def test_direct_scan_declines_and_the_general_path_answers(name):
    """Each call built twice, so that a general path writing into an input (an ``out``
    overlapping ``b``) leaves the other call's arrays as they were."""
    first, second = ({c[0]: c[1:] for c in _scan_declines()}[name] for _ in range(2))
    a, b, kwargs = first
    args = [kwargs.get(k, d) for k, d in (("h0", None), ("axis", -1), ("reverse", False),
                                           ("return_last", False), ("out", None),
                                           ("method", "auto"))]
    assert _direct.scan(a, b, *args) is None
    a, b, kwargs = second
    try:
        want = _api._scan_checked(*first[:2], *args)
    except (TypeError, ValueError) as error:
        with pytest.raises(type(error), match="."):
            linrec.scan(a, b, **kwargs)
        return
    np.testing.assert_array_equal(linrec.scan(a, b, **kwargs), want)


def _vjp_declines():
    """``(name, grad_h, a, h, kwargs)`` calls of scan_vjp the direct path must leave
    alone."""
    a, b, grad_h = _arrays((4, 16), np.float64, seed=2, count=3)
    h = linrec.scan(a, b)
    read_only = np.empty_like(h)
    read_only.flags.writeable = False
    grads = np.zeros((2, 4, 16))
    return [
        ("grad_h another dtype", grad_h.astype(np.float32), a, h, {}),
        ("grad_h another shape", grad_h[:, :8], a, h, {}),
        ("a broadcast along the batch", grad_h, a[:1].copy(), h, {}),
        ("a a float, with out", grad_h, 0.9, h, {"out": (np.empty(()),
                                                          np.empty_like(h))}),
        ("a per chain, grad_a of the full shape", grad_h, a[:, :1].copy(), h,
         {"out": (np.empty_like(h), np.empty_like(h))}),
        ("a real, h complex", grad_h.astype(complex), a, h.astype(complex), {}),
        ("h not contiguous", grad_h[:, ::2], a[:, ::2], h[:, ::2], {}),
        ("h0 another dtype", grad_h, a, h, {"h0": np.zeros(4, np.float32)}),
        ("h0 a list", grad_h, a, h, {"h0": [0.0] * 4}),
        ("grad_last a float", grad_h, a, h, {"grad_last": 1.0}),
        ("grad_last broadcast", grad_h, a, h, {"grad_last": np.ones(1)}),
        ("out grad_b overlapping grad_last", grad_h, a, h,
         {"grad_last": grads[1, 0, :4], "out": (np.empty_like(a), grads[1])}),
        ("accumulate without out", grad_h, a, h, {"accumulate": True}),
        ("accumulate an int", grad_h, a, h, {"accumulate": 1,
                                               "out": (np.zeros_like(a),
                                                       np.zeros_like(h))}),
        ("out not a pair", grad_h, a, h, {"out": np.empty_like(h)}),
        ("out with a None", grad_h, a, h, {"out": (None, np.empty_like(h))}),
        ("out grad_b read-only", grad_h, a, h, {"out": (np.empty_like(a), read_only)}),
        ("out grad_b is grad_h", grad_h, a, h, {"out": (np.empty_like(a), grad_h)}),
        ("out grad_a is h", grad_h, a, h, {"out": (h, np.empty_like(h))}),
        ("out sharing memory", grad_h, a, h, {"out": (grads[0], grads[0])}),
        ("method channels", grad_h, a, h, {"method": "channels"}),
    ]


VJP_DECLINES = [c[0] for c in _vjp_declines()]


@pytest.mark.parametrize("name", VJP_DECLINES)
def test_direct_scan_vjp_declines_and_the_general_path_answers(name):
    """Each call built twice, as for scan: an ``out`` may be an input."""
    first, second = ({c[0]: c[1:] for c in _vjp_declines()}[name] for _ in range(2))
    grad_h, a, h, kwargs = first
    args = [kwargs.get(k, d) for k, d in (("h0", None), ("axis", -1), ("reverse", False),
                                           ("grad_last", None), ("out", None),
                                           ("accumulate", False), ("method", "auto"))]
    assert _direct.scan_vjp(grad_h, a, h, *args) is None
    try:
        want = _api._scan_vjp_checked(grad_h, a, h, *args)
    except (TypeError, ValueError) as error:
        with pytest.raises(type(error), match="."):
            linrec.scan_vjp(*second[:3], **second[3])
        return
    _assert_identical(linrec.scan_vjp(*second[:3], **second[3]), want)
