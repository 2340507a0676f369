"""Time one BLUR training step, linrec against its PyTorch peer, at 1 and 2 threads, and
break linrec's step down by layer and by kernel.

The step is the main job's: input (batch 32, T 336, 10 features), horizon 48, H 48, N 16,
2 blocks, float32; forward, backward, global-norm clipping at 1.0 and AdamW. The peer
(``benchmarks/peers/torch_blur.py``) starts from a copy of linrec's parameters. Both run
in one process, in alternating runs of steps (four rounds), so both see the same machine
load; the table gives the median wall time and the median process CPU time (all
threads) per step.

The breakdown times every layer's ``forward`` / ``backward`` exclusive of the layers it
calls, and the recurrence kernels (``linrec.scan``, ``linrec.scan_vjp``), in CPU time of
the thread that runs them, summed over threads: on a loaded machine CPU time is steadier
than wall time, and at 2 threads the sum shows what the shards cost in all.

linrec runs BLAS on one thread and ``numba.set_num_threads(n)`` shards of the batch
(:mod:`linrec.nn.shards`); PyTorch runs ``torch.set_num_threads(n)``.

    python benchmarks/train_step.py [--steps 40] [--threads 1,2] [--out FILE.md]
"""

import argparse
import collections
import importlib.util
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numba
import numpy as np

try:
    import threadpoolctl
    import torch
except ImportError as err:
    raise SystemExit(f"train_step.py needs the 'peers' and 'model' extras ({err.name} is "
                     f"missing): pip install 'linrec[peers,model]'") from None

import linrec
import linrec.nn.block
from linrec.cpu import _threading
from linrec.nn import GLU, LRU, Adam, BLURBlock, LayerNorm, Linear, Model, clip_grad_norm

PEER_FILE = Path(__file__).resolve().parent / "peers" / "torch_blur.py"
SHAPE = dict(batch=32, lookback=336, features=10, horizon=48)
CONFIGS = {"BLUR": dict(d_model=48, d_state=16, n_layers=2, bidirectional=True),
           "LRU": dict(d_model=48, d_state=16, n_layers=2, bidirectional=False)}
LR, WEIGHT_DECAY, MAX_NORM = 1e-3, 0.05, 1.0
ROUNDS = 4


