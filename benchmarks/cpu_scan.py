"""CPU benchmark: linrec against the memory-bandwidth floor and the tools people use today.

Prints one table of medians and ratios, all measured in one run on this machine, and
writes it (Markdown, with the machine description) to ``docs/benchmarks/cpu_scan.md``
unless ``--no-write`` is given. Usage::

    python benchmarks/cpu_scan.py [--quick] [--repeats N] [--no-write]

Floor: ``np.multiply(a, b, out=h)`` on the same arrays (reads 2, writes 1: the bytes a
forward scan must move). ``fwd/floor`` times ``linrec.scan(a, b, out=h)`` against it
(lower is better; below 1 is possible because the floor is single-threaded NumPy while
linrec uses every core). ``bwd/fwd`` compares ``scan_vjp`` with ``scan`` when both
allocate their outputs, as users call them (fresh memory costs page faults: about as much
as the scan itself on this machine); ``bwd/fwd (out=)`` compares them writing into
preallocated outputs (``scan_vjp(..., out=(grad_a, grad_b))`` against ``scan(...,
out=h)``), as a training loop that keeps its buffers calls them. The load average when
the run starts is printed with the table: other work on the machine inflates every time.
Peers are compared with the allocating forward (``lfilter`` with the constant-``a``
forward, since it only takes constant coefficients). Peers that would take minutes (the
NumPy loop on long rows) are timed on a prefix of the time axis and scaled linearly;
the table marks them with "~".
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
import scipy
import scipy.signal

import linrec
from linrec.cpu.kernels import scan_1d

SHAPES = [((256, 65536), -1, "time-last"), ((65536, 256), 0, "time-first"),
          ((1, 2**24), -1, "one long row")]
QUICK_SHAPES = [((64, 16384), -1, "time-last"), ((16384, 64), 0, "time-first"),
                ((1, 2**21), -1, "one long row")]
DTYPES = [np.float32, np.float64, np.complex64]
LOOP_STEPS = 2048


NOTES = """## What bounds the backward (measured 2026-12-01, two runs, loaded machine)

