"""Every tunable of both backends, in plain Python: no Numba, no CuPy.

The backends read their block sizes and thresholds from here, and so does
``linrec.testing`` (its awkward sizes surround every one of them) without importing a
backend. Change a value here and both the kernels and the tests follow.

CPU (``linrec.cpu``):

- ``LANES``: independent chains interleaved in one loop of the ``rows`` schedule;
- ``CHUNK_MIN``: the shortest time chunk of the ``chunked`` schedule ("auto" picks that
  schedule for fewer than 4 chains per thread and ``T >= 2 * CHUNK_MIN``);
- ``CHUNK_BYTES``: the most bytes of ``b`` in one chunk of the chunked forward, whose
  tasks reduce and rescan four chunks at a time: a, b and h of four chunks stay in a
  core's L2 cache (1 MiB on the machine measured) between the two passes; the chunked
  backward's groups of six chunks span as many steps as the forward's four, so that
  their grad_h, a and h take as many bytes;
- ``CHANNELS_MIN``: the fewest contiguous channels for the ``channels`` schedule;
- ``CHANNEL_BLOCK``: channel blocks of the ``channels`` schedule are multiples of it;
- ``CHANNEL_BYTES``: the shortest row segment (in bytes) a ``channels`` task gets;
- ``SERIAL_MAX``: problems of at most this many elements run on one thread;
- ``SMALL_MAX``: problems of at most this many elements (and a common layout) run as
  one sequential kernel, without the general launcher (``linrec.cpu._small``).

CUDA (``linrec.cuda``):

- ``WARP``: threads per warp; ``WARPS``: warps per block of the tiled kernels;
- ``BYTES_PER_THREAD``: bytes of ``b`` each thread scans per tile (:func:`items_for`);
- ``BLOCKS_PER_SM``, ``MIN_BLOCKS_PER_SM``: how many blocks per multiprocessor the time
  segments aim for, and below how many the time axis is cut into segments.
"""

__all__ = [
    "LANES", "CHUNK_MIN", "CHUNK_BYTES", "CHANNELS_MIN", "CHANNEL_BLOCK", "CHANNEL_BYTES",
    "SERIAL_MAX", "SMALL_MAX", "WARP", "WARPS", "BYTES_PER_THREAD", "BLOCKS_PER_SM",
    "MIN_BLOCKS_PER_SM",
    "items_for",
]

LANES = 4
CHUNK_MIN = 4096
CHUNK_BYTES = 2**16
CHANNELS_MIN = 8
CHANNEL_BLOCK = 16
CHANNEL_BYTES = 4096
SERIAL_MAX = 2**16
SMALL_MAX = 2**14

WARP = 32
WARPS = 4
BYTES_PER_THREAD = 32
BLOCKS_PER_SM = 8
MIN_BLOCKS_PER_SM = 4


def items_for(itemsize):
    """Steps per thread of a CUDA tile for elements of ``itemsize`` bytes (b's type)."""
    return max(1, BYTES_PER_THREAD // itemsize)
