"""Sequential digits: scikit-learn's 8x8 handwritten digits read as length-64 sequences."""

import numpy as np

from linrec.apps.data.windows import split_bounds
from linrec.nn.fit import ArraySet

__all__ = ["ArraySet", "load_digits_sequences", "shifted_copies"]


def shifted_copies(images, max_shift):
    """``(n * (2 * max_shift + 1) ** 2, H, W)``: every image of ``images`` (n, H, W)
    moved by each (dy, dx) in ``[-max_shift, max_shift]^2`` with zeros shifted in, the
    shifts in the outer order (dy, then dx) and the images inner; ``max_shift=0``
    returns the images. ValueError unless ``0 <= max_shift < min(H, W)``."""
    n, h, w = images.shape
    if int(max_shift) != max_shift or not 0 <= max_shift < min(h, w):
        raise ValueError(f"max_shift={max_shift}; use an integer in [0, {min(h, w)})")
    span = range(-max_shift, max_shift + 1)
    out = np.zeros((len(span) ** 2, n, h, w), dtype=images.dtype)
    for k, (dy, dx) in enumerate((dy, dx) for dy in span for dx in span):
        out[k, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out.reshape(-1, h, w)


def load_digits_sequences(*, fractions=(0.6, 0.2, 0.2), seed=0, max_shift=0,
                          dtype=np.float32):
    """``{"train", "val", "test"}`` -> :class:`ArraySet` of x (n, 64, 1) pixel values
    scaled to [0, 1] in row-major order and integer labels (n,), shuffled with ``seed``
    before the split. ``max_shift > 0`` augments the training split alone with the
    :func:`shifted_copies` of its images (``(2 * max_shift + 1) ** 2`` times as many)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    x = (digits.data[order] / 16.0).astype(dtype)[:, :, None]
    y = digits.target[order].astype(np.int64)
    bounds = split_bounds(len(y), fractions)
    sets = {name: ArraySet(x[a:b], y[a:b])
            for name, (a, b) in zip(("train", "val", "test"), bounds, strict=True)}
    if max_shift:
        train = sets["train"]
        images = shifted_copies(train.x.reshape(-1, 8, 8), max_shift)
        copies = len(images) // len(train)
        sets["train"] = ArraySet(images.reshape(-1, 64, 1), np.tile(train.y, copies))
    return sets
