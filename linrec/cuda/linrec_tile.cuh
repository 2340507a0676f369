// Warp- and block-level building blocks of the tiled scan kernels.
//
// A warp owns a sub-tile of 32 * ITEMS consecutive steps (in iteration order). It loads
// the sub-tile "striped" (item i of lane L is step i * 32 + L: every load instruction of
// the warp touches 32 consecutive elements), transposes it through shared memory to the
// "blocked" arrangement (lane L owns steps L * ITEMS .. L * ITEMS + ITEMS - 1), scans in
// registers and shuffles, and transposes back to store striped.
//
// Addressing: a thread keeps one pointer per operand at its first step of the current
// chunk; item i sits i * (+-32 * time stride) elements further and exists while
// i * 32 < `left` (a 32-bit count), so the inner loops do no 64-bit index arithmetic.
#ifndef LINREC_TILE_CUH
#define LINREC_TILE_CUH

#include "linrec_scalar.cuh"

// Shared-memory slots per warp for one transposed array: one padding slot per 32 keeps
// the blocked reads free of bank conflicts for 4-byte types.
#define LINREC_SLOTS(ITEMS) (33 * (ITEMS))

__device__ __forceinline__ int padded(int k) { return k + (k >> 5); }

__device__ __forceinline__ long long lmin(long long x, long long y) { return x < y ? x : y; }

// q = x / d and r = x % d for x >= 0, d > 0: a 32-bit division when both fit (nearly
// always), else the much longer 64-bit one.
__device__ __forceinline__ void divide(long long x, long long d, long long& q, long long& r) {
    if (((unsigned long long)x | (unsigned long long)d) >> 32 == 0) {
        const unsigned q32 = (unsigned)x / (unsigned)d;
        q = q32;
        r = (unsigned)x - q32 * (unsigned)d;
    } else {
        q = x / d;
        r = x - q * d;
    }
}

// Steps from iteration step tau to `end`, clamped to [0, 32 * ITEMS]: the 32-bit bound of
// one sub-tile's striped items.
template <int ITEMS>
__device__ __forceinline__ int steps_left(long long tau, long long end) {
    const long long n = end - tau;
    return n <= 0 ? 0 : n >= LINREC_WARP * ITEMS ? LINREC_WARP * ITEMS : (int)n;
}

// Memory index of iteration step tau (a reverse scan runs from the last step).
__device__ __forceinline__ long long step_of(long long tau, long long T, int rev) {
    return rev ? T - 1 - tau : tau;
}

// Striped loads and stores of one sub-tile: item i at p[i * step], present when
// i * 32 < left (step = +-32 * the time stride; p may point past the data when left == 0).
template <typename T, int ITEMS>
__device__ __forceinline__ void load_striped(T (&v)[ITEMS], const T* p, long long step,
                                             int left, T fill) {
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) v[i] = i * LINREC_WARP < left ? p[i * step] : fill;
}

template <typename T, int ITEMS>
__device__ __forceinline__ void store_striped(const T (&v)[ITEMS], T* p, long long step,
                                              int left) {
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        if (i * LINREC_WARP < left) p[i * step] = v[i];
    }
}

template <typename T, int ITEMS>
__device__ __forceinline__ void striped_to_blocked(T (&v)[ITEMS], T* buf, int lane) {
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) buf[padded(i * LINREC_WARP + lane)] = v[i];
    __syncwarp();
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) v[i] = buf[padded(lane * ITEMS + i)];
    __syncwarp();
}

template <typename T, int ITEMS>
__device__ __forceinline__ void blocked_to_striped(T (&v)[ITEMS], T* buf, int lane) {
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) buf[padded(lane * ITEMS + i)] = v[i];
    __syncwarp();
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) v[i] = buf[padded(i * LINREC_WARP + lane)];
    __syncwarp();
}

// Inclusive scan of the lanes' pairs (Kogge-Stone, 5 shuffle steps).
template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> warp_inclusive(Pair<TA, TB> p, int lane) {
#pragma unroll
    for (int d = 1; d < LINREC_WARP; d <<= 1) {
        Pair<TA, TB> prev;
        prev.a = shfl_up(p.a, d);
        prev.b = shfl_up(p.b, d);
        if (lane >= d) p = compose(prev, p);
    }
    return p;
}

