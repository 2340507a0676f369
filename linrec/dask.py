"""Linear recurrences on dask arrays: the chunked scan, lazy, one task per chunk and pass.

``scan`` builds three passes over the blocks of ``b`` (the chunked scan of
``docs/internals.md``):

1. summary: each chunk along the scan axis is scanned from a zero state with
   :func:`linrec.scan` (Numba for NumPy chunks, CUDA for CuPy chunks); the task keeps only
   the chunk's pair ``(A, B)`` = (product of ``a`` over the chunk, final state), one value
   per batch element;
2. carry: a sequential scan over those small pairs, ``carry[k+1] = A[k] * carry[k] +
   B[k]``, gives the state entering every chunk (elementwise ``B[k]`` where the carry is
   exactly zero, and the chunk scanned again from its carry where a finite carry would
   give inf or NaN: see :func:`_carry`);
3. final: each chunk is scanned again from its carry, which writes the exact ``h``.

Each input block is computed once and read by passes 1 and 3; the graph has at most three
tasks per block plus the inputs' own, so it grows linearly with the number of chunks.
Rescanning in pass 3 moves fewer bytes than keeping the local scan and adding
``cumprod(a) * carry`` (read a, b, write h, instead of read a, h_local, write tmp, read
tmp, write h), and the chunk is computed exactly as one sequential call would.

``scan_vjp`` mirrors it: the gradient flows against the scan, each chunk's pair is
``(conj(prod a), dL/dh0 of the chunk)``, and the state before each chunk is read off
the neighbouring block of ``h``.

Importing this module imports dask; ``import linrec`` does not.
"""

import operator

import dask.array as da
import numpy as np
from dask.array.core import Array
from dask.array.utils import meta_from_array
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

import linrec
from linrec import _namespace, _validate

__all__ = ["scan", "scan_vjp"]


def _require_dask(names, **named):
    if not any(isinstance(x, Array) for x in named.values()):
        kinds = ", ".join(f"{n} is {type(x).__name__}" for n, x in named.items())
        raise TypeError(
            f"linrec.dask.{names} needs dask arrays ({kinds}): wrap the data with "
            f"dask.array.from_array(x, chunks=...), or call linrec.{names} for in-memory "
            f"arrays"
        )


def _check_kinds(**named):
    """TypeError for a dask array of masked blocks (their masks would be ignored), then
    the checks of :func:`linrec._namespace.namespace_of` on each argument's block type
    (a dask array's) or value (an in-memory one's)."""
    for name, x in named.items():
        if isinstance(x, Array) and isinstance(x._meta, np.ma.MaskedArray):
            raise TypeError(
                f"{name} has masked blocks, whose masks linrec would ignore: fill the "
                f"masked entries with what a masked step means, e.g. "
                f"dask.array.ma.filled({name}, 0.0)"
            )
        _namespace.namespace_of(**{name: x._meta if isinstance(x, Array) else x})


def _like(*args):
    """The block type (a 0-size NumPy or CuPy array) of the first dask array in ``args``."""
    return next(x._meta for x in args if isinstance(x, Array))


def _as_dask(x, dtype, like):
    """``x`` (a scalar, NumPy/CuPy or dask array) as a dask array of ``dtype``.

    A scalar or in-memory array becomes one block of the same array type as ``like``, so
    that a scalar or NumPy ``a`` goes with CuPy blocks of ``b`` (copied to the GPU once).
    """
    if not isinstance(x, Array):
        x = _namespace.namespace_of(like=like).asarray(x, dtype=dtype)
        return da.from_array(x, chunks=x.shape)
    return x.astype(dtype) if x.dtype != dtype else x


def _pad(x, ndim):
    return x[(np.newaxis,) * (ndim - x.ndim)] if x.ndim < ndim else x


def _check_known(name, x):
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(
            f"{name} has unknown chunk sizes {x.chunks}, so its blocks cannot be aligned "
            f"with the others: call {name}.compute_chunk_sizes() first"
        )


