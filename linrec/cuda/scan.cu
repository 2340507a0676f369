// The linrec CUDA kernels: diagonal linear recurrences and their gradients.
//
// Every operand is described as a strided (R, T, C) array of elements: chain j = r * C + c
// runs over time t; `*_sr, *_st, *_sc` are element strides (0 where broadcast), so a
// per-channel constant `a` is read with stride 0 and never materialised. Batch-only
// operands (initial states, final states, their gradients) have strides (sr, sc).
// Iteration step tau reads memory step t = rev ? T - 1 - tau : tau.
//
// Types: TA is the type of `a` (float, double, complex64, complex128); TB the type of
// b and h (TA, or the complex type of TA's precision when `a` is real).
//
// Kernels
//   forward_tiles     h from (a, b): a block of WARPS warps scans WARPS / group_warps
//                     chains; chunks of group_warps * 32 * ITEMS steps carry state
//                     serially (enough chains to fill the GPU).
//   forward_lookback  h from (a, b) for few long chains in one pass: each block takes a
//                     ticket, scans one tile of WARPS * 32 * ITEMS steps and gets its
//                     carry-in by decoupled look-back over the earlier tiles.
//   backward_tiles    the fused reverse pass: grad_b, grad_a (or its sum when `a` is
//                     constant in time), grad_h0.
//   backward_lookback the same for few long chains, single-pass like forward_lookback.
//   sum_segments      grad_a of a constant-in-time `a` from backward_lookback's per-tile
//                     sums.
//   forward_channels, backward_channels
//                     one thread per chain, sequential in time: for layouts whose
//                     channel axis, not time, is contiguous; CHANNEL_STEPS steps are
//                     loaded before the first of them is computed.
//
// Aliasing: an in-place scan passes the same memory as h and as a or b (element for
// element), so the forward kernels' a, b and h are not __restrict__; the backward kernels'
// outputs are always fresh arrays, so every pointer there is.
#include "linrec_tile.cuh"

template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) forward_tiles(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    const TB* h0, long long h0_sr, long long h0_sc,
    TB* h, long long h_sr, long long h_st, long long h_sc,
    TB* __restrict__ last, long long last_sr, long long last_sc,
    long long R, long long T, long long C, int group_warps, long long seg_len, int rev) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA agg_a[2][WARPS];
    __shared__ TB agg_b[2][WARPS];
    const Place at(WARPS, group_warps, R, T, C, seg_len);
    const long long first = at.begin + (long long)at.rank * LINREC_WARP * ITEMS + at.lane;
    const long long dir = rev ? -LINREC_WARP : LINREC_WARP;
    const long long t0 = step_of(first, T, rev);
    const TA* pa = a + at.r * a_sr + at.c * a_sc + t0 * a_st;
    const TB* pb = b + at.r * b_sr + at.c * b_sc + t0 * b_st;
    TB* ph = h + at.r * h_sr + at.c * h_sc + t0 * h_st;
    const long long a_item = dir * a_st, b_item = dir * b_st, h_item = dir * h_st;
    const long long per_chunk = (long long)group_warps * ITEMS;
    TB carry = at.valid ? h0[at.r * h0_sr + at.c * h0_sc] : zero<TB>();
    const long long chunk = (long long)group_warps * LINREC_WARP * ITEMS;
    int parity = 0;
    for (long long start = at.begin; start < at.end; start += chunk, parity ^= 1) {
        const int left = at.valid ? steps_left<ITEMS>(first + (start - at.begin), at.end) : 0;
        TA av[ITEMS];
        TB bv[ITEMS];
        load_striped(av, pa, a_item, left, one<TA>());
        load_striped(bv, pb, b_item, left, zero<TB>());
        striped_to_blocked(av, sa[at.warp], at.lane);
        striped_to_blocked(bv, sb[at.warp], at.lane);
        Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            own = extend(own, av[i], bv[i]);
        }
        const Pair<TA, TB> inclusive = warp_inclusive(own, at.lane);
        const Pair<TA, TB> before = warp_exclusive(inclusive, at.lane);
        const TB entering = group_carry<TA, TB, WARPS>(warp_total(inclusive), carry, at,
                                                       group_warps, agg_a, agg_b, parity);
        TB s = apply(before, entering);
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            s = av[i] * s + bv[i];
            bv[i] = s;
        }
        blocked_to_striped(bv, sb[at.warp], at.lane);
        store_striped(bv, ph, h_item, left);
        pa += a_item * per_chunk;
        pb += b_item * per_chunk;
        ph += h_item * per_chunk;
    }
    if (at.valid && at.rank == 0 && at.lane == 0) last[at.r * last_sr + at.c * last_sc] = carry;
}

