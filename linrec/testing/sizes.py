"""Awkward sizes: the lengths and batch sizes where blocked and chunked scans break.

A scan implementation has edges where its schedule changes: the number of chains
interleaved per task, the channel block, the chunk length, the threshold for the
chunked schedule on the CPU; the warp, the tile of a warp and the chunk of a block (one
per element size; a segment is a multiple of it) on the GPU. Off-by-one bugs live at
``n - 1``, ``n`` and ``n + 1`` around each edge, around powers of two, at primes (no
block size divides them) and at 0, 1 and 2.

``BOUNDARIES`` lists linrec's own edges, computed from the tunables in
``linrec._tuning`` (so a changed block size moves the tests with it, and no backend is
imported); a user can pass their own to :func:`awkward_sizes`.
"""

import functools

from linrec import _dtypes, _tuning

__all__ = ["BOUNDARIES", "awkward_sizes"]

_CUDA_TILES = tuple(_tuning.WARP * _tuning.items_for(n) for n in _dtypes.ITEMSIZES)

BOUNDARIES = (
    (_tuning.LANES, _tuning.CHANNELS_MIN, _tuning.CHANNEL_BLOCK, _tuning.CHUNK_MIN,
     2 * _tuning.CHUNK_MIN, _tuning.WARP)
    + _CUDA_TILES + tuple(_tuning.WARPS * tile for tile in _CUDA_TILES)
    + tuple(3 * _tuning.WARPS * tile for tile in _CUDA_TILES)
)


def _is_prime(n):
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _largest_prime_below(n):
    return next((p for p in range(n - 1, 1, -1) if _is_prime(p)), None)


@functools.lru_cache(maxsize=256)
def _awkward_sizes(max_size, boundaries):
    sizes = {0, 1, 2, 3, 5, 7, 11, 13, 17, 19}
    power = 4
    while power - 1 <= max_size:
        sizes.update((power - 1, power, power + 1, _largest_prime_below(power)))
        power *= 2
    for n in boundaries:
        sizes.update((n - 1, n, n + 1))
    return tuple(sorted(n for n in sizes if 0 <= n <= max_size))


def awkward_sizes(max_size, boundaries=None):
    """Sorted sizes in ``[0, max_size]`` that tend to expose blocking bugs.

    Parameters
    ----------
    max_size : int
        The largest size returned (non-negative).
    boundaries : iterable of int, optional
        Block sizes and thresholds to surround with ``n - 1, n, n + 1``; default
        :data:`BOUNDARIES`.

    Returns
    -------
    tuple of int
        0, 1, 2, 3, the primes below 20, ``2**k - 1, 2**k, 2**k + 1``, the largest prime
        below each power of two, and ``n - 1, n, n + 1`` for each boundary ``n``, all
        clipped to ``max_size``.

    Raises
    ------
    ValueError
        ``max_size`` negative.
    """
    if max_size < 0:
        raise ValueError(f"max_size must be non-negative, got {max_size}")
    boundaries = BOUNDARIES if boundaries is None else tuple(int(n) for n in boundaries)
    return _awkward_sizes(int(max_size), boundaries)
