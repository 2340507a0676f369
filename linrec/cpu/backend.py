"""The NumPy backend: canonical 3-D views, the choice of schedule, and kernel launches.

``forward`` and ``backward`` receive the ``linrec._validate.Problem`` and arrays brought
to it by ``linrec._api`` (same number of dimensions, compute dtypes, states never None,
T > 0, a non-empty batch). Here every operand is re-described, without copying, as a
strided view of shape ``(*outer, R, T, C)``: batch dimensions that are contiguous in every
operand are merged, the two innermost become R and C, the rest (rare) are looped over in
Python. Broadcast
operands keep stride 0. A reverse scan is a forward scan over views flipped in time.

The schedules live in ``SCHEDULES``: a name (what ``method=`` takes) and the functions
that launch its kernels (``linrec.cpu._parallel``) on one ``(R, T, C)`` problem. Adding a
schedule is one entry there plus its kernels; ``choose_method`` picks one for "auto".

Problems of at most ``SMALL_MAX`` elements with method "auto" and a common layout go
first to the small-problem path (``linrec.cpu._small``: one sequential kernel, none of
the above); other problems of at most ``SERIAL_MAX`` elements run on one thread. Which
Numba threading layer runs the parallel kernels (fork-safe: tbb when Numba can load it,
else workqueue, never GNU OpenMP unless you choose it) and when launches take a
process-wide lock (under workqueue only) is decided in ``linrec.cpu._threading``;
either way ``linrec.scan`` is safe to call from many Python threads and from
``multiprocessing`` children.
"""

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from linrec import _layout
from linrec._tuning import (
    CHANNEL_BLOCK,
    CHANNEL_BYTES,
    CHANNELS_MIN,
    CHUNK_MIN,
    SERIAL_MAX,
)

__all__ = ["forward", "backward", "output", "choose_method", "SCHEDULES", "Schedule"]


def _views(shape, axis, operands, time_extent, writeable, reverse):
    """The shared ``(*outer, R, T, C)`` views (``linrec._layout``), inputs read-only,
    flipped in time for a reverse scan."""
    views = _layout.views(np, shape, axis, operands, time_extent, writeable)
    if reverse:
        views = [v[..., ::-1, :] if v.shape[-2] > 1 else v for v in views]
    return views


def _batch_views(views):
    """``(*outer, R, C)`` views of batch-only operands (their time extent is 1)."""
    return [v[..., 0, :] for v in views]


def choose_method(R, T, C, time_stride, channel_stride, threads):
    """The schedule "auto" picks for a ``(R, T, C)`` problem (strides in bytes)."""
    if R * C < 4 * threads and T >= 2 * CHUNK_MIN:
        return "chunked"
    if C >= CHANNELS_MIN and abs(channel_stride) <= abs(time_stride):
        return "channels"
    return "rows"


