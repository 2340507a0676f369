"""Hypothesis strategies for recurrences and for the pairs their parallel scans combine.

Importing this module imports hypothesis (install ``linrec[testing]``). Arrays are
NumPy by default; pass ``xp=cupy`` (or another NumPy-like module with ``zeros``,
``empty(order=)`` and ``asarray``) to draw arrays of that namespace. Values are drawn on
the host from a seeded generator, so that a draw is cheap even for long sequences, then
copied into the requested memory layout.
"""

import math
from typing import Any, NamedTuple

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from linrec import _dtypes
from linrec._tuning import CHANNEL_BLOCK, CHUNK_MIN
from linrec.testing import _arrays
from linrec.testing.sizes import awkward_sizes

__all__ = ["Recurrence", "recurrences", "pair_triples", "DTYPES", "A_PATTERNS",
           "LAYOUTS"]

DTYPES = _dtypes.NAMES
A_PATTERNS = ("scalar", "channel", "time", "full")
LAYOUTS = _arrays.LAYOUTS
_STEPS = (1, 2, -1, -2)
_B_STYLES = ("unit", "spread")
_EDGE_FRACTIONS = (0.0, 0.1, 0.5)


class Recurrence(NamedTuple):
    """One drawn problem: ``linrec.scan(r.a, r.b, **r.kwargs)`` computes it.

    ``a`` is a Python scalar or an array broadcasting against ``b``; ``h0`` an array of
    the batch shape (``b``'s shape without ``axis``) or None; ``axis`` an int in
    ``[-b.ndim, b.ndim)``; ``reverse`` a bool.
    """

    a: Any
    b: Any
    h0: Any
    axis: int
    reverse: bool

    @property
    def kwargs(self):
        """``{"h0": ..., "axis": ..., "reverse": ...}`` for ``scan`` and the checks."""
        return {"h0": self.h0, "axis": self.axis, "reverse": self.reverse}


def _choice(name, given, allowed):
    given = tuple(given)
    unknown = [x for x in given if x not in allowed]
    if not given or unknown:
        raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {given}")
    return given


def _check_abs_a(abs_a, max_growth):
    lo, hi = (float(x) for x in abs_a)
    if not (0.0 <= lo <= hi and math.isfinite(hi)):
        raise ValueError(f"abs_a must be (lo, hi) with 0 <= lo <= hi < inf, got {abs_a}")
    if max_growth is not None and not max_growth > 0:
        raise ValueError(f"max_growth must be positive or None, got {max_growth}")
    return lo, hi


def _default_lengths(max_length):
    if max_length < 0:
        raise ValueError(f"max_length must be non-negative, got {max_length}")
    return st.one_of(st.sampled_from(awkward_sizes(max_length)),
                     st.integers(0, min(max_length, 2 * CHANNEL_BLOCK + 1)))


def _size(limit):
    return st.one_of(st.sampled_from(awkward_sizes(limit)), st.integers(0, limit))


