"""The CuPy backend: canonical strided views, the choice of kernel, and kernel launches.

``forward`` and ``backward`` receive the ``linrec._validate.Problem`` and arrays brought
to it by ``linrec._api`` (same number of dimensions, compute dtypes, states never None,
T > 0, a non-empty batch), as CuPy arrays on one device. Every operand is described,
without copying, as a strided ``(R, T, C)`` array (``linrec._layout``); broadcast
operands keep stride 0.

Kernels (``scan.cu``): when time is the faster axis of the output, the tiled kernels (a
warp scans ``32 * items`` steps, warps of a block share a chain through shared memory,
chunks carry state serially). Few long chains, too few to fill the GPU, are scanned in
a single pass over tiles of one block each that find their carry-in by decoupled
look-back, forward and backward. When channels are the faster
axis, one thread per chain walks time (coalesced across channels) if there are enough
chains to fill the GPU; otherwise the operands are copied to a time-contiguous layout
first (an extra pass, counted in the benchmark's times). A reverse scan runs the same
kernels with ``rev = 1``.

The launch logic is written against an array module ``xp`` and a launcher ``run``, so
the tests can drive it with NumPy arrays and their NumPy model of the kernels
(``tests/cuda_model.py``) in place of the GPU.
"""

import numpy as np

from linrec import _layout
from linrec.cuda import _kernels, _plan
from linrec.cuda._strides import element_strides

__all__ = ["forward", "backward", "CHANNEL_THREADS", "CHAIN_THREADS",
           "CHANNEL_CHAINS_PER_SM"]

CHANNEL_THREADS = 128
CHAIN_THREADS = 256
CHANNEL_CHAINS_PER_SM = 256


def _cupy_launcher():
    """``(cupy, run, sms)`` for the current device."""
    from linrec.cuda import _cupy

    cupy = _cupy.require()

    def run(kernel, ta, tb, grid, block, args):
        _kernels.function(kernel, ta, tb)(grid, block, tuple(args))

    return cupy, run, _cupy.sm_count(cupy)


def forward(problem, a, b, h0, out):
    """``h`` and the final state; see ``linrec.scan`` for the contract.

    ``problem.method`` is ignored: the kernel follows from the layout. Runs on ``b``'s
    device. Inputs not aligned to their item size are copied first. Raises ImportError /
    RuntimeError (with the install command) when CuPy or a GPU is missing, ValueError
    for an ``out`` not aligned to its item size.
    """
    from linrec.cuda import _cupy

    with _cupy.require().cuda.Device(b.device.id):
        xp, run, sms = _cupy_launcher()
        if out is not None and not _is_aligned(out):
            raise ValueError(
                f"out starts at address {out.data.ptr:#x}, not a multiple of its "
                f"{out.itemsize}-byte elements, which CUDA needs (a view at a byte offset, "
                f"e.g. of a float buffer as complex); pass an aligned array such as "
                f"cupy.empty_like(out)"
            )
        a, b, h0 = (_aligned(x) for x in (a, b, h0))
        return forward_with(xp, run, sms, problem, a, b, h0, out)


def backward(problem, grad_h, a, h, h0, grad_last, *, grad_a=None, grad_b=None,
             add=False):
    """``(grad_a, grad_b, grad_h0)``; see ``linrec.scan_vjp`` for the contract.

    ``grad_a`` has ``h``'s shape with ``a``'s extent along ``axis`` (1 when ``a`` is
    constant in time: summed there), not yet reduced over broadcast batch axes. Runs on
    ``h``'s device; inputs not aligned to their item size are copied first. ``grad_a``
    and ``grad_b``, when given, receive the results (added to them when ``add``): the
    kernels write fresh arrays, which are then copied or added there.
    """
    from linrec.cuda import _cupy

    with _cupy.require().cuda.Device(h.device.id):
        xp, run, sms = _cupy_launcher()
        grad_h, a, h, h0, grad_last = (_aligned(x) for x in (grad_h, a, h, h0, grad_last))
        return backward_with(xp, run, sms, problem, grad_h, a, h, h0, grad_last,
                             grad_a=grad_a, grad_b=grad_b, add=add)


