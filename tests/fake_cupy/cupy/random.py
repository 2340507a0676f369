"""``cupy.random`` of the stand-in: NumPy's generator, results on the device."""

import cupy
import numpy as np

__all__ = ["seed", "uniform", "standard_normal", "random", "default_rng", "Generator"]

_rng = np.random.default_rng(0)


def seed(seed=None):
    global _rng
    _rng = np.random.default_rng(seed)


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return cupy.asarray(_rng.uniform(low, high, size), dtype)


def standard_normal(size=None, dtype=float):
    return cupy.asarray(_rng.standard_normal(size), dtype)


def random(size=None, dtype=float):
    return cupy.asarray(_rng.random(size), dtype)


class Generator:
    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def standard_normal(self, size=None, dtype=float):
        return cupy.asarray(self._rng.standard_normal(size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return cupy.asarray(self._rng.uniform(low, high, size), dtype)

    def random(self, size=None, dtype=float):
        return cupy.asarray(self._rng.random(size), dtype)


def default_rng(seed=None):
    return Generator(seed)