@st.composite
def _batch_shapes(draw, length, min_dims, max_dims, max_size, max_elements):
    """Batch dims whose product times ``max(length, 1)`` stays within ``max_elements``."""
    ndims = draw(st.integers(min_dims, max(min_dims, max_dims)))
    shape = []
    budget = max_elements // max(length, 1)
    for _ in range(ndims):
        limit = max(1, min(max_size, budget // max(1, math.prod(shape))))
        shape.append(draw(_size(limit)))
    return tuple(shape)


def _kinds(draw, dtype, mixed):
    """Whether ``a``, ``b`` and ``h0`` are complex; at least one of a, b when complex."""
    if dtype.kind != "c":
        return False, False, False
    if not mixed:
        return True, True, True
    a_c, b_c = draw(st.sampled_from([(True, True), (False, True), (True, False)]))
    return a_c, b_c, draw(st.booleans())


def _layout(draw, values, layouts, xp):
    layout = draw(st.sampled_from(layouts))
    steps = tuple(draw(st.sampled_from(_STEPS)) for _ in range(values.ndim))
    return _arrays.place(xp, values, layout, steps)


def _a_shape(draw, pattern, shape, axis):
    """The shape of ``a`` for a broadcast pattern; leading size-1 dims may be dropped."""
    if pattern == "full":
        a_shape = shape
    elif pattern == "channel":
        a_shape = shape[:axis] + (1,) + shape[axis + 1:]
    else:
        a_shape = tuple(n if d == axis else 1 for d, n in enumerate(shape))
    ones = next((d for d, n in enumerate(a_shape) if n != 1), len(a_shape))
    return a_shape[draw(st.integers(0, min(ones, axis))):]


def _draw_a(draw, rng, cfg, shape, axis, dtype, is_complex):
    pattern = draw(st.sampled_from(cfg["a_patterns"]))
    a_shape = () if pattern == "scalar" else _a_shape(draw, pattern, shape, axis)
    edge_fraction = draw(st.sampled_from(_EDGE_FRACTIONS))
    magnitude, unit = _arrays.coefficients(rng, a_shape, cfg["abs_a"], edge_fraction,
                                           is_complex)
    if cfg["max_growth"] is not None:
        time_axis = None if pattern == "scalar" else axis - (len(shape) - len(a_shape))
        magnitude = _arrays.cap_growth(magnitude, time_axis, shape[axis],
                                       cfg["max_growth"])
    a = _arrays.realise(magnitude, unit, dtype if is_complex else _real(dtype))
    if pattern == "scalar":
        return complex(a) if is_complex else float(a)
    return _layout(draw, a, cfg["layouts"], cfg["xp"])


def _real(dtype):
    return np.finfo(dtype).dtype


def _state(draw, rng, cfg, batch, dtype, is_complex):
    style = draw(st.sampled_from(_B_STYLES))
    values = _arrays.inputs(rng, batch, style, is_complex,
                            dtype if is_complex else _real(dtype))
    return _layout(draw, values, cfg["layouts"], cfg["xp"])


@st.composite
def _recurrence(draw, cfg):
    dtype = np.dtype(draw(st.sampled_from(cfg["dtypes"])))
    length = draw(cfg["lengths"])
    min_dims = 0 if cfg["axis"] is None else (cfg["axis"] if cfg["axis"] >= 0
                                               else -cfg["axis"] - 1)
    if cfg["batch_shapes"] is None:
        batch = draw(_batch_shapes(length, min_dims, cfg["max_batch_dims"],
                                   cfg["max_batch_size"], cfg["max_elements"]))
    else:
        batch = tuple(draw(cfg["batch_shapes"]))
        assume(len(batch) >= min_dims)
    ndim = len(batch) + 1
    if cfg["axis"] is None:
        axis = draw(st.integers(0, ndim - 1))
        given_axis = axis - ndim if draw(st.booleans()) else axis
    else:
        given_axis, axis = cfg["axis"], cfg["axis"] % ndim
    shape = batch[:axis] + (length,) + batch[axis:]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a_c, b_c, h0_c = _kinds(draw, dtype, cfg["mixed"])
    a = _draw_a(draw, rng, cfg, shape, axis, dtype, a_c)
    b = _state(draw, rng, cfg, shape, dtype, b_c)
    with_h0 = draw(st.booleans()) if cfg["with_h0"] is None else cfg["with_h0"]
    h0 = _state(draw, rng, cfg, batch, dtype, h0_c) if with_h0 else None
    reverse = draw(st.booleans()) if cfg["reverse"] is None else cfg["reverse"]
    return Recurrence(a, b, h0, given_axis, bool(reverse))


def recurrences(*, dtypes=DTYPES, lengths=None, max_length=2 * CHUNK_MIN + 1,
                batch_shapes=None, max_batch_dims=2, max_batch_size=2 * CHANNEL_BLOCK + 1,
                max_elements=1 << 14, a_patterns=A_PATTERNS, layouts=LAYOUTS, mixed=True,
                with_h0=None, axis=None, reverse=None, abs_a=(0.0, 1.0), max_growth=None,
                xp=None):
    """Strategy for recurrence problems: :class:`Recurrence` ``(a, b, h0, axis, reverse)``.

    Parameters
    ----------
    dtypes : iterable of str or dtype
        Result dtypes to draw from (a subset of :data:`DTYPES`); ``a``, ``b`` and ``h0``
        promote to the drawn one under linrec's rules.
    lengths : strategy of int, optional
        Lengths T of the scan axis. Default: the :func:`awkward_sizes` up to
        ``max_length`` (0, 1, 2, primes, around powers of two and linrec's block and
        chunk sizes) or a uniform length up to ``2 * CHANNEL_BLOCK + 1``.
    max_length : int
        Largest default length (default just past two chunks of the chunked schedule).
    batch_shapes : strategy of tuple of int, optional
        Shapes of the batch (``b``'s shape without the axis). Default: 0 to
        ``max_batch_dims`` dims of awkward sizes up to ``max_batch_size``, with at most
        ``max_elements`` elements in ``b`` (not enforced on user-given shapes).
    a_patterns : iterable of str
        Broadcast patterns of ``a``: ``"scalar"`` (a Python float or complex),
        ``"channel"`` (size 1 along the axis: a per-channel constant), ``"time"`` (size 1
        on every batch dim) and ``"full"`` (``b``'s shape); leading size-1 dims may be
        dropped.
    layouts : iterable of str
        Memory layouts of the arrays: ``"C"``, ``"F"`` and ``"strided"`` (views with steps
        of 1, 2, -1 or -2 per dim into a larger buffer).
    mixed : bool
        For complex dtypes, also draw a real ``a`` with complex ``b``, a complex ``a``
        with real ``b``, and real or complex ``h0``.
    with_h0 : bool or None
        Always (True), never (False) or sometimes (None) draw an initial state.
    axis : int or None
        A fixed scan axis (batch shapes then have enough dims), or None to draw one
        (negative or not).
    reverse : bool or None
        A fixed direction, or None to draw one.
    abs_a : (float, float)
        The range of ``|a|`` (the stability knob); with the default (0, 1) and the
        default inputs ``|h| <= T + |h0|``, so nothing overflows. Some draws put many
        ``|a|`` exactly on the ends of the range (for the default: resets and sums).
    max_growth : float or None
        Also bound every product of consecutive ``|a|`` by this (``|a|`` is lowered
        step by step where needed; this wins over the lower end of ``abs_a``). Lets
        ``|a| > 1`` in places without overflow.
    xp : module, optional
        The array namespace of ``a``, ``b`` and ``h0`` (default NumPy), e.g. ``cupy``.

    Returns
    -------
    hypothesis strategy of :class:`Recurrence`

    Raises
    ------
    ValueError
        Unknown dtypes, patterns or layouts; a bad ``abs_a`` or ``max_growth``; a
        negative ``max_length``.
    """
    dtypes = _choice("dtypes", (np.dtype(d).name for d in dtypes), DTYPES)
    cfg = {
        "dtypes": dtypes,
        "lengths": _default_lengths(max_length) if lengths is None else lengths,
        "batch_shapes": batch_shapes, "max_batch_dims": max_batch_dims,
        "max_batch_size": max_batch_size, "max_elements": max_elements,
        "a_patterns": _choice("a_patterns", a_patterns, A_PATTERNS),
        "layouts": _choice("layouts", layouts, LAYOUTS), "mixed": bool(mixed),
        "with_h0": with_h0, "axis": axis, "reverse": reverse,
        "abs_a": _check_abs_a(abs_a, max_growth), "max_growth": max_growth,
        "xp": np if xp is None else xp,
    }
    return _recurrence(cfg)


@st.composite
def _pair_triple(draw, cfg):
    dtype = np.dtype(draw(st.sampled_from(cfg["dtypes"])))
    shape = tuple(draw(cfg["shapes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pairs = []
    for _ in range(3):
        a_c, b_c, _h0_c = _kinds(draw, dtype, cfg["mixed"])
        magnitude, unit = _arrays.coefficients(
            rng, shape, cfg["abs_a"], draw(st.sampled_from(_EDGE_FRACTIONS)), a_c)
        a = _arrays.realise(magnitude, unit, dtype if a_c else _real(dtype))
        b = _arrays.inputs(rng, shape, draw(st.sampled_from(_B_STYLES)), b_c,
                           dtype if b_c else _real(dtype))
        pairs.append((_layout(draw, a, cfg["layouts"], cfg["xp"]),
                      _layout(draw, b, cfg["layouts"], cfg["xp"])))
    return tuple(pairs)


def pair_triples(*, dtypes=DTYPES, shapes=None, abs_a=(0.0, 1.0), mixed=True,
                 layouts=LAYOUTS, xp=None):
    """Strategy for three affine maps ``((A1, B1), (A2, B2), (A3, B3))``.

    A pair ``(A, B)`` stands for ``h -> A * h + B``; check a combine function's
    associativity on them against :func:`linrec.testing.compose_pairs`. All six arrays
    have one drawn shape; ``A`` may be real where ``B`` is complex (``mixed``).

    Parameters
    ----------
    dtypes, abs_a, mixed, layouts, xp : as for :func:`recurrences`.
    shapes : strategy of tuple of int, optional
        Default: 0 to 2 dims of awkward sizes up to ``2 * CHANNEL_BLOCK + 1``.

    Returns
    -------
    hypothesis strategy of a tuple of three ``(A, B)`` tuples of arrays

    Raises
    ------
    ValueError
        As :func:`recurrences`.
    """
    cfg = {
        "dtypes": _choice("dtypes", (np.dtype(d).name for d in dtypes), DTYPES),
        "shapes": (st.lists(_size(2 * CHANNEL_BLOCK + 1), max_size=2).map(tuple)
                   if shapes is None else shapes),
        "abs_a": _check_abs_a(abs_a, None), "mixed": bool(mixed),
        "layouts": _choice("layouts", layouts, LAYOUTS), "xp": np if xp is None else xp,
    }
    return _pair_triple(cfg)
