"""Names of the CUDA kernel instantiations, and their compilation with ``cupy.RawModule``.

One module per ``(a dtype, b dtype)`` pair, compiled on first use (CuPy caches the binary
on disk, keyed by the source text). The C++ names built here are the ``name_expressions``
given to NVRTC and the names looked up afterwards, so they must be spelled identically:
build them only with :func:`expression`. NVRTC gets :func:`source_text`, the kernels with
their local headers pasted in, so that an edit to a header changes the cache key too.
"""

import functools
import pathlib
import re

import numpy as np

from linrec import _dtypes
from linrec.cuda import _plan

__all__ = ["SOURCE_DIR", "SOURCE", "PAIRS", "KERNELS", "expression", "expressions",
           "source_text", "function"]

SOURCE_DIR = pathlib.Path(__file__).parent
SOURCE = SOURCE_DIR / "scan.cu"

PAIRS = _dtypes.PAIRS

KERNELS = ("forward_tiles", "forward_lookback", "backward_tiles", "backward_lookback",
           "sum_segments", "forward_channels", "backward_channels")


def expression(kernel, ta, tb):
    """The C++ name of ``kernel`` (in ``KERNELS``) for a of dtype ``ta``, b of ``tb``."""
    a, b = _dtypes.cxx_name(ta), _dtypes.cxx_name(tb)
    items = _plan.items_for(np.dtype(tb).itemsize)
    tiled = f"{a}, {b}, {items}, {_plan.WARPS}"
    return {
        "forward_tiles": f"forward_tiles<{tiled}>",
        "forward_lookback": f"forward_lookback<{tiled}>",
        "backward_tiles": f"backward_tiles<{tiled}>",
        "backward_lookback": f"backward_lookback<{tiled}>",
        "sum_segments": f"sum_segments<{a}>",
        "forward_channels": f"forward_channels<{a}, {b}>",
        "backward_channels": f"backward_channels<{a}, {b}>",
    }[kernel]


def expressions(ta, tb):
    """All kernel names of the module for the dtype pair ``(ta, tb)``."""
    return [expression(k, ta, tb) for k in KERNELS]


_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"\s*$', re.MULTILINE)


def source_text(path=SOURCE, seen=None):
    """``path`` with its ``#include "..."`` lines replaced by the headers (each once)."""
    seen = set() if seen is None else seen

    def paste(match):
        header = SOURCE_DIR / match.group(1)
        if header in seen:
            return ""
        seen.add(header)
        return source_text(header, seen)

    return _INCLUDE.sub(paste, path.read_text())


@functools.cache
def _module(ta, tb):
    import cupy

    return cupy.RawModule(code=source_text(), name_expressions=expressions(ta, tb))


def function(kernel, ta, tb):
    """The compiled ``cupy.RawKernel`` of ``kernel`` for the dtype pair ``(ta, tb)``."""
    ta, tb = np.dtype(ta), np.dtype(tb)
    return _module(ta, tb).get_function(expression(kernel, ta, tb))
