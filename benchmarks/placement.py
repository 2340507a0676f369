"""How much the scans' speed depends on where their arrays lie in memory.

Two tables, every number measured in one run (medians over interleaved rounds):

1. **Row count.** ``linrec.scan(a, b, out=h)`` and ``linrec.scan_vjp(gh, a, h,
   out=(ga, gb))`` on (R, 65536) time-last arrays allocated by NumPy, for R around 256
   (the shape of ``benchmarks/cpu_scan.py``). Times are per row, so equal work gives
   equal numbers; ``/ R=255`` sets each row count's time against R = 255. ``pages``
   lists where the backward's five arrays (gh, a, h, ga, gb) start relative to the
   first, modulo 2 MiB (a transparent huge page), in 4 KiB pages.
2. **Spacing.** The same calls on six (255, 65536) float32 arrays carved out of one
   buffer at a chosen spacing: each array starts ``delta`` bytes after the previous
   one's 2 MiB-rounded end. ``/ best`` sets each spacing against the fastest.

Usage::

    python benchmarks/placement.py [--rounds N] [--dtype float32]

A machine-dependent effect: read it as "this machine's memory punishes streams that lie
close together modulo 2 MiB", not as a property of the kernels; the analysis is in
``docs/benchmarks/cpu_scan.md``.
"""

import argparse
import os
import time

import numpy as np

import linrec

T = 65536
ROW_COUNTS = (252, 255, 256, 257, 260)
HUGE_PAGE = 1 << 21
PAGE = 4096
SPACINGS = (0, 2048, 4096, 8192, 65536, 69632, 258048, 1 << 20)


def _arrays(rng, shape, dtype, buffers=None):
    """gh, a, h, ga, gb, b of ``shape``: fresh NumPy arrays, or views of ``buffers``."""
    if buffers is None:
        buffers = [np.empty(shape, dtype) for _ in range(6)]
    gh, a, h, ga, gb, b = buffers
    a[...] = rng.uniform(0.9, 0.999, shape)
    gh[...] = rng.standard_normal(shape)
    b[...] = rng.standard_normal(shape)
    linrec.scan(a, b, out=h)
    return gh, a, h, ga, gb, b


def _pages(arrays):
    """Start of each array relative to the first, modulo a huge page, in 4 KiB pages."""
    first = arrays[0].ctypes.data
    return [((x.ctypes.data - first) % HUGE_PAGE) // PAGE for x in arrays]


def _carved(nbytes, delta, dtype, shape):
    """Six arrays in one buffer, each ``delta`` bytes after the previous one's end
    rounded up to a huge page; the buffer (to keep alive) and the arrays."""
    stride = -(-nbytes // HUGE_PAGE) * HUGE_PAGE + delta
    buffer = np.empty(6 * stride + 2 * HUGE_PAGE, np.uint8)
    start = (-buffer.ctypes.data) % HUGE_PAGE
    starts = [start + k * stride for k in range(6)]
    views = [buffer[s:s + nbytes].view(dtype).reshape(shape) for s in starts]
    return buffer, views


def _time(function, *args, **kwargs):
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def row_counts(dtype, rounds, rng):
    """Table 1's rows: (R, forward µs per row, backward µs per row, pages)."""
    sets = {r: _arrays(rng, (r, T), dtype) for r in ROW_COUNTS}
    fwd = {r: [] for r in ROW_COUNTS}
    bwd = {r: [] for r in ROW_COUNTS}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for r, (gh, a, h, ga, gb, b) in sets.items():
            fwd[r].append(_time(linrec.scan, a, b, out=h) / r * 1e6)
            bwd[r].append(_time(linrec.scan_vjp, gh, a, h, out=(ga, gb)) / r * 1e6)
    return [(r, np.median(fwd[r][1:]), np.median(bwd[r][1:]), _pages(sets[r][:5]))
            for r in ROW_COUNTS]


def spacings(rounds, rng):
    """Table 2's rows: (delta, forward ms, backward ms) on (255, T) float32."""
    shape, dtype = (255, T), np.dtype(np.float32)
    nbytes = shape[0] * shape[1] * dtype.itemsize
    sets = {}
    for delta in SPACINGS:
        buffer, views = _carved(nbytes, delta, dtype, shape)
        sets[delta] = (buffer, _arrays(rng, shape, dtype, views))
    fwd = {d: [] for d in SPACINGS}
    bwd = {d: [] for d in SPACINGS}
    for _ in range(rounds + 1):
        for d, (_, (gh, a, h, ga, gb, b)) in sets.items():
            fwd[d].append(_time(linrec.scan, a, b, out=h) * 1e3)
            bwd[d].append(_time(linrec.scan_vjp, gh, a, h, out=(ga, gb)) * 1e3)
    return [(d, np.median(fwd[d][1:]), np.median(bwd[d][1:])) for d in SPACINGS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    print(f"load average {os.getloadavg()[0]:.1f} at the start; {args.rounds} rounds")
    rows = row_counts(dtype, args.rounds, rng)
    ref = {r: (f, b) for r, f, b, _ in rows}[255]
    print(f"\n(R, {T}) time-last {dtype}, out= given, µs per row")
    print("| R | fwd | bwd | bwd/fwd | fwd / R=255 | bwd / R=255 | pages |")
    print("|---|---|---|---|---|---|---|")
    for r, f, b, pages in rows:
        print(f"| {r} | {f:.1f} | {b:.1f} | {b / f:.2f} | {f / ref[0]:.2f} | "
              f"{b / ref[1]:.2f} | {pages} |")
    spaced = spacings(args.rounds, rng)
    best_fwd = min(f for _, f, _ in spaced)
    best_bwd = min(b for _, _, b in spaced)
    print(f"\n(255, {T}) float32, out= given, six arrays spaced by 2 MiB multiples "
          "+ delta, ms")
    print("| delta KiB | fwd | bwd | bwd/fwd | fwd / best | bwd / best |")
    print("|---|---|---|---|---|---|")
    for d, f, b in spaced:
        print(f"| {d / 1024:g} | {f:.1f} | {b:.1f} | {b / f:.2f} | {f / best_fwd:.2f} | "
              f"{b / best_bwd:.2f} |")


if __name__ == "__main__":
    main()
