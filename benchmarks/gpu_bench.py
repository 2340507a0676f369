"""GPU benchmark of linrec's CUDA kernels, as ratios to the copy floor on the same card.

For each shape and dtype, in one run on one card: a device-to-device copy (the bandwidth
floor), an elementwise kernel moving exactly the bytes of the scan (read a, b, write h:
12 bytes per float32 element forward; read grad_h, a, h, write grad_a, grad_b: 20 bytes
backward), linrec's forward and backward, and peers: a naive CuPy loop over time (timed
on its first steps and extrapolated when T is long) and accelerated-scan 0.3.1's kernels
through PyTorch when importable (float32 only, power-of-two lengths): ``warp`` (a CUDA
extension compiled on first import, T <= 65536 only) and ``scalar`` (Triton).

Times are CUDA-event medians of many repeats after warm-up, on inputs far larger than L2.
Writes ``gpu_bench.md`` (the table and the targets met or missed), ``gpu_bench.json``
(every number) and ``gpu_bench_errors.log`` under ``--out``. Each measurement is guarded:
one failure is logged and the rest still run. Targets (``TARGETS``): forward at least 90%
of the copy's bandwidth and the fused backward at least 80% on the large shapes, one long
row (``LONG_ROW``) at least 70% forward.

Usage: python benchmarks/gpu_bench.py --out DIR [--peers-only | --no-peers] [--quick]
           [--small]   (tiny shapes: a rehearsal on the CuPy stand-in of tests/fake_cupy)
       python benchmarks/gpu_bench.py --warm-cpu PAIR   (compile the CPU kernels the GPU
       tests compare with, for dtype pair number PAIR, into Numba's cache; no GPU needed)
       python benchmarks/gpu_bench.py --warm-gpu PAIR   (compile that pair's CUDA kernel
       module into CuPy's cache)
"""

import argparse
import json
import pathlib
import statistics
import sys
import time
import traceback

import numpy as np

SHAPES = [(8, 1536, 65536), (64, 1024, 2048), (4096, 128, 256), (1, 1, 2**26)]
SMALL_SHAPES = [(2, 3, 4096), (1, 1, 2**15)]
LONG_ROW = (1, 1)  # shapes starting so are one long row
TARGETS = {"fwd": 90.0, "bwd": 80.0, "long_row_fwd": 70.0}  # % of copy bandwidth
WARP_MAX_T = 65536  # accelerated_scan.warp accepts no longer sequence; scalar is one
# Triton program over all of T, so it is not tried beyond that either
DTYPES = ["float32", "float64", "complex64"]
# Time not the contiguous axis (float32 only): few chains (copied to time-last first),
# and many chains (one thread per chain).
TIME_MIDDLE = [(8, 65536, 1536), (64, 2048, 1024)]
NAIVE_STEPS = 128
TARGET_SECONDS = 0.4


class Log:
    """Collects rows and errors; writes them under the output folder as it goes."""

    def __init__(self, out):
        self.out = pathlib.Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.rows = []
        self.errors = self.out / "gpu_bench_errors.log"

    def error(self, what):
        text = f"--- {what}\n{traceback.format_exc()}\n"
        print(f"ERROR in {what} (see gpu_bench_errors.log)", file=sys.stderr)
        with self.errors.open("a") as f:
            f.write(text)

    def add(self, row):
        self.rows.append(row)
        (self.out / "gpu_bench.json").write_text(json.dumps(self.rows, indent=1))


def time_gpu(cupy, fn, repeats=None, warmup=2):
    """Median seconds of ``fn()`` with CUDA events."""
    for _ in range(warmup):
        fn()
    cupy.cuda.Device().synchronize()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    if repeats is None:
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        once = cupy.cuda.get_elapsed_time(start, stop) / 1e3
        repeats = int(min(50, max(5, TARGET_SECONDS / max(once, 1e-6))))
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def random_array(cupy, shape, dtype, low, high):
    x = cupy.random.uniform(low, high, shape, dtype=np.float32)
    if np.dtype(dtype).kind == "c":
        x = x * cupy.exp(1j * cupy.random.uniform(0, 6.28, shape, dtype=np.float32))
    return x.astype(dtype)