The table above is one run on a loaded machine (load average 7.5 at its start: every
time, the floor included, is 2-3x the quiet machine's). A second run minutes later
(load average 2.7 at its start; floors from 4.8 to 18.3 ms within the run, so other jobs
still came and went) gave the second table in `docs/benchmarks/cpu_scan.md`.

Over the two runs: `bwd/fwd` 1.58-3.05 time-last, 1.76-3.08 time-first, 1.07-2.03 on
the long row; `bwd/fwd (out=)` 1.08-1.64, 1.52-2.09 and 0.92-1.89.

`bwd/fwd` compares `scan_vjp` with `scan` both allocating: the backward
allocates two fresh gradient arrays where the forward allocates one, and on this machine
their page faults cost about as much as the scan itself; `bwd/fwd (out=)` compares them
writing into preallocated arrays. The bytes allow about 1.7x (the adjoint reads
`grad_h`, `a`, `h` and writes `grad_a`, `grad_b`: 20 bytes per float32 element against
the forward's 12).

Kernel-only, one thread (`NUMBA_NUM_THREADS=1`, thread CPU time, best of 15, kernels
called directly on preallocated C-contiguous arrays), the code before this change
(5053bb2) and after it, in one run (load average 7.1 at its start):

| kernel, shape | dtype | bwd/fwd before | bwd/fwd after |
|---|---|---|---|
| channels (1, 16384, 256) | float32 | 3.78 | 1.76 |
| channels (1, 16384, 256) | float64 | 3.36 | 1.86 |
| channels (1, 16384, 256) | complex64 | 3.85 | 1.81 |
| rows (64, 65536) | float32 | 1.91 | 1.37 |
| rows (64, 65536) | float64 | 1.82 | 1.52 |
| rows (64, 65536) | complex64 | 1.93 | 1.49 |
| chunked (1, 2**23), 8 forward chunks | float32 | 2.32 | 1.29 |
| chunked (1, 2**23), 8 forward chunks | float64 | 2.19 | 1.32 |
| chunked (1, 2**23), 8 forward chunks | complex64 | 2.29 | 1.16 |

What made the backward slow, found in the generated code and by timing variants:

- **channels**: its channel loops were not vectorised. Numba indexes with signed
  integers and guards each access with a negative-index wraparound; LLVM could not see
  through it in the backward ("unsafe dependent memory operations"; the forward's index
  counts up from 0, which LLVM proves non-negative). The runtime flags `add` and
  `accumulate` inside the loop also kept it scalar (a fused loop testing them per
  element: 4.2x the forward, float32). And the backward walked each time step's
  channels upwards while the time steps go down: that pattern defeats the hardware
  prefetcher (the same fused, vectorised loop measured 3.0x the forward walking
  channels upwards, 1.55x downwards, float32; the forward walked that way measured
  1.7x its own time). Now one fused loop per time step runs the channels from the
  highest down with unsigned indices, in one inlined variant per combination of the
  flags, passed as constants. A fused loop had been tried before and measured no
  faster: it was still not vectorised.
- **rows, chunked**: one adjoint step waits for an addition and then a multiplication
  (`carry = conj(a) * (grad_h + carry)`; an FMA would reassociate it, changing the
  rounding and where it overflows), so two interleaved lanes left the core waiting on
  that latency; four lanes stream twenty arrays, more than the prefetcher follows
  (measured slower, as before). Three lanes (fifteen streams) measured 1.15-1.3x faster
  than two. The lanes now run their skewed first and last steps alone, so the steady
  loop tests no bounds, with the flags as constants and unsigned indices. The chunked
  backward cut positions [1, T) with the forward's chunk length, so its last chunk was
  one step short and its last group of chunks, not full, ran them one by one at half
  the speed or less; it now cuts three chunks per forward group of four, all full, the
  few steps left over in one short chunk at the end.

What bounds it now: the channels backward streams at about the forward's rate (1.6-1.9x
its time, kernel-only, for 1.7x the bytes); rows and chunked are below the bytes' 1.7x
because their forwards do not stream at full speed either (four lanes of multiply-add
chains, and the chunked forward reads its input twice). Still above 1.8 with `out=`:
time-first float64 in both runs (1.94, 2.09) and complex64 in one (2.09, then 1.70);
the kernel alone measured 1.7-1.9x there (float64 moves 40 bytes per element against
24; this shape runs on one thread, 256 float64 channels being too few to split): memory
traffic, on a machine whose other jobs shared the memory bus during both runs. The
long row's complex64 1.89 (second run) is a spread of that run (1.26 and 0.92
otherwise; kernel-only 1.16). The allocating column adds the page faults of two fresh
arrays against one and moves far more between runs (time-last float64: 1.73, then
3.05, with `out=` 1.55 and 1.11).
"""


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@numba.njit(cache=True)
def _njit_loop(a, b, h):
    for i in range(b.shape[0]):
        scan_1d(a[i], b[i], 0.0, h[i], False)


def njit_loop(a, b, h, axis):
    """A plain sequential @njit loop (one thread), rows moved to the last axis."""
    am, bm, hm = (np.moveaxis(x, axis, -1) for x in (a, b, h))
    _njit_loop(am, bm, hm)


def numpy_loop(a, b, h, axis, steps):
    """The recurrence as a Python loop over time of vectorised NumPy steps."""
    am, bm, hm = (np.moveaxis(x, axis, -1) for x in (a, b, h))
    state = np.zeros(bm.shape[:-1], bm.dtype)
    for t in range(steps):
        state = am[..., t] * state + bm[..., t]
        hm[..., t] = state


def jax_scan():
    """jax.lax.associative_scan over pairs, jitted; None when jax is not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def combine(left, right):
        return right[0] * left[0], right[0] * left[1] + right[1]

    def run(a, b, axis):
        return jax.lax.associative_scan(combine, (a, b), axis=axis)[1]

    return jax.jit(run, static_argnums=2)


def make_inputs(shape, dtype, rng):
    real = np.finfo(dtype).dtype
    a = rng.uniform(0.9, 0.999, shape).astype(real).astype(dtype)
    b = rng.standard_normal(shape).astype(real).astype(dtype)
    return a, b