def load_peer():
    spec = importlib.util.spec_from_file_location("torch_blur", PEER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_steps(peer_module, config):
    """``{"linrec": step, "PyTorch": step}`` for one model configuration, same data and
    the same initial parameters."""
    rng = np.random.default_rng(0)
    model = Model(SHAPE["features"], horizon=SHAPE["horizon"], pool="window", **config)
    opt = Adam(model.parameters(), groups=model.param_groups(), lr=LR,
               weight_decay=WEIGHT_DECAY)
    x = rng.standard_normal((SHAPE["batch"], SHAPE["lookback"], SHAPE["features"]))
    y = rng.standard_normal((SHAPE["batch"], SHAPE["horizon"], 1))
    x, y = x.astype(np.float32), y.astype(np.float32)
    peer = peer_module.from_linrec(model, dtype=torch.float32)
    peer_opt = peer_module.optimizer(peer, lr=LR, weight_decay=WEIGHT_DECAY)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def linrec_step():
        _, grads = model.loss_and_grad(x, y)
        clip_grad_norm(grads, MAX_NORM)
        opt.step(grads)

    def torch_step():
        peer_module.train_step(peer, peer_opt, tx, ty, MAX_NORM)

    return {"linrec": linrec_step, "PyTorch": torch_step}


def set_threads(n):
    numba.set_num_threads(n)
    torch.set_num_threads(n)


def time_steps(steps, n, rounds=ROUNDS):
    """name -> (median wall seconds, median CPU seconds) over ``n`` steps each, taken in
    ``rounds`` alternating runs of ``n // rounds`` steps per library (not step by step:
    PyTorch's OpenMP threads spin for a while after its step and would be charged to
    linrec's, and compete with its shards)."""
    wall, cpu = collections.defaultdict(list), collections.defaultdict(list)
    for fn in steps.values():
        fn(), fn()
    for _ in range(rounds):
        for name, fn in steps.items():
            for _ in range(max(1, n // rounds)):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in steps}


class Breakdown:
    """Exclusive CPU time per ``(part, direction)`` while active, summed over threads."""

    LAYERS = {Linear: "Linear (matmul)", LayerNorm: "LayerNorm",
              LRU: "LRU without the scan", GLU: "GLU gate",
              BLURBlock: "block: GELU, merge, residual", Model: "model: pool, loss, shards"}
    FUNCTIONS = ((linrec, "scan", "kernel: linrec.scan"),
                 (linrec, "scan_vjp", "kernel: linrec.scan_vjp"),
                 (linrec.nn.block, "gelu", "block: GELU, merge, residual"),
                 (linrec.nn.block, "gelu_backward", "block: GELU, merge, residual"))

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.saved = []

    def _wrap(self, fn, key):
        def timed(*args, **kwargs):
            stack = self.local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - t0
                inner = stack.pop()
                if stack:
                    stack[-1] += elapsed
                with self.lock:
                    self.seconds[key] += elapsed - inner
        return timed

    def __enter__(self):
        for cls, name in self.LAYERS.items():
            for method, direction in (("forward", "fwd"), ("backward", "bwd")):
                self._patch(cls, method, (name, direction))
        self._patch(Model, "loss_and_grad", (self.LAYERS[Model], "fwd"))
        for module, attr, name in self.FUNCTIONS:
            direction = "bwd" if attr.endswith(("vjp", "backward")) else "fwd"
            self._patch(module, attr, (name, direction))
        return self

    def _patch(self, owner, attr, key):
        original = owner.__dict__[attr]
        self.saved.append((owner, attr, original))
        setattr(owner, attr, self._wrap(original, key))

    def __exit__(self, *exc):
        for owner, attr, original in reversed(self.saved):
            setattr(owner, attr, original)
        self.saved.clear()


def breakdown(step, n):
    """``{(part, direction): ms per step}`` plus ``"clip + AdamW"`` over ``n`` steps."""
    step()
    with Breakdown() as timer:
        t0 = time.process_time()
        for _ in range(n):
            step()
        total = time.process_time() - t0
    parts = {k: 1e3 * v / n for k, v in timer.seconds.items()}
    parts[("clip + AdamW, Python", "")] = 1e3 * total / n - sum(parts.values())
    return parts


def comparison_table(results, threads):
    lines = ["| model | threads | linrec ms | PyTorch ms | linrec / PyTorch | "
             "linrec CPU ms | PyTorch CPU ms |", "|---|---|---|---|---|---|---|"]
    for name in CONFIGS:
        for n in threads:
            (lw, lc), (tw, tc) = results[name, n]["linrec"], results[name, n]["PyTorch"]
            lines.append(f"| {name} | {n} | {1e3 * lw:.1f} | {1e3 * tw:.1f} | "
                         f"{lw / tw:.2f} | {1e3 * lc:.1f} | {1e3 * tc:.1f} |")
    lines += ["", "| model | linrec 2 threads / 1 thread | PyTorch 2 threads / 1 thread |",
              "|---|---|---|"]
    if {1, 2} <= set(threads):
        for name in CONFIGS:
            one, two = results[name, 1], results[name, 2]
            lines.append(f"| {name} | {two['linrec'][0] / one['linrec'][0]:.2f} | "
                         f"{two['PyTorch'][0] / one['PyTorch'][0]:.2f} |")
    return lines


def breakdown_table(parts_by_threads, threads):
    keys = sorted({k for parts in parts_by_threads.values() for k in parts},
                  key=lambda k: -parts_by_threads[threads[0]].get(k, 0.0))
    head = " | ".join(f"{n} thread{'s' * (n > 1)} CPU ms" for n in threads)
    lines = [f"| part | pass | {head} |", "|---|---|" + "---|" * len(threads)]
    for part, direction in keys:
        cells = " | ".join(f"{parts_by_threads[n].get((part, direction), 0.0):.2f}"
                           for n in threads)
        lines.append(f"| {part} | {direction} | {cells} |")
    totals = " | ".join(f"{sum(parts_by_threads[n].values()):.1f}" for n in threads)
    lines.append(f"| total | | {totals} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated thread counts (default %(default)s)")
    parser.add_argument("--out", help="also append the tables to this markdown file")
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    _threading.start()
    threadpoolctl.threadpool_limits(1, user_api="blas")
    peer_module = load_peer()
    steps = {name: make_steps(peer_module, config) for name, config in CONFIGS.items()}
    results, parts = {}, {}
    for n in threads:
        set_threads(n)
        for name in CONFIGS:
            results[name, n] = time_steps(steps[name], args.steps)
        parts[n] = breakdown(steps["BLUR"]["linrec"], args.steps)
    load = os.getloadavg()[0]
    text = "\n".join([
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
        f"average {load:.1f} at the end; torch {torch.__version__}, numba "
        f"{numba.__version__} ({numba.threading_layer()}); one run, medians of "
        f"{args.steps} steps each in {ROUNDS} alternating rounds.",
        "", "Step time (wall; CPU = process CPU time, all threads):", "",
        *comparison_table(results, threads),
        "", "linrec's BLUR step by part (CPU time per step, exclusive, summed over "
        "threads):", "", *breakdown_table(parts, threads), ""])
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