// The exclusive scan from the inclusive one: lane L gets lane L-1's, lane 0 the identity.
template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> warp_exclusive(Pair<TA, TB> inclusive, int lane) {
    Pair<TA, TB> prev;
    prev.a = shfl_up(inclusive.a, 1);
    prev.b = shfl_up(inclusive.b, 1);
    return lane == 0 ? identity_pair<TA, TB>() : prev;
}

template <typename TA, typename TB>
__device__ __forceinline__ Pair<TA, TB> warp_total(Pair<TA, TB> inclusive) {
    Pair<TA, TB> total;
    total.a = shfl_idx(inclusive.a, LINREC_WARP - 1);
    total.b = shfl_idx(inclusive.b, LINREC_WARP - 1);
    return total;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int m = LINREC_WARP / 2; m >= 1; m >>= 1) v = v + shfl_xor(v, m);
    return v;
}

// Where the calling warp sits: a block of WARPS warps serves WARPS / group_warps chains,
// group_warps consecutive warps per chain; blockIdx.y is the time segment.
struct Place {
    int lane, warp, group, rank, first;
    long long chain, r, c, begin, end;
    bool valid;

    __device__ Place(int warps, int group_warps, long long R, long long T, long long C,
                     long long seg_len) {
        lane = threadIdx.x % LINREC_WARP;
        warp = threadIdx.x / LINREC_WARP;
        group = warp / group_warps;
        rank = warp % group_warps;
        first = group * group_warps;
        chain = (long long)blockIdx.x * (warps / group_warps) + group;
        valid = chain < R * C;
        r = 0;
        c = 0;
        if (valid) divide(chain, C, r, c);
        begin = (long long)blockIdx.y * seg_len;
        end = lmin(T, begin + seg_len);
    }
};

// Publish each warp's total, then fold the group's totals in order: returns the state
// entering the calling warp's sub-tile, and advances `carry` past the whole chunk.
template <typename TA, typename TB, int WARPS>
__device__ __forceinline__ TB group_carry(Pair<TA, TB> total, TB& carry, const Place& at,
                                          int group_warps, TA (*agg_a)[WARPS],
                                          TB (*agg_b)[WARPS], int parity) {
    if (at.lane == 0) {
        agg_a[parity][at.warp] = total.a;
        agg_b[parity][at.warp] = total.b;
    }
    __syncthreads();
    TB entering = carry;
#pragma unroll
    for (int k = 0; k < WARPS; ++k) {
        if (k < group_warps) {
            if (k == at.rank) entering = carry;
            Pair<TA, TB> q;
            q.a = agg_a[parity][at.first + k];
            q.b = agg_b[parity][at.first + k];
            carry = apply(q, carry);
        }
    }
    return entering;
}

// The pair of the warps before the calling one in a block that scans one tile with all
// its warps, and the whole tile's pair, from the warp totals in shared memory.
template <typename TA, typename TB, int WARPS>
__device__ __forceinline__ void block_prefix(const TA* agg_a, const TB* agg_b, int warp,
                                             Pair<TA, TB>& before, Pair<TA, TB>& total) {
    total = identity_pair<TA, TB>();
    before = total;
#pragma unroll
    for (int k = 0; k < WARPS; ++k) {
        if (k == warp) before = total;
        Pair<TA, TB> q;
        q.a = agg_a[k];
        q.b = agg_b[k];
        total = compose(total, q);
    }
}

// Status of a tile in the single-pass scan (0: nothing published yet).
#define LINREC_AGGREGATE 1  // its own pair is in agg_a / agg_b
#define LINREC_INCLUSIVE 2  // the state after it is in inc

// Decoupled look-back, called by one whole warp: the state entering tile m of a chain whose
// tile k has status slot first + k * stride. Lane L inspects tile top - 31 + L of a window
// of 32 (top = m - 1 first): it waits until that tile has published something, then the
// warp folds the aggregates after the nearest inclusive state onto it; with no inclusive
// state in the window it folds all 32 aggregates and moves the window back. Tiles before
// the first count as inclusive with state `start`. Only tiles k < m are waited on, and
// their blocks took their tickets earlier, so they are running or done.
template <typename TA, typename TB>
__device__ __forceinline__ TB look_back(const int* flags, const TA* agg_a, const TB* agg_b,
                                        const TB* inc, long long first, long long stride,
                                        long long m, TB start, int lane) {
    Pair<TA, TB> later = identity_pair<TA, TB>();
    for (long long top = m - 1;; top -= LINREC_WARP) {
        const long long mine = top - (LINREC_WARP - 1 - lane);
        const long long j = first + mine * stride;
        int flag = LINREC_INCLUSIVE;
        if (mine >= 0) {
            do {
                flag = *(const volatile int*)(flags + j);
            } while (flag == 0);
        }
        __threadfence();
        const unsigned inclusive = __ballot_sync(LINREC_FULL_MASK, flag == LINREC_INCLUSIVE);
        const int nearest = inclusive ? LINREC_WARP - 1 - __clz((int)inclusive) : -1;
        Pair<TA, TB> q = identity_pair<TA, TB>();
        if (lane == nearest) {
            q.a = zero<TA>();
            q.b = mine >= 0 ? load_volatile(inc + j) : start;
        } else if (lane > nearest) {
            q.a = load_volatile(agg_a + j);
            q.b = load_volatile(agg_b + j);
        }
        later = compose(warp_total(warp_inclusive(q, lane)), later);
        if (inclusive) return later.b;
    }
}