def bench_case(shape, axis, dtype, repeats, rng, jax_fn):
    a, b = make_inputs(shape, dtype, rng)
    h = np.empty_like(b)
    floor = median_time(lambda: np.multiply(a, b, out=h), repeats)
    row = {"floor": floor}
    row["forward"] = median_time(lambda: linrec.scan(a, b, axis=axis, out=h), repeats)
    row["forward alloc"] = median_time(lambda: linrec.scan(a, b, axis=axis), repeats)
    hh = linrec.scan(a, b, axis=axis)
    gh = np.ones_like(b)
    row["backward"] = median_time(lambda: linrec.scan_vjp(gh, a, hh, axis=axis), repeats)
    grads = (np.empty_like(a), np.empty_like(b))
    row["backward out"] = median_time(
        lambda: linrec.scan_vjp(gh, a, hh, axis=axis, out=grads), repeats)
    row["njit loop"] = median_time(lambda: njit_loop(a, b, h, axis), max(1, repeats // 2))
    T = shape[axis]
    steps = min(T, LOOP_STEPS)
    loop = median_time(lambda: numpy_loop(a, b, h, axis, steps), 1)
    row["numpy loop"] = loop * T / steps
    row["numpy loop scaled"] = steps < T
    a_const = a.flat[0]
    row["forward const a"] = median_time(lambda: linrec.scan(a_const, b, axis=axis),
                                         repeats)
    row["lfilter"] = median_time(
        lambda: scipy.signal.lfilter([1.0], [1.0, -a_const], b, axis=axis),
        max(1, repeats // 2))
    if jax_fn is not None:
        import jax
        import jax.numpy as jnp

        ja, jb = jnp.asarray(a), jnp.asarray(b)
        row["jax"] = median_time(lambda: jax.block_until_ready(jax_fn(ja, jb, axis)),
                                 max(1, repeats // 2))
    return row


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = (f"Python {platform.python_version()}, numpy {np.__version__}, "
                f"numba {numba.__version__} (threads {numba.get_num_threads()}), "
                f"scipy {scipy.__version__}, linrec {linrec.__version__}")
    try:
        import jax

        versions += f", jax {jax.__version__}"
    except ImportError:
        versions += ", jax not installed"
    return f"{cpu}, {os.cpu_count()} logical CPUs; {versions}"


def format_table(results):
    header = ("| shape | axis | dtype | floor ms | fwd/floor | bwd/fwd | bwd/fwd (out=) "
              "| njit loop/fwd | numpy loop/fwd | lfilter/fwd(const a) | jax/fwd |")
    lines = [header, "|" + "---|" * 11]
    for (label, shape, axis, dtype), row in results:
        fwd = row["forward alloc"]
        loop_mark = "~" if row["numpy loop scaled"] else ""
        lfilter = f"{row['lfilter'] / row['forward const a']:.1f}"
        jax_ratio = f"{row['jax'] / fwd:.1f}" if "jax" in row else "n/a"
        lines.append(
            f"| {shape} {label} | {axis} | {np.dtype(dtype).name} | "
            f"{row['floor'] * 1e3:.1f} | {row['forward'] / row['floor']:.2f} | "
            f"{row['backward'] / fwd:.2f} | {row['backward out'] / row['forward']:.2f} | "
            f"{row['njit loop'] / fwd:.1f} | "
            f"{loop_mark}{row['numpy loop'] / fwd:.0f} | {lfilter} | {jax_ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", default=str(Path(__file__).parents[1] / "docs" /
                                                "benchmarks" / "cpu_scan.md"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0]
    jax_fn = jax_scan()
    results = []
    for shape, axis, label in (QUICK_SHAPES if args.quick else SHAPES):
        for dtype in DTYPES:
            print(f"  {shape} axis={axis} {np.dtype(dtype).name} ...", file=sys.stderr)
            row = bench_case(shape, axis, dtype, args.repeats, rng, jax_fn)
            results.append(((label, shape, axis, dtype), row))
    table = format_table(results)
    machine = machine_description()
    print(f"{machine}; load average {load:.1f} at the start")
    print(table)
    if not args.no_write:
        text = (f"# CPU benchmark\n\nMachine: {machine}\n\nCommand: `python "
                f"benchmarks/cpu_scan.py{' --quick' if args.quick else ''}` "
                f"(medians of {args.repeats} repeats, all in one run; load average "
                f"{load:.1f} when it started)\n\n{table}\n\n{NOTES}")
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
