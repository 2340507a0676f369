"""The kernels' parameter table (``linrec.cuda._kernels.PARAMS``) against ``scan.cu``.

The backend builds every launch's arguments by name from the table, so the table must
list each kernel's parameters exactly as ``scan.cu`` declares them: names, order,
pointer or scalar, and the scalar types. No GPU and no compiler needed.
"""

import re

import numpy as np
import pytest

from linrec.cuda import _kernels

_GLOBAL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*"
                     r"\(([^)]*)\)")
_QUALIFIERS = {"const", "__restrict__"}


def _param(text):
    """``(name, "ptr")`` for a pointer parameter, ``(name, C type)`` for a scalar."""
    tokens = text.replace("*", " * ").split()
    ctype = " ".join(t for t in tokens[:-1] if t not in _QUALIFIERS | {"*"})
    return tokens[-1], "ptr" if "*" in tokens else ctype


def _declared():
    """C++ kernel name -> its parameters, parsed from scan.cu."""
    text = re.sub(r"//[^\n]*", "", _kernels.SOURCE.read_text())
    return {name: [_param(p) for p in params.split(",")]
            for name, params in _GLOBAL.findall(text)}


def _expanded(kernel):
    """The table's row for ``kernel`` spelled out parameter by parameter."""
    out = []
    for name, kind in _kernels.PARAMS[kernel]:
        if kind in (_kernels.SEQ, _kernels.STATE):
            dims = ("sr", "st", "sc") if kind == _kernels.SEQ else ("sr", "sc")
            out += [(name, "ptr")] + [(f"{name}_{d}", _kernels.I64) for d in dims]
        else:
            out.append((name, "ptr" if kind == _kernels.PTR else kind))
    return out


def test_every_kernel_has_a_row():
    assert set(_kernels.PARAMS) == set(_kernels.KERNELS)


@pytest.mark.parametrize("kernel", _kernels.KERNELS)
def test_the_table_lists_the_parameters_of_scan_cu(kernel):
    cxx_name = _kernels.expression(kernel, np.float32, np.float32).split("<")[0]
    assert _expanded(kernel) == _declared()[cxx_name]


def test_arguments_follow_the_table_and_name_what_is_missing():
    partial, out = np.zeros((5, 6)), np.zeros((2, 1, 3))
    args = _kernels.arguments("sum_segments", partial=partial, out=out, R=2, C=3, nseg=5)
    assert args[0] is partial and args[1] is out
    assert args[2:] == [3, 1, 2, 3, 5]
    assert [type(x) for x in args[2:]] == [np.int64] * 5
    with pytest.raises(TypeError, match=r"missing \['nseg'\], unknown \['n'\]"):
        _kernels.arguments("sum_segments", partial=partial, out=out, R=2, C=3, n=5)
