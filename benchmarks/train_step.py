"""Time one BLUR training step (forward + backward + Adam) on the forecasting shapes.

Prints, per configuration, the median time per step, the share of it spent inside
``linrec.scan`` / ``linrec.scan_vjp`` (the recurrence kernels) against everything else
(matrix products, norms, activations, Adam), and the throughput in samples/s.

    python benchmarks/train_step.py [--device cpu|gpu] [--steps 20] [--threads 1]
                                    [--out docs/benchmarks/train_step.md]
"""

import argparse
import platform
import statistics
import time

import numpy as np

import linrec
from linrec.nn import Adam, Model, clip_grad_norm


class _Timed:
    """Wraps ``linrec.scan`` and ``linrec.scan_vjp`` and adds up their wall time."""

    def __init__(self, sync):
        self.sync, self.seconds = sync, 0.0
        self.originals = (linrec.scan, linrec.scan_vjp)

    def _wrap(self, fn):
        def timed(*args, **kwargs):
            self.sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.sync()
            self.seconds += time.perf_counter() - t0
            return out
        return timed

    def __enter__(self):
        linrec.scan, linrec.scan_vjp = (self._wrap(f) for f in self.originals)
        return self

    def __exit__(self, *exc):
        linrec.scan, linrec.scan_vjp = self.originals


def bench(xp, sync, *, batch, steps, lookback, features, d_model, d_state, layers,
          bidirectional):
    """``(median step seconds, median scan fraction)`` over ``steps`` timed steps."""
    rng = np.random.default_rng(0)
    model = Model(features, horizon=48, d_model=d_model, d_state=d_state, n_layers=layers,
                  bidirectional=bidirectional, pool="window", xp=xp)
    opt = Adam(model.parameters(), groups=model.param_groups(), lr=1e-3,
               weight_decay=0.05)
    x = xp.asarray(rng.standard_normal((batch, lookback, features)).astype(np.float32))
    y = xp.asarray(rng.standard_normal((batch, 48, 1)).astype(np.float32))

    def step():
        _, grads = model.loss_and_grad(x, y)
        clip_grad_norm(grads, 1.0)
        opt.step(grads)

    for _ in range(2):
        step()
    times, fractions = [], []
    for _ in range(steps):
        with _Timed(sync) as timer:
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            total = time.perf_counter() - t0
        times.append(total)
        fractions.append(timer.seconds / total)
    return statistics.median(times), statistics.median(fractions)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    if args.device == "gpu":
        import cupy as xp

        def sync():
            xp.cuda.Device().synchronize()
        device = xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        import numba
        import threadpoolctl

        from linrec.cpu import _threading

        xp = np
        _threading.start()
        numba.set_num_threads(args.threads)
        threadpoolctl.threadpool_limits(args.threads, user_api="blas")

        def sync():
            return None
        device = f"{platform.processor() or platform.machine()}, {args.threads} thread(s)"
    rows = []
    configs = [("BLUR", True, 32, 48, 16, 2), ("LRU", False, 32, 48, 16, 2),
               ("BLUR", True, 32, 32, 32, 2), ("BLUR", True, 128, 48, 16, 2),
               ("BLUR", True, 32, 64, 64, 4)]
    for name, bidir, batch, d_model, d_state, layers in configs:
        seconds, fraction = bench(xp, sync, batch=batch, steps=args.steps, lookback=336,
                                  features=10, d_model=d_model, d_state=d_state,
                                  layers=layers, bidirectional=bidir)
        rows.append(f"| {name} | {batch} | {d_model} | {d_state} | {layers} | "
                    f"{1e3 * seconds:.1f} | {100 * fraction:.0f}% | "
                    f"{batch / seconds:.0f} |")
    table = "\n".join([
        f"Device: {device}. Input (batch, 336, 10), horizon 48, float32; median of "
        f"{args.steps} steps.",
        "",
        "| model | batch | H | N | layers | ms/step | in scan kernels | samples/s |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")


if __name__ == "__main__":
    main()
