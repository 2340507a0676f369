// Warp- and block-level building blocks of the tiled scan kernels.
//
// A warp owns a sub-tile of 32 * ITEMS consecutive steps (in iteration order). It loads
// the sub-tile "striped" (item i of lane L is step i * 32 + L: every load instruction of
// the warp touches 32 consecutive elements), transposes it through shared memory to the
// "blocked" arrangement (lane L owns steps L * ITEMS .. L * ITEMS + ITEMS - 1), scans in
// registers and shuffles, and transposes back to store striped.
#ifndef LINREC_TILE_CUH
#define LINREC_TILE_CUH

#include "linrec_scalar.cuh"

// Shared-memory slots per warp for one transposed array: one padding slot per 32 keeps
// the blocked reads free of bank conflicts for 4-byte types.
#define LINREC_SLOTS(ITEMS) (33 * (ITEMS))

__device__ __forceinline__ int padded(int k) { return k + (k >> 5); }

__device__ __forceinline__ long long lmin(long long x, long long y) { return x < y ? x : y; }

// Memory index of iteration step tau (a reverse scan runs from the last step).
__device__ __forceinline__ long long step_of(long long tau, long long T, int rev) {
    return rev ? T - 1 - tau : tau;
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
        r = valid ? chain / C : 0;
        c = valid ? chain % C : 0;
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
    for (int k = 0; k < group_warps; ++k) {
        if (k == at.rank) entering = carry;
        Pair<TA, TB> q;
        q.a = agg_a[parity][at.first + k];
        q.b = agg_b[parity][at.first + k];
        carry = apply(q, carry);
    }
    return entering;
}

#endif  // LINREC_TILE_CUH
