"""The blocking of the tiled kernels: items per thread, warps per chain, single pass or not.

Pure Python so that the backend and the NumPy model of the kernels share it. A warp scans
a sub-tile of ``32 * items`` steps; ``group_warps`` warps of a block share one chain, so a
chunk is ``group_warps * 32 * items`` steps, carried serially through the chain. When the
chains are too few to fill the GPU, the time axis is cut into ``nseg`` segments of
``seg_len`` steps (a multiple of the chunk): ``nseg > 1`` tells the backend to run the
single-pass look-back kernels over tiles of :func:`tile_steps` steps instead.
"""

from dataclasses import dataclass

from linrec._tuning import BLOCKS_PER_SM, MIN_BLOCKS_PER_SM, WARP, WARPS, items_for

__all__ = ["WARP", "WARPS", "Plan", "items_for", "tile_steps", "tiles"]


def tile_steps(itemsize):
    """Steps of one look-back tile (one block, all its warps on one chain)."""
    return WARPS * WARP * items_for(itemsize)


@dataclass(frozen=True)
class Plan:
    """The launch geometry of one tiled scan.

    ``nseg > 1``: the chains are too few to fill the GPU and the backend runs the
    look-back kernels instead (``nseg`` is how many time segments would fill it).
    Otherwise ``grid = (chain_blocks, 1)`` blocks of ``WARPS * 32`` threads; block x
    serves chains ``x * (WARPS // group_warps) ...`` over steps ``[0, seg_len)``,
    ``seg_len >= T``.
    """

    items: int
    group_warps: int
    chunk: int
    seg_len: int
    nseg: int
    chain_blocks: int


def tiles(T, chains, itemsize, sms):
    """The plan for ``chains`` chains of ``T`` steps of ``itemsize``-byte elements on a GPU
    with ``sms`` multiprocessors (a small ``sms`` in tests forces the look-back kernels
    early)."""
    items = items_for(itemsize)
    tile = WARP * items
    group_warps = 1 if T <= tile else 2 if T <= 2 * tile else WARPS
    chunk = group_warps * tile
    chain_blocks = -(-chains // (WARPS // group_warps))
    chunks = -(-T // chunk)
    nseg = 1
    if chain_blocks < MIN_BLOCKS_PER_SM * sms and chunks > 1:
        nseg = min(chunks, -(-BLOCKS_PER_SM * sms // chain_blocks))
    seg_len = -(-chunks // nseg) * chunk
    nseg = -(-T // seg_len)
    return Plan(items, group_warps, chunk, seg_len, nseg, chain_blocks)