// The single-pass scan of few long chains. Block i takes ticket k = atomicAdd(status, 1)
// (so tickets follow the order in which blocks start, whatever the launch order) and scans
// tile m = k / (R * C) of chain k % (R * C): steps [m * tile, (m + 1) * tile) in iteration
// order, tile = WARPS * 32 * ITEMS. Its status slot is flags[k] = status[1 + k]; it
// publishes its pair (agg_a[k], agg_b[k]), gets its carry-in by look_back over tiles
// m - 1, m - 2, ... of its chain (slots k - R * C, ...), which started earlier, then
// publishes the state after it (inc[k]) before scanning. status must start zeroed:
// R * C * ceil(T / tile) + 1 ints; agg_a, agg_b, inc have one entry per tile.
template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) forward_lookback(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    const TB* __restrict__ h0, long long h0_sr, long long h0_sc,
    TB* h, long long h_sr, long long h_st, long long h_sc,
    TB* __restrict__ last, long long last_sr, long long last_sc,
    int* __restrict__ status, TA* __restrict__ agg_a, TB* __restrict__ agg_b,
    TB* __restrict__ inc, long long R, long long T, long long C, int rev) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA warp_a[WARPS];
    __shared__ TB warp_b[WARPS];
    __shared__ int ticket;
    __shared__ TB carry_in;
    const int lane = threadIdx.x % LINREC_WARP, warp = threadIdx.x / LINREC_WARP;
    const long long chains = R * C;
    const Ticket at(status, chains, C, &ticket);
    const long long r = at.r, c = at.c;
    const long long tile = (long long)WARPS * LINREC_WARP * ITEMS;
    const long long first = at.m * tile + (long long)warp * LINREC_WARP * ITEMS + lane;
    const int left = steps_left<ITEMS>(first, T);
    const long long dir = rev ? -LINREC_WARP : LINREC_WARP;
    const long long t0 = step_of(first, T, rev);
    TA av[ITEMS];
    TB bv[ITEMS];
    load_striped(av, a + r * a_sr + c * a_sc + t0 * a_st, dir * a_st, left, one<TA>());
    load_striped(bv, b + r * b_sr + c * b_sc + t0 * b_st, dir * b_st, left, zero<TB>());
    striped_to_blocked(av, sa[warp], lane);
    striped_to_blocked(bv, sb[warp], lane);
    Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        own = extend(own, av[i], bv[i]);
    }
    TB s = tile_entry_state<TA, TB, WARPS>(
        own, warp_a, warp_b, carry_in, status, agg_a, agg_b, inc, at, chains,
        h0 + r * h0_sr + c * h0_sc, (at.m + 1) * tile >= T,
        last + r * last_sr + c * last_sc, warp, lane);
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        s = av[i] * s + bv[i];
        bv[i] = s;
    }
    blocked_to_striped(bv, sb[warp], lane);
    store_striped(bv, h + r * h_sr + c * h_sc + t0 * h_st, dir * h_st, left);
}

