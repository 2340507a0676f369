"""Pieces every training loop shares: the mean loss over a dataset, the progress bar and
the thread count.

A dataset here is anything with ``__len__`` and ``batch(index) -> (x, y)`` (NumPy arrays;
``index`` a slice or an integer array).
"""

import contextlib

__all__ = ["ArraySet", "evaluate_loss", "limit_threads", "require_tqdm", "threads"]


class ArraySet:
    """In-memory samples ``x``, ``y`` (equal lengths; ValueError otherwise) as a dataset of
    this module's interface (``__len__``, ``batch(index)``)."""

    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def batch(self, index):
        """``(x, y)`` of the samples ``index``."""
        return self.x[index], self.y[index]

    def all(self):
        return self.x, self.y


def evaluate_loss(model, data, batch_size=256):
    """Mean loss of ``model`` (no dropout) over every sample of ``data``."""
    total, count = 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y = data.batch(slice(i, i + batch_size))
        total += model.loss(model.xp.asarray(x), y) * len(x)
        count += len(x)
    return total / max(count, 1)


def require_tqdm(caller):
    """``tqdm.auto.tqdm``; ImportError naming the 'model' extra when tqdm is missing
    (``caller`` names what needs it)."""
    try:
        from tqdm.auto import tqdm
    except ImportError as err:
        raise ImportError(f"{caller} needs tqdm, part of the 'model' extra: "
                          "pip install 'linrec[model]'") from err
    return tqdm


def limit_threads(n):
    """Use ``n`` threads from now on: Numba kernels, and the training step's shards of
    the batch (:mod:`linrec.nn.shards`), each calling BLAS on one thread (BLAS threads
    on top of the shards oversubscribe the cores; on a busy machine they slow the small
    matrix products of a step by 20-100x). Returns threadpoolctl's limiter:
    ``restore_original_limits()`` restores BLAS; Numba's count stays (see
    :func:`threads`). Needs the 'model' extra."""
    import numba
    import threadpoolctl

    from linrec.cpu import _threading

    _threading.start()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def threads(n):
    """Run the ``with`` block with ``n`` Numba and BLAS threads (:func:`limit_threads`),
    restoring both afterwards; ``n=None`` leaves them as they are."""
    if n is None:
        yield
        return
    import numba

    from linrec.cpu import _threading

    _threading.start()
    before = numba.get_num_threads()
    limits = limit_threads(n)
    try:
        yield
    finally:
        limits.restore_original_limits()
        numba.set_num_threads(before)