def _is_aligned(x):
    """Whether CuPy array ``x`` starts at a multiple of its item size: the alignment CUDA
    needs for every element type here (complex64 is 8-byte, complex128 16-byte aligned)."""
    return x.data.ptr % x.itemsize == 0


def _aligned(x):
    """``x`` (a CuPy array), or an aligned copy of it (see :func:`_is_aligned`); only a
    view at a byte offset, such as a float buffer viewed as complex, is copied."""
    return x if _is_aligned(x) else x.copy()


def _time_is_inner(view):
    """Whether the tiled kernels suit this output view (time the faster-moving axis)."""
    R, T, C = view.shape
    _, st, sc = element_strides(view)
    return C == 1 or T == 1 or abs(st) <= abs(sc)


def _copy_to_time_last(x, axis, shape, sms):
    """Whether to scan a time-contiguous copy instead of ``x`` (b or h, full-shaped).

    True when time is not ``x``'s fastest axis and the chains are too few for the
    one-thread-per-chain kernel to keep the memory system busy; the tiled kernels on a
    copy then win despite the extra pass.
    """
    batch = [d for d in range(len(shape)) if d != axis and shape[d] > 1]
    if shape[axis] == 1 or not batch or tuple(x.shape) != tuple(shape):
        return False
    chains = int(np.prod([shape[d] for d in batch]))
    inner = min(abs(x.strides[d]) for d in batch)
    return abs(x.strides[axis]) > inner and chains < CHANNEL_CHAINS_PER_SM * sms


def _time_last(xp, x, axis):
    return xp.ascontiguousarray(xp.moveaxis(x, axis, -1))


def _tiled_grid(plan, nseg):
    return (plan.chain_blocks, nseg), (_plan.WARPS * _plan.WARP,)


