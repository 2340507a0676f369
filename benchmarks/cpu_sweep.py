"""CPU sweep over sequence length: throughput and ratio to the floor, per dtype, as PNGs.

Keeps the number of elements fixed (``--elements``, default 2**23) and varies the length
T of each row from 2**4 to all of it, so the plots show where each schedule takes over
(many short rows -> rows, one long row -> chunked). All curves of one dtype are measured
in one run, side by side: the floor ``np.multiply(a, b, out=h)``, linrec forward
(``out=h``) and backward (``out=(grad_a, grad_b)``), a plain sequential ``@njit`` loop
and ``scipy.signal.lfilter`` (constant ``a``). It also times single calls on a small
``(4, 256)`` float32 problem (the per-call cost: validation, layout, dispatch), with and
without preallocated outputs. Writes ``docs/benchmarks/cpu_throughput.png``,
``docs/benchmarks/cpu_ratio.png`` and ``docs/benchmarks/cpu_sweep.md``::

    python benchmarks/cpu_sweep.py [--elements N] [--repeats N]
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

import matplotlib
import numpy as np
import scipy.signal

import linrec

sys.path.insert(0, str(Path(__file__).parent))
from cpu_scan import (  # noqa: E402
    interleaved_times,
    machine_description,
    make_inputs,
    median_time,
    njit_loop,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DTYPES = [np.float32, np.float64, np.complex64]
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def measure(a, b, repeats):
    """Median seconds of every curve on one (rows, T) problem."""
    h = np.empty_like(b)
    gh = np.ones_like(b)
    grads = (np.empty_like(a), np.empty_like(b))
    a0 = a.flat[0]
    return {
        "floor (np.multiply)": median_time(lambda: np.multiply(a, b, out=h), repeats),
        "linrec forward": median_time(lambda: linrec.scan(a, b, out=h), repeats),
        "linrec backward": median_time(lambda: linrec.scan_vjp(gh, a, h, out=grads),
                                       repeats),
        "@njit loop": median_time(lambda: njit_loop(a, b, h, -1), repeats),
        "lfilter (const a)": median_time(
            lambda: scipy.signal.lfilter([1.0], [1.0, -a0], b, axis=-1), repeats),
    }


def sweep(dtype, elements, repeats, rng):
    rows = {}
    lengths = [2**k for k in range(4, int(np.log2(elements)) + 1, 2)]
    if lengths[-1] != elements:
        lengths.append(elements)
    for T in lengths:
        times = measure(*make_inputs((elements // T, T), dtype, rng), repeats)
        rows[T] = times
        print(f"  {np.dtype(dtype).name} T={T}: " + ", ".join(
            f"{k} {v * 1e3:.2f} ms" for k, v in times.items()), file=sys.stderr)
    return rows


def plot(results, elements, machine):
    names = list(next(iter(next(iter(results.values())).values())))
    fig_t, axes_t = plt.subplots(1, len(results), figsize=(5 * len(results), 4),
                                 sharey=True)
    fig_r, axes_r = plt.subplots(1, len(results), figsize=(5 * len(results), 4),
                                 sharey=True)
    for ax_t, ax_r, (dtype, rows) in zip(axes_t, axes_r, results.items()):
        lengths = sorted(rows)
        for name in names:
            seconds = np.array([rows[T][name] for T in lengths])
            ax_t.loglog(lengths, elements / seconds / 1e9, marker="o", label=name)
            if not name.startswith("floor"):
                floor = np.array([rows[T]["floor (np.multiply)"] for T in lengths])
                ax_r.loglog(lengths, seconds / floor, marker="o", label=name)
        ax_r.axhline(1.0, color="gray", lw=0.8)
        for ax, ylabel in ((ax_t, "Gelements / s"), (ax_r, "time / floor")):
            ax.set_title(dtype)
            ax.set_xlabel(f"sequence length T (rows = {elements} / T)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
    axes_t[0].legend(fontsize=8)
    axes_r[0].legend(fontsize=8)
    for fig, name, title in ((fig_t, "cpu_throughput.png", "throughput"),
                             (fig_r, "cpu_ratio.png", "ratio to the floor")):
        fig.suptitle(f"linrec CPU {title} — {machine}", fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / name, dpi=110)


def small_calls(repeats=2000, rounds=15):
    """Microseconds per call on a (4, 256) float32 problem: ``{name: (median, best)}``
    over ``rounds`` batches of ``repeats`` calls each, the calls' batches interleaved
    (each round runs one batch of every call in turn, so a slow spell of the machine
    hits them alike). The best batch is the least disturbed one: the per-call cost of
    the code, where the median also carries the machine's noise."""
    a = np.full((4, 256), 0.9, np.float32)
    b = np.ones((4, 256), np.float32)
    h = linrec.scan(a, b)
    gh = np.ones_like(h)
    grads = (np.empty_like(a), np.empty_like(b))
    calls = {
        "np.multiply(a, b, out=h)": lambda: np.multiply(a, b, out=h),
        "scan(a, b)": lambda: linrec.scan(a, b),
        "scan(a, b, out=h)": lambda: linrec.scan(a, b, out=h),
        "scan_vjp(gh, a, h)": lambda: linrec.scan_vjp(gh, a, h),
        "scan_vjp(gh, a, h, out=grads)": lambda: linrec.scan_vjp(gh, a, h, out=grads),
    }

    def batch(fn):
        for _ in range(repeats):
            fn()

    times = interleaved_times({name: lambda fn=fn: batch(fn) for name, fn in
                               calls.items()}, rounds)
    return {name: (statistics.median(t) / repeats * 1e6, min(t) / repeats * 1e6)
            for name, t in times.items()}


def table(results):
    lines = []
    for dtype, rows in results.items():
        lines.append(f"\n## {dtype}\n")
        names = list(next(iter(rows.values())))
        lines.append("| T | " + " | ".join(f"{n} / floor" for n in names[1:]) + " |")
        lines.append("|---" * len(names) + "|")
        for T in sorted(rows):
            floor = rows[T][names[0]]
            lines.append(f"| {T} | " + " | ".join(
                f"{rows[T][n] / floor:.2f}" for n in names[1:]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2**23)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0]
    small = small_calls()
    results = {np.dtype(d).name: sweep(d, args.elements, args.repeats, rng)
               for d in DTYPES}
    machine = machine_description()
    plot(results, args.elements, machine)
    text = (f"# CPU sweep over sequence length\n\nMachine: {machine}\n\nCommand: `python "
            f"benchmarks/cpu_sweep.py --elements {args.elements} --repeats "
            f"{args.repeats}`; {args.elements} elements per array, medians, all in one "
            f"run (load average {load:.1f} when it started). The forward writes into "
            f"`out=h`, the backward into `out=(grad_a, grad_b)`.\n\n"
            f"## Per call, (4, 256) float32\n\nMicroseconds per call: the median and the "
            f"best of 15 interleaved batches of 2000 calls.\n\n"
            f"| call | µs, median | µs, best batch |\n|---|---|---|\n" +
            "".join(f"| `{k}` | {m:.1f} | {b:.1f} |\n" for k, (m, b) in small.items()) +
            f"\n![throughput](cpu_throughput.png)\n\n![ratio](cpu_ratio.png)\n"
            f"{table(results)}\n")
    (OUT / "cpu_sweep.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