def fits(cupy, shape, dtype, arrays):
    free, _ = cupy.cuda.runtime.memGetInfo()
    need = int(np.prod(shape)) * np.dtype(dtype).itemsize * arrays
    return need < 0.85 * free


def naive_loop(cupy, a, b, h, steps):
    """h[..., t] = a[..., t] * h[..., t-1] + b[..., t] for the first ``steps`` steps."""
    prev = cupy.zeros(b.shape[:-1], b.dtype)
    for t in range(steps):
        prev = a[..., t] * prev + b[..., t]
        h[..., t] = prev


def bench_linrec(cupy, log, shape, dtype, quick, axis=-1):
    import linrec

    n = int(np.prod(shape))
    item = np.dtype(dtype).itemsize
    if not fits(cupy, shape, dtype, 9):
        log.add(dict(shape=shape, dtype=dtype, skipped="not enough GPU memory"))
        return
    a = random_array(cupy, shape, dtype, 0.5, 0.999)
    b = random_array(cupy, shape, dtype, -1, 1)
    h = cupy.empty_like(b)
    gh = random_array(cupy, shape, dtype, -1, 1)
    row = dict(shape=shape, dtype=dtype, elements=n, axis=axis)
    copy = cupy.ElementwiseKernel("T x", "T y", "y = x", "linrec_bench_copy")
    fwd_floor = cupy.ElementwiseKernel("T x, T y", "T z", "z = x * y", "linrec_bench_fwd")
    bwd_floor = cupy.ElementwiseKernel("T x, T y, T z", "T u, T v", "u = x * y; v = z",
                                       "linrec_bench_bwd")
    ga, gb = cupy.empty_like(b), cupy.empty_like(b)
    repeats = 5 if quick else None
    measures = {
        "copy_s": lambda: copy(b, h),
        "floor_fwd_s": lambda: fwd_floor(a, b, h),
        "floor_bwd_s": lambda: bwd_floor(gh, a, h, ga, gb),
        "linrec_fwd_s": lambda: linrec.scan(a, b, out=h, axis=axis),
        "linrec_bwd_s": lambda: linrec.scan_vjp(gh, a, h, axis=axis),
    }
    for name, fn in measures.items():
        try:
            row[name] = time_gpu(cupy, fn, repeats)
        except Exception:
            log.error(f"{name} {shape} {dtype}")
    row["copy_GBps"] = 2 * n * item / row["copy_s"] / 1e9 if "copy_s" in row else None
    for kind, arrays in (("fwd", 3), ("bwd", 5)):
        key = f"linrec_{kind}_s"
        if key in row and row.get("copy_GBps"):
            gbps = arrays * n * item / row[key] / 1e9
            row[f"linrec_{kind}_GBps"] = gbps
            row[f"linrec_{kind}_pct_copy"] = 100 * gbps / row["copy_GBps"]
            row[f"linrec_{kind}_vs_floor"] = row[f"floor_{kind}_s"] / row[key]
    steps = min(shape[-1], NAIVE_STEPS)
    if axis != -1:
        log.add(row)
        return
    try:
        t = time_gpu(cupy, lambda: naive_loop(cupy, a, b, h, steps), repeats=3, warmup=1)
        row["naive_fwd_s"] = t * shape[-1] / steps
        row["naive_note"] = "" if steps == shape[-1] else f"extrapolated from {steps} steps"
    except Exception:
        log.error(f"naive {shape} {dtype}")
    log.add(row)


