"""The NumPy backend: canonical 3-D views, the choice of schedule, and kernel launches.

``forward`` and ``backward`` receive arrays already checked by ``linrec._api`` (same
number of dimensions, compute dtypes, a non-negative axis, T > 0, a non-empty batch).
Here every operand is re-described, without copying, as a strided view of shape
``(*outer, R, T, C)``: batch dimensions that are contiguous in every operand are merged,
the two innermost become R and C, the rest (rare) are looped over in Python. Broadcast
operands keep stride 0. A reverse scan is a forward scan over views flipped in time.

Problems of at most ``SERIAL_MAX`` elements run on one thread. Which Numba threading
layer runs the parallel kernels (fork-safe: tbb when Numba can load it, else workqueue,
never GNU OpenMP unless you choose it) and when launches take a process-wide lock (under
workqueue only) is decided in ``linrec.cpu._threading``; either way ``linrec.scan`` is
safe to call from many Python threads and from ``multiprocessing`` children.
"""

import contextlib

import numpy as np

from linrec import _layout
from linrec._tuning import (
    CHANNEL_BLOCK,
    CHANNEL_BYTES,
    CHANNELS_MIN,
    CHUNK_MIN,
    SERIAL_MAX,
)
from linrec.cpu import _threading

__all__ = ["forward", "backward", "choose_method"]


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


@contextlib.contextmanager
def _launch(elements):
    """Run on one thread when there are at most ``SERIAL_MAX`` elements, where waking the
    other threads would cost more than it saves (Numba's thread count is per Python
    thread, so this does not affect calls in other threads)."""
    import numba

    if elements > SERIAL_MAX:
        yield
        return
    threads = _threading.num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def _as_chains(views, batch_views):
    """Split ``(R, T, C)`` / ``(R, C)`` views into lists of ``(n, T)`` / ``(n,)`` chain
    views for the rows and chunked kernels (one list item per call)."""
    R, _, C = views[0].shape
    if C == 1:
        return [([v[:, :, 0] for v in views], [v[:, 0] for v in batch_views])]
    return [([v[r].T for v in views], [v[r] for v in batch_views]) for r in range(R)]


def forward(a, b, h0, out, *, axis, reverse, method):
    """``h`` and the final state; see ``linrec.scan`` for the contract."""
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    shape = np.broadcast_shapes(a.shape, b.shape)
    T = shape[axis]
    batch = shape[:axis] + shape[axis + 1:]
    dtype = b.dtype
    h = _layout.empty_like_layout(np, b, shape, dtype) if out is None else out
    h_last = np.empty(batch, dtype)
    if h0 is None:
        h0 = np.zeros((1,) * len(batch), dtype)
    views = _views(shape, axis, [h, a, b, h0, h_last],
                   [T, T, T, 1, 1], [True, False, False, False, True], reverse)
    hv, av, bv = views[:3]
    h0v, lastv = _batch_views(views[3:])
    threads = _threading.num_threads()
    R, _, C = hv.shape[-3:]
    chosen = method
    if method == "auto":
        chosen = choose_method(R, T, C, hv.strides[-2], hv.strides[-1], threads)
    with _launch(h.size):
        for idx in _layout.outer_indices(hv):
            if chosen == "channels":
                call(_parallel.forward_channels, av[idx], bv[idx], hv[idx], h0v[idx],
                     lastv[idx], _channel_block(R, C, threads, h.itemsize))
                continue
            for (a2, b2, h2), (h0_1, last_1) in _as_chains(
                    [av[idx], bv[idx], hv[idx]], [h0v[idx], lastv[idx]]):
                if chosen == "rows":
                    call(_parallel.forward_rows, a2, b2, h2, h0_1, last_1)
                else:
                    _parallel.forward_chunked(a2, b2, h2, h0_1, last_1,
                                              _chunk_length(T, threads))
    return h, h_last


def backward(grad_h, a, h, h0, grad_last, *, axis, reverse, method):
    """``(grad_a, grad_b, grad_h0)``; see ``linrec.scan_vjp`` for the contract.

    ``grad_a`` has ``h``'s shape with ``a``'s extent along ``axis`` (1 when ``a`` is
    constant in time: summed there), not yet reduced over broadcast batch axes.
    """
    from linrec.cpu import _parallel
    from linrec.cpu._dispatch import call

    shape = h.shape
    T = shape[axis]
    batch = shape[:axis] + shape[axis + 1:]
    dtype = h.dtype
    grad_b = _layout.empty_like_layout(np, h, shape, dtype)
    ga_shape = shape[:axis] + (a.shape[axis],) + shape[axis + 1:]
    grad_a = _layout.empty_like_layout(np, h, ga_shape, a.dtype)
    grad_h0 = np.empty(batch, dtype)
    if h0 is None:
        h0 = np.zeros((1,) * len(batch), dtype)
    if grad_last is None:
        grad_last = np.zeros((1,) * len(batch), dtype)
    views = _views(shape, axis, [grad_b, grad_h, a, h, grad_a, h0, grad_last, grad_h0],
                   [T, T, T, T, a.shape[axis], 1, 1, 1],
                   [True, False, False, False, True, False, False, True], reverse)
    gbv, ghv, av, hv, gav = views[:5]
    h0v, glv, gh0v = _batch_views(views[5:])
    threads = _threading.num_threads()
    R, _, C = gbv.shape[-3:]
    chosen = method
    if method == "auto":
        chosen = choose_method(R, T, C, gbv.strides[-2], gbv.strides[-1], threads)
    with _launch(h.size):
        for idx in _layout.outer_indices(gbv):
            if chosen == "channels":
                call(_parallel.backward_channels, ghv[idx], av[idx], hv[idx], h0v[idx],
                     glv[idx], gav[idx], gbv[idx], gh0v[idx],
                     _channel_block(R, C, threads, h.itemsize))
                continue
            for (gh2, a2, h2, ga2, gb2), (h0_1, gl_1, gh0_1) in _as_chains(
                    [ghv[idx], av[idx], hv[idx], gav[idx], gbv[idx]],
                    [h0v[idx], glv[idx], gh0v[idx]]):
                args = (gh2, a2, h2, h0_1, gl_1, ga2, gb2, gh0_1)
                if chosen == "rows":
                    call(_parallel.backward_rows, *args)
                else:
                    _parallel.backward_chunked(*args, _chunk_length(T, threads))
    return grad_a, grad_b, grad_h0
