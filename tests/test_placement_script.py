"""benchmarks/placement.py places its arrays where it says: each one ``delta`` bytes after
the previous one's end rounded up to 2 MiB, the first on a 2 MiB boundary, none
overlapping; and its page offsets are counted modulo 2 MiB."""

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "placement.py"
MIB2 = 1 << 21


@pytest.fixture(scope="module")
def placement():
    return load_script(SCRIPT, "placement_script")


@pytest.mark.parametrize("delta", [0, 2048, 69632, 1 << 20])
@pytest.mark.parametrize("shape", [(3, 5), (7, 1000)])
def test_carved_arrays_start_delta_after_the_rounded_end(placement, delta, shape):
    dtype = np.dtype(np.float32)
    nbytes = shape[0] * shape[1] * dtype.itemsize
    buffer, views = placement._carved(nbytes, delta, dtype, shape)
    starts = [v.ctypes.data for v in views]
    assert len(views) == 6
    assert starts[0] % MIB2 == 0
    assert np.diff(starts).tolist() == [MIB2 + delta] * 5  # nbytes < 2 MiB rounds up to it
    for v in views:
        assert v.shape == shape and v.dtype == dtype and v.flags.c_contiguous
        assert v.base is not None and np.shares_memory(v, buffer)
    for i in range(6):
        for j in range(i + 1, 6):
            assert not np.shares_memory(views[i], views[j])
    assert placement._pages(views) == [(k * delta % MIB2) // 4096 for k in range(6)]
