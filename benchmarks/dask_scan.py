"""Benchmark linrec.dask.scan: throughput, per-chunk overhead, memory beyond the workers'.

(a) throughput on the threaded scheduler against the in-memory ``linrec.scan`` on the same
    data and the floor ``np.multiply(a, b, out=h)`` (the same 12 bytes per float32
    element); also the alternative built on ``dask.array.reductions.cumreduction`` with
    ``method="blelloch"`` over packed (cumprod a, h) pairs, which is what linrec.dask's
    explicit three passes were measured against;
(b) the cost per chunk: the same array split into more and more chunks along time;
(c) peak memory of a scan over an array larger than the memory of a 2-process
    ``LocalCluster`` (measured with ``distributed.diagnostics.MemorySampler``).

Times are medians of ``--repeat`` runs; ratios compare runs made side by side.

    python benchmarks/dask_scan.py                       # print the tables
    python benchmarks/dask_scan.py --out docs/benchmarks/dask.md
"""

import argparse
import logging
import os
import platform
import statistics
import time

import dask
import dask.array as da
import numpy as np
import psutil
from dask.array.reductions import cumreduction

import linrec
import linrec.dask as ld

MiB = 2**20


def _median_seconds(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _pairs_local(x, axis, dtype=None):
    """Block of packed ``[a, b]`` -> packed ``[cumprod(a), h from a zero state]``."""
    return np.stack([np.cumprod(x[0], axis=axis - 1),
                     linrec.scan(x[0], x[1], axis=axis - 1)])


def _pairs_total(x, axis, keepdims=True, dtype=None):
    """Block of packed ``[a, b]`` -> its pair ``[prod(a), final state]``, time kept as 1."""
    _, last = linrec.scan(x[0], x[1], axis=axis - 1, return_last=True)
    return np.stack([np.prod(x[0], axis=axis - 1, keepdims=True),
                     np.expand_dims(last, axis - 1)])


def _compose(first, then):
    """The pair of "first, then": ``(A2 * A1, A2 * B1 + B2)``, broadcast over time."""
    return np.stack([then[0] * first[0], then[0] * first[1] + then[1]])


def cumreduction_scan(a, b):
    """The recurrence along the last axis via ``cumreduction(method="blelloch")``.

    ``a`` must have ``b``'s shape and chunks (the packing materialises it).
    """
    packed = da.stack([a.astype(b.dtype), b]).rechunk({0: 2})
    pairs = cumreduction(_pairs_local, _compose, None, packed, axis=b.ndim,
                         dtype=b.dtype, method="blelloch", preop=_pairs_total)
    return pairs[1]


def _store_seconds(h, out, repeat):
    return _median_seconds(lambda: da.store(h, out, lock=False, scheduler="threads"),
                           repeat)


def throughput(channels, steps, chunks, repeat):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.9, 1.0, (channels, steps)).astype(np.float32)
    b = rng.standard_normal((channels, steps)).astype(np.float32)
    out = np.empty_like(b)
    a_d = da.from_array(a, chunks=(channels, steps // chunks))
    b_d = da.from_array(b, chunks=(channels, steps // chunks))
    explicit, blelloch = ld.scan(a_d, b_d), cumreduction_scan(a_d, b_d)
    np.testing.assert_allclose(blelloch.compute(), explicit.compute(), rtol=1e-3, atol=1e-3)
    rows = [
        ("np.multiply(a, b, out=h) (floor)",
         _median_seconds(lambda: np.multiply(a, b, out=out), repeat)),
        ("linrec.scan, in memory", _median_seconds(lambda: linrec.scan(a, b, out=out),
                                                   repeat)),
        ("linrec.dask.scan (3 passes), threads", _store_seconds(explicit, out, repeat)),
        ("cumreduction blelloch, threads", _store_seconds(blelloch, out, repeat)),
    ]
    base = rows[1][1]
    gb = 12 * a.size / 1e9
    lines = [f"(a) throughput: float32 ({channels}, {steps}), {chunks} chunks along time, "
             f"result stored into a NumPy array",
             "", "| method | median ms | GB/s (12 B/element) | time / linrec.scan |",
             "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t * 1e3:.1f} | {gb / t:.2f} | {t / base:.2f} |"
              for name, t in rows]
    return lines


def per_chunk_overhead(channels, steps, chunk_counts, repeat):
    """``chunk_counts`` must start with 1: the other rows are compared with it."""
    b = np.random.default_rng(1).standard_normal((channels, steps)).astype(np.float32)
    out = np.empty_like(b)
    base = _median_seconds(lambda: linrec.scan(0.99, b, out=out), repeat)
    lines = [f"(b) per-chunk cost: float32 ({channels}, {steps}), a = 0.99, threads",
             "", "| chunks along time | tasks | median ms | time / linrec.scan | "
             "µs per extra chunk (vs 1 chunk) |", "|---:|---:|---:|---:|---:|"]
    one_chunk = None
    for n in chunk_counts:
        h = ld.scan(0.99, da.from_array(b, chunks=(channels, -(-steps // n))))
        tasks = len(h.__dask_graph__())
        t = _store_seconds(h, out, repeat)
        one_chunk = t if one_chunk is None else one_chunk
        extra = f"{(t - one_chunk) / (n - 1) * 1e6:.0f}" if n > 1 else "-"
        lines.append(f"| {n} | {tasks} | {t * 1e3:.1f} | {t / base:.2f} | {extra} |")
    return lines


def beyond_memory(channels, chunk_steps, chunks, memory_limit):
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=":0",
                           memory_limit=memory_limit, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        a = np.linspace(0.99, 0.9999, channels, dtype=np.float32)[:, None]
        small = da.ones((channels, 4 * chunk_steps), chunks=(channels, chunk_steps),
                        dtype=np.float32)
        ld.scan(a, small).sum().compute()
        idle = sum(client.run(lambda: psutil.Process().memory_info().rss).values())
        b = da.random.default_rng(7).random((channels, chunk_steps * chunks),
                                            chunks=(channels, chunk_steps),
                                            dtype=np.float32)
        sampler = MemorySampler()
        start = time.perf_counter()
        with sampler.sample("scan"):
            ld.scan(a, b).sum(axis=1).compute()
        seconds = time.perf_counter() - start
        with sampler.sample("generate only"):
            b.sum(axis=1).compute()
        peaks = sampler.to_pandas().max()
    limit = 2 * memory_limit
    return [f"(c) memory: 2 worker processes x {memory_limit // MiB} MiB on loopback, "
            f"float32 ({channels}, {chunk_steps * chunks}) in {chunks} chunks of "
            f"{b.nbytes // chunks // MiB} MiB, generated on the workers, scanned, "
            f"reduced", "", "| quantity | value |", "|---|---:|",
            f"| array size | {b.nbytes / MiB:.0f} MiB ({b.nbytes / limit:.1f} x the "
            f"workers' total limit) |",
            f"| workers' total memory limit | {limit / MiB:.0f} MiB |",
            f"| workers' memory when idle (after warm-up) | {idle / MiB:.0f} MiB |",
            f"| peak workers' memory, scan | {peaks['scan'] / MiB:.0f} MiB |",
            f"| peak workers' memory, generating b only | "
            f"{peaks['generate only'] / MiB:.0f} MiB |",
            f"| wall time of the scan | {seconds:.1f} s |"]


def machine():
    freq = psutil.cpu_freq()
    return [f"Machine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} logical CPUs"
            + (f" at {freq.max:.0f} MHz" if freq and freq.max else "")
            + f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM (shared with other "
            f"jobs; load average {os.getloadavg()[0]:.1f} at the start), Python "
            f"{platform.python_version()}, NumPy {np.__version__}, dask {dask.__version__}",
            f"CPU model: {_cpu_model()}"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", help="also write the tables (Markdown) to this file")
    args = parser.parse_args()
    lines = ["# linrec.dask benchmark", "", "Command: `python benchmarks/dask_scan.py "
             f"--repeat {args.repeat}`", "", *machine(), ""]
    for section in (throughput(8, 2**21, 16, args.repeat), "",
                    per_chunk_overhead(8, 2**20, [1, 16, 128, 1024], args.repeat), "",
                    beyond_memory(4, 2**19, 200, 400 * MiB)):
        lines += section if isinstance(section, list) else [section]
        print("\n".join(section if isinstance(section, list) else [section]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