// Where a single-pass block works: ticket k = atomicAdd(status, 1), taken by thread 0 when
// the block starts, names tile m = k / chains of chain k % chains (all tiles m before any
// tile m + 1), whose flag is status[1 + k]. Tickets, chains and C are below 2**31 (one
// ticket per block of a 1-D grid), so 32-bit divisions suffice.
struct Ticket {
    long long k, m, chain, r, c;

    __device__ Ticket(int* status, long long chains, long long C, int* shared) {
        if (threadIdx.x == 0) *shared = atomicAdd(status, 1);
        __syncthreads();
        const unsigned k32 = (unsigned)*shared, chain32 = k32 % (unsigned)chains;
        k = k32;
        m = k32 / (unsigned)chains;
        chain = chain32;
        r = chain32 / (unsigned)C;
        c = chain32 % (unsigned)C;
    }
};

// Warp 0 of a single-pass block, with its tile's pair `whole`: publishes the pair, looks
// back for the state entering the tile (`start` at the chain's start), publishes the state
// after the tile and returns the entering one.
template <typename TA, typename TB>
__device__ __forceinline__ TB single_pass_carry(int* status, TA* agg_a, TB* agg_b, TB* inc,
                                                const Ticket& at, long long chains,
                                                Pair<TA, TB> whole, TB start, int lane) {
    int* flags = status + 1;
    if (lane == 0) {
        agg_a[at.k] = whole.a;
        agg_b[at.k] = whole.b;
        __threadfence();
        *(volatile int*)(flags + at.k) = LINREC_AGGREGATE;
    }
    const TB entering = look_back(flags, agg_a, agg_b, inc, at.chain, chains, at.m, start,
                                  lane);
    if (lane == 0) {
        inc[at.k] = apply(whole, entering);
        __threadfence();
        *(volatile int*)(flags + at.k) = LINREC_INCLUSIVE;
    }
    return entering;
}

// The state entering each lane of a look-back tile, from the lanes' own pairs: the block's
// scan of the pairs (through the shared `warp_a`, `warp_b`), the state entering the tile
// from the tiles before it (single_pass_carry, `*start` in the chain's first tile, shared
// with the block through `carry_in`), and the state after the tile, written to `*after`
// when `last_tile`. Every thread of the block calls it.
template <typename TA, typename TB, int WARPS>
__device__ __forceinline__ TB tile_entry_state(Pair<TA, TB> own, TA* warp_a, TB* warp_b,
                                               TB& carry_in, int* status, TA* agg_a,
                                               TB* agg_b, TB* inc, const Ticket& at,
                                               long long chains, const TB* start,
                                               bool last_tile, TB* after, int warp,
                                               int lane) {
    const Pair<TA, TB> inclusive = warp_inclusive(own, lane);
    const Pair<TA, TB> before_lane = warp_exclusive(inclusive, lane);
    const Pair<TA, TB> total = warp_total(inclusive);
    if (lane == 0) {
        warp_a[warp] = total.a;
        warp_b[warp] = total.b;
    }
    __syncthreads();
    Pair<TA, TB> before_warp, whole;
    block_prefix<TA, TB, WARPS>(warp_a, warp_b, warp, before_warp, whole);
    if (warp == 0) {
        const TB entering = single_pass_carry(status, agg_a, agg_b, inc, at, chains, whole,
                                              *start, lane);
        if (lane == 0) {
            carry_in = entering;
            if (last_tile) *after = apply(whole, entering);
        }
    }
    __syncthreads();
    return apply(before_lane, apply(before_warp, carry_in));
}

#endif  // LINREC_TILE_CUH