def _unify(named, shape):
    """Rechunk each operand so that its blocks line up with the output's.

    Along every dimension the output takes the chunks of the first operand that spans
    it (not broadcast there); the others are rechunked to match. A dimension of size 1
    that broadcasts stays one block of size 1 and is reused by every output block.
    """
    chunks = []
    for d, n in enumerate(shape):
        spanning = [x.chunks[d] for _, x in named if x.shape[d] == n]
        chunks.append(spanning[0])
    unified = []
    for _, x in named:
        want = {d: chunks[d] for d in range(len(shape)) if x.shape[d] == shape[d]}
        unified.append(x.rechunk(want) if any(x.chunks[d] != c for d, c in want.items())
                       else x)
    return tuple(chunks), unified


def _state(x, problem, batch_chunks, like):
    """An h0-like argument (checked by ``linrec._validate``) as a dask array of exactly
    the batch shape and chunks."""
    if x is None:
        return None
    x = _validate.pad_dims(da, _as_dask(x, problem.dtype, like), len(problem.batch))
    return da.broadcast_to(x, problem.batch).rechunk(batch_chunks)


def _check_all_known(**named):
    """:func:`_check_known` on every dask array of ``named`` (before shapes are compared,
    which unknown sizes would make meaningless)."""
    for name, x in named.items():
        if isinstance(x, Array):
            _check_known(name, x)


def _block(x, idx):
    """The key of ``x``'s block for output block ``idx`` (broadcast dims use block 0)."""
    return (x.name, *(i if n > 1 else 0 for i, n in zip(idx, x.numblocks, strict=True)))


def _order(numblocks, axis, reverse):
    """Block indices grouped by batch block: lists of indices in the order scanned."""
    steps = range(numblocks[axis] - 1, -1, -1) if reverse else range(numblocks[axis])
    batch_ranges = [range(n) for d, n in enumerate(numblocks) if d != axis]
    for bidx in np.ndindex(*[len(r) for r in batch_ranges]):
        yield bidx, [(*bidx[:axis], k, *bidx[axis:]) for k in steps]


