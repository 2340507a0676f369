"""Data parallelism over the batch on CPU threads: a training step's forward and backward
run on ``workers`` shards of the batch at once, one thread each, and their gradients are
summed (NumPy only).

Every sample's forward and backward are independent of the other samples', and the loss
is a mean over the samples, so each shard computes its own loss and gradients weighted
by its share of the rows, and their sums are the whole batch's; only the rounding
differs (a sum of per-shard matrix products instead of one). Each shard runs forward,
loss and backward in one go: the calling thread runs the first shard and waits once
for the others, so a step costs one hand-over to the pool's threads and back. NumPy's
array operations and BLAS release the GIL, so the shards run in parallel; inside a shard
Numba kernels run on one thread (the shards are the parallelism). BLAS should run on one
thread too (``threadpoolctl.threadpool_limits(1, user_api="blas")``, as ``python -m
linrec train --threads n`` sets it): BLAS threads on top of the shards oversubscribe the
cores, and idle BLAS threads spin.

Dropout: shard ``i`` draws its masks from ``rng.spawn(workers)[i]``, so the masks (not
their distribution) depend on the number of shards.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["check_workers", "default_workers", "shard_slices", "sharded_loss_and_grad"]

_pools = {}
_pools_lock = threading.Lock()


def check_workers(workers):
    """TypeError unless ``workers`` is an int or None, ValueError when below 1."""
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers must be an int or None, got {type(workers).__name__}")
    if workers < 1:
        raise ValueError(f"workers={workers}; use at least 1 (1: the whole batch on the "
                         f"calling thread), or None for as many as linrec's CPU threads")


def default_workers():
    """The threads linrec's CPU kernels use (``numba.get_num_threads()`` of the calling
    thread, after linrec chose the threading layer)."""
    from linrec.cpu._threading import num_threads

    return num_threads()


def _serial(fn, *args):
    """``fn(*args)`` with linrec's CPU kernels launched on one thread (Numba's setting is
    per thread: restored afterwards)."""
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(threads)


def _pool(workers):
    """The process's thread pool of ``workers`` threads (created on first use)."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix="linrec-shard")
        return _pools[workers]


def _forget_pools_in_child():
    """A forked child has none of the parent's pool threads: start afresh."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)


def shard_slices(n_rows, workers):
    """``min(workers, n_rows)`` contiguous slices covering ``range(n_rows)``, sizes
    differing by at most one."""
    bounds = np.linspace(0, n_rows, min(workers, n_rows) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def sharded_loss_and_grad(model, x, y, rng, workers):
    """``(float loss, grads)`` of :meth:`linrec.nn.Model.loss_and_grad`, computed on
    ``workers`` shards of the batch (axis 0 of ``x`` and ``y``) in parallel: the calling
    thread runs the first shard, the pool's threads the others."""
    y = np.asarray(y)
    slices = shard_slices(len(x), workers)
    rngs = rng.spawn(len(slices)) if rng is not None else [None] * len(slices)

    def run(part, part_rng):
        weight = (part.stop - part.start) / len(x)
        return _serial(_shard_step, model, x[part], y[part], part_rng, weight)

    pool = _pool(len(slices) - 1)
    others = [pool.submit(run, part, r) for part, r in zip(slices[1:], rngs[1:])]
    loss, grads = run(slices[0], rngs[0])
    for future in others:
        more_loss, more = future.result()
        loss += more_loss
        for k, g in more.items():
            grads[k] += g
    return loss, grads


def _shard_step(model, x, y, rng, weight):
    """Forward, loss and backward of one shard holding ``weight`` of the batch's rows:
    the loss is a mean over the rows, so the shard's loss and its gradient count
    ``weight`` times its own mean."""
    out, cache = model.forward(x, rng)
    loss, dout = model._loss(out, y)
    dout = (dout * weight).astype(model.dtype, copy=False)
    return loss * weight, model.backward(dout, cache)[1]