// The fused backward pass, in iteration order of the adjoint (rev is the opposite of the
// forward scan's): with carry entering step tau (grad_last at the start),
//   g = grad_h[t] + carry;  grad_b[t] = g;  grad_a[t] = g * conj(h_prev);  carry = conj(a[t]) * g
// where h_prev is h at iteration step tau + 1 (the forward scan's previous step), or h0
// past the end. The carry after the last step is grad_h0. With accumulate != 0 (`a`
// constant in time) grad_a gets the chain's sum at ga[r * ga_sr + c * ga_sc].
template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) backward_tiles(
    const TB* __restrict__ gh, long long gh_sr, long long gh_st, long long gh_sc,
    const TA* __restrict__ a, long long a_sr, long long a_st, long long a_sc,
    const TB* __restrict__ h, long long h_sr, long long h_st, long long h_sc,
    const TB* __restrict__ h0, long long h0_sr, long long h0_sc,
    const TB* __restrict__ glast, long long glast_sr, long long glast_sc,
    TA* __restrict__ ga, long long ga_sr, long long ga_st, long long ga_sc,
    TB* __restrict__ gb, long long gb_sr, long long gb_st, long long gb_sc,
    TB* __restrict__ gh0, long long gh0_sr, long long gh0_sc,
    long long R, long long T, long long C, int group_warps, long long seg_len, int rev,
    int accumulate) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA agg_a[2][WARPS];
    __shared__ TB agg_b[2][WARPS];
    __shared__ TA sums[WARPS];
    const Place at(WARPS, group_warps, R, T, C, seg_len);
    const long long first = at.begin + (long long)at.rank * LINREC_WARP * ITEMS + at.lane;
    const long long dir = rev ? -LINREC_WARP : LINREC_WARP;
    const long long t0 = step_of(first, T, rev);
    const TB* pgh = gh + at.r * gh_sr + at.c * gh_sc + t0 * gh_st;
    const TA* pa = a + at.r * a_sr + at.c * a_sc + t0 * a_st;
    const TB* ph = h + at.r * h_sr + at.c * h_sc + step_of(first + 1, T, rev) * h_st;
    TA* pga = ga + at.r * ga_sr + at.c * ga_sc + t0 * ga_st;
    TB* pgb = gb + at.r * gb_sr + at.c * gb_sc + t0 * gb_st;
    const long long gh_item = dir * gh_st, a_item = dir * a_st, h_item = dir * h_st;
    const long long ga_item = dir * ga_st, gb_item = dir * gb_st;
    const long long per_chunk = (long long)group_warps * ITEMS;
    TB carry = zero<TB>();
    TB start_state = zero<TB>();
    if (at.valid) {
        carry = glast[at.r * glast_sr + at.c * glast_sc];
        start_state = h0[at.r * h0_sr + at.c * h0_sc];
    }
    TA total = zero<TA>();
    const long long chunk = (long long)group_warps * LINREC_WARP * ITEMS;
    int parity = 0;
    for (long long start = at.begin; start < at.end; start += chunk, parity ^= 1) {
        const long long tau = first + (start - at.begin);
        const int left = at.valid ? steps_left<ITEMS>(tau, at.end) : 0;
        const int inside = steps_left<ITEMS>(tau + 1, T);
        TA av[ITEMS];
        TB gv[ITEMS];
        TB hv[ITEMS];
        load_striped(av, pa, a_item, left, one<TA>());
        load_striped(gv, pgh, gh_item, left, zero<TB>());
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const int k = i * LINREC_WARP;
            hv[i] = k < left ? (k < inside ? ph[i * h_item] : start_state) : zero<TB>();
        }
        striped_to_blocked(av, sa[at.warp], at.lane);
        striped_to_blocked(gv, sb[at.warp], at.lane);
        striped_to_blocked(hv, sb[at.warp], at.lane);
        Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const TA ca = traits<TA>::conj(av[i]);
            own = extend(own, ca, ca * gv[i]);
        }
        const Pair<TA, TB> inclusive = warp_inclusive(own, at.lane);
        const Pair<TA, TB> before = warp_exclusive(inclusive, at.lane);
        const TB entering = group_carry<TA, TB, WARPS>(warp_total(inclusive), carry, at,
                                                       group_warps, agg_a, agg_b, parity);
        TB s = apply(before, entering);
        TA gav[ITEMS];
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const TB g = gv[i] + s;
            gav[i] = grad_cast<TA, TB>::of(g * traits<TB>::conj(hv[i]));
            gv[i] = g;
            s = traits<TA>::conj(av[i]) * g;
        }
        blocked_to_striped(gv, sb[at.warp], at.lane);
        store_striped(gv, pgb, gb_item, left);
        if (accumulate) {
#pragma unroll
            for (int i = 0; i < ITEMS; ++i) total = total + gav[i];
        } else {
            blocked_to_striped(gav, sa[at.warp], at.lane);
            store_striped(gav, pga, ga_item, left);
        }
        pgh += gh_item * per_chunk;
        pa += a_item * per_chunk;
        ph += h_item * per_chunk;
        pga += ga_item * per_chunk;
        pgb += gb_item * per_chunk;
    }
    if (at.valid && at.rank == 0 && at.lane == 0) gh0[at.r * gh0_sr + at.c * gh0_sc] = carry;
    if (accumulate) {
        total = warp_sum(total);
        if (at.lane == 0) sums[at.warp] = total;
        __syncthreads();
        if (at.valid && at.rank == 0 && at.lane == 0) {
            TA group_total = zero<TA>();
            for (int k = 0; k < group_warps; ++k) group_total = group_total + sums[at.first + k];
            ga[at.r * ga_sr + at.c * ga_sc] = group_total;
        }
    }
}

