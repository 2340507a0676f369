"""Latency of streaming inference: one new observation at batch 1 and 256.

For the unidirectional LRU model, ``Model.step`` (O(1) work per new observation) against
recomputing the forecast with a full forward over the last ``window`` steps; for BLUR
(bidirectional, which cannot step), one forward over a ``window``-step window, which is
what ``Model.predict_windows`` costs per output. Same shapes as the forecasting job
(10 features, horizon 48, H = 32, N = 32, 2 layers, window 336), float32, CPU.
Medians of ``--repeats`` calls, in one run.

    python benchmarks/stream_latency.py [--repeats 50] [--threads 1]
                                        [--out docs/benchmarks/streaming.md]
"""

import argparse
import platform

import numpy as np
from cpu_scan import median_time

from linrec.nn import Model

FEATURES, HORIZON, WINDOW = 10, 48, 336


def _model(bidirectional):
    return Model(FEATURES, horizon=HORIZON, d_model=32, d_state=32, n_layers=2,
                 bidirectional=bidirectional)


def latencies(batch, repeats, window):
    """name -> median seconds per call at ``batch``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, window, FEATURES)).astype(np.float32)
    lru, blur = _model(False), _model(True)
    _, _, state = lru.forward(x, return_state=True)
    new = x[:, -1]
    return {
        "LRU step (Model.step)": median_time(lambda: lru.step(new, state), repeats),
        f"LRU forward over {window} steps": median_time(lambda: lru.forward(x), repeats),
        f"BLUR forward over {window} steps": median_time(lambda: blur.forward(x), repeats),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    import numba
    import threadpoolctl

    from linrec.cpu import _threading

    _threading.start()
    numba.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    results = {batch: latencies(batch, args.repeats, args.window) for batch in (1, 256)}
    names = list(results[1])
    step = {b: results[b][names[0]] for b in results}
    rows = [f"| {name} | " + " | ".join(
        f"{1e3 * results[b][name]:.3f} ms ({results[b][name] / step[b]:.0f}x)"
        for b in results) + " |" for name in names]
    table = "\n".join([
        f"Device: {platform.processor() or platform.machine()}, {args.threads} "
        f"thread(s). {FEATURES} features, horizon {HORIZON}, H = N = 32, 2 layers, "
        f"float32; median of {args.repeats} calls, one run; in brackets the ratio to "
        f"the step at the same batch.",
        "",
        "| per new observation | batch 1 | batch 256 |",
        "|---|---|---|",
        *rows,
    ])
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")


if __name__ == "__main__":
    main()
