"""Parallel Numba kernels over canonical 3-D views ``(R, T, C)``.

Every array argument is a strided view with the time axis in the middle: R and C are the
two batch dimensions the launcher kept (C the one with the smaller stride), T is time in
iteration order (the launcher flips the views for a reverse scan, so the kernels only run
forwards). Broadcast operands have stride 0 and are never materialised. Batch-only
operands (h0, final states, their gradients) are ``(R, C)`` views.

Three schedules, each with a forward kernel and a fused backward kernel:

- rows: chains (r, c) in parallel, ``LANES`` chains interleaved per task so one FMA
  dependency chain does not bound the speed; for time-contiguous data. Lane k runs
  ``k * SKEW`` steps behind lane 0 so that the lanes' addresses differ modulo 4 KiB: rows
  of a power-of-two length otherwise map to the same cache sets and evict each other.
- channels: a block of C in parallel, the inner loop runs across contiguous channels
  (it vectorises); for data whose time axis is not the fastest.
- chunked: reduce-then-scan over time chunks for few, long rows. Phase 1 reduces each
  chunk to its affine pair (A, B); a short sequential pass turns the pairs into each
  chunk's carry-in; phase 3 rescans each chunk from its carry-in. 20 bytes moved per
  float32 element forward (vs 12 for one pass), all cores busy.

Backward kernels compute, in iteration order t = T-1 .. 0,
``g = grad_h[t] + carry``, ``grad_b[t] = g``, ``grad_a[t] = g * conj(h[t-1])``,
``carry = conj(a[t]) * g``, with ``h[-1] = h0`` and the first carry ``grad_last``; the
last carry is ``grad_h0``.
When ``grad_a`` has a time extent of 1 (``a`` constant in time) it receives the sum over t.
"""

import numba
import numpy as np
from numba import prange

from linrec.cpu._dispatch import call
from linrec.cpu.kernels import as_grad

LANES = 4
SKEW = 64

_jit = numba.njit(parallel=True, cache=True, nogil=True)
_inline = numba.njit(cache=True, inline="always")


@_inline
def _step(a, b, h, r, t, c, state):
    state = a[r, t, c] * state + b[r, t, c]
    h[r, t, c] = state
    return state


@_jit
def forward_rows(a, b, h, h0, hlast):
    R, T, C = h.shape
    n = R * C
    groups = (n + LANES - 1) // LANES
    skewed = T > 3 * SKEW
    for g in prange(groups):
        i = g * LANES
        if i + LANES <= n and skewed:
            r0, c0 = i // C, i % C
            r1, c1 = (i + 1) // C, (i + 1) % C
            r2, c2 = (i + 2) // C, (i + 2) % C
            r3, c3 = (i + 3) // C, (i + 3) % C
            s0, s1, s2, s3 = h0[r0, c0], h0[r1, c1], h0[r2, c2], h0[r3, c3]
            for t in range(SKEW):
                s0 = _step(a, b, h, r0, t, c0, s0)
            for t in range(SKEW, 2 * SKEW):
                s0 = _step(a, b, h, r0, t, c0, s0)
                s1 = _step(a, b, h, r1, t - SKEW, c1, s1)
            for t in range(2 * SKEW, 3 * SKEW):
                s0 = _step(a, b, h, r0, t, c0, s0)
                s1 = _step(a, b, h, r1, t - SKEW, c1, s1)
                s2 = _step(a, b, h, r2, t - 2 * SKEW, c2, s2)
            for t in range(3 * SKEW, T):
                s0 = _step(a, b, h, r0, t, c0, s0)
                s1 = _step(a, b, h, r1, t - SKEW, c1, s1)
                s2 = _step(a, b, h, r2, t - 2 * SKEW, c2, s2)
                s3 = _step(a, b, h, r3, t - 3 * SKEW, c3, s3)
            for t in range(T - SKEW, T):
                s1 = _step(a, b, h, r1, t, c1, s1)
                s2 = _step(a, b, h, r2, t - SKEW, c2, s2)
                s3 = _step(a, b, h, r3, t - 2 * SKEW, c3, s3)
            for t in range(T - SKEW, T):
                s2 = _step(a, b, h, r2, t, c2, s2)
                s3 = _step(a, b, h, r3, t - SKEW, c3, s3)
            for t in range(T - SKEW, T):
                s3 = _step(a, b, h, r3, t, c3, s3)
            hlast[r0, c0], hlast[r1, c1], hlast[r2, c2], hlast[r3, c3] = s0, s1, s2, s3
        else:
            for j in range(i, min(i + LANES, n)):
                r, c = j // C, j % C
                s = h0[r, c]
                for t in range(T):
                    s = _step(a, b, h, r, t, c, s)
                hlast[r, c] = s


