"""Paired moving-block bootstrap of a mean difference (Kuensch 1989)."""

import numpy as np

__all__ = ["block_bootstrap"]


def block_bootstrap(groups, *, block=7, samples=2000, level=0.95, seed=0):
    """Mean of the concatenated ``groups`` and its percentile bootstrap interval.

    Each group is a 1-D series (e.g. the per-day differences of one test period);
    a resample draws, within every group, ``ceil(n / block)`` blocks of ``block``
    consecutive values at uniform random starts, cut to the group's length ``n``, so
    short-range dependence inside a block is kept and groups are never mixed. A group
    shorter than ``block`` is resampled as one block.

    Returns ``{"mean", "low", "high", "n", "block", "samples", "level"}``.

    Raises
    ------
    ValueError
        No values, a non-finite value, ``block`` or ``samples`` below 1, or ``level``
        outside (0, 1).
    """
    groups = [np.asarray(g, np.float64).ravel() for g in groups]
    n = sum(len(g) for g in groups)
    if n == 0 or not all(np.isfinite(g).all() for g in groups):
        raise ValueError("block_bootstrap needs at least one value and only finite ones")
    if int(block) != block or block < 1 or int(samples) != samples or samples < 1:
        raise ValueError(f"block={block}, samples={samples}; both must be integers >= 1")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level}; it must be in (0, 1)")
    rng = np.random.default_rng(seed)
    totals = np.zeros(int(samples))
    for g in groups:
        b = min(int(block), len(g))
        if b == 0:
            continue
        n_blocks = -(-len(g) // b)
        starts = rng.integers(0, len(g) - b + 1, size=(int(samples), n_blocks))
        index = (starts[:, :, None] + np.arange(b)).reshape(int(samples), -1)[:, :len(g)]
        totals += g[index].sum(axis=1)
    means = totals / n
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return dict(mean=float(np.concatenate(groups).mean()), low=float(low),
                high=float(high), n=int(n), block=int(block), samples=int(samples),
                level=float(level))