// The single-pass backward of few long chains: backward_tiles' adjoint scan on one tile
// per block, tiles taken by ticket and carried by look-back as in forward_lookback (the
// chain's start state is grad_last; the state after its last tile is grad_h0). With
// accumulate != 0, tile m's grad_a sum goes to ga[r * ga_sr + c * ga_sc + m * ga_seg].
template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) backward_lookback(
    const TB* __restrict__ gh, long long gh_sr, long long gh_st, long long gh_sc,
    const TA* __restrict__ a, long long a_sr, long long a_st, long long a_sc,
    const TB* __restrict__ h, long long h_sr, long long h_st, long long h_sc,
    const TB* __restrict__ h0, long long h0_sr, long long h0_sc,
    const TB* __restrict__ glast, long long glast_sr, long long glast_sc,
    TA* __restrict__ ga, long long ga_sr, long long ga_st, long long ga_sc, long long ga_seg,
    TB* __restrict__ gb, long long gb_sr, long long gb_st, long long gb_sc,
    TB* __restrict__ gh0, long long gh0_sr, long long gh0_sc,
    int* __restrict__ status, TA* __restrict__ agg_a, TB* __restrict__ agg_b,
    TB* __restrict__ inc, long long R, long long T, long long C, int rev, int accumulate) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA warp_a[WARPS];
    __shared__ TB warp_b[WARPS];
    __shared__ TA sums[WARPS];
    __shared__ int ticket;
    __shared__ TB carry_in;
    const int lane = threadIdx.x % LINREC_WARP, warp = threadIdx.x / LINREC_WARP;
    const long long chains = R * C;
    const Ticket at(status, chains, C, &ticket);
    const long long r = at.r, c = at.c;
    const long long tile = (long long)WARPS * LINREC_WARP * ITEMS;
    const long long first = at.m * tile + (long long)warp * LINREC_WARP * ITEMS + lane;
    const int left = steps_left<ITEMS>(first, T);
    const int inside = steps_left<ITEMS>(first + 1, T);
    const long long dir = rev ? -LINREC_WARP : LINREC_WARP;
    const long long t0 = step_of(first, T, rev);
    const TB start_state = h0[r * h0_sr + c * h0_sc];
    const TB* ph = h + r * h_sr + c * h_sc + step_of(first + 1, T, rev) * h_st;
    TA av[ITEMS];
    TB gv[ITEMS];
    TB hv[ITEMS];
    load_striped(av, a + r * a_sr + c * a_sc + t0 * a_st, dir * a_st, left, one<TA>());
    load_striped(gv, gh + r * gh_sr + c * gh_sc + t0 * gh_st, dir * gh_st, left, zero<TB>());
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const int k = i * LINREC_WARP;
        hv[i] = k < left ? (k < inside ? ph[i * dir * h_st] : start_state) : zero<TB>();
    }
    striped_to_blocked(av, sa[warp], lane);
    striped_to_blocked(gv, sb[warp], lane);
    striped_to_blocked(hv, sb[warp], lane);
    Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const TA ca = traits<TA>::conj(av[i]);
        own = extend(own, ca, ca * gv[i]);
    }
    TB s = tile_entry_state<TA, TB, WARPS>(
        own, warp_a, warp_b, carry_in, status, agg_a, agg_b, inc, at, chains,
        glast + r * glast_sr + c * glast_sc, (at.m + 1) * tile >= T,
        gh0 + r * gh0_sr + c * gh0_sc, warp, lane);
    TA gav[ITEMS];
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const TB g = gv[i] + s;
        gav[i] = grad_cast<TA, TB>::of(g * traits<TB>::conj(hv[i]));
        gv[i] = g;
        s = traits<TA>::conj(av[i]) * g;
    }
    blocked_to_striped(gv, sb[warp], lane);
    store_striped(gv, gb + r * gb_sr + c * gb_sc + t0 * gb_st, dir * gb_st, left);
    if (accumulate) {
        TA sum = zero<TA>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) sum = sum + gav[i];
        sum = warp_sum(sum);
        if (lane == 0) sums[warp] = sum;
        __syncthreads();
        if (threadIdx.x == 0) {
            TA tile_sum = zero<TA>();
            for (int w = 0; w < WARPS; ++w) tile_sum = tile_sum + sums[w];
            ga[r * ga_sr + c * ga_sc + at.m * ga_seg] = tile_sum;
        }
    } else {
        blocked_to_striped(gav, sa[warp], lane);
        store_striped(gav, ga + r * ga_sr + c * ga_sc + t0 * ga_st, dir * ga_st, left);
    }
}

