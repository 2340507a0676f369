"""Property test: scan and scan_vjp on random memory layouts, for every ``method``.

Inputs come from :func:`linrec.testing.recurrences` (real and complex dtypes, lengths
around the lane, block and chunk boundaries, any axis, scalar, per-channel and full
``a``, C, F and strided views with steps of +-1 and +-2) and are then re-laid out:
broadcast views (stride 0, ``np.broadcast_to``), ``b`` and ``h0`` of size 1 along a
dimension, ``h0`` as a scalar or without its leading dimensions. ``out`` is None, a fresh
array in any layout, ``b`` itself (in place), or a view of one buffer that ``a``, ``b``
or ``h0`` shares, shifted and flipped so that it overlaps the input partially (linrec
must copy the input first) or exactly (in place). ``scan_vjp`` gets ``grad_h`` in any
layout, as ``h`` itself, overlapping ``h`` or broadcast, and ``grad_last`` likewise.

Every result is compared with the sequential reference loop within the forward-error
bounds of :mod:`linrec.testing` (the adjoint is a scan too, so its bound is the same
formula); inputs that ``out`` does not share memory with must come back unchanged.
Examples are derandomized, so CI runs the same ones every time. Sizes are never 0 here
(``tests/test_scan_inputs.py`` covers empty scans, which never reach a kernel).
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import linrec
from linrec._api import METHODS
from linrec._tuning import CHANNEL_BLOCK, CHUNK_MIN
from linrec._validate import sum_to
from linrec.testing import (
    _arrays,
    assert_scan_close,
    awkward_sizes,
    recurrences,
    reference_scan,
    reference_scan_vjp,
    scan_error_bound,
)

FUZZ = settings(derandomize=True)
MAX_LENGTH = 2 * CHUNK_MIN + 1
MAX_BATCH = 2 * CHANNEL_BLOCK + 1
MAX_ELEMENTS = 1 << 14
OUT_MODES = ("none", "fresh", "in place", "overlaps a", "overlaps b", "overlaps h0")
GRAD_H_MODES = ("layout", "is h", "overlaps h", "broadcast")
_STEPS = (1, 2, -1, -2)


def _place(draw, values):
    """A fresh, writeable copy of NumPy ``values`` in a drawn layout."""
    layout = draw(st.sampled_from(_arrays.LAYOUTS))
    steps = tuple(draw(st.sampled_from(_STEPS)) for _ in range(values.ndim))
    return _arrays.place(np, values, layout, steps)


def _take(x, axis, index):
    """``x[..., index, ...]`` along ``axis``, keeping the dimension (a view)."""
    return x[(slice(None),) * axis + (slice(index, index + 1),)]


def _narrowed(draw, x, skip=None):
    """``x`` as drawn, of size 1 along one of its dims, or a stride-0 view of that."""
    dims = [d for d in range(np.ndim(x)) if d != skip and x.shape[d] > 1]
    style = draw(st.sampled_from(("as drawn", "size 1", "stride 0")))
    if style == "as drawn" or not dims:
        return x
    one = _take(x, draw(st.sampled_from(dims)), 0)
    return one if style == "size 1" else np.broadcast_to(one, x.shape)


def _fit(x, shape):
    """``x`` cut to its first entry along the dims where ``shape`` has size 1."""
    for d, n in enumerate(shape):
        if n == 1:
            x = _take(x, d, 0)
    return x


def _state(draw, h0, batch):
    """``h0`` as drawn, narrowed, a Python scalar, or without leading dimensions."""
    if h0 is None:
        return h0
    style = draw(st.sampled_from(("array", "scalar", "trailing")))
    if style == "scalar":
        first = h0.flat[0]
        return complex(first) if h0.dtype.kind == "c" else float(first)
    if style == "trailing" and h0.ndim:
        return h0[(0,) * draw(st.integers(1, h0.ndim))]
    return _narrowed(draw, h0)


def _dtype(*xs):
    """The scan's dtype: NumPy's promotion (Python scalars weak, as in linrec)."""
    return np.result_type(*[x for x in xs if x is not None])


@st.composite
def _sharing(draw, ndim):
    """How two views share one buffer: the dim and the shift (0 to 2) along it between
    them, the buffer's order, and the dims along which each view is flipped."""
    return (draw(st.integers(0, ndim - 1)), draw(st.integers(0, 2)),
            draw(st.sampled_from("CF")),
            [[draw(st.booleans()) for _ in range(ndim)] for _ in range(2)])


