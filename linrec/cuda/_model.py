"""A NumPy model of the CUDA kernels in ``scan.cu``, for checking them without a GPU.

:func:`run` has the signature of the backend's launcher: it takes a kernel name, the
dtypes, the grid, the block and the very argument list the GPU would get (NumPy views as
pointers, element strides, sizes) and executes the kernel's algorithm with the same
blocking: ``32`` lanes per warp, ``WARPS`` warps per block, ``items`` steps per lane, the
striped loads and the padded shared-memory transposes, the Kogge-Stone warp scan with
``shfl_up`` semantics, the per-chunk fold of the group's warp totals, the serial chunk
carry, identity padding past the end of a segment, the three phases across segments of
the backward pass, and the forward pass's single-pass look-back. All lanes, warps and
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
    """Execute ``kernel`` (a name from ``linrec.cuda._kernels.KERNELS``) like the GPU."""
    ta, tb = np.dtype(ta), np.dtype(tb)
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
    """First p, then q."""
    return q[0] * p[0], q[0] * p[1] + q[1]


def _shfl_up(x, d):
    """``__shfl_up_sync`` along the lane axis (-1): lanes below d keep their own value."""
    return np.concatenate([x[..., :d], x[..., :-d]], axis=-1)


def _thread_fold(a, b, ta, tb):
    p = (np.ones(a.shape[:-1], ta), np.zeros(b.shape[:-1], tb))
    for i in range(a.shape[-1]):
        p = _compose(p, (a[..., i], b[..., i]))
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
        carry = total[0][:, idx] * carry + total[1][:, idx]
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
    s = before[0] * entering + before[1]
    out = np.empty(bv.shape, tb)
    for i in range(av.shape[-1]):
        s = av[..., i] * s + bv[..., i]
        out[..., i] = s
    return out


def unfinished(k):
    """How many tickets just before ``k`` the look-back finds with only an aggregate
    published (a fixed pseudo-random schedule, 0 to 96: up to three windows)."""
    return (k * 7919) % 97


def _forward_lookback(ta, tb, grid, block, args):
    (a, a_sr, a_st, a_sc, b, b_sr, b_st, b_sc, h0, h0_sr, h0_sc, h, h_sr, h_st, h_sc,
     last, last_sr, last_sc, status, agg_a, agg_b, inc, R, T, C, rev) = args
    items = _plan.items_for(tb.itemsize)
    warps, tile, chains = _plan.WARPS, _plan.tile_steps(tb.itemsize), R * C
    tickets = grid[0]
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    bm = _memory(b, R, T, C, b_sr, b_st, b_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    flags = _flat(status)
    k = flags[0] + np.arange(tickets)
    flags[0] += tickets
    m, chain = k // chains, k % chains
    r, c = chain // C, chain % C
    # tau[k, warp, lane, item]: the striped steps of every tile, all blocks at once.
    tau = (m[:, None, None, None] * tile + np.arange(warps)[:, None, None] * W * items
           + np.arange(W)[:, None] + np.arange(items) * W)
    inside = tau < T
    t = np.minimum(tau, T - 1)
    t = T - 1 - t if rev else t
    rr, cc = r[:, None, None, None], c[:, None, None, None]
    av = _transpose(np.where(inside, am[rr, t, cc], np.ones((), ta)), True)
    bv = _transpose(np.where(inside, bm[rr, t, cc], np.zeros((), tb)), True)
    _, before_lane, total = _warp_scan(_thread_fold(av, bv, ta, tb))
    before_warp = [np.empty((tickets, warps), ta), np.empty((tickets, warps), tb)]
    whole = (np.ones(tickets, ta), np.zeros(tickets, tb))
    for w in range(warps):
        before_warp[0][:, w], before_warp[1][:, w] = whole
        whole = _compose(whole, (total[0][:, w], total[1][:, w]))
    _flat(agg_a)[k], _flat(agg_b)[k] = whole
    entering = np.empty(tickets, tb)
    for i in range(tickets):
        entering[i] = _look_back(k[i], m[i], chain[i], chains, h0m[r[i], c[i]], agg_a,
                                 agg_b, inc, ta, tb)
        _flat(inc)[k[i]] = whole[0][i] * entering[i] + whole[1][i]
        flags[1 + k[i]] = 2
        if (m[i] + 1) * tile >= T:
            _batch_memory(last, R, C, last_sr, last_sc)[r[i], c[i]] = _flat(inc)[k[i]]
    warp_in = before_warp[0] * entering[:, None] + before_warp[1]
    out = _transpose(_rescan(av, bv, before_lane, warp_in[..., None], tb), False)
    hm[np.broadcast_to(rr, t.shape)[inside], t[inside],
       np.broadcast_to(cc, t.shape)[inside]] = out[inside]


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


def _reduce_adjoint(ta, tb, grid, block, args):
    """Phase 1 of the backward multi-block scan (``reduce_segments``)."""
    (a, a_sr, a_st, a_sc, b, b_sr, b_st, b_sc, pair_a, pair_b, R, T, C, group_warps,
     seg_len, rev) = args
    items = _plan.items_for(tb.itemsize)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    bm = _memory(b, R, T, C, b_sr, b_st, b_sc)
    for seg in range(grid[1]):
        at = _Place(grid, group_warps, R, T, C, seg_len, seg)
        folded = (np.ones(at.chain.shape, ta), np.zeros(at.chain.shape, tb))
        for begin in _chunks(at, group_warps, items):
            chunk = _Chunk(at, begin, items, rev)
            av = _transpose(chunk.load(am, 1), True)
            bv = _transpose(chunk.load(bm, 0), True)
            av = np.conj(av)
            bv = av * bv
            _, _, total = _warp_scan(_thread_fold(av, bv, ta, tb))
            for k in range(group_warps):
                idx = at.first + k
                folded = _compose(folded, (total[0][:, idx], total[1][:, idx]))
        m = at.valid & (at.rank == 0)
        _flat(pair_a)[seg * R * C + at.chain[m]] = folded[0][m]
        _flat(pair_b)[seg * R * C + at.chain[m]] = folded[1][m]


def _carry_segments(ta, tb, grid, block, args):
    pair_a, pair_b, init, init_sr, init_sc, carries, R, C, nseg = args
    chains = R * C
    state = _batch_memory(init, R, C, init_sr, init_sc).reshape(-1).astype(tb)
    pa, pb, out = _flat(pair_a), _flat(pair_b), _flat(carries)
    for s in range(nseg):
        part = slice(s * chains, (s + 1) * chains)
        out[part] = state
        if s + 1 < nseg:
            state = pa[part] * state + pb[part]


def _as_grad(x, ta):
    return x if ta.kind == "c" else x.real


def _backward_tiles(ta, tb, grid, block, args):
    (gh, gh_sr, gh_st, gh_sc, a, a_sr, a_st, a_sc, h, h_sr, h_st, h_sc,
     h0, h0_sr, h0_sc, glast, gl_sr, gl_sc, ga, ga_sr, ga_st, ga_sc, ga_seg,
     gb, gb_sr, gb_st, gb_sc, gh0, gh0_sr, gh0_sc, carries, R, T, C, group_warps,
     seg_len, rev, accumulate) = args
    items = _plan.items_for(tb.itemsize)
    ghm = _memory(gh, R, T, C, gh_sr, gh_st, gh_sc)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    gbm = _memory(gb, R, T, C, gb_sr, gb_st, gb_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    glm = _batch_memory(glast, R, C, gl_sr, gl_sc)
    gh0m = _batch_memory(gh0, R, C, gh0_sr, gh0_sc)
    for seg in range(grid[1]):
        at = _Place(grid, group_warps, R, T, C, seg_len, seg)
        start = _flat(carries)[seg * R * C + np.minimum(at.chain, R * C - 1)] \
            if grid[1] > 1 else glm[at.r, at.c]
        carry = np.where(at.valid, start, np.zeros((), tb))
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
            own = _thread_fold(step_a, step_a * gv, ta, tb)
            _, before, total = _warp_scan(own)
            entering, carry = _group_carry(at, total, carry, group_warps)
            s = before[0] * entering[..., None] + before[1]
            gav = np.empty(av.shape, ta)
            for i in range(items):
                g = gv[..., i] + s
                gav[..., i] = _as_grad(g * np.conj(hv[..., i]), ta)
                gv[..., i] = g
                s = np.conj(av[..., i]) * g
            chunk.store(gbm, _transpose(gv, False))
            if accumulate:
                for i in range(items):
                    total_ga = total_ga + gav[..., i]
            else:
                gam = _memory(ga, R, T, C, ga_sr, ga_st, ga_sc)
                chunk.store(gam, _transpose(gav, False))
        m = at.valid & (at.rank == 0)
        if seg == grid[1] - 1:
            gh0m[at.r[m], at.c[m]] = carry[m]
        if accumulate:
            per_warp = total_ga.sum(axis=-1).astype(ta)
            group_total = np.zeros(at.chain.shape, ta)
            for k in range(group_warps):
                group_total = group_total + per_warp[:, at.first + k]
            gam = _memory(ga, R, 1, C, ga_sr, 0, ga_sc)[:, 0, :]
            if ga_seg:
                gam = _flat(ga)[seg * ga_seg:(seg + 1) * ga_seg].reshape(R, C)
            gam[at.r[m], at.c[m]] = group_total[m]


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
     h0, h0_sr, h0_sc, glast, gl_sr, gl_sc, ga, ga_sr, ga_st, ga_sc,
     gb, gb_sr, gb_st, gb_sc, gh0, gh0_sr, gh0_sc, R, T, C, rev, accumulate) = args
    ghm = _memory(gh, R, T, C, gh_sr, gh_st, gh_sc)
    am = _memory(a, R, T, C, a_sr, a_st, a_sc)
    hm = _memory(h, R, T, C, h_sr, h_st, h_sc)
    gam = _memory(ga, R, T, C, ga_sr, ga_st, ga_sc)
    gbm = _memory(gb, R, T, C, gb_sr, gb_st, gb_sc)
    h0m = _batch_memory(h0, R, C, h0_sr, h0_sc)
    carry = _batch_memory(glast, R, C, gl_sr, gl_sc).astype(tb)
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
    "reduce_segments_adjoint": _reduce_adjoint,
    "carry_segments": _carry_segments,
    "backward_tiles": _backward_tiles,
    "sum_segments": _sum_segments,
    "forward_channels": _forward_channels,
    "backward_channels": _backward_channels,
}
