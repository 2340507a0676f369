"""The chunked schedule under oversubscription: how much slower do the fused kernels get
when other processes take the cores, against what a schedule without waiting gets?

The chunked schedule (one long row) runs reduce, carry and rescan in one parallel region
whose tasks wait for the previous group's state (``linrec.cpu._atomic.wait_until_set``).
A waiting thread makes no progress while the thread it waits for is descheduled, so
under load it could lose more than its fair share. This script times ``linrec.scan`` and
``linrec.scan_vjp`` with ``out=`` on the long row (and the time-first ``channels``
schedule, which never waits, as a control) at ``numba.set_num_threads(2)`` and ``(1)``,
with K = 0, 1, 2 busy competitor processes (``while True: pass``, each in its own
session, as another user's job would be; ``--same-session`` puts them in this one), all
side by side in one run: every round visits every load (in rotating order) and, under
each, times every case at 2 and 1 threads (alternating which comes first). Usage::

    python benchmarks/oversubscribed.py [--rounds 7] [--same-session] [--loads 0 1 2]

Not under the benchmark lock on purpose: the point is to run under load. K = 0 is
whatever else the machine runs (the load average is printed). Columns, medians over
rounds:

- ``t2``, ``t1``: wall time of one call at 2 and 1 threads (ms);
- ``t2/t1``: above 1, two threads are slower than one under this load;
- ``cpu2/cpu1``: the process's CPU time (all threads) per call at 2 threads over that at
  1 thread: the cycles the 2-thread kernel spends (working or waiting) per cycle of
  useful work;
- ``t2/t2(base)``, ``t1/t1(base)``: the slowdown from the load (against the first of
  ``--loads``, K = 0 by default), against
- ``fair2``, ``fair1``: the slowdowns fair sharing predicts at 2 and 1 threads, the
  cores this process gets at the base load over those it gets at K. Linux with
  ``sched_autogroup_enabled`` shares the cores equally among sessions (autogroups),
  then among a session's threads; ``--busy`` counts the other busy sessions at K = 0
  (one thread each). With competitors in their own sessions, both thread counts get
  the same share wherever it is at most one core: there a kernel that wastes no cycles
  waiting takes as long at 2 threads as at 1 (``t2/t1`` near 1); with competitors in
  this session, 2 threads get a larger share than 1.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numba
import numpy as np

import linrec

CASES = [("long row", (1, 2**24), -1, "float32"),
         ("long row", (1, 2**24), -1, "float64"),
         ("time-first (control)", (65536, 256), 0, "float32")]
LOADS = (0, 1, 2)
CORES = 2


def start_competitors(k, own_session):
    """``k`` busy processes, each in its own session (its own scheduling group) when
    ``own_session``, else in this one."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=own_session) for _ in range(k)]


def stop(processes):
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def make_calls(shape, axis, dtype, rng):
    """``{op: zero-argument call}`` for ``scan`` and ``scan_vjp`` with ``out=``."""
    a = rng.uniform(0.5, 0.99, shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    h, grad_a, grad_b = (np.empty(shape, dtype) for _ in range(3))
    linrec.scan(a, b, axis=axis, out=h)
    return {"scan": lambda: linrec.scan(a, b, axis=axis, out=h),
            "scan_vjp": lambda: linrec.scan_vjp(g, a, h, axis=axis, out=(grad_a, grad_b))}


def timed(call, threads):
    """Wall and process CPU seconds of one call at ``threads`` threads."""
    numba.set_num_threads(threads)
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def autogroups():
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as file:
            return file.read().strip() == "1"
    except OSError:
        return False


def fair_share(threads, competitors, busy, own_session):
    """Cores this process's ``threads`` busy threads get on CORES cores beside
    ``competitors`` busy processes (own sessions or this one) and ``busy`` busy
    sessions, under equal shares per session (autogroups) or per thread."""
    if not autogroups():
        return min(threads, CORES * threads / (threads + competitors + busy))
    if own_session:
        return min(threads, CORES / (1 + competitors + busy))
    ours = min(threads + competitors, CORES / (1 + busy))
    return ours * threads / (threads + competitors)


def measure(calls, rounds, loads, own_session):
    """``{(case, op, load, threads): [(wall, cpu), ...]}`` over ``rounds`` rounds."""
    samples = {}
    for r in range(rounds):
        for k in loads[r % len(loads):] + loads[:r % len(loads)]:
            competitors = start_competitors(k, own_session)
            try:
                time.sleep(0.3)
                for (case, op), call in calls.items():
                    for threads in ((2, 1) if r % 2 == 0 else (1, 2)):
                        samples.setdefault((case, op, k, threads), []).append(
                            timed(call, threads))
            finally:
                stop(competitors)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return samples


def table(samples, calls, loads, busy, own_session):
    def median(key, index):
        return statistics.median(s[index] for s in samples[key])

    lines = ["| case | op | K | t2 (ms) | t1 (ms) | t2/t1 | cpu2/cpu1 | t2/t2(base) "
             "| t1/t1(base) | fair2 | fair1 |", "|" + "---|" * 11]
    for case, op in calls:
        for k in loads:
            t2, t1 = median((case, op, k, 2), 0), median((case, op, k, 1), 0)
            c2, c1 = median((case, op, k, 2), 1), median((case, op, k, 1), 1)
            q2, q1 = median((case, op, loads[0], 2), 0), median((case, op, loads[0], 1), 0)
            fair2, fair1 = (fair_share(t, loads[0], busy, own_session)
                            / fair_share(t, k, busy, own_session) for t in (2, 1))
            lines.append(f"| {case} | {op} | {k} | {1e3 * t2:.1f} | {1e3 * t1:.1f} "
                         f"| {t2 / t1:.2f} | {c2 / c1:.2f} | {t2 / q2:.2f} | {t1 / q1:.2f} "
                         f"| {fair2:.2f} | {fair1:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--busy", type=int, default=1,
                        help="other busy sessions on the machine at K = 0 (for 'fair')")
    parser.add_argument("--loads", type=int, nargs="+", default=list(LOADS),
                        help="numbers of competitors, the first the baseline")
    parser.add_argument("--same-session", action="store_true",
                        help="start the competitors in this session")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    calls = {}
    for label, shape, axis, dtype in CASES:
        for op, call in make_calls(shape, axis, dtype, rng).items():
            call()
            calls[(f"{label} {shape} {dtype}", op)] = call
    before = os.getloadavg()
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    own_session = not args.same_session
    loads = tuple(args.loads)
    samples = measure(calls, args.rounds, loads, own_session)
    after = os.getloadavg()
    print(f"One run, {start}, {args.rounds} rounds, numba {numba.__version__}, threading "
          f"layer {numba.threading_layer()}, {os.cpu_count()} cores; load average "
          f"(1, 5, 15 min) before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, after "
          f"{after[0]:.2f} {after[1]:.2f} {after[2]:.2f}; competitors in "
          f"{'their own sessions' if own_session else 'this session'}, autogroups "
          f"{'on' if autogroups() else 'off'}; 'fair' counts {args.busy} other busy "
          "session(s).\n")
    print(table(samples, calls, loads, args.busy, own_session))


if __name__ == "__main__":
    main()
