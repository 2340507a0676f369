"""Names of the CUDA kernel instantiations, and their compilation with ``cupy.RawModule``.

One module per ``(a dtype, b dtype)`` pair, compiled on first use (CuPy caches the binary
on disk, keyed by the source text). The C++ names built here are the ``name_expressions``
given to NVRTC and the names looked up afterwards, so they must be spelled identically:
build them only with :func:`expression`. NVRTC gets :func:`source_text`, the kernels with
their local headers pasted in, so that an edit to a header changes the cache key too.

``PARAMS`` is each kernel's parameter list in ``scan.cu``, by name; the backend builds a
launch's arguments with :func:`arguments` from named values, never by position (a test
checks the table against the parameter lists in ``scan.cu``). Changing a kernel's
parameters is that kernel's signature in ``scan.cu``, its row here, and the named values
the backend passes.
"""

import functools
import pathlib
import re

import numpy as np

from linrec import _dtypes
from linrec.cuda import _plan
from linrec.cuda._strides import element_strides

__all__ = ["SOURCE_DIR", "SOURCE", "PAIRS", "KERNELS", "PARAMS", "SEQ", "STATE", "PTR",
           "I64", "I32", "expression", "expressions", "arguments", "source_text",
           "function"]

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


# Kinds of parameter: a sequence operand ``x`` (an ``(R, T, C)`` view) is the pointer and
# its element strides ``x, x_sr, x_st, x_sc``; a state ``x`` (an ``(R, 1, C)`` view) is
# ``x, x_sr, x_sc``; a plain pointer is one array; I64 / I32 a ``long long`` / ``int``.
SEQ, STATE, PTR, I64, I32 = "seq", "state", "ptr", "long long", "int"

_FORWARD_HEAD = (("a", SEQ), ("b", SEQ), ("h0", STATE), ("h", SEQ), ("last", STATE))
_BACKWARD_HEAD = (("gh", SEQ), ("a", SEQ), ("h", SEQ), ("h0", STATE), ("glast", STATE))
_DIMS = (("R", I64), ("T", I64), ("C", I64))
_TILING = (("group_warps", I32), ("seg_len", I64), ("rev", I32))

_LOOK_BACK = (("status", PTR), ("agg_a", PTR), ("agg_b", PTR), ("inc", PTR))

PARAMS = {
    "forward_tiles": _FORWARD_HEAD + _DIMS + _TILING,
    "forward_lookback": _FORWARD_HEAD + _LOOK_BACK + _DIMS + (("rev", I32),),
    "backward_tiles": _BACKWARD_HEAD + (("ga", SEQ), ("gb", SEQ), ("gh0", STATE)) + _DIMS
        + _TILING + (("accumulate", I32),),
    "backward_lookback": _BACKWARD_HEAD + (
        ("ga", SEQ), ("ga_seg", I64), ("gb", SEQ), ("gh0", STATE)) + _LOOK_BACK + _DIMS
        + (("rev", I32), ("accumulate", I32)),
    "sum_segments": (("partial", PTR), ("out", STATE), ("R", I64), ("C", I64),
                     ("nseg", I64)),
    "forward_channels": _FORWARD_HEAD + _DIMS + (("rev", I32),),
    "backward_channels": _BACKWARD_HEAD + (("ga", SEQ), ("gb", SEQ), ("gh0", STATE))
        + _DIMS + (("rev", I32), ("accumulate", I32)),
}


def _operand(value, kind):
    """``[pointer, *strides]`` of an operand: a view, or ``(array, strides)`` given."""
    if isinstance(value, tuple):
        pointer, strides = value
    else:
        pointer, strides = value, element_strides(value)
        strides = (strides[0], strides[2]) if kind == STATE else strides
    return [pointer, *(np.int64(s) for s in strides)]


def arguments(kernel, **values):
    """The argument list of ``kernel`` (in ``KERNELS``) from values named as in
    ``PARAMS``: views for sequences and states (or ``(array, element strides)``),
    arrays for pointers, ints for scalars (cast to the parameter's type).

    Raises
    ------
    TypeError
        A parameter without a value, or a value no parameter takes.
    """
    params = PARAMS[kernel]
    names = {name for name, _ in params}
    if set(values) != names:
        missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
        raise TypeError(f"{kernel} takes {sorted(names)}; missing {missing}, unknown "
                        f"{unknown}")
    args = []
    for name, kind in params:
        if kind in (SEQ, STATE):
            args += _operand(values[name], kind)
        elif kind == PTR:
            args.append(values[name])
        else:
            args.append((np.int64 if kind == I64 else np.int32)(values[name]))
    return args


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