@_jit
def forward_channels(a, b, h, h0, hlast, block):
    R, T, C = h.shape
    nblocks = (C + block - 1) // block
    for task in prange(R * nblocks):
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


@_jit
def _chunk_pairs_forward(a, b, length, pair_a, pair_b):
    """Phase 1: the affine pair (prod a, scan of b from 0) of every chunk and chain."""
    R, T, C = b.shape
    for k in prange(pair_a.shape[0]):
        t0 = k * length
        t1 = min(T, t0 + length)
        for r in range(R):
            for c in range(C):
                pair_a[k, r, c] = 1.0
                pair_b[k, r, c] = 0.0
            for t in range(t0, t1):
                for c in range(C):
                    pair_a[k, r, c] = a[r, t, c] * pair_a[k, r, c]
                    pair_b[k, r, c] = a[r, t, c] * pair_b[k, r, c] + b[r, t, c]


@numba.njit(cache=True, nogil=True)
def _carry_in(pair_a, pair_b, init, carries):
    """Phase 2: carries[k] = state entering chunk k; returns the final state."""
    state = init.copy()
    for k in range(pair_a.shape[0]):
        carries[k] = state
        state = pair_a[k] * state + pair_b[k]
    return state


@_jit
def _rescan_chunks(a, b, h, length, carries):
    """Phase 3: rescan every chunk from its carry-in, writing h."""
    R, T, C = h.shape
    for k in prange(carries.shape[0]):
        t0 = k * length
        t1 = min(T, t0 + length)
        for r in range(R):
            for c in range(C):
                h[r, t0, c] = a[r, t0, c] * carries[k, r, c] + b[r, t0, c]
            for t in range(t0 + 1, t1):
                for c in range(C):
                    h[r, t, c] = a[r, t, c] * h[r, t - 1, c] + b[r, t, c]