def bench_accelerated_scan(cupy, log, shape, quick):
    """accelerated-scan's warp and Triton kernels, float32, through PyTorch (DLPack)."""
    row = dict(shape=shape, dtype="float32", peer="accelerated-scan")
    try:
        import torch
    except ImportError:
        row["skipped"] = "PyTorch is not importable here"
        log.add(row)
        return
    if not fits(cupy, shape, "float32", 8):
        row["skipped"] = "not enough GPU memory"
        log.add(row)
        return
    gates = torch.rand(shape, device="cuda") * 0.499 + 0.5
    tokens = torch.rand(shape, device="cuda") * 2 - 1
    grad = torch.rand(shape, device="cuda")
    for name, module in (("warp", "accelerated_scan.warp"),
                         ("triton", "accelerated_scan.scalar")):
        if shape[-1] > WARP_MAX_T:
            row[f"{name}_error"] = f"T > {WARP_MAX_T}: not supported (warp) / a single " \
                f"Triton block over all of T (scalar)"
            continue
        try:
            scan = __import__(module, fromlist=["scan"]).scan
            row[f"{name}_fwd_s"] = time_torch(lambda scan=scan: scan(gates, tokens), quick)

            def fwd_bwd(scan=scan):
                g = gates.detach().requires_grad_()
                x = tokens.detach().requires_grad_()
                scan(g, x).backward(grad)

            row[f"{name}_fwdbwd_s"] = time_torch(fwd_bwd, quick)
        except Exception:
            row[f"{name}_error"] = traceback.format_exc(limit=1).strip().splitlines()[-1]
            log.error(f"accelerated-scan {name} {shape}")
    log.add(row)


def free_torch_cache():
    if "torch" in sys.modules:
        sys.modules["torch"].cuda.empty_cache()


def time_torch(fn, quick):
    import torch

    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(5 if quick else 20):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def _ms(x):
    return "" if x is None else f"{1e3 * x:.3f}"


def _num(x, fmt):
    return "" if x is None else format(x, fmt)


