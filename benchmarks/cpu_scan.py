"""CPU benchmark: linrec against the memory-bandwidth floor and the tools people use today.

Prints one table of medians and ratios, all measured in one run on this machine, and
writes it (Markdown, with the machine description) into ``docs/benchmarks/cpu_scan.md``
unless ``--no-write`` is given: only between the file's two marker comments
(:data:`BEGIN`, :data:`END`), so the hand-written analysis around them is kept. Usage::

    python benchmarks/cpu_scan.py [--quick] [--repeats N] [--allocations K] [--no-write]

Timing: the floor, linrec's calls, lfilter and the copy below are timed in ``--repeats``
interleaved rounds (each round calls every one of them once), and every ratio between
two of them is the median over rounds of the ratio within a round, so that a slow spell
of the (shared, virtual) machine lands on both sides of a ratio. The rounds run on
``--allocations`` sets of freshly allocated arrays in turn (default 3): on a virtual
machine the same call on arrays of the same shape and layout can take twice as long in
one allocation as in another (measured for ``scan_vjp`` on the AMD EPYC, see
``docs/benchmarks/cpu_scan.md``), so a ratio is the median over every round of every
allocation, and ``bwd/fwd (out=)`` also shows the range of its per-allocation medians
in brackets. The slow peers (the loops, jax) are timed apart, on the first allocation,
and set against the median allocating forward.

Floor: ``np.multiply(a, b, out=h)`` on the same arrays (reads 2, writes 1: the bytes a
forward scan must move). ``fwd/floor`` times ``linrec.scan(a, b, out=h)`` against it
(lower is better; below 1 is possible because the floor is single-threaded NumPy while
linrec uses every core). ``fwd/floor (all threads)`` sets the same forward against the
floor cut into one slice per Numba thread, run on that many Python threads
(:func:`parallel_multiply`): what the memory allows a kernel using every core, on a
machine where one core cannot draw all of the bandwidth. ``bwd/fwd`` compares
``scan_vjp`` with ``scan`` when both allocate their outputs, as users call them (fresh
memory costs page faults: about as much as the scan itself on this machine);
``bwd/fwd (out=)`` compares them writing into preallocated outputs
(``scan_vjp(..., out=(grad_a, grad_b))`` against ``scan(..., out=h)``), as a training
loop that keeps its buffers calls them. The load average when the run starts is printed
with the table: other work on the machine inflates every time.
Peers are compared with the allocating forward (``lfilter`` with the constant-``a``
forward, since it only takes constant coefficients). ``lfilter/copy`` sets lfilter
against ``np.copy(b)``, one thread reading b and writing a fresh array: the bytes and
page faults that any allocating forward with a constant ``a`` must pay, so a ceiling on
``lfilter/fwd(const a)`` for a forward that runs at one thread's copy speed. Peers that
would take minutes (the NumPy loop on long rows) are timed on a prefix of the time axis
and scaled linearly; the table marks them with "~".
"""

