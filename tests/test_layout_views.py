"""``linrec._layout.views`` views C-contiguous NumPy operands through their buffer (the
fast path) and others with ``as_strided`` (the reference): both must give the same
elements, strides and writeable flags."""

import numpy as np
import pytest

from linrec import _layout


def _reference_as_strided(x, shape, strides, writeable):
    flag = x.flags.writeable if writeable is None else writeable
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=flag)


@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((5, 3), 0), ((2, 7, 3), 1),
                                         ((2, 3, 4, 5), 2), ((1, 9), 1), ((4, 1), 1)])
@pytest.mark.parametrize("reverse_strides", [False, True])
def test_fast_views_equal_as_strided(shape, axis, reverse_strides, monkeypatch):
    rng = np.random.default_rng(1)
    axis = axis % len(shape)
    full = rng.normal(size=shape)
    if reverse_strides:  # not C-contiguous: the reference path itself
        full = np.ascontiguousarray(full.T).T
    const = rng.normal(size=shape[:axis] + (1,) + shape[axis + 1:])
    batch = rng.normal(size=shape[:axis] + shape[axis + 1:])
    zeros = np.zeros((1,) * (len(shape) - 1))
    frozen = rng.normal(size=shape)
    frozen.flags.writeable = False
    operands = [full, const, batch, zeros, frozen]
    T = shape[axis]
    args = (np, shape, axis, operands, [T, T, 1, 1, T], [True, False, True, False, False])
    views = _layout.views(*args)
    monkeypatch.setattr(_layout, "_as_strided", _reference_as_strided)
    expected = _layout.views(*args)
    for x, view, want in zip(operands, views, expected, strict=True):
        assert view.shape == want.shape and view.strides == want.strides
        np.testing.assert_array_equal(view, want)
        assert np.shares_memory(view, x)
        assert view.flags.writeable == want.flags.writeable