def _chunk_product(a, axis, steps):
    """Product of ``a`` over a chunk of ``steps`` steps (``a`` may be constant in time);
    it may overflow or underflow, which :func:`_carry` allows for."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if a.shape[axis] == steps:
            return a.prod(axis=axis)
        return a.squeeze(axis) ** steps


def _scan_summary(a, b, axis, reverse, steps):
    _, last = linrec.scan(a, b, axis=axis, reverse=reverse, return_last=True)
    return _chunk_product(a, axis, steps), last


def _vjp_summary(grad_h, a, h, h_before, axis, reverse, steps):
    _, _, grad_h0 = linrec.scan_vjp(grad_h, a, h, h0=h_before, axis=axis, reverse=reverse)
    return _chunk_product(a, axis, steps).conj(), grad_h0


def _carry(pair, state, replay, *operands):
    """The state after a chunk with pair ``(A, B)``, entered with ``state`` (None: zero).

    ``A * state + B`` elementwise, except where that reassociation leaves the finite
    numbers while the sequential loop need not: ``B`` where the state is exactly zero
    (``A`` may have overflowed to inf, and inf * 0 is NaN), and where a finite state gives
    inf or NaN, the chunk's own scan from that state, ``replay(*operands, state)`` (as the
    CPU's chunked schedule does). An inf or NaN state stays so in the loop too.
    """
    A, B = pair
    if state is None:
        return B
    xp = _namespace.namespace_of(B=B)
    with np.errstate(over="ignore", invalid="ignore"):
        result = xp.where(state == 0, B, A * state + B)
    redo = xp.isfinite(state) & ~xp.isfinite(result)
    if redo.any():
        result = xp.where(redo, replay(*operands, state), result)
    return result


def _final_scan(a, b, h0, axis, reverse):
    return linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)


def _last_state(a, b, axis, reverse, h0):
    return linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse, return_last=True)[1]


def _final_vjp(grad_h, a, h, h_before, grad_last, axis, reverse):
    return linrec.scan_vjp(grad_h, a, h, h0=h_before, axis=axis, reverse=reverse,
                           grad_last=grad_last)


def _first_carry(grad_h, a, h, h_before, axis, reverse, grad_last):
    return _final_vjp(grad_h, a, h, h_before, grad_last, axis, reverse)[2]


def _edge(h, axis, position):
    """``h`` at ``position`` along ``axis``, copied so that the block can be freed."""
    return h[(slice(None),) * axis + (position,)].copy()


def scan(a, b, *, h0=None, axis=-1, reverse=False):
    """Diagonal linear recurrence on dask arrays, chunked along any axis; lazy.

    forward: ``h[t] = a[t] * h[t-1] + b[t]`` with ``h[-1] = h0``; ``reverse=True``:
    ``h[t] = a[t] * h[t+1] + b[t]`` with ``h[T] = h0``. Same numbers as
    :func:`linrec.scan` up to rounding (the products of ``a`` are reassociated at chunk
    boundaries); finite wherever the sequential loop is, as :func:`linrec.scan`'s Notes
    state (a zero carry ignores an overflowed product, a carry that would overflow
    replays the chunk).

    Parameters
    ----------
    a : dask array, NumPy array or scalar
        Coefficients; broadcast against ``b`` with NumPy's rules. A broadcast ``a`` (a
        scalar, or shape ``(C, 1)`` for ``b`` of shape ``(C, T)``) stays one small block
        that every task reads with stride 0; it is never materialised at ``b``'s size.
    b : dask array (or a NumPy array when ``a`` or ``h0`` is a dask array)
        Inputs; chunked in any way along any axis, including ``axis``. NumPy chunks run
        on the CPU (Numba), CuPy chunks on the GPU.
    h0 : dask array, NumPy array or scalar, optional
        Initial state: the broadcast shape of ``a`` and ``b`` without ``axis``, or
        anything that broadcasts to it. Zero when omitted.
    axis : int
        The time axis; negative values count from the end.
    reverse : bool
        Run the recurrence from the last step to the first.

    Returns
    -------
    h : dask array, the broadcast shape of ``a`` and ``b``
        Chunked like ``b`` (like ``a`` along dimensions where ``b`` is broadcast); dtype as
        :func:`linrec.scan` (float32, float64, complex64 or complex128). Nothing is
        computed until you call ``.compute()``, ``.persist()`` or store it.

    Raises
    ------
    TypeError
        None of ``a``, ``b``, ``h0`` is a dask array; ``a`` or ``b`` None; ``reverse``
        not a bool; masked arrays (in memory or as dask blocks); unsupported dtypes,
        scalars or array types (as :func:`linrec.scan`).
    ValueError
        Shapes that do not broadcast; an operand with unknown chunk sizes (NaN chunks,
        which cannot be aligned); ``h0`` of the wrong shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    _require_dask("scan", a=a, b=b, h0=h0)
    _validate.check_given(a=a, b=b)
    reverse = _validate.check_flag("reverse", reverse)
    _check_kinds(a=a, b=b, h0=h0)
    a, b, h0 = (_validate.coerce(n, x) for n, x in (("a", a), ("b", b), ("h0", h0)))
    _check_all_known(a=a, b=b, h0=h0)
    p = _validate.scan_problem(a, b, h0, axis=axis, reverse=reverse, method="auto")
    dtype, shape, axis, ndim = p.dtype, p.shape, p.axis, len(p.shape)
    like = _like(b, a, h0)
    a, b = _as_dask(a, p.a_dtype, like), _as_dask(b, dtype, like)
    chunks, (b, a) = _unify([("b", _pad(b, ndim)), ("a", _pad(a, ndim))], shape)
    h0 = _state(h0, p, chunks[:axis] + chunks[axis + 1:], like)

    token = tokenize(a, b, h0, axis, reverse)
    summary, carry, name = (f"linrec-scan-{p}-{token}" for p in ("summary", "carry", "h"))
    steps = chunks[axis]
    dsk = {}
    for bidx, order in _order(tuple(map(len, chunks)), axis, reverse):
        state = None if h0 is None else (h0.name, *bidx)
        for i, idx in enumerate(order):
            if i:
                prev = order[i - 1]
                dsk[(carry, *idx)] = (_carry, (summary, *prev), state, _last_state,
                                      _block(a, prev), _block(b, prev), axis, reverse)
                state = (carry, *idx)
            if i < len(order) - 1:
                dsk[(summary, *idx)] = (_scan_summary, _block(a, idx), _block(b, idx), axis,
                                        reverse, steps[idx[axis]])
            dsk[(name, *idx)] = (_final_scan, _block(a, idx), _block(b, idx), state, axis,
                                 reverse)
    deps = [x for x in (a, b, h0) if x is not None]
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return Array(graph, name, chunks, meta=b._meta.astype(dtype))


