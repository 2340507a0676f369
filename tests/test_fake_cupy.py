"""The CuPy stand-in (``tests/fake_cupy``) behaves like CuPy 14 where linrec once broke.

Runs only with ``LINREC_FAKE_CUPY=1`` (as ``make test`` runs it), when ``import cupy``
imports the stand-in.
"""

import numpy as np
import pytest

from linrec.cuda import _kernels, _plan
from tests import fake_cupy

pytestmark = pytest.mark.skipif(not fake_cupy.enabled(),
                                reason="the CuPy stand-in is off (LINREC_FAKE_CUPY=1)")


@pytest.fixture
def cp():
    import cupy

    assert cupy.IS_FAKE
    return cupy


def test_cupy_quirks(cp):
    x = cp.zeros((3, 4), cp.float32)
    assert cp.float32 is np.float32
    assert not hasattr(x.flags, "writeable") and x.flags.c_contiguous and x.flags.owndata
    assert not x[1:].flags.owndata
    assert isinstance(cp.reshape(np.float32(0.9), (1, 1)), np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones((3, 4), np.float32)
    assert isinstance(cp.asnumpy(x), np.ndarray)
    big = cp.zeros(cp.SHARES_MEMORY_LIMIT, cp.float32)
    with pytest.raises(RuntimeError, match="may_share_memory"):
        cp.shares_memory(big, x)
    assert not cp.may_share_memory(big, x) and cp.may_share_memory(big, big[1:])


def _launch_args(cp):
    """Valid arguments of ``sum_segments<float>`` for one row of 2 chains in 2 segments:
    partial sums [1, 2] and [3, 4], so the totals are [4, 6]."""
    return [cp.asarray(np.array([1, 2, 3, 4], np.float32)), cp.empty(2, np.float32),
            np.int64(2), np.int64(1), np.int64(1), np.int64(2), np.int64(2)]


@pytest.mark.parametrize(("index", "bad", "message"), [
    (0, np.zeros(1, np.float32), "by value"),
    (0, np.zeros(4, np.float32), "Unsupported type numpy.ndarray"),
    (0, np.float32(0), "a pointer takes a CuPy array"),
    (0, "float64 array", "points to float32"),
    (3, 1, None),  # a Python int is passed as a 64-bit integer: fine for long long
    (3, np.int32(1), "takes int64"),
    (3, 1.0, "takes int64"),
    (1, "misaligned", "not aligned"),
], ids=["size-1-numpy", "numpy-array", "scalar-for-pointer", "wrong-dtype",
        "python-int", "int32-for-long-long", "float-for-long-long", "misaligned"])
def test_launch_checks_arguments_against_the_source(cp, index, bad, message):
    f32 = np.dtype(np.float32)
    kernel = _kernels.function("sum_segments", f32, f32)
    args = _launch_args(cp)
    if isinstance(bad, str) and bad == "float64 array":
        bad = cp.zeros(1, np.float64)
    if isinstance(bad, str) and bad == "misaligned":
        bad = cp.zeros(9, np.float32).view(np.uint8)[2:34].view(np.float32)
    args[index] = bad
    if message is None:
        kernel((1,), (_plan.WARP,), tuple(args))
        np.testing.assert_array_equal(cp.asnumpy(args[1]), [4, 6])
        return
    with pytest.raises(cp._raw.LaunchError, match=message):
        kernel((1,), (_plan.WARP,), tuple(args))


def test_launch_checks_count_geometry_and_names(cp):
    f32 = np.dtype(np.float32)
    kernel = _kernels.function("sum_segments", f32, f32)
    args = _launch_args(cp)
    with pytest.raises(cp._raw.LaunchError, match="6 arguments for 7 parameters"):
        kernel((1,), (32,), tuple(args[:-1]))
    with pytest.raises(cp._raw.LaunchError, match="args must be a tuple"):
        kernel((1,), (32,), args)
    with pytest.raises(cp._raw.LaunchError, match="more than 1024 threads"):
        kernel((1,), (64, 32), tuple(args))
    with pytest.raises(cp._raw.LaunchError, match="grid"):
        kernel((1, 70000), (32,), tuple(args))
    module = cp.RawModule(code=_kernels.source_text(),
                          name_expressions=_kernels.expressions(f32, f32))
    with pytest.raises(cp.cuda.CUDARuntimeError, match="name_expressions"):
        module.get_function("sum_segments<double>")
    with pytest.raises(cp.cuda.CUDARuntimeError, match="no kernel named"):
        cp.RawModule(code=_kernels.source_text(), name_expressions=["no_such<float>"])
