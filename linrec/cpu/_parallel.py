"""Parallel Numba kernels over canonical 3-D views ``(R, T, C)``.

Every array argument is a strided view with the time axis in the middle: R and C are the
two batch dimensions the launcher kept (C the one with the smaller stride), T is time in
iteration order (the launcher flips the views for a reverse scan, so the kernels only run
forwards). Broadcast operands have stride 0 and are never materialised. Batch-only
operands (h0, final states, their gradients) are ``(R, C)`` views. A chain is one
``(r, c)`` pair: one independent recurrence of length T.

Three schedules, each with a forward kernel and a fused backward kernel:

- rows: chains in parallel, four interleaved per task (``linrec.cpu._lanes``), three in
  the backward; for data whose time axis is the fastest.
- channels: blocks of C in parallel, the inner loop across contiguous channels (it
  vectorises); for data whose time axis is not the fastest.
- chunked: reduce-then-scan over time chunks, for few long chains. Every chunk is
  reduced to its affine pair (A, B); a short sequential pass turns the pairs into each
  chunk's carry-in; each chunk is rescanned from its carry-in. Four chunks of a chain
  are interleaved per task (backward: six in the reduction, three in the rescan). The
  carry pass applies a pair as ``A * carry + B`` except where that reassociation can
  make inf or NaN the loop does not (``_apply_pair``): a zero carry gives ``B``
  exactly, even when ``A`` overflowed to inf; a finite carry whose image is not finite
  (an overflow of ``A``, ``B`` or their sum) is recomputed by replaying the chunk from
  it, as the sequential loop would. Both directions run the phases group by group in
  one parallel region: each task reduces a group of short chunks, takes the state (or,
  backward, the carry) entering it from the previous group's task, carries it
  through, publishes the state leaving the group and rescans it while it is in cache.
  The forward (``_forward_groups``) moves 12 bytes per float32 element; the backward
  (``_backward_groups``), whose groups run from the end of time, 20 (reads grad_h, a
  and h, writes grad_a and grad_b), where the three phases one after another moved 28.

Backward kernels compute, from t = T-1 down to 0, ``g = grad_h[t] + carry``,
``grad_b[t] = g``, ``grad_a[t] = g * conj(h[t-1])``, ``carry = conj(a[t]) * g``, with
``h[-1] = h0`` and the first carry ``grad_last``; the last carry is ``grad_h0``. When
``grad_a`` has a time extent of 1 (``a`` constant in time) it receives the sum over t,
accumulated in float64 (complex128) by every schedule and rounded once.
Positions 1..T-1 run in the lanes (``h[t-1]`` is then a shifted view); step 0, which
reads ``h0``, is finished per chain by ``_first_step``. The rows and chunked backward
kernels interleave three lanes, not four (``_lanes.adjoint_lanes`` says why; the
chunked reduction, which stores nothing, six). All
backward kernels walk memory downwards (time from the end; within a time step of
``channels``, the channels from the highest), take the two flags (``add``;
``accumulate``: ``grad_a`` summed) as constants of inlined loops, so that no loop tests
them per element, and index with unsigned integers, so that Numba emits no
negative-index wraparound (which keeps LLVM from vectorising the channel loop).
"""

import numpy as np
from numba import prange

from linrec._tuning import CHUNK_BYTES, LANES
from linrec.cpu import _atomic, _fpmode, _lanes, _threading
from linrec.cpu._dispatch import call
from linrec.cpu._jit import njit, parallel_njit
from linrec.cpu.kernels import as_grad

_jit = parallel_njit(nogil=True)
_seq = njit(nogil=True)