def scan_vjp(grad_h, a, h, *, h0=None, axis=-1, reverse=False, grad_last=None):
    """Gradients through :func:`scan` on dask arrays (the vector-Jacobian product); lazy.

    The same maths and conventions as :func:`linrec.scan_vjp` (complex gradients are
    ``dL/dRe(z) + 1j * dL/dIm(z)``), computed chunk by chunk: the gradient flowing into
    each chunk from the later ones is carried by a scan over per-chunk pairs, and every
    chunk's gradients come from one :func:`linrec.scan_vjp` call on its blocks.

    Parameters
    ----------
    grad_h : dask array
        ``dL/dh``, exactly ``h``'s shape (any chunking; it is rechunked to ``h``'s).
    a : dask array, NumPy array or scalar
        The coefficients given to :func:`scan` (same broadcasting rules).
    h : dask array
        The output of :func:`scan` (the same lazy array is fine: its blocks are shared).
    h0 : dask array, NumPy array or scalar, optional
        The initial state given to :func:`scan`.
    axis, reverse : as given to :func:`scan`.
    grad_last : dask array, NumPy array or scalar, optional
        ``dL/dh_last``, ``h``'s shape without ``axis`` (broadcasting allowed).

    Returns
    -------
    grad_a : dask array, ``a``'s own shape (summed over the axes along which ``a`` was
        broadcast, by a tree reduction over the blocks); 0-d for a scalar ``a``; real if
        ``a`` is real.
    grad_b : dask array, shape, dtype and chunks of ``h``.
    grad_h0 : dask array, ``h0``'s shape (real if ``h0`` is real), or ``h``'s shape
        without ``axis`` when ``h0`` is None.

    Raises
    ------
    TypeError
        None of ``grad_h``, ``h`` is a dask array; ``grad_h``, ``a`` or ``h`` None;
        others as :func:`scan`.
    ValueError
        ``grad_h`` and ``h`` of different shapes; ``a`` that does not broadcast to ``h``;
        unknown chunk sizes; ``h0`` or ``grad_last`` of the wrong shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.
    """
    _require_dask("scan_vjp", grad_h=grad_h, h=h)
    _validate.check_given(grad_h=grad_h, a=a, h=h)
    reverse = _validate.check_flag("reverse", reverse)
    named = dict(grad_h=grad_h, a=a, h=h, h0=h0, grad_last=grad_last)
    _check_kinds(**named)
    grad_h, a, h, h0, grad_last = (_validate.coerce(n, x) for n, x in named.items())
    _check_all_known(grad_h=grad_h, a=a, h=h, h0=h0, grad_last=grad_last)
    p = _validate.vjp_problem(grad_h, a, h, h0, grad_last, axis=axis, reverse=reverse,
                              method="auto")
    dtype, shape, axis, ndim = p.dtype, p.shape, p.axis, len(p.shape)
    a_shape = np.shape(a)
    like = _like(h, grad_h)
    a = _as_dask(a, p.a_dtype, like)
    h, grad_h = _as_dask(h, dtype, like), _as_dask(grad_h, dtype, like)
    chunks, (h, grad_h, a) = _unify([("h", h), ("grad_h", grad_h), ("a", _pad(a, ndim))],
                                    shape)
    batch_chunks = chunks[:axis] + chunks[axis + 1:]
    h0_shape = None if h0 is None else np.shape(h0)
    h0_real = h0 is not None and not _validate.is_complex(h0)
    h0 = _state(h0, p, batch_chunks, like)
    grad_last = _state(grad_last, p, batch_chunks, like)

    token = tokenize(grad_h, a, h, h0, grad_last, axis, reverse)
    edge, summary, carry, block, ga, gb, gh0 = (
        f"linrec-scan-vjp-{p}-{token}"
        for p in ("edge", "summary", "carry", "block", "grad-a", "grad-b", "grad-h0"))
    steps = chunks[axis]
    position = 0 if reverse else -1
    dsk, parts = {}, {ga: {}, gb: {}, gh0: {}}
    for bidx, order in _order(tuple(map(len, chunks)), axis, reverse):
        before = [None if h0 is None else (h0.name, *bidx)]
        for prev, idx in zip(order[:-1], order[1:], strict=True):
            dsk[(edge, *idx)] = (_edge, (h.name, *prev), axis, position)
            before.append((edge, *idx))
        state = None if grad_last is None else (grad_last.name, *bidx)
        operands = [((grad_h.name, *idx), _block(a, idx), (h.name, *idx), before[i])
                    for i, idx in enumerate(order)]
        for i in range(len(order) - 1, -1, -1):
            idx = order[i]
            if i < len(order) - 1:
                dsk[(carry, *idx)] = (_carry, (summary, *order[i + 1]), state,
                                      _first_carry, *operands[i + 1], axis, reverse)
                state = (carry, *idx)
            if i:
                dsk[(summary, *idx)] = (_vjp_summary, *operands[i], axis, reverse,
                                        steps[idx[axis]])
            dsk[(block, *idx)] = (_final_vjp, *operands[i], state, axis, reverse)
            parts[ga][(ga, *idx)] = (operator.getitem, (block, *idx), 0)
            parts[gb][(gb, *idx)] = (operator.getitem, (block, *idx), 1)
        parts[gh0][(gh0, *bidx)] = (operator.getitem, (block, *order[0]), 2)
    deps = [x for x in (grad_h, a, h, h0, grad_last) if x is not None]
    blocks = Array(HighLevelGraph.from_collections(block, dsk, dependencies=deps), block,
                   chunks, meta=h._meta)
    a_chunks = tuple(c if n == m else (1,) * len(c)
                     for c, n, m in zip(chunks, a.shape, shape, strict=True))
    grad_a, grad_b, grad_h0 = (
        Array(HighLevelGraph.from_collections(part, parts[part], dependencies=[blocks]),
              part, part_chunks, meta=meta)
        for part, part_chunks, meta in (
            (ga, a_chunks, a._meta), (gb, chunks, h._meta),
            (gh0, batch_chunks, meta_from_array(h._meta, ndim=len(p.batch)))))
    grad_a = _validate.sum_to(da, grad_a, a_shape)
    if h0_shape is None:
        return grad_a, grad_b, grad_h0
    if h0_real and grad_h0.dtype.kind == "c":
        grad_h0 = grad_h0.real
    return grad_a, grad_b, _validate.sum_to(da, grad_h0, h0_shape)