def _chains_grid(chains, threads):
    return (-(-chains // threads),), (threads,)


def _time_last_problem(problem):
    """``problem`` with its axis moved last (the states keep their shape)."""
    return problem._replace(shape=problem.batch + (problem.T,),
                            axis=len(problem.shape) - 1)


def forward_with(xp, run, sms, problem, a, b, h0, out):
    """:func:`forward` on array module ``xp`` with launcher ``run`` and ``sms`` SMs."""
    shape, axis, T = problem.shape, problem.axis, problem.T
    if _copy_to_time_last(b, axis, shape, sms):
        h, h_last = forward_with(xp, run, sms, _time_last_problem(problem),
                                 _time_last(xp, a, axis), _time_last(xp, b, axis), h0, None)
        h = xp.moveaxis(h, -1, axis)
        if out is None:
            return h, h_last
        out[...] = h
        return out, h_last
    ta, tb = a.dtype, b.dtype
    h = _layout.empty_like_layout(xp, b, shape, tb) if out is None else out
    h_last = xp.empty(problem.batch, tb)
    all_views = _layout.views(xp, shape, axis, [h, a, b, h0, h_last], [T, T, T, 1, 1])
    rev = 1 if problem.reverse else 0
    for idx in _layout.outer_indices(all_views[0]):
        hv, av, bv, h0v, lv = (v[idx] for v in all_views)
        R, _, C = hv.shape
        head = dict(a=av, b=bv, h0=h0v, h=hv, last=lv, R=R, T=T, C=C, rev=rev)
        if not _time_is_inner(hv):
            grid, block = _chains_grid(R * C, CHANNEL_THREADS)
            run("forward_channels", ta, tb, grid, block,
                _kernels.arguments("forward_channels", **head))
            continue
        plan = _plan.tiles(T, R * C, tb.itemsize, sms)
        if plan.nseg > 1:
            _look_back(xp, run, ta, tb, head, R * C)
            continue
        grid, block = _tiled_grid(plan, 1)
        run("forward_tiles", ta, tb, grid, block,
            _kernels.arguments("forward_tiles", **head, group_warps=plan.group_warps,
                               seg_len=plan.seg_len))
    return h, h_last


def _single_pass_buffers(xp, ta, tb, tiles):
    """The ``status``, ``agg_a``, ``agg_b`` and ``inc`` arrays of a look-back kernel over
    ``tiles`` tiles: the ticket counter and status flags zeroed, the published pairs and
    states fresh."""
    return dict(status=xp.zeros(tiles + 1, np.int32), agg_a=xp.empty(tiles, ta),
                agg_b=xp.empty(tiles, tb), inc=xp.empty(tiles, tb))


def _look_back(xp, run, ta, tb, head, chains):
    """The single-pass forward scan (``forward_lookback``), one block per tile."""
    tiles = chains * -(-head["T"] // _plan.tile_steps(tb.itemsize))
    run("forward_lookback", ta, tb, (tiles,), (_plan.WARPS * _plan.WARP,),
        _kernels.arguments("forward_lookback", **head,
                           **_single_pass_buffers(xp, ta, tb, tiles)))


def backward_with(xp, run, sms, problem, grad_h, a, h, h0, grad_last, *, grad_a=None,
                  grad_b=None, add=False):
    """:func:`backward` on array module ``xp`` with launcher ``run`` and ``sms`` SMs."""
    ga, gb, gh0 = _fresh_gradients(xp, run, sms, problem, grad_h, a, h, h0, grad_last)
    return _layout.write_into(grad_a, ga, add), _layout.write_into(grad_b, gb, add), gh0


def _fresh_gradients(xp, run, sms, problem, grad_h, a, h, h0, grad_last):
    """``(grad_a, grad_b, grad_h0)`` of :func:`backward_with` in new arrays."""
    shape, axis, T = problem.shape, problem.axis, problem.T
    if _copy_to_time_last(h, axis, shape, sms):
        moved = [_time_last(xp, x, axis) for x in (grad_h, a, h)]
        grads = _fresh_gradients(xp, run, sms, _time_last_problem(problem), *moved, h0,
                                 grad_last)
        return xp.moveaxis(grads[0], -1, axis), xp.moveaxis(grads[1], -1, axis), grads[2]
    ta, tb = a.dtype, h.dtype
    grad_b = _layout.empty_like_layout(xp, h, shape, tb)
    ga_shape = shape[:axis] + (a.shape[axis],) + shape[axis + 1:]
    grad_a = _layout.empty_like_layout(xp, h, ga_shape, ta)
    grad_h0 = xp.empty(problem.batch, tb)
    all_views = _layout.views(
        xp, shape, axis, [grad_b, grad_h, a, h, grad_a, h0, grad_last, grad_h0],
        [T, T, T, T, a.shape[axis], 1, 1, 1])
    rev = 0 if problem.reverse else 1
    accumulate = 1 if a.shape[axis] != T else 0
    for idx in _layout.outer_indices(all_views[0]):
        gbv, ghv, av, hv, gav, h0v, glv, gh0v = (v[idx] for v in all_views)
        R, _, C = gbv.shape
        head = dict(gh=ghv, a=av, h=hv, h0=h0v, glast=glv, gb=gbv, gh0=gh0v, R=R, T=T, C=C,
                    rev=rev, accumulate=accumulate)
        if not _time_is_inner(gbv):
            grid, block = _chains_grid(R * C, CHANNEL_THREADS)
            run("backward_channels", ta, tb, grid, block,
                _kernels.arguments("backward_channels", **head, ga=gav))
            continue
        plan = _plan.tiles(T, R * C, tb.itemsize, sms)
        if plan.nseg == 1:
            grid, block = _tiled_grid(plan, 1)
            run("backward_tiles", ta, tb, grid, block,
                _kernels.arguments("backward_tiles", **head, ga=gav,
                                   group_warps=plan.group_warps, seg_len=plan.seg_len))
            continue
        per_chain = -(-T // _plan.tile_steps(tb.itemsize))
        tiles = R * C * per_chain
        ga_args = dict(ga=gav, ga_seg=0)
        if accumulate:
            partial = xp.empty((per_chain, R * C), ta)
            ga_args = dict(ga=(partial, (C, 0, 1)), ga_seg=R * C)
        run("backward_lookback", ta, tb, (tiles,), (_plan.WARPS * _plan.WARP,),
            _kernels.arguments("backward_lookback", **head, **ga_args,
                               **_single_pass_buffers(xp, ta, tb, tiles)))
        if accumulate:
            grid, block = _chains_grid(R * C, CHAIN_THREADS)
            run("sum_segments", ta, tb, grid, block,
                _kernels.arguments("sum_segments", partial=partial, out=gav, R=R, C=C,
                                   nseg=per_chain))
    return grad_a, grad_b, grad_h0
