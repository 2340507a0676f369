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
//                     serially; blockIdx.y is a time segment whose carry-in comes from
//                     `carries` when gridDim.y > 1 (three-phase multi-block scan).
//   reduce_segments   phase 1: the affine pair of every segment but the last.
//   carry_segments    phase 2: the state entering every segment, one thread per chain.
//   backward_tiles    the fused reverse pass: grad_b, grad_a (or its per-segment sum when
//                     `a` is constant in time), grad_h0.
//   sum_segments      grad_a of a constant-in-time `a` from its per-segment sums.
//   forward_channels, backward_channels
//                     one thread per chain, sequential in time: for layouts whose
//                     channel axis, not time, is contiguous.
#include "linrec_tile.cuh"

template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) forward_tiles(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    const TB* h0, long long h0_sr, long long h0_sc,
    TB* h, long long h_sr, long long h_st, long long h_sc,
    TB* last, long long last_sr, long long last_sc,
    const TB* carries,
    long long R, long long T, long long C, int group_warps, long long seg_len, int rev) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA agg_a[2][WARPS];
    __shared__ TB agg_b[2][WARPS];
    const Place at(WARPS, group_warps, R, T, C, seg_len);
    const long long a_off = at.r * a_sr + at.c * a_sc;
    const long long b_off = at.r * b_sr + at.c * b_sc;
    const long long h_off = at.r * h_sr + at.c * h_sc;
    TB carry = zero<TB>();
    if (at.valid) {
        carry = gridDim.y > 1 ? carries[blockIdx.y * R * C + at.chain]
                              : h0[at.r * h0_sr + at.c * h0_sc];
    }
    const long long chunk = (long long)group_warps * LINREC_WARP * ITEMS;
    int parity = 0;
    for (long long start = at.begin; start < at.end; start += chunk, parity ^= 1) {
        const long long base = start + (long long)at.rank * LINREC_WARP * ITEMS;
        TA av[ITEMS];
        TB bv[ITEMS];
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const long long tau = base + i * LINREC_WARP + at.lane;
            const bool in = at.valid && tau < at.end;
            const long long t = step_of(tau, T, rev);
            av[i] = in ? a[a_off + t * a_st] : one<TA>();
            bv[i] = in ? b[b_off + t * b_st] : zero<TB>();
        }
        striped_to_blocked(av, sa[at.warp], at.lane);
        striped_to_blocked(bv, sb[at.warp], at.lane);
        Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            Pair<TA, TB> step;
            step.a = av[i];
            step.b = bv[i];
            own = compose(own, step);
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
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const long long tau = base + i * LINREC_WARP + at.lane;
            if (at.valid && tau < at.end) h[h_off + step_of(tau, T, rev) * h_st] = bv[i];
        }
    }
    if (at.valid && at.rank == 0 && at.lane == 0 && blockIdx.y == gridDim.y - 1) {
        last[at.r * last_sr + at.c * last_sc] = carry;
    }
}

// Phase 1 of the multi-block scan. ADJOINT = false: the pairs (a, b) of the forward
// recurrence; ADJOINT = true: the pairs (conj(a), conj(a) * grad_h) of the backward one.
// Writes the pair of segment blockIdx.y to pair_a/pair_b[blockIdx.y * R * C + chain].
template <typename TA, typename TB, int ITEMS, int WARPS, bool ADJOINT>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) reduce_segments(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    TA* pair_a, TB* pair_b,
    long long R, long long T, long long C, int group_warps, long long seg_len, int rev) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA agg_a[2][WARPS];
    __shared__ TB agg_b[2][WARPS];
    const Place at(WARPS, group_warps, R, T, C, seg_len);
    const long long a_off = at.r * a_sr + at.c * a_sc;
    const long long b_off = at.r * b_sr + at.c * b_sc;
    Pair<TA, TB> folded = identity_pair<TA, TB>();
    const long long chunk = (long long)group_warps * LINREC_WARP * ITEMS;
    int parity = 0;
    for (long long start = at.begin; start < at.end; start += chunk, parity ^= 1) {
        const long long base = start + (long long)at.rank * LINREC_WARP * ITEMS;
        TA av[ITEMS];
        TB bv[ITEMS];
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const long long tau = base + i * LINREC_WARP + at.lane;
            const bool in = at.valid && tau < at.end;
            const long long t = step_of(tau, T, rev);
            av[i] = in ? a[a_off + t * a_st] : one<TA>();
            bv[i] = in ? b[b_off + t * b_st] : zero<TB>();
        }
        striped_to_blocked(av, sa[at.warp], at.lane);
        striped_to_blocked(bv, sb[at.warp], at.lane);
        Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            Pair<TA, TB> step;
            step.a = ADJOINT ? traits<TA>::conj(av[i]) : av[i];
            step.b = ADJOINT ? step.a * bv[i] : bv[i];
            own = compose(own, step);
        }
        const Pair<TA, TB> total = warp_total(warp_inclusive(own, at.lane));
        if (at.lane == 0) {
            agg_a[parity][at.warp] = total.a;
            agg_b[parity][at.warp] = total.b;
        }
        __syncthreads();
        for (int k = 0; k < group_warps; ++k) {
            Pair<TA, TB> q;
            q.a = agg_a[parity][at.first + k];
            q.b = agg_b[parity][at.first + k];
            folded = compose(folded, q);
        }
    }
    if (at.valid && at.rank == 0 && at.lane == 0) {
        pair_a[blockIdx.y * R * C + at.chain] = folded.a;
        pair_b[blockIdx.y * R * C + at.chain] = folded.b;
    }
}