def table(rows):
    """The Markdown table of the linrec rows, and one of the accelerated-scan rows."""
    lines = [
        "| shape | dtype | copy GB/s | fwd ms | fwd % copy | fwd / floor | bwd ms "
        "| bwd % copy | bwd / floor | fwd+bwd ms | naive fwd ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    peers = ["| shape | accel. warp fwd ms | warp fwd+bwd ms | triton fwd ms "
             "| triton fwd+bwd ms | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        if r.get("axis", -1) != -1:
            shape += f" (axis={r['axis']})"
        if r.get("peer"):
            note = r.get("skipped") or "; ".join(
                f"{k}: {v}" for k, v in r.items() if k.endswith("_error"))
            peers.append(f"| {shape} | {_ms(r.get('warp_fwd_s'))} "
                         f"| {_ms(r.get('warp_fwdbwd_s'))} | {_ms(r.get('triton_fwd_s'))} "
                         f"| {_ms(r.get('triton_fwdbwd_s'))} | {note} |")
            continue
        if r.get("skipped"):
            lines.append(f"| {shape} | {r['dtype']} | skipped: {r['skipped']} |")
            continue
        both = None
        if r.get("linrec_fwd_s") and r.get("linrec_bwd_s"):
            both = r["linrec_fwd_s"] + r["linrec_bwd_s"]
        lines.append(
            f"| {shape} | {r['dtype']} | {_num(r.get('copy_GBps'), '.0f')} "
            f"| {_ms(r.get('linrec_fwd_s'))} | {_num(r.get('linrec_fwd_pct_copy'), '.1f')} "
            f"| {_num(r.get('linrec_fwd_vs_floor'), '.2f')} | {_ms(r.get('linrec_bwd_s'))} "
            f"| {_num(r.get('linrec_bwd_pct_copy'), '.1f')} "
            f"| {_num(r.get('linrec_bwd_vs_floor'), '.2f')} | {_ms(both)} "
            f"| {_ms(r.get('naive_fwd_s'))} {r.get('naive_note', '')} |")
    return "\n".join(lines) + "\n\n" + "\n".join(peers) + "\n"


def targets(rows):
    """Markdown lines: each target against the measured linrec rows (met, missed, or not
    measured)."""
    lines = ["| shape | dtype | pass | % copy | target | verdict |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("peer") or r.get("skipped") or r.get("axis", -1) != -1:
            continue
        long_row = tuple(r["shape"][:2]) == LONG_ROW
        checks = [("fwd", "long_row_fwd")] if long_row else [("fwd", "fwd"), ("bwd", "bwd")]
        for kind, target in checks:
            pct = r.get(f"linrec_{kind}_pct_copy")
            verdict = "not measured" if pct is None else \
                "met" if pct >= TARGETS[target] else "MISSED"
            lines.append(f"| {'x'.join(map(str, r['shape']))} | {r['dtype']} | {kind} "
                         f"| {_num(pct, '.1f')} | >= {TARGETS[target]:.0f} | {verdict} |")
    return "\n".join(lines) + "\n"


def describe(cupy):
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (f"device: {name}, {props['multiProcessorCount']} SMs, "
            f"{props['totalGlobalMem'] / 2**30:.0f} GiB, "
            f"L2 {props['l2CacheSize'] / 2**20:.0f} MiB; CuPy {cupy.__version__}, "
            f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")


def warm_cpu(pair):
    """Run the CPU path on the kinds of problems ``tests/test_cuda_gpu.py`` draws, for
    dtype pair number ``pair``, so that Numba compiles (and caches) them up front."""
    sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "tests"))
    import test_cuda_gpu as cases

    import linrec

    rng = np.random.default_rng(0)
    started = time.time()
    for T in (33, 70000):
        for layout in cases.LAYOUTS:
            for a_kind in cases.A_KINDS:
                for reverse in (False, True):
                    a, b, h0, axis = cases._problem(rng, cases._kernels.PAIRS[pair], T,
                                                    layout, a_kind)
                    h = linrec.scan(a, b, h0=h0, axis=axis, reverse=reverse)
                    linrec.scan(a, b, axis=axis, reverse=reverse, return_last=True)
                    linrec.scan_vjp(h, a, h, h0=h0, axis=axis, reverse=reverse,
                                    grad_last=h0)
                    linrec.scan_vjp(h, a, h, axis=axis, reverse=reverse)
    print(f"pair {pair}: CPU kernels ready in {time.time() - started:.0f}s", flush=True)


def warm_gpu(pair):
    """Compile (into CuPy's cache) the kernel module of dtype pair number ``pair``."""
    from linrec.cuda import _kernels

    started = time.time()
    ta, tb = _kernels.PAIRS[pair]
    for kernel in _kernels.KERNELS:
        _kernels.function(kernel, ta, tb)
    print(f"pair {pair}: kernels compiled in {time.time() - started:.0f}s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-cpu", type=int, metavar="PAIR")
    parser.add_argument("--warm-gpu", type=int, metavar="PAIR")
    parser.add_argument("--out")
    parser.add_argument("--peers-only", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--quick", action="store_true", help="few repeats, for a smoke run")
    parser.add_argument("--small", action="store_true",
                        help="tiny shapes, for a rehearsal on the CuPy stand-in")
    args = parser.parse_args()
    if args.warm_cpu is not None:
        warm_cpu(args.warm_cpu)
        return
    if args.warm_gpu is not None:
        warm_gpu(args.warm_gpu)
        return
    if args.out is None:
        parser.error("--out is required")
    log = Log(args.out)
    import cupy

    header = describe(cupy)
    print(header, flush=True)
    started = time.time()
    for shape in SMALL_SHAPES if args.small else SHAPES:
        if not args.peers_only:
            for dtype in DTYPES:
                try:
                    bench_linrec(cupy, log, shape, dtype, args.quick)
                except Exception:
                    log.error(f"linrec {shape} {dtype}")
                cupy.get_default_memory_pool().free_all_blocks()
                print(f"{shape} {dtype} done at {time.time() - started:.0f}s", flush=True)
        if not args.no_peers and shape[-1] & (shape[-1] - 1) == 0:
            try:
                bench_accelerated_scan(cupy, log, shape, args.quick)
            except Exception:
                log.error(f"accelerated-scan {shape}")
            free_torch_cache()
    if not args.peers_only and not args.small:
        for shape in TIME_MIDDLE:
            try:
                bench_linrec(cupy, log, shape, "float32", args.quick, axis=1)
            except Exception:
                log.error(f"linrec {shape} axis=1")
            cupy.get_default_memory_pool().free_all_blocks()
    text = (f"{header}\n\nratios: '% copy' = bytes the scan must move / time, over the "
            f"copy's bandwidth; '/ floor' = time of an elementwise kernel moving the same "
            f"bytes / the scan's time (1.0 is the memory-bound limit).\n\n"
            f"{table(log.rows)}")
    if not args.peers_only:
        text += f"\ntargets (% of copy bandwidth):\n\n{targets(log.rows)}"
    name = "gpu_bench_peers.md" if args.peers_only else "gpu_bench.md"
    (log.out / name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