def forward_chunked(a, b, h, h0, hlast, length):
    """Reduce-then-scan over time chunks of ``length`` steps (arguments as forward_rows)."""
    R, T, C = h.shape
    chunks = -(-T // length)
    dtype = h.dtype
    pair_a = np.empty((chunks, R, C), dtype)
    pair_b = np.empty((chunks, R, C), dtype)
    call(_chunk_pairs_forward, a, b, length, pair_a, pair_b)
    carries = np.empty((chunks, R, C), dtype)
    hlast[...] = call(_carry_in, pair_a, pair_b, np.array(h0, dtype), carries)
    call(_rescan_chunks, a, b, h, length, carries)


@_inline
def _back_step(ops, r, t, c, carry, total, accumulate):
    """One adjoint step at time t of chain (r, c); returns (carry, total).

    ``ops`` is the tuple ``(grad_h, a, h, h0, grad_a, grad_b)``.
    """
    grad_h, a, h, h0, grad_a, grad_b = ops
    g = grad_h[r, t, c] + carry
    grad_b[r, t, c] = as_grad(g, grad_b)
    prev = h[r, t - 1, c] if t > 0 else h0[r, c]
    if accumulate:
        total += g * np.conj(prev)
    else:
        grad_a[r, t, c] = as_grad(g * np.conj(prev), grad_a)
    return np.conj(a[r, t, c]) * g, total


@_jit
def backward_rows(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0):
    R, T, C = h.shape
    accumulate = grad_a.shape[1] != T
    n = R * C
    groups = (n + LANES - 1) // LANES
    skewed = T > 3 * SKEW
    ops = (grad_h, a, h, h0, grad_a, grad_b)
    for g in prange(groups):
        i = g * LANES
        if i + LANES <= n and skewed:
            r0, c0 = i // C, i % C
            r1, c1 = (i + 1) // C, (i + 1) % C
            r2, c2 = (i + 2) // C, (i + 2) % C
            r3, c3 = (i + 3) // C, (i + 3) % C
            k0, k1, k2, k3 = glast[r0, c0], glast[r1, c1], glast[r2, c2], glast[r3, c3]
            z0, z1, z2, z3 = 0.0 * k0, 0.0 * k1, 0.0 * k2, 0.0 * k3
            top = T - 1
            for u in range(SKEW):
                k0, z0 = _back_step(ops, r0, top - u, c0, k0, z0, accumulate)
            for u in range(SKEW, 2 * SKEW):
                k0, z0 = _back_step(ops, r0, top - u, c0, k0, z0, accumulate)
                k1, z1 = _back_step(ops, r1, top - u + SKEW, c1, k1, z1, accumulate)
            for u in range(2 * SKEW, 3 * SKEW):
                k0, z0 = _back_step(ops, r0, top - u, c0, k0, z0, accumulate)
                k1, z1 = _back_step(ops, r1, top - u + SKEW, c1, k1, z1, accumulate)
                k2, z2 = _back_step(ops, r2, top - u + 2 * SKEW, c2, k2, z2, accumulate)
            for u in range(3 * SKEW, T):
                k0, z0 = _back_step(ops, r0, top - u, c0, k0, z0, accumulate)
                k1, z1 = _back_step(ops, r1, top - u + SKEW, c1, k1, z1, accumulate)
                k2, z2 = _back_step(ops, r2, top - u + 2 * SKEW, c2, k2, z2, accumulate)
                k3, z3 = _back_step(ops, r3, top - u + 3 * SKEW, c3, k3, z3, accumulate)
            for t in range(SKEW - 1, -1, -1):
                k1, z1 = _back_step(ops, r1, t, c1, k1, z1, accumulate)
                k2, z2 = _back_step(ops, r2, t + SKEW, c2, k2, z2, accumulate)
                k3, z3 = _back_step(ops, r3, t + 2 * SKEW, c3, k3, z3, accumulate)
            for t in range(SKEW - 1, -1, -1):
                k2, z2 = _back_step(ops, r2, t, c2, k2, z2, accumulate)
                k3, z3 = _back_step(ops, r3, t + SKEW, c3, k3, z3, accumulate)
            for t in range(SKEW - 1, -1, -1):
                k3, z3 = _back_step(ops, r3, t, c3, k3, z3, accumulate)
            grad_h0[r0, c0], grad_h0[r1, c1] = k0, k1
            grad_h0[r2, c2], grad_h0[r3, c3] = k2, k3
            if accumulate:
                grad_a[r0, 0, c0] = as_grad(z0, grad_a)
                grad_a[r1, 0, c1] = as_grad(z1, grad_a)
                grad_a[r2, 0, c2] = as_grad(z2, grad_a)
                grad_a[r3, 0, c3] = as_grad(z3, grad_a)
        else:
            for j in range(i, min(i + LANES, n)):
                r, c = j // C, j % C
                k = glast[r, c]
                z = 0.0 * k
                for t in range(T - 1, -1, -1):
                    k, z = _back_step(ops, r, t, c, k, z, accumulate)
                grad_h0[r, c] = k
                if accumulate:
                    grad_a[r, 0, c] = as_grad(z, grad_a)


@_jit
def backward_channels(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0, block):
    R, T, C = h.shape
    accumulate = grad_a.shape[1] != T
    nblocks = (C + block - 1) // block
    for task in prange(R * nblocks):
        r = task // nblocks
        c0 = (task % nblocks) * block
        c1 = min(C, c0 + block)
        carry = glast[r, c0:c1].copy()
        total = np.zeros_like(carry)
        for t in range(T - 1, -1, -1):
            ght, at, gbt = grad_h[r, t, c0:c1], a[r, t, c0:c1], grad_b[r, t, c0:c1]
            prev = h[r, t - 1, c0:c1] if t > 0 else h0[r, c0:c1]
            gat = grad_a[r, 0 if accumulate else t, c0:c1]
            for c in range(c1 - c0):
                g = ght[c] + carry[c]
                gbt[c] = as_grad(g, gbt)
                if accumulate:
                    total[c] += g * np.conj(prev[c])
                else:
                    gat[c] = as_grad(g * np.conj(prev[c]), gat)
                carry[c] = np.conj(at[c]) * g
        grad_h0[r, c0:c1] = carry
        if accumulate:
            for c in range(c1 - c0):
                grad_a[r, 0, c0 + c] = as_grad(total[c], grad_a)


@_jit
def _chunk_pairs_backward(grad_h, a, length, pair_a, pair_b):
    """Phase 1 of the backward pass: the chunk's map carry_in -> carry_out."""
    R, T, C = grad_h.shape
    for k in prange(pair_a.shape[0]):
        t0 = k * length
        t1 = min(T, t0 + length)
        for r in range(R):
            for c in range(C):
                pair_a[k, r, c] = 1.0
                pair_b[k, r, c] = 0.0
            for t in range(t1 - 1, t0 - 1, -1):
                for c in range(C):
                    ca = np.conj(a[r, t, c])
                    pair_a[k, r, c] = ca * pair_a[k, r, c]
                    pair_b[k, r, c] = ca * (grad_h[r, t, c] + pair_b[k, r, c])


@numba.njit(cache=True, nogil=True)
def _carry_in_backward(pair_a, pair_b, init, carries):
    state = init.copy()
    for k in range(pair_a.shape[0] - 1, -1, -1):
        carries[k] = state
        state = pair_a[k] * state + pair_b[k]
    return state


@_jit
def _rescan_chunks_backward(grad_h, a, h, h0, grad_a, grad_b, length, carries, totals):
    R, T, C = h.shape
    accumulate = grad_a.shape[1] != T
    for k in prange(carries.shape[0]):
        t0 = k * length
        t1 = min(T, t0 + length)
        for r in range(R):
            for t in range(t1 - 1, t0 - 1, -1):
                for c in range(C):
                    g = grad_h[r, t, c] + carries[k, r, c]
                    grad_b[r, t, c] = as_grad(g, grad_b)
                    prev = h[r, t - 1, c] if t > 0 else h0[r, c]
                    if accumulate:
                        totals[k, r, c] += g * np.conj(prev)
                    else:
                        grad_a[r, t, c] = as_grad(g * np.conj(prev), grad_a)
                    carries[k, r, c] = np.conj(a[r, t, c]) * g


def backward_chunked(grad_h, a, h, h0, glast, grad_a, grad_b, grad_h0, length):
    """The backward pass over time chunks of ``length`` steps (arguments as
    backward_rows)."""
    R, T, C = h.shape
    chunks = -(-T // length)
    dtype = grad_h0.dtype
    pair_a = np.empty((chunks, R, C), dtype)
    pair_b = np.empty((chunks, R, C), dtype)
    call(_chunk_pairs_backward, grad_h, a, length, pair_a, pair_b)
    carries = np.empty((chunks, R, C), dtype)
    grad_h0[...] = call(_carry_in_backward, pair_a, pair_b, np.array(glast, dtype),
                        carries)
    totals = np.zeros((chunks, R, C), dtype)
    call(_rescan_chunks_backward, grad_h, a, h, h0, grad_a, grad_b, length, carries,
         totals)
    if grad_a.shape[1] != T:
        total = totals.sum(axis=0)
        grad_a[:, 0, :] = total if grad_a.dtype.kind == "c" else total.real
