"""Operands as strided ``(*outer, R, T, C)`` views: the layout both backends compute on.

Works on NumPy and CuPy arrays alike (only shapes, strides and ``as_strided`` are used).
Batch dimensions contiguous in every operand are merged; the two innermost become R and
C (C the one with the smallest stride in the first operand); the rare rest are looped
over. Broadcast operands keep stride 0, so a per-channel ``a`` is never materialised.
Nothing is copied.
"""

import functools

import numpy as np

__all__ = ["views", "outer_indices", "empty_like_layout", "write_into"]


def _strides(shape, strides, ndim, axis):
    """An operand's strides in bytes, 0 along its dimensions of size 1, with a size-1
    time dimension inserted at ``axis`` for a batch-only operand (``ndim - 1`` dims)."""
    if len(shape) < ndim:
        shape, strides = (*shape[:axis], 1, *shape[axis:]), (*strides[:axis], 0,
                                                             *strides[axis:])
    return [0 if n == 1 else s for n, s in zip(shape, strides)]


def _merged_batch(shape, axis, strides):
    """``[(size, [stride per operand]), ...]`` of the merged batch dims, outer first;
    ``strides[i]`` is operand i's :func:`_strides`."""
    dims = [d for d in range(len(shape)) if d != axis and shape[d] != 1]
    if len(dims) > 1:
        dims.sort(key=lambda d: -abs(strides[0][d]))
    merged = []
    for d in dims:
        inner = [s[d] for s in strides]
        if merged:
            size, outer = merged[-1]
            if all(o == s * shape[d] for o, s in zip(outer, inner, strict=True)):
                merged[-1] = (size * shape[d], inner)
                continue
        merged.append((shape[d], inner))
    return merged


def _as_strided(x, shape, strides, writeable):
    """A view of ``x``; ``writeable`` None keeps NumPy's flag (CuPy arrays have none).

    A C-contiguous NumPy ``x`` (the usual case) is viewed through its buffer, which
    costs a tenth of ``as_strided``; the strides here never leave ``x``'s elements."""
    if isinstance(x, np.ndarray):
        flag = x.flags.writeable if writeable is None else writeable
        if not x.flags.c_contiguous:
            return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=flag)
        view = np.ndarray(shape, x.dtype, buffer=x, strides=strides)
        if not flag:
            view.flags.writeable = False
        return view
    from cupy.lib.stride_tricks import as_strided

    return as_strided(x, shape, strides)


def views(xp, shape, axis, operands, time_extent, writeable=None):
    """``(*outer, R, t_i, C)`` views of each operand, ``t_i = time_extent[i]``.

    ``operands`` have ``len(shape)`` dims, or one fewer for batch-only operands (they get
    a size-1 time dim). An operand of extent 1 along ``axis`` is read with time stride 0.
    ``writeable[i]`` false makes NumPy view i read-only (default: as its operand; CuPy
    arrays have no read-only flag, so it does not apply to them).
    """
    layout = _view_layout(tuple(shape), axis, tuple((x.shape, x.strides) for x in operands),
                          tuple(time_extent))
    if writeable is None:
        writeable = (None,) * len(operands)
    return [_as_strided(x, view_shape, view_strides, flag)
            for x, (view_shape, view_strides), flag in zip(operands, layout, writeable)]


@functools.lru_cache(maxsize=1024)
def _view_layout(shape, axis, operands, time_extent):
    """``((view shape, view strides), ...)`` for operands given as ``(shape, strides)``
    pairs: a pure function of shapes and strides, cached (small scans repeat them)."""
    strides = [_strides(s, st, len(shape), axis) for s, st in operands]
    merged = _merged_batch(shape, axis, strides)
    while len(merged) < 2:
        merged.insert(0, (1, [0] * len(operands)))
    sizes = [size for size, _ in merged]
    return tuple(
        ((*sizes[:-1], time_extent[i], sizes[-1]),
         (*[s[i] for _, s in merged[:-1]], strides[i][axis], merged[-1][1][i]))
        for i in range(len(operands)))


def outer_indices(view):
    """Indices over the outer (looped) dims of a ``(*outer, R, T, C)`` view."""
    if view.ndim == 3:
        return ((),)
    return np.ndindex(*view.shape[:-3])


def empty_like_layout(xp, like, shape, dtype):
    """An uninitialised array of ``shape``, Fortran-ordered when ``like`` is (and fits)."""
    if tuple(like.shape) == tuple(shape) and like.flags.f_contiguous and \
            not like.flags.c_contiguous:
        return xp.empty(shape, dtype, order="F")
    return xp.empty(shape, dtype)


def write_into(out, x, add):
    """``x`` written (added, when ``add``) into ``out``; ``out`` itself, or ``x`` when
    ``out`` is None. ``out`` must have ``x``'s shape (or one ``x`` broadcasts to)."""
    if out is None:
        return x
    if add:
        out += x
    else:
        out[...] = x
    return out
