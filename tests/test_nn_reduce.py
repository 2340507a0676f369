"""The matrix-vector reductions of linrec.nn._reduce against NumPy's reductions."""

import numpy as np
import pytest

from linrec.nn._reduce import mean_last, sum_rows


@pytest.mark.parametrize("shape", [(1, 1), (7,), (3, 5), (2, 13, 6), (4, 1, 3, 17)])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_reductions_match_numpy(shape, dtype, rtol):
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    mean = mean_last(np, x)
    assert mean.dtype == dtype and mean.shape == shape[:-1] + (1,)
    np.testing.assert_allclose(mean, x.mean(axis=-1, keepdims=True), rtol=rtol,
                               atol=rtol)
    total = sum_rows(np, x)
    assert total.dtype == dtype and total.shape == shape[-1:]
    np.testing.assert_allclose(total, x.reshape(-1, shape[-1]).sum(axis=0), rtol=rtol,
                               atol=rtol * x.size)