def _chunk_length(T, threads):
    chunks = max(4 * threads, 1)
    return max(CHUNK_MIN, -(-T // chunks))


def _channel_block(R, C, threads, itemsize):
    """Channels per task: whole rows, unless there are fewer rows than threads; then
    split the channels, but never below ``CHANNEL_BYTES`` per row segment (shorter
    segments defeat the hardware prefetcher: one thread streaming whole rows is faster
    than two threads streaming halves)."""
    blocks = min(-(-threads // R), max(1, C * itemsize // CHANNEL_BYTES))
    block = -(-C // blocks)
    return -(-block // CHANNEL_BLOCK) * CHANNEL_BLOCK if blocks > 1 else C


def _launch(elements):
    """Run on the calling thread when there are at most ``SERIAL_MAX`` elements, where
    waking other threads would cost more than it saves: the kernels' one-thread twins
    run, and nothing goes through the threading layer."""
    from linrec.cpu import _dispatch

    return _dispatch.one_thread() if elements <= SERIAL_MAX else contextlib.nullcontext()


def _as_chains(views, batch_views):
    """Split ``(R, T, C)`` / ``(R, C)`` views into lists of ``(n, T)`` / ``(n,)`` chain
    views for the rows and chunked kernels (one list item per call)."""
    R, _, C = views[0].shape
    if C == 1:
        return [([v[:, :, 0] for v in views], [v[:, 0] for v in batch_views])]
    return [([v[r].T for v in views], [v[r] for v in batch_views]) for r in range(R)]


def _rows_forward(a, b, h, h0, h_last, threads):
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    for (a2, b2, h2), (h0_1, last_1) in _as_chains([a, b, h], [h0, h_last]):
        call(_parallel.forward_rows, a2, b2, h2, h0_1, last_1)


def _rows_backward(grad_h, a, h, h0, grad_last, grad_a, grad_b, grad_h0, add, threads):
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    for (gh2, a2, h2, ga2, gb2), (h0_1, gl_1, gh0_1) in _as_chains(
            [grad_h, a, h, grad_a, grad_b], [h0, grad_last, grad_h0]):
        call(_parallel.backward_rows, gh2, a2, h2, h0_1, gl_1, ga2, gb2, gh0_1, add)


def _channels_forward(a, b, h, h0, h_last, threads):
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    R, _, C = h.shape
    call(_parallel.forward_channels, a, b, h, h0, h_last,
         _channel_block(R, C, threads, h.itemsize))


def _channels_backward(grad_h, a, h, h0, grad_last, grad_a, grad_b, grad_h0, add,
                       threads):
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    R, _, C = h.shape
    call(_parallel.backward_channels, grad_h, a, h, h0, grad_last, grad_a, grad_b,
         grad_h0, add, _channel_block(R, C, threads, h.itemsize))


def _chunked_forward(a, b, h, h0, h_last, threads):
    from linrec.cpu import _parallel

    length = _chunk_length(h.shape[1], threads)
    for (a2, b2, h2), (h0_1, last_1) in _as_chains([a, b, h], [h0, h_last]):
        _parallel.forward_chunked(a2, b2, h2, h0_1, last_1, length)


def _chunked_backward(grad_h, a, h, h0, grad_last, grad_a, grad_b, grad_h0, add,
                      threads):
    from linrec.cpu import _parallel

    length = _chunk_length(h.shape[1], threads)
    for (gh2, a2, h2, ga2, gb2), (h0_1, gl_1, gh0_1) in _as_chains(
            [grad_h, a, h, grad_a, grad_b], [h0, grad_last, grad_h0]):
        _parallel.backward_chunked(gh2, a2, h2, h0_1, gl_1, ga2, gb2, gh0_1, add,
                                   length)


class Schedule(NamedTuple):
    """How one schedule runs a ``(R, T, C)`` problem (one outer index of the views).

    ``forward(a, b, h, h0, h_last, threads)`` and ``backward(grad_h, a, h, h0,
    grad_last, grad_a, grad_b, grad_h0, add, threads)`` take ``(R, T, C)`` views of the
    sequences and ``(R, C)`` views of the states, already flipped for a reverse scan;
    ``add`` makes the backward add into ``grad_a`` and ``grad_b`` instead of writing.
    """

    forward: Callable
    backward: Callable


SCHEDULES = {
    "rows": Schedule(_rows_forward, _rows_backward),
    "channels": Schedule(_channels_forward, _channels_backward),
    "chunked": Schedule(_chunked_forward, _chunked_backward),
}


def _schedule(problem, view, threads):
    """The :class:`Schedule` asked for, or the one "auto" picks for ``view`` (R, T, C)."""
    if problem.method != "auto":
        return SCHEDULES[problem.method]
    R, T, C = view.shape[-3:]
    return SCHEDULES[choose_method(R, T, C, view.strides[-2], view.strides[-1], threads)]


_small = None


def _small_path():
    """``linrec.cpu._small``, imported on first use (it imports Numba) and then kept:
    every call asks, and an import statement costs more than the small kernel's
    dispatch."""
    global _small
    if _small is None:
        from linrec.cpu import _small as module

        _small = module
    return _small


def forward(problem, a, b, h0, out):
    """``h`` and the final state; see ``linrec.scan`` for the contract.

    ``problem`` is the ``linrec._validate.Problem``; ``h0`` an array broadcasting to its
    batch shape (zeros when the caller gave none); ``out`` an array of ``h``'s shape and
    dtype or None.
    """
    found = _small_path().forward(problem, a, b, h0, out)
    if found is not None:
        return found
    from linrec.cpu import _threading

    p = problem
    h = _layout.empty_like_layout(np, b, p.shape, p.dtype) if out is None else out
    h_last = np.empty(p.batch, p.dtype)
    views = _views(p.shape, p.axis, [h, a, b, h0, h_last],
                   [p.T, p.T, p.T, 1, 1], [True, False, False, False, True], p.reverse)
    hv, av, bv = views[:3]
    h0v, lastv = _batch_views(views[3:])
    threads = _threading.num_threads()
    schedule = _schedule(p, hv, threads)
    with _launch(h.size):
        for idx in _layout.outer_indices(hv):
            schedule.forward(av[idx], bv[idx], hv[idx], h0v[idx], lastv[idx], threads)
    return h, h_last


def output(given, like, shape, dtype, add):
    """``given``, or a fresh array in ``like``'s layout (zeros when the kernels add)."""
    if given is not None:
        return given
    if add:
        return np.zeros(shape, dtype)
    return _layout.empty_like_layout(np, like, shape, dtype)


def backward(problem, grad_h, a, h, h0, grad_last, *, grad_a=None, grad_b=None,
             add=False):
    """``(grad_a, grad_b, grad_h0)``; see ``linrec.scan_vjp`` for the contract.

    ``h0`` and ``grad_last`` broadcast to the batch shape (zeros when the caller gave
    none). ``grad_a`` has ``h``'s shape with ``a``'s extent along the axis (1 when ``a``
    is constant in time: summed there), not yet reduced over broadcast batch axes.
    ``grad_a`` and ``grad_b``, when given, are arrays of those shapes and dtypes that the
    kernels write into (add into when ``add``); fresh ones are allocated otherwise.
    """
    p = problem
    found = _small_path().backward(p, grad_h, a, h, h0, grad_last, grad_a, grad_b, add)
    if found is not None:
        return found
    from linrec.cpu import _threading

    ga_shape = p.shape[:p.axis] + (a.shape[p.axis],) + p.shape[p.axis + 1:]
    grad_b = output(grad_b, h, p.shape, p.dtype, add)
    grad_a = output(grad_a, h, ga_shape, a.dtype, add)
    grad_h0 = np.empty(p.batch, p.dtype)
    views = _views(p.shape, p.axis, [grad_b, grad_h, a, h, grad_a, h0, grad_last, grad_h0],
                   [p.T, p.T, p.T, p.T, a.shape[p.axis], 1, 1, 1],
                   [True, False, False, False, True, False, False, True], p.reverse)
    gbv, ghv, av, hv, gav = views[:5]
    h0v, glv, gh0v = _batch_views(views[5:])
    threads = _threading.num_threads()
    schedule = _schedule(p, gbv, threads)
    with _launch(h.size):
        for idx in _layout.outer_indices(gbv):
            schedule.backward(ghv[idx], av[idx], hv[idx], h0v[idx], glv[idx], gav[idx],
                              gbv[idx], gh0v[idx], add, threads)
    return grad_a, grad_b, grad_h0
