"""Sequential digits: scikit-learn's 8x8 handwritten digits read as length-64 sequences."""

import numpy as np

from linrec.apps.data.windows import split_bounds

__all__ = ["ArraySet", "load_digits_sequences"]


class ArraySet:
    """In-memory samples with the :class:`~linrec.apps.data.windows.WindowSet` interface."""

    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def batch(self, index):
        """``(x, y)`` of the samples ``index``."""
        return self.x[index], self.y[index]

    def all(self):
        return self.x, self.y


def load_digits_sequences(*, fractions=(0.6, 0.2, 0.2), seed=0, dtype=np.float32):
    """``{"train", "val", "test"}`` -> :class:`ArraySet` of x (n, 64, 1) pixel values
    scaled to [0, 1] in row-major order and integer labels (n,), shuffled with ``seed``
    before the split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(dtype)[:, :, None]
    y = digits.target[order].astype(np.int64)
    bounds = split_bounds(len(y), fractions)
    return {name: ArraySet(x[a:b], y[a:b])
            for name, (a, b) in zip(("train", "val", "test"), bounds, strict=True)}