// out[r, c] = sum over s of partial[s * R * C + chain]: grad_a of a constant-in-time `a`.
template <typename TA>
__global__ void sum_segments(const TA* partial, TA* out, long long out_sr, long long out_sc,
                             long long R, long long C, long long nseg) {
    const long long chains = R * C;
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= chains) return;
    TA total = zero<TA>();
    for (long long s = 0; s < nseg; ++s) total = total + partial[s * chains + chain];
    out[(chain / C) * out_sr + (chain % C) * out_sc] = total;
}

// Steps a channels-kernel thread loads before it computes the first of them.
#define LINREC_CHANNEL_STEPS 4

template <typename TA, typename TB>
__global__ void forward_channels(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    const TB* __restrict__ h0, long long h0_sr, long long h0_sc,
    TB* h, long long h_sr, long long h_st, long long h_sc,
    TB* __restrict__ last, long long last_sr, long long last_sc,
    long long R, long long T, long long C, int rev) {
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= R * C) return;
    long long r, c;
    divide(chain, C, r, c);
    const long long t0 = rev ? T - 1 : 0, dir = rev ? -1 : 1;
    const TA* pa = a + r * a_sr + c * a_sc + t0 * a_st;
    const TB* pb = b + r * b_sr + c * b_sc + t0 * b_st;
    TB* ph = h + r * h_sr + c * h_sc + t0 * h_st;
    const long long da = dir * a_st, db = dir * b_st, dh = dir * h_st;
    TB s = h0[r * h0_sr + c * h0_sc];
    long long tau = 0;
    for (; tau + LINREC_CHANNEL_STEPS <= T; tau += LINREC_CHANNEL_STEPS) {
        TA av[LINREC_CHANNEL_STEPS];
        TB bv[LINREC_CHANNEL_STEPS];
#pragma unroll
        for (int j = 0; j < LINREC_CHANNEL_STEPS; ++j) {
            av[j] = pa[j * da];
            bv[j] = pb[j * db];
        }
#pragma unroll
        for (int j = 0; j < LINREC_CHANNEL_STEPS; ++j) {
            s = av[j] * s + bv[j];
            ph[j * dh] = s;
        }
        pa += LINREC_CHANNEL_STEPS * da;
        pb += LINREC_CHANNEL_STEPS * db;
        ph += LINREC_CHANNEL_STEPS * dh;
    }
    for (; tau < T; ++tau, pa += da, pb += db, ph += dh) {
        s = *pa * s + *pb;
        *ph = s;
    }
    last[r * last_sr + c * last_sc] = s;
}