import argparse
import concurrent.futures
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
BEGIN = "<!-- begin: written by benchmarks/cpu_scan.py -->"
END = "<!-- end: written by benchmarks/cpu_scan.py -->"


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_times(fns, repeats):
    """Seconds per call of each of ``fns`` (name -> callable), ``repeats`` rounds that
    call every function once in turn, after one untimed call of each: a slow spell of
    the machine then lands on the functions of a round alike instead of on one of them.
    Returns name -> list of seconds, one per round."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times, numerator, denominator):
    """The median over rounds of ``numerator``'s time over ``denominator``'s in the same
    round (``times`` as returned by :func:`interleaved_times`)."""
    return statistics.median(n / d for n, d in zip(times[numerator], times[denominator],
                                                    strict=True))


def parallel_multiply(a, b, h, pool, parts):
    """``np.multiply(a, b, out=h)`` cut into ``parts`` slices of h's longest axis, run
    on the threads of ``pool`` (NumPy's ufuncs release the GIL); ``a`` and ``b`` have
    h's shape."""
    axis = int(np.argmax(h.shape))
    bounds = np.linspace(0, h.shape[axis], parts + 1).astype(int)

    def multiply_slice(i):
        part = (slice(None),) * axis + (slice(bounds[i], bounds[i + 1]),)
        np.multiply(a[part], b[part], out=h[part])

    list(pool.map(multiply_slice, range(parts)))


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


def bench_case(shape, axis, dtype, repeats, rng, jax_fn, pool, allocations=1):
    """``{"times": name -> seconds per round (interleaved, the rounds of every
    allocation in turn), "bwd out per allocation": the median ``bwd/fwd (out=)`` of each
    allocation, "peers": name -> median seconds, "numpy loop scaled": bool}`` for one
    shape and dtype; ``pool`` (a worker per Numba thread) runs the all-threads floor.
    Each of ``allocations`` sets of arrays is allocated afresh and dropped before the
    next."""
    times, per_allocation = {}, []
    for k in range(allocations):
        row = _bench_allocation(shape, axis, dtype, repeats, rng, jax_fn, pool,
                                peers=k == 0)
        for name, seconds in row["times"].items():
            times.setdefault(name, []).extend(seconds)
        per_allocation.append(ratio(row["times"], "backward out", "forward"))
        if k == 0:
            first = row
    return {"times": times, "bwd out per allocation": per_allocation,
            "peers": first["peers"], "numpy loop scaled": first["numpy loop scaled"]}


def _bench_allocation(shape, axis, dtype, repeats, rng, jax_fn, pool, peers):
    """:func:`bench_case` on one set of new arrays (the slow peers only if ``peers``)."""
    a, b = make_inputs(shape, dtype, rng)
    h = np.empty_like(b)
    hh = linrec.scan(a, b, axis=axis)
    gh = np.ones_like(b)
    grads = (np.empty_like(a), np.empty_like(b))
    a_const = a.flat[0]
    threads = numba.get_num_threads()
    times = interleaved_times({
        "floor": lambda: np.multiply(a, b, out=h),
        "floor all threads": lambda: parallel_multiply(a, b, h, pool, threads),
        "forward": lambda: linrec.scan(a, b, axis=axis, out=h),
        "forward alloc": lambda: linrec.scan(a, b, axis=axis),
        "backward": lambda: linrec.scan_vjp(gh, a, hh, axis=axis),
        "backward out": lambda: linrec.scan_vjp(gh, a, hh, axis=axis, out=grads),
        "forward const a": lambda: linrec.scan(a_const, b, axis=axis),
        "lfilter": lambda: scipy.signal.lfilter([1.0], [1.0, -a_const], b, axis=axis),
        "copy": lambda: np.copy(b),
    }, repeats)
    if not peers:
        return {"times": times}
    peers = {"njit loop": median_time(lambda: njit_loop(a, b, h, axis),
                                      max(1, repeats // 2))}
    T = shape[axis]
    steps = min(T, LOOP_STEPS)
    loop = median_time(lambda: numpy_loop(a, b, h, axis, steps), 1)
    peers["numpy loop"] = loop * T / steps
    if jax_fn is not None:
        import jax
        import jax.numpy as jnp

        ja, jb = jnp.asarray(a), jnp.asarray(b)
        peers["jax"] = median_time(lambda: jax.block_until_ready(jax_fn(ja, jb, axis)),
                                   max(1, repeats // 2))
    return {"times": times, "peers": peers, "numpy loop scaled": steps < T}


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
    header = ("| shape | axis | dtype | floor ms | fwd/floor | fwd/floor (all threads) "
              "| bwd/fwd | bwd/fwd (out=) | njit loop/fwd | numpy loop/fwd "
              "| lfilter/fwd(const a) | lfilter/copy | jax/fwd |")
    lines = [header, "|" + "---|" * 13]
    for (label, shape, axis, dtype), row in results:
        times, peers = row["times"], row["peers"]
        fwd = statistics.median(times["forward alloc"])
        loop_mark = "~" if row["numpy loop scaled"] else ""
        jax_ratio = f"{peers['jax'] / fwd:.1f}" if "jax" in peers else "n/a"
        lines.append(
            f"| {shape} {label} | {axis} | {np.dtype(dtype).name} | "
            f"{statistics.median(times['floor']) * 1e3:.1f} | "
            f"{ratio(times, 'forward', 'floor'):.2f} | "
            f"{ratio(times, 'forward', 'floor all threads'):.2f} | "
            f"{ratio(times, 'backward', 'forward alloc'):.2f} | "
            f"{ratio(times, 'backward out', 'forward'):.2f}"
            f"{_spread(row['bwd out per allocation'])} | "
            f"{peers['njit loop'] / fwd:.1f} | "
            f"{loop_mark}{peers['numpy loop'] / fwd:.0f} | "
            f"{ratio(times, 'lfilter', 'forward const a'):.1f} | "
            f"{ratio(times, 'lfilter', 'copy'):.1f} | {jax_ratio} |")
    return "\n".join(lines)


def _spread(values):
    """`` [min-max]`` of per-allocation ratios, or nothing for one allocation."""
    return f" [{min(values):.2f}-{max(values):.2f}]" if len(values) > 1 else ""


def _outside_markers(path):
    """``(head, tail)``: the text of the Markdown file ``path`` before its :data:`BEGIN`
    line and after its :data:`END` line; a missing file gives a title and nothing.

    ValueError when the file exists without exactly one BEGIN line followed by one END
    line (a run must not overwrite hand-written notes)."""
    path = Path(path)
    if not path.exists():
        return "# CPU benchmark\n\n", "\n"
    text = path.read_text()
    paired = text.count(BEGIN) == 1 and text.count(END) == 1
    if not paired or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{path} needs one line {BEGIN!r} and, after it, one line "
                         f"{END!r} around the generated table; add them (or pass "
                         f"--output NEW.md or --no-write)")
    head, rest = text.split(BEGIN)
    return head, rest.split(END)[1]


def write_between_markers(path, block):
    """Put ``block`` between the :data:`BEGIN` and :data:`END` lines of the Markdown file
    ``path``, keeping everything outside them (ValueError as :func:`_outside_markers`,
    the file untouched)."""
    head, tail = _outside_markers(path)
    Path(path).write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved rounds per allocation")
    parser.add_argument("--allocations", type=int, default=3,
                        help="fresh sets of arrays per case, timed in turn")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", default=str(Path(__file__).parents[1] / "docs" /
                                                "benchmarks" / "cpu_scan.md"))
    args = parser.parse_args(argv)
    if args.allocations < 1 or args.repeats < 1:
        parser.error("--allocations and --repeats must be at least 1")
    if not args.no_write:
        try:
            _outside_markers(args.output)
        except ValueError as err:
            parser.error(str(err))
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0]
    jax_fn = jax_scan()
    results = []
    with concurrent.futures.ThreadPoolExecutor(numba.get_num_threads()) as pool:
        for shape, axis, label in (QUICK_SHAPES if args.quick else SHAPES):
            for dtype in DTYPES:
                print(f"  {shape} axis={axis} {np.dtype(dtype).name} ...",
                      file=sys.stderr)
                row = bench_case(shape, axis, dtype, args.repeats, rng, jax_fn, pool,
                                 args.allocations)
                results.append(((label, shape, axis, dtype), row))
    table = format_table(results)
    machine = machine_description()
    print(f"{machine}; load average {load:.1f} at the start")
    print(table)
    if not args.no_write:
        block = (f"Machine: {machine}\n\nCommand: `python benchmarks/cpu_scan.py"
                 f"{' --quick' if args.quick else ''}` ({args.repeats} interleaved "
                 f"rounds on each of {args.allocations} allocations, all in one run; "
                 f"load average {load:.1f} when it started)\n\n{table}")
        write_between_markers(args.output, block)


if __name__ == "__main__":
    main()
