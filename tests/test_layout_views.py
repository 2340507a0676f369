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


@pytest.mark.parametrize("order", ["C", "F", "C", "F"])
def test_views_follow_each_operands_strides(order):
    """The view layout is cached by shapes and strides: arrays of one shape but other
    strides, met one after another, must each be viewed through their own strides."""
    rng = np.random.default_rng(2)
    x = np.asarray(rng.permutation(3 * 4 * 5).reshape(3, 4, 5), order=order)
    batch = np.asarray(rng.permutation(15).reshape(3, 5), order=order)
    view, batch_view = _layout.views(np, x.shape, 1, [x, batch], [4, 1])
    assert view.shape[-2] == 4 and view.size == x.size and batch_view.size == batch.size
    for t in range(4):
        assert sorted(view[..., t, :].ravel()) == sorted(x[:, t, :].ravel())
    assert sorted(batch_view.ravel()) == sorted(batch.ravel())
    rows = view.reshape(-1, 4, view.shape[-1]).transpose(0, 2, 1).reshape(-1, 4)
    chains = x.transpose(0, 2, 1).reshape(-1, 4)
    assert {tuple(r) for r in rows} == {tuple(r) for r in chains}