template <typename TA, typename TB>
__global__ void backward_channels(
    const TB* __restrict__ gh, long long gh_sr, long long gh_st, long long gh_sc,
    const TA* __restrict__ a, long long a_sr, long long a_st, long long a_sc,
    const TB* __restrict__ h, long long h_sr, long long h_st, long long h_sc,
    const TB* __restrict__ h0, long long h0_sr, long long h0_sc,
    const TB* __restrict__ glast, long long glast_sr, long long glast_sc,
    TA* __restrict__ ga, long long ga_sr, long long ga_st, long long ga_sc,
    TB* __restrict__ gb, long long gb_sr, long long gb_st, long long gb_sc,
    TB* __restrict__ gh0, long long gh0_sr, long long gh0_sc,
    long long R, long long T, long long C, int rev, int accumulate) {
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= R * C) return;
    long long r, c;
    divide(chain, C, r, c);
    const long long t0 = rev ? T - 1 : 0, dir = rev ? -1 : 1;
    const TB* pgh = gh + r * gh_sr + c * gh_sc + t0 * gh_st;
    const TA* pa = a + r * a_sr + c * a_sc + t0 * a_st;
    const TB* ph = h + r * h_sr + c * h_sc + step_of(1, T, rev) * h_st;
    TA* pga = ga + r * ga_sr + c * ga_sc + t0 * ga_st;
    TB* pgb = gb + r * gb_sr + c * gb_sc + t0 * gb_st;
    const long long dgh = dir * gh_st, da = dir * a_st, dh = dir * h_st;
    const long long dga = dir * ga_st, dgb = dir * gb_st;
    TB carry = glast[r * glast_sr + c * glast_sc];
    TA total = zero<TA>();
    long long tau = 0;
    // Whole groups whose every step has a successor in h (tau + 1 < T).
    for (; tau + LINREC_CHANNEL_STEPS < T; tau += LINREC_CHANNEL_STEPS) {
        TB gv[LINREC_CHANNEL_STEPS];
        TA av[LINREC_CHANNEL_STEPS];
        TB hv[LINREC_CHANNEL_STEPS];
#pragma unroll
        for (int j = 0; j < LINREC_CHANNEL_STEPS; ++j) {
            gv[j] = pgh[j * dgh];
            av[j] = pa[j * da];
            hv[j] = ph[j * dh];
        }
#pragma unroll
        for (int j = 0; j < LINREC_CHANNEL_STEPS; ++j) {
            const TB g = gv[j] + carry;
            pgb[j * dgb] = g;
            const TA grad = grad_cast<TA, TB>::of(g * traits<TB>::conj(hv[j]));
            if (accumulate) {
                total = total + grad;
            } else {
                pga[j * dga] = grad;
            }
            carry = traits<TA>::conj(av[j]) * g;
        }
        pgh += LINREC_CHANNEL_STEPS * dgh;
        pa += LINREC_CHANNEL_STEPS * da;
        ph += LINREC_CHANNEL_STEPS * dh;
        pga += LINREC_CHANNEL_STEPS * dga;
        pgb += LINREC_CHANNEL_STEPS * dgb;
    }
    for (; tau < T; ++tau, pgh += dgh, pa += da, ph += dh, pga += dga, pgb += dgb) {
        const TB prev = tau + 1 < T ? *ph : h0[r * h0_sr + c * h0_sc];
        const TB g = *pgh + carry;
        *pgb = g;
        const TA grad = grad_cast<TA, TB>::of(g * traits<TB>::conj(prev));
        if (accumulate) {
            total = total + grad;
        } else {
            *pga = grad;
        }
        carry = traits<TA>::conj(*pa) * g;
    }
    gh0[r * gh0_sr + c * gh0_sc] = carry;
    if (accumulate) ga[r * ga_sr + c * ga_sc] = total;
}