def _shared_views(sharing, shape, dtype):
    """Two views of shape ``shape`` into one new buffer, as ``sharing`` says: they
    overlap partially (shifted) or exactly (not shifted nor flipped)."""
    d, k, order, flips = sharing
    grown = tuple(n + k if i == d else n for i, n in enumerate(shape))
    buffer = np.zeros(grown, dtype, order=order)
    views = []
    for start, flipped in zip((0, k), flips, strict=True):
        index = tuple(slice(start, start + n) if i == d else slice(None)
                      for i, n in enumerate(shape))
        views.append(buffer[index][tuple(slice(None, None, -1 if f else 1)
                                         for f in flipped)])
    return views


def _fill(view, values):
    """``view`` (or its real part, for real ``values``) holding ``values``."""
    target = view if np.asarray(values).dtype.kind == "c" else view.real
    target[...] = values
    return target


@st.composite
def _problems(draw):
    """A :class:`linrec.testing.Recurrence` of a length around the block and chunk
    boundaries and a non-empty batch, with at most ``MAX_ELEMENTS`` elements."""
    length = draw(st.sampled_from(awkward_sizes(MAX_LENGTH)[1:]))
    budget = MAX_ELEMENTS // length
    batch = []
    for _ in range(draw(st.integers(0, 2))):
        sizes = awkward_sizes(min(MAX_BATCH, budget // math.prod(batch)))[1:]
        batch.append(draw(st.sampled_from(sizes)))
    return draw(recurrences(lengths=st.just(length), batch_shapes=st.just(tuple(batch))))


@st.composite
def forward_cases(draw):
    """``(make, axis, reverse)``: ``make()`` returns ``(a, b, h0, out)``, building the
    arrays that ``out`` aliases afresh on each call (a scan overwrites them)."""
    r = draw(_problems())
    full = np.broadcast_shapes(np.shape(r.a), r.b.shape)
    axis = r.axis % len(full)
    a = r.a
    if np.ndim(a) and np.shape(a) != full and draw(st.booleans()):
        a = np.broadcast_to(a, full)
    b = _narrowed(draw, r.b, skip=axis)
    shape = np.broadcast_shapes(np.shape(a), b.shape)
    batch = shape[:axis] + shape[axis + 1:]
    h0 = _state(draw, None if r.h0 is None else _fit(r.h0, batch), batch)
    dtype = _dtype(a, b, h0)
    mode = draw(st.sampled_from(OUT_MODES))
    if mode == "overlaps h0" and h0 is None:
        mode = "fresh"
    layout = draw(st.sampled_from(_arrays.LAYOUTS))
    steps = tuple(draw(st.sampled_from(_STEPS)) for _ in shape)
    sharing = draw(_sharing(len(shape)))
    last_step = draw(st.booleans())

    def make():
        a_, b_, h0_, out = a, b, h0, None
        if mode == "fresh":
            out = _arrays.place(np, np.zeros(shape, dtype), layout, steps)
        elif mode == "in place":
            b_ = out = _arrays.place(np, np.broadcast_to(b, shape).astype(dtype), layout,
                                     steps)
        elif mode in ("overlaps a", "overlaps b"):
            victim, out = _shared_views(sharing, shape, dtype)
            if mode == "overlaps a":
                a_ = _fill(victim, np.broadcast_to(a, shape))
            else:
                b_ = _fill(victim, np.broadcast_to(b, shape))
        elif mode == "overlaps h0":
            out = _arrays.place(np, np.zeros(shape, dtype), layout, steps)
            step = shape[axis] - 1 if last_step else 0
            h0_ = _fill(_take(out, axis, step).squeeze(axis), np.broadcast_to(h0, batch))
        return a_, b_, h0_, out

    return make, r.axis, r.reverse


def _snapshot(x):
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


def _wide(dtype):
    return np.result_type(dtype, np.float64)


@FUZZ
@given(forward_cases())
def test_scan_any_layout_and_out_matches_reference(case):
    make, axis, reverse = case
    a, b, h0, out = make()
    shape = np.broadcast_shapes(np.shape(a), b.shape)
    dtype = _dtype(a, b, h0)
    _, ref_last = reference_scan(a, b, h0, reverse, axis=axis)
    last_step = 0 if reverse else shape[axis % len(shape)] - 1
    bounds = [scan_error_bound(a, b, h0=h0, axis=axis, reverse=reverse, dtype=d, depth=n)
              for d, n in ((dtype, 1), (_wide(dtype), 0))]
    last_tol = sum(np.take(bound, last_step, axis=axis) for bound in bounds)
    for method in METHODS:
        a, b, h0, out = make()
        inputs = {"a": a, "b": b, "h0": h0}
        before = {name: _snapshot(x) for name, x in inputs.items()}
        h, last = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse, return_last=True,
                              out=out, method=method)
        assert h.dtype == last.dtype == dtype and h.shape == shape
        if out is not None:
            assert h is out
        assert_scan_close(h, before["a"], before["b"], h0=before["h0"], axis=axis,
                          reverse=reverse)
        assert np.all(np.abs(last - ref_last) <= last_tol), (method, last, ref_last)
        for name, x in inputs.items():
            if isinstance(x, np.ndarray) and not np.may_share_memory(x, h):
                np.testing.assert_array_equal(x, before[name], err_msg=name)


@st.composite
def backward_cases(draw):
    """``(grad_h, a, h, h0, grad_last, axis, reverse)`` in drawn layouts; ``h`` is the
    scan of a drawn problem, ``grad_h`` may be ``h`` itself or share its buffer."""
    r = draw(_problems())
    a = r.a
    h_values = linrec.scan(a, r.b, h0=r.h0, axis=r.axis, reverse=r.reverse)
    shape, dtype = h_values.shape, h_values.dtype
    axis = r.axis % len(shape)
    batch = shape[:axis] + shape[axis + 1:]
    if np.ndim(a) and np.shape(a) != shape and draw(st.booleans()):
        a = np.broadcast_to(a, shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grad_values = _arrays.inputs(rng, shape, "unit", dtype.kind == "c", dtype)
    mode = draw(st.sampled_from(GRAD_H_MODES))
    if mode == "overlaps h":
        h, grad_h = _shared_views(draw(_sharing(len(shape))), shape, dtype)
        h[...] = h_values
        grad_h[...] = grad_values
    else:
        h = _place(draw, h_values)
        grad_h = {"layout": lambda: _place(draw, grad_values), "is h": lambda: h,
                  "broadcast": lambda: _narrowed(draw, grad_values, skip=axis)}[mode]()
        if grad_h.shape != shape:
            grad_h = np.broadcast_to(grad_h, shape)
    grad_last = None
    if draw(st.booleans()):
        grad_last = _state(draw, _place(draw, _arrays.inputs(
            rng, batch, "unit", dtype.kind == "c", dtype)), batch)
    return grad_h, a, h, _state(draw, r.h0, batch), grad_last, r.axis, r.reverse


def _adjoint_coefficients(a, shape, axis, reverse):
    """``a'`` such that the gradient ``g = dL/dh`` (plus the flow from later steps) is
    the scan of ``(a', grad_h)`` from ``grad_last`` in the opposite direction:
    ``a'[t] = conj(a[t+1])`` forward (``conj(a[t-1])`` reverse), 1 at its first step."""
    moved = np.moveaxis(np.conj(np.broadcast_to(a, shape)), axis, -1)
    one = np.ones(moved.shape[:-1] + (1,), moved.dtype)
    shifted = np.concatenate([one, moved[..., :-1]] if reverse else
                             [moved[..., 1:], one], axis=-1)
    return np.moveaxis(shifted, -1, axis)


def _previous_states(h, h0, axis, reverse):
    """``h[t-1]`` (``h[t+1]`` reverse) at every step, ``h0`` (or 0) before the first."""
    moved = np.moveaxis(np.asarray(h), axis, -1)
    start = (np.zeros(moved.shape[:-1], moved.dtype) + (0 if h0 is None else h0))[..., None]
    previous = np.concatenate([moved[..., 1:], start] if reverse else
                              [start, moved[..., :-1]], axis=-1)
    return np.moveaxis(previous, -1, axis)


def _sum_bound(dtype, terms):
    """Relative error of a product followed by a sum of ``terms`` terms in ``dtype``."""
    k = (1 + math.sqrt(5)) * float(np.finfo(dtype).eps) / 2 * (terms + 2)
    return k / (1 - k)


def _assert_within(name, got, want, tol):
    err = np.abs(np.asarray(got) - want)
    bad = ~(err <= tol)
    assert not bad.any(), (f"{name}: {int(bad.sum())} of {bad.size} elements off, worst "
                           f"error {err[bad].max():.3e} with bound {tol[bad].max():.3e}")


@FUZZ
@given(backward_cases())
def test_scan_vjp_any_layout_matches_reference(case):
    """grad_b is the adjoint scan: checked with assert_scan_close. grad_a and grad_h0
    are sums of products of g with h or a: the bound is g's error bound times those
    magnitudes, plus the rounding of the products and sums, for linrec and for the
    float64 reference alike."""
    grad_h, a, h, h0, grad_last, axis, reverse = case
    shape, dtype = h.shape, h.dtype
    axis_ = axis % len(shape)
    first = shape[axis_] - 1 if reverse else 0
    a_adjoint = _adjoint_coefficients(a, shape, axis_, reverse)
    g_error = sum(scan_error_bound(a_adjoint, grad_h, h0=grad_last, axis=axis,
                                   reverse=not reverse, dtype=d, depth=n)
                  for d, n in ((dtype, 1), (_wide(dtype), 0)))
    ra, rb, rh0 = reference_scan_vjp(grad_h, a, h, h0, reverse, grad_last, axis=axis)
    g_magnitude = np.abs(rb) + g_error
    previous = np.abs(_previous_states(h, h0, axis_, reverse))
    a_shape = np.shape(a)
    h0_shape = shape[:axis_] + shape[axis_ + 1:] if h0 is None else np.shape(h0)
    terms = h.size // max(1, math.prod(a_shape))
    relative = _sum_bound(dtype, terms) + _sum_bound(np.float64, terms)
    a_tol = (sum_to(np, g_error * previous, a_shape)
             + relative * sum_to(np, g_magnitude * previous, a_shape))
    a_first = np.abs(np.take(np.broadcast_to(a, shape), first, axis=axis_))
    g_first = [np.take(x, first, axis=axis_) for x in (g_error, g_magnitude)]
    terms = h.size // shape[axis_] // max(1, math.prod(h0_shape))
    relative = _sum_bound(dtype, terms) + _sum_bound(np.float64, terms)
    h0_tol = (sum_to(np, g_first[0] * a_first, h0_shape)
              + relative * sum_to(np, g_first[1] * a_first, h0_shape))
    inputs = {"grad_h": grad_h, "a": a, "h": h, "h0": h0, "grad_last": grad_last}
    before = {name: _snapshot(x) for name, x in inputs.items()}
    for method in METHODS:
        ga, gb, gh0 = linrec.scan_vjp(grad_h, a, h, h0=h0, axis=axis, reverse=reverse,
                                      grad_last=grad_last, method=method)
        assert np.shape(ga) == a_shape and gb.shape == shape
        assert np.shape(gh0) == h0_shape
        assert_scan_close(gb, a_adjoint, grad_h, h0=grad_last, axis=axis,
                          reverse=not reverse)
        _assert_within(f"grad_a ({method})", ga, ra, a_tol)
        _assert_within(f"grad_h0 ({method})", gh0, rh0, h0_tol)
        for name, x in inputs.items():
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, before[name], err_msg=name)
