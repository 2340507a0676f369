"""A NumPy model of the CUDA kernels in ``scan.cu``, for checking them without a GPU.

:func:`run` has the signature of the backend's launcher: it takes a kernel name, the
dtypes, the grid, the block and the very argument list the GPU would get (NumPy views as
pointers, element strides, sizes) and executes the kernel's algorithm with the same
blocking: ``32`` lanes per warp, ``WARPS`` warps per block, ``items`` steps per lane, the
striped loads and the padded shared-memory transposes, the Kogge-Stone warp scan with
``shfl_up`` semantics, the per-chunk fold of the group's warp totals, the serial chunk
carry, identity padding past the end of the sequence, and the single-pass look-back of
few long chains. All lanes, warps and
blocks of one ``blockIdx.y`` run at once as array axes ``(block, warp, lane, item)``, in
the kernels' own precision.

The look-back kernel's blocks run in ticket order, as they may on the GPU, but with an
adversarial schedule: when the block with ticket ``k`` looks back, the
:func:`unfinished` tickets before it have published only their aggregate pair, not the
state after them, so the look-back has to fold aggregates across one or more windows of
32 tiles before it reaches an inclusive state (or the chain's start).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from linrec.cuda import _plan

__all__ = ["run"]

W = _plan.WARP


def run(kernel, ta, tb, grid, block, args):
    """Execute ``kernel`` (a name from ``linrec.cuda._kernels.KERNELS``) like the GPU,
    which overflows to inf and makes NaN without a warning."""
    ta, tb = np.dtype(ta), np.dtype(tb)
    with np.errstate(over="ignore", invalid="ignore"):
        _KERNELS[kernel](ta, tb, grid, block, [_plain(x) for x in args])


def _plain(x):
    return int(x) if isinstance(x, np.integer) else x


def _memory(ptr, R, T, C, sr, st, sc):
    """The ``(R, T, C)`` array a kernel addresses as ``ptr[r * sr + t * st + c * sc]``."""
    size = ptr.itemsize
    return as_strided(ptr, (R, T, C), (sr * size, st * size, sc * size),
                      writeable=ptr.flags.writeable)


def _batch_memory(ptr, R, C, sr, sc):
    return _memory(ptr, R, 1, C, sr, 0, sc)[:, 0, :]


def _flat(ptr):
    """A contiguous buffer indexed linearly (pairs, carries, partial sums)."""
    return ptr.reshape(-1)


def _padded(k):
    return k + (k >> 5)


class _Place:
    """The kernel's ``Place`` for every (block, warp) of one ``blockIdx.y``."""

    def __init__(self, grid, group_warps, R, T, C, seg_len, seg):
        warps = _plan.WARPS
        warp = np.arange(warps)
        self.rank = warp % group_warps
        self.first = (warp // group_warps) * group_warps
        chain = np.arange(grid[0])[:, None] * (warps // group_warps) + warp // group_warps
        self.valid = chain < R * C
        self.chain = chain
        self.r = np.where(self.valid, chain // C, 0)
        self.c = np.where(self.valid, chain % C, 0)
        self.begin = seg * seg_len
        self.end = min(T, self.begin + seg_len)
        self.T = T


class _Chunk:
    """Indices of one chunk: step ``tau[b, w, lane, i]`` of striped item i, and its mask."""

    def __init__(self, at, start, items, rev):
        lane = np.arange(W)[:, None]
        item = np.arange(items)[None, :]
        base = start + at.rank * W * items
        tau = base[None, :, None, None] + item * W + lane
        self.inside = at.valid[:, :, None, None] & (tau < at.end)
        self.tau = np.broadcast_to(tau, self.inside.shape)
        self.rev = rev
        self.at = at

    def step(self, offset=0):
        tau = np.minimum(self.tau + offset, self.at.T - 1)
        return self.at.T - 1 - tau if self.rev else tau

    def load(self, memory, fill, offset=0):
        r, c = self.at.r[:, :, None, None], self.at.c[:, :, None, None]
        values = memory[r, self.step(offset), c]
        return np.where(self.inside, values, np.asarray(fill, memory.dtype))

    def store(self, memory, values):
        r = np.broadcast_to(self.at.r[:, :, None, None], values.shape)
        c = np.broadcast_to(self.at.c[:, :, None, None], values.shape)
        m = self.inside
        memory[r[m], self.step()[m], c[m]] = values[m]


def _transpose(values, to_blocked):
    """The shared-memory transpose of ``striped_to_blocked`` / ``blocked_to_striped``."""
    items = values.shape[-1]
    lane = np.arange(W)[:, None]
    item = np.arange(items)[None, :]
    striped = _padded(item * W + lane)
    blocked = _padded(lane * items + item)
    write, read = (striped, blocked) if to_blocked else (blocked, striped)
    buf = np.zeros(values.shape[:-2] + (33 * items,), values.dtype)
    buf[..., write] = values
    return buf[..., read]


def _compose(p, q):
    """First span p, then span q (``compose``): a zero ``p[1]`` gives ``q[1]`` exactly."""
    return q[0] * p[0], np.where(p[1] == 0, q[1], q[0] * p[1] + q[1])


def _apply(p, h):
    """The state after span p entered with state h (``apply``): a zero h gives ``p[1]``."""
    return np.where(h == 0, p[1], p[0] * h + p[1])


def _shfl_up(x, d):
    """``__shfl_up_sync`` along the lane axis (-1): lanes below d keep their own value."""
    return np.concatenate([x[..., :d], x[..., :-d]], axis=-1)


def _thread_fold(a, b, ta, tb):
    """Each lane's pair of its items, step by step as the loop does (``extend``)."""
    p = (np.ones(a.shape[:-1], ta), np.zeros(b.shape[:-1], tb))
    for i in range(a.shape[-1]):
        p = (a[..., i] * p[0], a[..., i] * p[1] + b[..., i])
    return p


def _warp_scan(p):
    """(inclusive, exclusive, total) of the lanes' pairs, as the kernel's shuffles do."""
    lane = np.arange(W)
    for d in (1, 2, 4, 8, 16):
        prev = (_shfl_up(p[0], d), _shfl_up(p[1], d))
        new = _compose(prev, p)
        p = (np.where(lane >= d, new[0], p[0]), np.where(lane >= d, new[1], p[1]))
    ex = (np.where(lane == 0, np.ones((), p[0].dtype), _shfl_up(p[0], 1)),
          np.where(lane == 0, np.zeros((), p[1].dtype), _shfl_up(p[1], 1)))
    total = (p[0][..., W - 1], p[1][..., W - 1])
    return p, ex, total


def _group_carry(at, total, carry, group_warps):
    """``group_carry``: state entering each warp's sub-tile; advances ``carry``."""
    entering = carry.copy()
    for k in range(group_warps):
        entering = np.where(at.rank == k, carry, entering)
        idx = at.first + k
        carry = _apply((total[0][:, idx], total[1][:, idx]), carry)
    return entering, carry


def _chunks(at, group_warps, items):
    return range(at.begin, at.end, group_warps * W * items)


def _forward_tiles(ta, tb, grid, block, args):
    (a, a_sr, a_st, a_sc, b, b_sr, b_st, b_sc, h0, h0_sr, h0_sc, h, h_sr, h_st, h_sc,
     last, last_sr, last_sc, R, T, C, group_warps, seg_len, rev) = args
    items = _plan.items_for(tb.itemsize)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    bm = _memory(b, R, T, C, b_sr, b_st, b_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    lastm = _batch_memory(last, R, C, last_sr, last_sc)
    at = _Place(grid, group_warps, R, T, C, seg_len, 0)
    carry = np.where(at.valid, h0m[at.r, at.c], np.zeros((), tb))
    for begin in _chunks(at, group_warps, items):
        chunk = _Chunk(at, begin, items, rev)
        av = _transpose(chunk.load(am, 1), True)
        bv = _transpose(chunk.load(bm, 0), True)
        own = _thread_fold(av, bv, ta, tb)
        _, before, total = _warp_scan(own)
        entering, carry = _group_carry(at, total, carry, group_warps)
        chunk.store(hm, _transpose(_rescan(av, bv, before, entering[..., None], tb), False))
    m = at.valid & (at.rank == 0)
    lastm[at.r[m], at.c[m]] = carry[m]


def _rescan(av, bv, before, entering, tb):
    """Each lane's items rescanned from the state entering it (``before`` applied to the
    state entering its warp)."""
    s = _apply(before, entering)
    out = np.empty(bv.shape, tb)
    for i in range(av.shape[-1]):
        s = av[..., i] * s + bv[..., i]
        out[..., i] = s
    return out


def unfinished(k):
    """How many tickets just before ``k`` the look-back finds with only an aggregate
    published (a fixed pseudo-random schedule, 0 to 96: up to three windows)."""
    return (k * 7919) % 97


class _Tiles:
    """Every block of a look-back launch at once, in ticket order: ticket ``k`` scans tile
    ``m`` of ``chain`` (``r``, ``c``); ``t[k, warp, lane, item]`` is the memory step of
    each striped item, ``inside`` its mask. Takes the tickets from ``status[0]``."""

    def __init__(self, status, tickets, tb, R, T, C, rev):
        items = _plan.items_for(tb.itemsize)
        self.chains, self.tile, self.T = R * C, _plan.tile_steps(tb.itemsize), T
        flags = _flat(status)
        self.k = flags[0] + np.arange(tickets)
        flags[0] += tickets
        self.m, self.chain = self.k // self.chains, self.k % self.chains
        self.r, self.c = self.chain // C, self.chain % C
        tau = (self.m[:, None, None, None] * self.tile
               + np.arange(_plan.WARPS)[:, None, None] * W * items
               + np.arange(W)[:, None] + np.arange(items) * W)
        self.rev, self.tau = rev, tau
        self.inside = tau < T
        self.past_end = tau + 1 >= T
        self.t = self.step()
        shape = self.t.shape
        self.rr = np.broadcast_to(self.r[:, None, None, None], shape)
        self.cc = np.broadcast_to(self.c[:, None, None, None], shape)

    def step(self, offset=0):
        """Memory step of every item's iteration step plus ``offset`` (clamped)."""
        tau = np.minimum(self.tau + offset, self.T - 1)
        return self.T - 1 - tau if self.rev else tau

    def load(self, memory, fill, offset=0):
        values = memory[self.rr, self.step(offset), self.cc]
        return np.where(self.inside, values, np.asarray(fill, memory.dtype))

    def store(self, memory, values):
        m = self.inside
        memory[self.rr[m], self.t[m], self.cc[m]] = values[m]


def _single_pass(tiles, total, starts, status, agg_a, agg_b, inc, ta, tb):
    """The block-level part of a look-back kernel from each warp's total pair:
    ``(state entering each warp [k, warp], state after each tile [k])``. The look-backs
    run in ticket order under the :func:`unfinished` schedule."""
    n = len(tiles.k)
    before_warp = [np.empty((n, _plan.WARPS), ta), np.empty((n, _plan.WARPS), tb)]
    whole = (np.ones(n, ta), np.zeros(n, tb))
    for w in range(_plan.WARPS):
        before_warp[0][:, w], before_warp[1][:, w] = whole
        whole = _compose(whole, (total[0][:, w], total[1][:, w]))
    _flat(agg_a)[tiles.k], _flat(agg_b)[tiles.k] = whole
    entering = np.empty(n, tb)
    for i in range(n):
        entering[i] = _look_back(tiles.k[i], tiles.m[i], tiles.chain[i], tiles.chains,
                                 starts[i], agg_a, agg_b, inc, ta, tb)
        _flat(inc)[tiles.k[i]] = _apply((whole[0][i], whole[1][i]), entering[i])
        _flat(status)[1 + tiles.k[i]] = 2
    warp_in = _apply(before_warp, entering[:, None])
    return warp_in, _flat(inc)[tiles.k]


def _forward_lookback(ta, tb, grid, block, args):
    (a, a_sr, a_st, a_sc, b, b_sr, b_st, b_sc, h0, h0_sr, h0_sc, h, h_sr, h_st, h_sc,
     last, last_sr, last_sc, status, agg_a, agg_b, inc, R, T, C, rev) = args
    tiles = _Tiles(status, grid[0], tb, R, T, C, rev)
    av = _transpose(tiles.load(_memory(a, R, T, C, a_sr, a_st, a_sc), 1), True)
    bv = _transpose(tiles.load(_memory(b, R, T, C, b_sr, b_st, b_sc), 0), True)
    _, before_lane, total = _warp_scan(_thread_fold(av, bv, ta, tb))
    starts = _batch_memory(h0, R, C, h0_sr, h0_sc)[tiles.r, tiles.c]
    warp_in, after = _single_pass(tiles, total, starts, status, agg_a, agg_b, inc, ta, tb)
    tiles.store(_memory(h, R, T, C, h_sr, h_st, h_sc),
                _transpose(_rescan(av, bv, before_lane, warp_in[..., None], tb), False))
    ends = (tiles.m + 1) * tiles.tile >= T
    _batch_memory(last, R, C, last_sr, last_sc)[tiles.r[ends], tiles.c[ends]] = after[ends]


def _backward_lookback(ta, tb, grid, block, args):
    (gh, gh_sr, gh_st, gh_sc, a, a_sr, a_st, a_sc, h, h_sr, h_st, h_sc,
     h0, h0_sr, h0_sc, glast, glast_sr, glast_sc, ga, ga_sr, ga_st, ga_sc, ga_seg,
     gb, gb_sr, gb_st, gb_sc, gh0, gh0_sr, gh0_sc, status, agg_a, agg_b, inc, R, T, C,
     rev, accumulate) = args
    tiles = _Tiles(status, grid[0], tb, R, T, C, rev)
    av = _transpose(tiles.load(_memory(a, R, T, C, a_sr, a_st, a_sc), 1), True)
    gv = _transpose(tiles.load(_memory(gh, R, T, C, gh_sr, gh_st, gh_sc), 0), True)
    first_state = _batch_memory(h0, R, C, h0_sr, h0_sc)[tiles.r, tiles.c]
    hprev = np.where(tiles.past_end, first_state[:, None, None, None],
                     tiles.load(_memory(h, R, T, C, h_sr, h_st, h_sc), 0, offset=1))
    hv = _transpose(np.where(tiles.inside, hprev, np.zeros((), tb)), True)
    step_a = np.conj(av)
    _, before_lane, total = _warp_scan(_thread_fold(step_a, step_a * gv, ta, tb))
    starts = _batch_memory(glast, R, C, glast_sr, glast_sc)[tiles.r, tiles.c]
    warp_in, after = _single_pass(tiles, total, starts, status, agg_a, agg_b, inc, ta, tb)
    gv, gav = _adjoint_rescan(av, gv, hv, before_lane, warp_in[..., None], ta)
    tiles.store(_memory(gb, R, T, C, gb_sr, gb_st, gb_sc), _transpose(gv, False))
    if accumulate:
        sums = gav.sum(axis=(-1, -2)).astype(ta).sum(axis=-1).astype(ta)
        _flat(ga)[tiles.r * ga_sr + tiles.c * ga_sc + tiles.m * ga_seg] = sums
    else:
        tiles.store(_memory(ga, R, T, C, ga_sr, ga_st, ga_sc), _transpose(gav, False))
    ends = (tiles.m + 1) * tiles.tile >= T
    _batch_memory(gh0, R, C, gh0_sr, gh0_sc)[tiles.r[ends], tiles.c[ends]] = after[ends]


def _look_back(k, m, chain, chains, start, agg_a, agg_b, inc, ta, tb):
    """``look_back`` for ticket ``k`` (tile ``m`` of ``chain``), with the tickets from
    ``k - unfinished(k)`` on showing only their aggregates."""
    later = (np.ones((), ta), np.zeros((), tb))
    lane = np.arange(W)
    top = m - 1
    while True:
        mine = top - (W - 1 - lane)
        j = chain + mine * chains
        inclusive = (mine < 0) | (j < k - unfinished(k))
        nearest = lane[inclusive].max(initial=-1)
        jj = np.maximum(j, 0)
        q_a = np.where(lane > nearest, _flat(agg_a)[jj], np.ones((), ta))
        q_b = np.where(lane > nearest, _flat(agg_b)[jj], np.zeros((), tb))
        if nearest >= 0:
            q_a[nearest] = 0
            q_b[nearest] = _flat(inc)[jj[nearest]] if mine[nearest] >= 0 else start
        _, _, window = _warp_scan((q_a, q_b))
        later = _compose(window, later)
        if nearest >= 0:
            return later[1]
        top -= W


def _as_grad(x, ta):
    return x if ta.kind == "c" else x.real


def _adjoint_rescan(av, gv, hv, before, entering, ta):
    """``backward_tiles``' second sweep over each lane's items: ``(grad_b, grad_a)``."""
    s = _apply(before, entering)
    gb, gav = np.empty(gv.shape, gv.dtype), np.empty(av.shape, ta)
    for i in range(av.shape[-1]):
        g = gv[..., i] + s
        gav[..., i] = _as_grad(g * np.conj(hv[..., i]), ta)
        gb[..., i] = g
        s = np.conj(av[..., i]) * g
    return gb, gav


def _backward_tiles(ta, tb, grid, block, args):
    (gh, gh_sr, gh_st, gh_sc, a, a_sr, a_st, a_sc, h, h_sr, h_st, h_sc,
     h0, h0_sr, h0_sc, glast, glast_sr, glast_sc, ga, ga_sr, ga_st, ga_sc,
     gb, gb_sr, gb_st, gb_sc, gh0, gh0_sr, gh0_sc, R, T, C, group_warps,
     seg_len, rev, accumulate) = args
    items = _plan.items_for(tb.itemsize)
    ghm = _memory(gh, R, T, C, gh_sr, gh_st, gh_sc)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    gbm = _memory(gb, R, T, C, gb_sr, gb_st, gb_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    glm = _batch_memory(glast, R, C, glast_sr, glast_sc)
    gh0m = _batch_memory(gh0, R, C, gh0_sr, gh0_sc)
    at = _Place(grid, group_warps, R, T, C, seg_len, 0)
    carry = np.where(at.valid, glm[at.r, at.c], np.zeros((), tb))
    first_state = np.where(at.valid, h0m[at.r, at.c], np.zeros((), tb))
    total_ga = np.zeros(at.chain.shape + (W,), ta)
    for begin in _chunks(at, group_warps, items):
        chunk = _Chunk(at, begin, items, rev)
        av = _transpose(chunk.load(am, 1), True)
        gv = _transpose(chunk.load(ghm, 0), True)
        past_end = chunk.tau + 1 >= T
        hprev = np.where(past_end, first_state[:, :, None, None],
                         chunk.load(hm, 0, offset=1))
        hv = _transpose(np.where(chunk.inside, hprev, np.zeros((), tb)), True)
        step_a = np.conj(av)
        _, before, total = _warp_scan(_thread_fold(step_a, step_a * gv, ta, tb))
        entering, carry = _group_carry(at, total, carry, group_warps)
        gv, gav = _adjoint_rescan(av, gv, hv, before, entering[..., None], ta)
        chunk.store(gbm, _transpose(gv, False))
        if accumulate:
            total_ga = total_ga + gav.sum(axis=-1)
        else:
            chunk.store(_memory(ga, R, T, C, ga_sr, ga_st, ga_sc), _transpose(gav, False))
    m = at.valid & (at.rank == 0)
    gh0m[at.r[m], at.c[m]] = carry[m]
    if accumulate:
        per_warp = total_ga.sum(axis=-1).astype(ta)
        group_total = np.zeros(at.chain.shape, ta)
        for k in range(group_warps):
            group_total = group_total + per_warp[:, at.first + k]
        _batch_memory(ga, R, C, ga_sr, ga_sc)[at.r[m], at.c[m]] = group_total[m]


def _sum_segments(ta, tb, grid, block, args):
    partial, out, out_sr, out_sc, R, C, nseg = args
    sums = _flat(partial)[:nseg * R * C].reshape(nseg, R * C).sum(axis=0).astype(ta)
    _batch_memory(out, R, C, out_sr, out_sc)[...] = sums.reshape(R, C)


def _forward_channels(ta, tb, grid, block, args):
    (a, a_sr, a_st, a_sc, b, b_sr, b_st, b_sc, h0, h0_sr, h0_sc, h, h_sr, h_st, h_sc,
     last, last_sr, last_sc, R, T, C, rev) = args
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    bm = _memory(b, R, T, C, b_sr, b_st, b_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    s = _batch_memory(h0, R, C, h0_sr, h0_sc).astype(tb)
    for tau in range(T):
        t = T - 1 - tau if rev else tau
        s = am[:, t, :] * s + bm[:, t, :]
        hm[:, t, :] = s
    _batch_memory(last, R, C, last_sr, last_sc)[...] = s


def _backward_channels(ta, tb, grid, block, args):
    (gh, gh_sr, gh_st, gh_sc, a, a_sr, a_st, a_sc, h, h_sr, h_st, h_sc,
     h0, h0_sr, h0_sc, glast, glast_sr, glast_sc, ga, ga_sr, ga_st, ga_sc,
     gb, gb_sr, gb_st, gb_sc, gh0, gh0_sr, gh0_sc, R, T, C, rev, accumulate) = args
    ghm = _memory(gh, R, T, C, gh_sr, gh_st, gh_sc)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    gam = _memory(ga, R, T, C, ga_sr, ga_st, ga_sc)
    gbm = _memory(gb, R, T, C, gb_sr, gb_st, gb_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    carry = _batch_memory(glast, R, C, glast_sr, glast_sc).astype(tb)
    total = np.zeros((R, C), ta)
    for tau in range(T):
        t = T - 1 - tau if rev else tau
        prev = h0m
        if tau + 1 < T:
            prev = hm[:, T - 2 - tau if rev else tau + 1, :]
        g = ghm[:, t, :] + carry
        gbm[:, t, :] = g
        grad = _as_grad(g * np.conj(prev), ta)
        if accumulate:
            total = total + grad
        else:
            gam[:, t, :] = grad
        carry = np.conj(am[:, t, :]) * g
    _batch_memory(gh0, R, C, gh0_sr, gh0_sc)[...] = carry
    if accumulate:
        gam[:, 0, :] = total


_KERNELS = {
    "forward_tiles": _forward_tiles,
    "forward_lookback": _forward_lookback,
    "backward_tiles": _backward_tiles,
    "backward_lookback": _backward_lookback,
    "sum_segments": _sum_segments,
    "forward_channels": _forward_channels,
    "backward_channels": _backward_channels,
}
