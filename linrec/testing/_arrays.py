"""NumPy value generation and memory layouts behind the hypothesis strategies.

Values come from a NumPy generator seeded by hypothesis (so a draw is reproducible and
hypothesis still shrinks shapes and choices); layouts place them into C-ordered,
F-ordered or strided views of any array namespace.
"""

import numpy as np

__all__ = ["coefficients", "cap_growth", "realise", "inputs", "place", "LAYOUTS"]

LAYOUTS = ("C", "F", "strided")


def coefficients(rng, shape, abs_range, edge_fraction, is_complex):
    """Float64 magnitudes in ``abs_range`` and the unit signs or phases to realise them.

    A fraction ``edge_fraction`` of the magnitudes sits exactly on an end of the range
    (0 and 1 for the default range: a reset and a running sum). Returns
    ``(magnitude, unit)``; ``unit`` is real ±1 or complex of modulus 1 as ``is_complex``.
    """
    lo, hi = abs_range
    magnitude = rng.uniform(lo, hi, shape)
    edges = rng.random(shape) < edge_fraction
    magnitude = np.where(edges, rng.choice([lo, hi], shape), magnitude)
    if is_complex:
        unit = np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    else:
        unit = rng.choice([-1.0, 1.0], shape)
    return magnitude, unit


def cap_growth(magnitude, time_axis, steps, max_growth):
    """Magnitudes lowered so every product over consecutive steps is ``<= max_growth``.

    ``magnitude`` has ``steps`` entries along ``time_axis`` or, when it is constant in
    time, one entry there (or ``time_axis`` is None): then ``|a|**k <= max_growth`` for
    every ``k <= steps``. Otherwise each step is capped in turn, keeping
    ``W[t] = |a[t]| * max(1, W[t-1])`` (the largest product of a window ending at t)
    at most ``max_growth``.
    """
    if steps == 0:
        return magnitude
    if time_axis is None or magnitude.shape[time_axis] == 1:
        return np.minimum(magnitude, min(max_growth, max_growth ** (1.0 / steps)))
    moved = np.moveaxis(magnitude, time_axis, -1).copy()
    window = np.zeros(moved.shape[:-1])
    for t in range(steps):
        room = max_growth / np.maximum(1.0, window)
        moved[..., t] = np.minimum(moved[..., t], room)
        window = moved[..., t] * np.maximum(1.0, window)
    return np.moveaxis(moved, -1, time_axis)


def realise(magnitude, unit, dtype):
    """``magnitude * unit`` in ``dtype``, with ``|result| <= magnitude`` after rounding."""
    exact = magnitude * unit
    value = exact.astype(dtype)
    over = np.abs(value.astype(exact.dtype)) > magnitude
    shrunk = (exact * (1 - 4 * np.finfo(dtype).eps)).astype(dtype)
    return np.where(over, shrunk, value)


def inputs(rng, shape, style, is_complex, dtype):
    """Inputs ``b`` (or ``h0``): ``"unit"`` uniform in [-1, 1] per component, or
    ``"spread"`` with magnitudes over six decades (cancellation in the sums)."""
    def part():
        if style == "unit":
            return rng.uniform(-1.0, 1.0, shape)
        return rng.choice([-1.0, 1.0], shape) * 10.0 ** rng.uniform(-3.0, 3.0, shape)

    values = part() + 1j * part() if is_complex else part()
    return values.astype(dtype)


def place(xp, values, layout, steps):
    """``values`` (NumPy) copied into a new array of namespace ``xp`` with a layout.

    ``layout`` is ``"C"``, ``"F"`` or ``"strided"``: a view with step ``steps[d]``
    (non-zero, possibly negative) along each dimension ``d`` into a larger buffer (a
    0-d array is always a plain array).
    """
    if layout == "strided" and values.ndim > 0:
        buffer_shape = tuple(n * abs(s) for n, s in zip(values.shape, steps, strict=True))
        buffer = xp.zeros(buffer_shape, dtype=values.dtype)
        view = buffer[tuple(slice(None, None, s) for s in steps)]
        view[...] = xp.asarray(values)
        return view
    out = xp.empty(values.shape, dtype=values.dtype, order="F" if layout == "F" else "C")
    out[...] = xp.asarray(values)
    return out