@_jit
def forward_rows(a, b, h, h0, hlast):
    n, T = h.shape
    for g in prange((n + LANES - 1) // LANES):
        mode = _fpmode.flush_to_zero()
        j = g * LANES
        if j + LANES <= n:
            s = _lanes.scan_lanes((a[j], a[j + 1], a[j + 2], a[j + 3]),
                                  (b[j], b[j + 1], b[j + 2], b[j + 3]),
                                  (h[j], h[j + 1], h[j + 2], h[j + 3]),
                                  (h0[j], h0[j + 1], h0[j + 2], h0[j + 3]))
            hlast[j], hlast[j + 1], hlast[j + 2], hlast[j + 3] = s
        else:
            for i in range(j, n):
                hlast[i] = _lanes.scan_one(a[i], b[i], h[i], h0[i])
        _fpmode.restore_mode(mode)


@_jit
def forward_channels(a, b, h, h0, hlast, block):
    R, T, C = h.shape
    nblocks = (C + block - 1) // block
    for task in prange(R * nblocks):
        mode = _fpmode.flush_to_zero()
        r = task // nblocks
        c0 = (task % nblocks) * block
        c1 = min(C, c0 + block)
        state = h0[r, c0:c1].copy()
        for t in range(T):
            at, bt, ht = a[r, t, c0:c1], b[r, t, c0:c1], h[r, t, c0:c1]
            for c in range(c1 - c0):
                value = at[c] * state[c] + bt[c]
                state[c] = value
                ht[c] = value
        hlast[r, c0:c1] = state
        _fpmode.restore_mode(mode)


@_seq
def _chunk_span(k, length, start, stop):
    """Time range of chunk k of a range [start, stop) cut into chunks of ``length``."""
    t0 = min(stop, start + k * length)
    return t0, min(stop, t0 + length)


@_seq
def _full_group(g, width, length, start, stop):
    """Whether the ``width`` chunks of group g all have ``length`` steps."""
    return start + (width * g + width) * length <= stop


@_seq
def _finite(x):
    return np.isfinite(x.real) and np.isfinite(x.imag)


@_seq
def _apply_pair(A, B, state):
    """The state after a chunk with affine pair ``(A, B)``, entered with ``state``, and
    whether the chunk must be replayed from ``state`` instead.

    ``A * state + B`` reassociates the sequential loop, which matters only where it leaves
    the finite numbers: a zero ``state`` gives ``B``, the chunk's scan from zero, exactly
    (``A`` may have overflowed to inf: inf * 0 would be NaN); a finite ``state`` whose
    image is inf or NaN asks for the replay (``A`` or ``B`` overflowed on the way, or their
    sum did, while the loop may stay finite). An inf or NaN ``state`` is inf or NaN in the
    loop too, and stays so (no replay).
    """
    if state == 0:
        return B, False
    result = A * state + B
    return result, _finite(state) and not _finite(result)


@_seq
def _power(x, n):
    """``x ** n`` for an integer n >= 0 by repeated squaring (real or complex x)."""
    result = x * 0 + 1
    while n > 0:
        if n & 1:
            result = result * x
        x = x * x
        n >>= 1
    return result


@_seq
def _chunk_views(x, j, t0, length, width):
    """The ``width`` (4 or 8) consecutive chunks of chain j from t0, as a tuple of
    views; with width 4, the last four are repeats of the first four (unused)."""
    v0, v1 = x[j, t0:t0 + length], x[j, t0 + length:t0 + 2 * length]
    v2, v3 = x[j, t0 + 2 * length:t0 + 3 * length], x[j, t0 + 3 * length:t0 + 4 * length]
    if width == 4:
        return v0, v1, v2, v3, v0, v1, v2, v3
    return (v0, v1, v2, v3, x[j, t0 + 4 * length:t0 + 5 * length],
            x[j, t0 + 5 * length:t0 + 6 * length], x[j, t0 + 6 * length:t0 + 7 * length],
            x[j, t0 + 7 * length:t0 + 8 * length])


@_seq
def _group_pairs(a, b, j, g, width, length, pair_a, pair_b):
    """The affine pairs (prod a, scan of b from 0) of the ``width`` chunks of group g of
    chain j. Width 8 is for an ``a`` constant in time: the scans of b run in eight lanes
    and every full chunk's product is ``a ** length``."""
    T = b.shape[1]
    chunks = pair_a.shape[0]
    zero = pair_b.dtype.type(0)
    k0 = width * g
    if _full_group(g, width, length, 0, T):
        t0 = k0 * length
        if width == 8:
            s = _lanes.reduce_const_lanes(a[j, 0], _chunk_views(b, j, t0, length, 8),
                                          zero)
            product = _power(a[j, 0], length)
            for i in range(8):
                pair_a[k0 + i, j] = product
                pair_b[k0 + i, j] = s[i]
        else:
            av, bv = _chunk_views(a, j, t0, length, 4), _chunk_views(b, j, t0, length, 4)
            p, s = _lanes.reduce_lanes(av[:4], bv[:4], zero)
            for i in range(4):
                pair_a[k0 + i, j] = p[i]
                pair_b[k0 + i, j] = s[i]
    else:
        for k in range(k0, min(chunks, k0 + width)):
            t0, t1 = _chunk_span(k, length, 0, T)
            pair_a[k, j], pair_b[k, j] = _lanes.reduce_one(a[j, t0:t1], b[j, t0:t1], zero)


@_seq
def _group_carries(a, b, j, g, width, length, pair_a, pair_b, state, carries):
    """``carries[k, j]`` = the state entering chunk k of group g of chain j, which the
    group enters with ``state``; returns the state after the group."""
    T = b.shape[1]
    chunks = pair_a.shape[0]
    for k in range(width * g, min(chunks, width * g + width)):
        carries[k, j] = state
        state, replay = _apply_pair(pair_a[k, j], pair_b[k, j], state)
        if replay:
            t0, t1 = _chunk_span(k, length, 0, T)
            state = _lanes.advance_one(a[j, t0:t1], b[j, t0:t1], carries[k, j])
    return state


@_seq
def _group_rescan(a, b, h, j, g, width, length, carries):
    """Rescan the chunks of group g of chain j from their carries (four lanes at a
    time), writing h; returns the last state written."""
    T = h.shape[1]
    chunks = carries.shape[0]
    state = carries[width * g, j]
    if _full_group(g, width, length, 0, T):
        for k in range(width * g, width * g + width, 4):
            t0 = k * length
            av, bv = _chunk_views(a, j, t0, length, 4), _chunk_views(b, j, t0, length, 4)
            state = _lanes.scan_lanes_fused(
                av[:4], bv[:4], _chunk_views(h, j, t0, length, 4)[:4],
                (carries[k, j], carries[k + 1, j], carries[k + 2, j], carries[k + 3, j]))[3]
        return state
    for k in range(width * g, min(chunks, width * g + width)):
        t0, t1 = _chunk_span(k, length, 0, T)
        state = _lanes.scan_one_fused(a[j, t0:t1], b[j, t0:t1], h[j, t0:t1],
                                      carries[k, j])
    return state


@_jit
def _forward_groups(a, b, h, h0, hlast, width, length, pair_a, pair_b, carries, after,
                    ready, counter, workers):
    """Every group of ``width`` chunks in one task, the tasks in order of (chain, group):
    reduce the group to its chunks' pairs, wait for the state after the previous group
    of the chain (``ready``; ``_atomic.wait_until_set`` sleeps until the publishing
    thread wakes it, so that a waiting thread does not take turns from the thread it
    waits for on an oversubscribed machine), carry it through the group, publish the
    state after it, rescan the group (its last state is the chain's final state, equal
    to the last h).
    The group's a, b and h stay in the core's cache from the reduction to the rescan.
    ``workers`` loops claim tasks in order from ``counter``: a task waits only on a
    task claimed before it by a loop that is running it (or has finished it), so no
    schedule of the loops onto threads can deadlock."""
    n, T = h.shape
    chunks = pair_a.shape[0]
    groups = (chunks + width - 1) // width
    for _ in prange(workers):
        mode = _fpmode.flush_to_zero()
        task = _atomic.fetch_add(counter, 0, 1)
        while task < n * groups:
            j, g = task // groups, task % groups
            _group_pairs(a, b, j, g, width, length, pair_a, pair_b)
            if g == 0:
                state = h0[j]
            else:
                _atomic.wait_until_set(ready, task - 1)
                state = after[task - 1]
            state = _group_carries(a, b, j, g, width, length, pair_a, pair_b, state,
                                   carries)
            after[task] = state
            _atomic.store_release(ready, task, 1)
            end = _group_rescan(a, b, h, j, g, width, length, carries)
            if g == groups - 1:
                hlast[j] = end
            task = _atomic.fetch_add(counter, 0, 1)
        _fpmode.restore_mode(mode)


def forward_chunked(a, b, h, h0, hlast, length):
    """Reduce-then-scan over time chunks of at most ``length`` steps (arguments as
    forward_rows), in groups of four chunks (eight when ``a`` is constant in time) that
    fit a core's cache: a chunk holds at most ``CHUNK_BYTES`` of b (half that in groups
    of eight)."""
    n, T = h.shape
    width = 8 if a.strides[1] == 0 else 4
    length = max(1, min(length, CHUNK_BYTES * 4 // (width * h.itemsize)))
    chunks = -(-T // length)
    groups = -(-chunks // width)
    dtype = h.dtype
    pair_a = np.empty((chunks, n), dtype)
    pair_b = np.empty((chunks, n), dtype)
    carries = np.empty((chunks, n), dtype)
    after = np.empty(n * groups, dtype)
    ready = np.zeros(n * groups, np.int64)
    counter = np.zeros(1, np.int64)
    call(_forward_groups, a, b, h, h0, hlast, width, length, pair_a, pair_b, carries,
         after, ready, counter, _threading.num_threads())


@_seq
def _first_step(grad_h, a, h0, grad_a, grad_b, grad_h0, j, carry, total, accumulate,
                add):
    """Step t = 0 of chain j, which reads h0; writes grad_h0 (and the grad_a sum), or
    adds into grad_a and grad_b when ``add``."""
    g = grad_h[j, 0] + carry
    da = g * np.conj(h0[j])
    if accumulate:
        da = total + da
    if add:
        grad_b[j, 0] += as_grad(g, grad_b)
        grad_a[j, 0] += as_grad(da, grad_a)
    else:
        grad_b[j, 0] = as_grad(g, grad_b)
        grad_a[j, 0] = as_grad(da, grad_a)
    grad_h0[j] = np.conj(a[j, 0]) * g


@_seq
def _lane_views(grad_h, a, h, grad_a, grad_b, j, t0, t1, accumulate):
    """1-D views of chain j over positions [t0, t1) (t0 >= 1) for the adjoint."""
    ga = grad_a[j, 0:1] if accumulate else grad_a[j, t0:t1]
    return grad_h[j, t0:t1], a[j, t0:t1], h[j, t0 - 1:t1 - 1], ga, grad_b[j, t0:t1]


@_jit
def backward_rows(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0, add):
    n, T = h.shape
    accumulate = grad_a.shape[1] != T
    for g in prange((n + 2) // 3):
        mode = _fpmode.flush_to_zero()
        j = 3 * g
        if j + 3 <= n:
            v0 = _lane_views(grad_h, a, h, grad_a, grad_b, j, 1, T, accumulate)
            v1 = _lane_views(grad_h, a, h, grad_a, grad_b, j + 1, 1, T, accumulate)
            v2 = _lane_views(grad_h, a, h, grad_a, grad_b, j + 2, 1, T, accumulate)
            k, z = _lanes.adjoint_lanes(
                (v0[0], v1[0], v2[0]), (v0[1], v1[1], v2[1]), (v0[2], v1[2], v2[2]),
                (v0[3], v1[3], v2[3]), (v0[4], v1[4], v2[4]),
                (glast[j], glast[j + 1], glast[j + 2]), accumulate, add)
            for i in range(3):
                _first_step(grad_h, a, h0, grad_a, grad_b, grad_h0, j + i, k[i], z[i],
                            accumulate, add)
        else:
            for i in range(j, n):
                gh, av, prev, ga, gb = _lane_views(grad_h, a, h, grad_a, grad_b, i, 1, T,
                                                   accumulate)
                k, z = _lanes.adjoint_one(gh, av, prev, ga, gb, glast[i], accumulate, add)
                _first_step(grad_h, a, h0, grad_a, grad_b, grad_h0, i, k, z, accumulate,
                            add)
        _fpmode.restore_mode(mode)


@njit(nogil=True, inline="always")
def _adjoint_channels(grad_h, a, h, grad_a, grad_b, r, c0, c1, carry, total, accumulate,
                      add):
    """Positions T-1 down to 1 of the channels [c0, c1) of row r, one fused loop per time
    step; ``carry`` (entering from the right, left at position 1) and ``total`` are
    updated in place.

    Called with constant ``accumulate`` and ``add``: inlined, the flags fold away and the
    channel loop vectorises (tested inside the loop at run time, they keep it scalar). The
    channel loop runs from the highest channel down, so that the whole backward pass walks
    memory downwards in one stream: walking each time step upwards while the time steps go
    down defeats the hardware prefetcher (measured 1.9x slower, float32).
    """
    T = h.shape[1]
    n = c1 - c0
    for t in range(T - 1, 0, -1):
        ght, at, gbt = grad_h[r, t, c0:c1], a[r, t, c0:c1], grad_b[r, t, c0:c1]
        prev = h[r, t - 1, c0:c1]
        gat = grad_a[r, 0 if accumulate else t, c0:c1]
        for k in range(n):
            c = np.uintp(n - 1 - k)
            g = ght[c] + carry[c]
            da = g * np.conj(prev[c])
            if add:
                gbt[c] += as_grad(g, gbt)
            else:
                gbt[c] = as_grad(g, gbt)
            if accumulate:
                total[c] += da
            elif add:
                gat[c] += as_grad(da, gat)
            else:
                gat[c] = as_grad(da, gat)
            carry[c] = np.conj(at[c]) * g


@_jit
def backward_channels(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0, add, block):
    R, T, C = h.shape
    accumulate = grad_a.shape[1] != T
    nblocks = (C + block - 1) // block
    for task in prange(R * nblocks):
        r = task // nblocks
        c0 = (task % nblocks) * block
        c1 = min(C, c0 + block)
        mode = _fpmode.flush_to_zero()
        carry = glast[r, c0:c1].copy()
        total = np.full(c1 - c0, _lanes.wide_zero(carry))
        if accumulate and add:
            _adjoint_channels(grad_h, a, h, grad_a, grad_b, r, c0, c1, carry, total,
                              True, True)
        elif accumulate:
            _adjoint_channels(grad_h, a, h, grad_a, grad_b, r, c0, c1, carry, total,
                              True, False)
        elif add:
            _adjoint_channels(grad_h, a, h, grad_a, grad_b, r, c0, c1, carry, total,
                              False, True)
        else:
            _adjoint_channels(grad_h, a, h, grad_a, grad_b, r, c0, c1, carry, total,
                              False, False)
        for c in range(c1 - c0):
            _first_step(grad_h[r].T, a[r].T, h0[r], grad_a[r].T, grad_b[r].T, grad_h0[r],
                        c0 + c, carry[c], total[c], accumulate, add)
        _fpmode.restore_mode(mode)


@_seq
def _group_pairs_backward(grad_h, a, j, g, length, pair_a, pair_b):
    """The carry maps (carry_out = A * carry_in + B) of the six chunks of group g of
    chain j, over positions [1, T)."""
    T = grad_h.shape[1]
    chunks = pair_a.shape[0]
    zero = pair_b.dtype.type(0)
    if _full_group(g, 6, length, 1, T):
        t0 = 1 + 6 * g * length
        p, s = _lanes.adjoint_reduce_span_lanes(grad_h[j, t0:t0 + 6 * length],
                                                a[j, t0:t0 + 6 * length], zero)
        for i in range(6):
            pair_a[6 * g + i, j] = p[i]
            pair_b[6 * g + i, j] = s[i]
    else:
        for k in range(6 * g, min(chunks, 6 * g + 6)):
            t0, t1 = _chunk_span(k, length, 1, T)
            pair_a[k, j], pair_b[k, j] = _lanes.adjoint_reduce_one(
                grad_h[j, t0:t1], a[j, t0:t1], zero)


@_seq
def _group_carries_backward(grad_h, a, j, g, length, pair_a, pair_b, state, carries):
    """``carries[k, j]`` = the carry entering chunk k of group g of chain j from the
    right, the group being entered with ``state``; returns the carry leaving the group
    at its first position."""
    T = grad_h.shape[1]
    chunks = pair_a.shape[0]
    for k in range(min(chunks, 6 * g + 6) - 1, 6 * g - 1, -1):
        carries[k, j] = state
        state, replay = _apply_pair(pair_a[k, j], pair_b[k, j], state)
        if replay:
            t0, t1 = _chunk_span(k, length, 1, T)
            state = _lanes.adjoint_advance_one(grad_h[j, t0:t1], a[j, t0:t1],
                                               carries[k, j])
    return state


@_seq
def _group_rescan_backward(grad_h, a, h, grad_a, grad_b, add, j, g, length, carries,
                           totals):
    """The adjoint over the chunks of group g of chain j from their carries, three
    chunks at a time from the end: writes (or adds into, when ``add``) grad_b and
    grad_a, or puts the chunks' sums for grad_a in ``totals`` when ``a`` is constant in
    time."""
    T = h.shape[1]
    accumulate = grad_a.shape[1] != T
    chunks = carries.shape[0]
    if _full_group(g, 6, length, 1, T):
        for k in (6 * g + 3, 6 * g):
            t0 = 1 + k * length
            gh, av, prev, ga, gb = _lane_views(grad_h, a, h, grad_a, grad_b, j, t0,
                                               t0 + 3 * length, accumulate)
            _, z = _lanes.adjoint_span_lanes(
                gh, av, prev, ga, gb, (carries[k, j], carries[k + 1, j], carries[k + 2, j]),
                accumulate, add)
            for i in range(3):
                totals[k + i, j] = z[i]
        return
    for k in range(min(chunks, 6 * g + 6) - 1, 6 * g - 1, -1):
        t0, t1 = _chunk_span(k, length, 1, T)
        gh, av, prev, ga, gb = _lane_views(grad_h, a, h, grad_a, grad_b, j, t0, t1,
                                           accumulate)
        _, totals[k, j] = _lanes.adjoint_one(gh, av, prev, ga, gb, carries[k, j],
                                             accumulate, add)


@_jit
def _backward_groups(grad_h, a, h, glast, grad_a, grad_b, add, length, pair_a, pair_b,
                     carries, totals, first, after, ready, counter, workers):
    """The adjoint over positions [1, T), every group of six chunks in one task, the
    tasks in order of (chain, group counted from the end of time): reduce the group to
    its chunks' carry maps, wait for the carry entering it from the group to its right
    (``ready``), carry it through the group, publish the carry leaving it, rescan the
    group (grad_h and a are still in the core's cache). The carry leaving a chain's first
    group (at position 1) goes to ``first``. Tasks are claimed in order from
    ``counter`` by ``workers`` loops, as in ``_forward_groups``: no deadlock."""
    n, T = h.shape
    chunks = pair_a.shape[0]
    groups = (chunks + 5) // 6
    for _ in prange(workers):
        mode = _fpmode.flush_to_zero()
        task = _atomic.fetch_add(counter, 0, 1)
        while task < n * groups:
            j, g = task // groups, groups - 1 - task % groups
            _group_pairs_backward(grad_h, a, j, g, length, pair_a, pair_b)
            if g == groups - 1:
                state = glast[j]
            else:
                _atomic.wait_until_set(ready, task - 1)
                state = after[task - 1]
            state = _group_carries_backward(grad_h, a, j, g, length, pair_a, pair_b,
                                            state, carries)
            after[task] = state
            _atomic.store_release(ready, task, 1)
            if g == 0:
                first[j] = state
            _group_rescan_backward(grad_h, a, h, grad_a, grad_b, add, j, g, length,
                                   carries, totals)
            task = _atomic.fetch_add(counter, 0, 1)
        _fpmode.restore_mode(mode)


@_jit
def _first_steps(grad_h, a, h0, grad_a, grad_b, grad_h0, add, carry, total):
    n, T = grad_b.shape
    accumulate = grad_a.shape[1] != T
    for j in prange(n):
        mode = _fpmode.flush_to_zero()
        _first_step(grad_h, a, h0, grad_a, grad_b, grad_h0, j, carry[j], total[j],
                    accumulate, add)
        _fpmode.restore_mode(mode)


def backward_chunked(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0, add, length):
    """The backward pass over time chunks of about ``length`` steps (arguments as
    backward_rows), in one parallel region (``_backward_groups``), then each chain's
    first step (``_first_step``: it needs the chain's whole grad_a sum when ``a`` is
    constant in time).

    A group is six chunks: its reduction runs them as six lanes, its rescan as two sets
    of three (``_lanes.adjoint_span_lanes`` and ``adjoint_reduce_span_lanes`` say why),
    so positions [1, T) are cut into six chunks for every four the forward would make of
    them: as many groups, each holding the same bytes of grad_h, a and h as a forward
    group holds of a, b and h (``CHUNK_BYTES``: they stay in a core's cache between the
    reduction and the rescan). The length is rounded down, so that every group of six
    is full (a group with a shorter chunk runs its chunks one by one, at a third of the
    speed or less) and the rest, fewer steps than there are chunks, forms one short
    chunk at the end.
    """
    n, T = h.shape
    length = max(1, min(length, CHUNK_BYTES // h.itemsize))
    chunks = max(1, 6 * -(-(T - 1) // (4 * length)))
    length = max(1, (T - 1) // chunks)
    chunks = -(-(T - 1) // length)
    groups = -(-chunks // 6)
    dtype = grad_h0.dtype
    pair_a = np.empty((chunks, n), dtype)
    pair_b = np.empty((chunks, n), dtype)
    carries = np.empty((chunks, n), dtype)
    totals = np.zeros((chunks, n), np.promote_types(dtype, np.float64))
    first = np.array(glast, dtype)
    after = np.empty(n * groups, dtype)
    ready = np.zeros(n * groups, np.int64)
    counter = np.zeros(1, np.int64)
    call(_backward_groups, grad_h, a, h, glast, grad_a, grad_b, add, length, pair_a,
         pair_b, carries, totals, first, after, ready, counter, _threading.num_threads())
    call(_first_steps, grad_h, a, h0, grad_a, grad_b, grad_h0, add, first,
         totals.sum(axis=0))
