"""Data parallelism over the batch on CPU threads: a training step's forward and backward
run on ``workers`` shards of the batch at once, one thread each, and their gradients are
summed (NumPy only).

Every sample's forward and backward are independent of the other samples', and the loss
is a mean over the whole batch, so the shards' gradients add up to the whole batch's;
only the rounding differs (a sum of per-shard matrix products instead of one). NumPy's
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

__all__ = ["default_workers", "shard_slices", "sharded_loss_and_grad"]

_pools = {}
_pools_lock = threading.Lock()


def default_workers():
    """The threads linrec's CPU kernels use (``numba.get_num_threads()`` of the calling
    thread, after linrec chose the threading layer)."""
    from linrec.cpu._threading import num_threads

    return num_threads()


def _serial(fn, *args):
    """``fn(*args)`` with linrec's CPU kernels on the calling thread (no thread launch)."""
    from linrec.cpu._dispatch import one_thread

    with one_thread():
        return fn(*args)


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
    ``workers`` shards of the batch (axis 0 of ``x`` and ``y``) in parallel."""
    slices = shard_slices(len(x), workers)
    rngs = rng.spawn(len(slices)) if rng is not None else [None] * len(slices)
    pool = _pool(len(slices))
    forwards = list(pool.map(lambda s, r: _serial(model.forward, x[s], r), slices, rngs))
    out = np.concatenate([o for o, _ in forwards], axis=0)
    loss, dout = model._loss(out, y)
    dout = dout.astype(model.dtype)
    backwards = pool.map(lambda s, f: _serial(model.backward, dout[s], f[1])[1], slices,
                         forwards)
    grads = next(backwards)
    for more in backwards:
        for k, g in more.items():
            grads[k] += g
    return loss, grads