// Phase 2: carries[s * R * C + chain] = state entering segment s, for s < nseg; segment 0
// starts from init. One thread per chain, sequential over the (few) segments.
template <typename TA, typename TB>
__global__ void carry_segments(const TA* pair_a, const TB* pair_b,
                               const TB* init, long long init_sr, long long init_sc,
                               TB* carries, long long R, long long C, long long nseg) {
    const long long chains = R * C;
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= chains) return;
    TB state = init[(chain / C) * init_sr + (chain % C) * init_sc];
    for (long long s = 0; s < nseg; ++s) {
        carries[s * chains + chain] = state;
        if (s + 1 < nseg) state = pair_a[s * chains + chain] * state + pair_b[s * chains + chain];
    }
}

// The fused backward pass, in iteration order of the adjoint (rev is the opposite of the
// forward scan's): with carry entering step tau (grad_last at the start),
//   g = grad_h[t] + carry;  grad_b[t] = g;  grad_a[t] = g * conj(h_prev);  carry = conj(a[t]) * g
// where h_prev is h at iteration step tau + 1 (the forward scan's previous step), or h0
// past the end. The carry after the last step is grad_h0. With accumulate != 0 (`a`
// constant in time) grad_a gets the segment's sum at ga[r * ga_sr + c * ga_sc + seg * ga_seg].
template <typename TA, typename TB, int ITEMS, int WARPS>
__global__ void __launch_bounds__(WARPS * LINREC_WARP) backward_tiles(
    const TB* gh, long long gh_sr, long long gh_st, long long gh_sc,
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* h, long long h_sr, long long h_st, long long h_sc,
    const TB* h0, long long h0_sr, long long h0_sc,
    const TB* glast, long long gl_sr, long long gl_sc,
    TA* ga, long long ga_sr, long long ga_st, long long ga_sc, long long ga_seg,
    TB* gb, long long gb_sr, long long gb_st, long long gb_sc,
    TB* gh0, long long gh0_sr, long long gh0_sc,
    const TB* carries,
    long long R, long long T, long long C, int group_warps, long long seg_len, int rev,
    int accumulate) {
    __shared__ TA sa[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TB sb[WARPS][LINREC_SLOTS(ITEMS)];
    __shared__ TA agg_a[2][WARPS];
    __shared__ TB agg_b[2][WARPS];
    __shared__ TA sums[WARPS];
    const Place at(WARPS, group_warps, R, T, C, seg_len);
    const long long gh_off = at.r * gh_sr + at.c * gh_sc;
    const long long a_off = at.r * a_sr + at.c * a_sc;
    const long long h_off = at.r * h_sr + at.c * h_sc;
    const long long ga_off = at.r * ga_sr + at.c * ga_sc;
    const long long gb_off = at.r * gb_sr + at.c * gb_sc;
    TB carry = zero<TB>();
    TB start_state = zero<TB>();
    if (at.valid) {
        carry = gridDim.y > 1 ? carries[blockIdx.y * R * C + at.chain]
                              : glast[at.r * gl_sr + at.c * gl_sc];
        start_state = h0[at.r * h0_sr + at.c * h0_sc];
    }
    TA total = zero<TA>();
    const long long chunk = (long long)group_warps * LINREC_WARP * ITEMS;
    int parity = 0;
    for (long long start = at.begin; start < at.end; start += chunk, parity ^= 1) {
        const long long base = start + (long long)at.rank * LINREC_WARP * ITEMS;
        TA av[ITEMS];
        TB gv[ITEMS];
        TB hv[ITEMS];
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const long long tau = base + i * LINREC_WARP + at.lane;
            const bool in = at.valid && tau < at.end;
            const long long t = step_of(tau, T, rev);
            av[i] = in ? a[a_off + t * a_st] : one<TA>();
            gv[i] = in ? gh[gh_off + t * gh_st] : zero<TB>();
            hv[i] = zero<TB>();
            if (in) {
                hv[i] = tau + 1 < T ? h[h_off + step_of(tau + 1, T, rev) * h_st] : start_state;
            }
        }
        striped_to_blocked(av, sa[at.warp], at.lane);
        striped_to_blocked(gv, sb[at.warp], at.lane);
        striped_to_blocked(hv, sb[at.warp], at.lane);
        Pair<TA, TB> own = identity_pair<TA, TB>();
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            Pair<TA, TB> step;
            step.a = traits<TA>::conj(av[i]);
            step.b = step.a * gv[i];
            own = compose(own, step);
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
#pragma unroll
        for (int i = 0; i < ITEMS; ++i) {
            const long long tau = base + i * LINREC_WARP + at.lane;
            if (at.valid && tau < at.end) gb[gb_off + step_of(tau, T, rev) * gb_st] = gv[i];
        }
        if (accumulate) {
#pragma unroll
            for (int i = 0; i < ITEMS; ++i) total = total + gav[i];
        } else {
            blocked_to_striped(gav, sa[at.warp], at.lane);
#pragma unroll
            for (int i = 0; i < ITEMS; ++i) {
                const long long tau = base + i * LINREC_WARP + at.lane;
                if (at.valid && tau < at.end) {
                    ga[ga_off + step_of(tau, T, rev) * ga_st] = gav[i];
                }
            }
        }
    }
    if (at.valid && at.rank == 0 && at.lane == 0 && blockIdx.y == gridDim.y - 1) {
        gh0[at.r * gh0_sr + at.c * gh0_sc] = carry;
    }
    if (accumulate) {
        total = warp_sum(total);
        if (at.lane == 0) sums[at.warp] = total;
        __syncthreads();
        if (at.valid && at.rank == 0 && at.lane == 0) {
            TA group_total = zero<TA>();
            for (int k = 0; k < group_warps; ++k) group_total = group_total + sums[at.first + k];
            ga[ga_off + blockIdx.y * ga_seg] = group_total;
        }
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

template <typename TA, typename TB>
__global__ void forward_channels(
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* b, long long b_sr, long long b_st, long long b_sc,
    const TB* h0, long long h0_sr, long long h0_sc,
    TB* h, long long h_sr, long long h_st, long long h_sc,
    TB* last, long long last_sr, long long last_sc,
    long long R, long long T, long long C, int rev) {
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= R * C) return;
    const long long r = chain / C, c = chain % C;
    TB s = h0[r * h0_sr + c * h0_sc];
    for (long long tau = 0; tau < T; ++tau) {
        const long long t = step_of(tau, T, rev);
        s = a[r * a_sr + t * a_st + c * a_sc] * s + b[r * b_sr + t * b_st + c * b_sc];
        h[r * h_sr + t * h_st + c * h_sc] = s;
    }
    last[r * last_sr + c * last_sc] = s;
}

template <typename TA, typename TB>
__global__ void backward_channels(
    const TB* gh, long long gh_sr, long long gh_st, long long gh_sc,
    const TA* a, long long a_sr, long long a_st, long long a_sc,
    const TB* h, long long h_sr, long long h_st, long long h_sc,
    const TB* h0, long long h0_sr, long long h0_sc,
    const TB* glast, long long gl_sr, long long gl_sc,
    TA* ga, long long ga_sr, long long ga_st, long long ga_sc,
    TB* gb, long long gb_sr, long long gb_st, long long gb_sc,
    TB* gh0, long long gh0_sr, long long gh0_sc,
    long long R, long long T, long long C, int rev, int accumulate) {
    const long long chain = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= R * C) return;
    const long long r = chain / C, c = chain % C;
    TB carry = glast[r * gl_sr + c * gl_sc];
    TA total = zero<TA>();
    for (long long tau = 0; tau < T; ++tau) {
        const long long t = step_of(tau, T, rev);
        const TB prev = tau + 1 < T ? h[r * h_sr + step_of(tau + 1, T, rev) * h_st + c * h_sc]
                                    : h0[r * h0_sr + c * h0_sc];
        const TB g = gh[r * gh_sr + t * gh_st + c * gh_sc] + carry;
        gb[r * gb_sr + t * gb_st + c * gb_sc] = g;
        const TA grad = grad_cast<TA, TB>::of(g * traits<TB>::conj(prev));
        if (accumulate) {
            total = total + grad;
        } else {
            ga[r * ga_sr + t * ga_st + c * ga_sc] = grad;
        }
        carry = traits<TA>::conj(a[r * a_sr + t * a_st + c * a_sc]) * g;
    }
    gh0[r * gh0_sr + c * gh0_sc] = carry;
    if (accumulate) ga[r * ga_sr + c * ga_sc] = total;
}
