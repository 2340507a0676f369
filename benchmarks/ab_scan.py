"""A/B benchmark: is one checkout of linrec slower than another on the CPU?

Runs the same cases against two source trees (e.g. a commit before a change and after
it), alternating A, B, A, B in fresh subprocesses so that drift in the machine's load hits
both sides alike, and prints one Markdown table of ratios. Usage::

    git worktree add /tmp/linrec-before <commit>
    python benchmarks/ab_scan.py /tmp/linrec-before . [--rounds 5] [--repeats 7] [--quick]

Each subprocess times, per case, ``np.multiply(a, b, out=h)`` (the floor: the bytes a
forward scan must move), ``linrec.scan(a, b, out=h)`` and ``linrec.scan_vjp(g, a, h)``
(medians of ``--repeats`` calls after one warm-up call). The table shows, per side, the
median over rounds of ``fwd/floor`` and ``bwd/fwd``, and ``B/A``: the ratio of B's forward
(and backward) time to A's, each divided by its own floor in the same subprocess. A B/A
near 1 means no change; the spread over rounds (min–max of B/A) says how far to trust it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = [((256, 65536), -1, "time-last"), ((65536, 256), 0, "time-first"),
         ((1, 2**24), -1, "one long row"), ((4, 256), -1, "small")]
QUICK_CASES = [((64, 16384), -1, "time-last"), ((16384, 64), 0, "time-first"),
               ((1, 2**21), -1, "one long row"), ((4, 256), -1, "small")]
DTYPES = ["float32", "float64"]

CHILD = r"""
import json, sys
import numpy as np
import linrec

cases, dtypes, repeats, bench_dir = json.loads(sys.argv[1])
sys.path.insert(0, bench_dir)
from cpu_scan import median_time

rng = np.random.default_rng(0)
rows = []
for shape, axis, _ in cases:
    for name in dtypes:
        dtype = np.dtype(name)
        a = rng.uniform(0.5, 0.99, shape).astype(dtype)
        b = rng.standard_normal(shape).astype(dtype)
        h = np.empty(shape, dtype)
        g = rng.standard_normal(shape).astype(dtype)
        floor = median_time(lambda: np.multiply(a, b, out=h), repeats)
        fwd = median_time(lambda: linrec.scan(a, b, axis=axis, out=h), repeats)
        bwd = median_time(lambda: linrec.scan_vjp(g, a, h, axis=axis), repeats)
        rows.append([floor, fwd, bwd])
print(json.dumps(rows))
"""


def run_side(source, cases, repeats):
    """``[[floor, fwd, bwd], ...]`` in seconds, per case and dtype, timing the linrec
    of ``source``."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(source))
    arg = json.dumps([[list(s), ax, label] for s, ax, label in cases])
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    arg = json.dumps([json.loads(arg), DTYPES, repeats, bench_dir])
    done = subprocess.run([sys.executable, "-c", CHILD, arg], env=env, check=True,
                          capture_output=True, text=True, cwd=os.path.abspath(source))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="source tree A (the baseline)")
    parser.add_argument("b", help="source tree B (the change)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    results = {"a": [], "b": []}
    for k in range(args.rounds):
        for side in ("a", "b") if k % 2 == 0 else ("b", "a"):
            results[side].append(run_side(getattr(args, side), cases, args.repeats))
            print(f"round {k + 1}/{args.rounds}: {side} done", file=sys.stderr)
    print(f"A = {args.a}, B = {args.b}; {args.rounds} rounds alternating A and B, "
          f"medians of {args.repeats} calls per round; load average before: "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| case | dtype | A fwd/floor | B fwd/floor | B/A fwd (min–max) "
          "| A bwd/fwd | B bwd/fwd | B/A bwd (min–max) |")
    print("|---|---|---|---|---|---|---|---|")
    i = 0
    for shape, _, label in cases:
        for name in DTYPES:
            ra = [r[i] for r in results["a"]]
            rb = [r[i] for r in results["b"]]
            fwd_a = [fwd / floor for floor, fwd, _ in ra]
            fwd_b = [fwd / floor for floor, fwd, _ in rb]
            bwd_a = [bwd / floor for floor, _, bwd in ra]
            bwd_b = [bwd / floor for floor, _, bwd in rb]
            fwd_ratio = [y / x for x, y in zip(fwd_a, fwd_b)]
            bwd_ratio = [y / x for x, y in zip(bwd_a, bwd_b)]
            med = statistics.median
            print(f"| {label} {tuple(shape)} | {name} | {med(fwd_a):.2f} | "
                  f"{med(fwd_b):.2f} | {med(fwd_ratio):.2f} ({min(fwd_ratio):.2f}–"
                  f"{max(fwd_ratio):.2f}) | {med(bwd_a) / med(fwd_a):.2f} | "
                  f"{med(bwd_b) / med(fwd_b):.2f} | {med(bwd_ratio):.2f} "
                  f"({min(bwd_ratio):.2f}–{max(bwd_ratio):.2f}) |")
            i += 1


if __name__ == "__main__":
    main()
