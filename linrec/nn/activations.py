"""Parameter-free elementwise functions as forward/backward pairs, and dropout.

GELU uses the tanh approximation so that it needs nothing beyond the array namespace.
"""

import math

__all__ = ["gelu", "gelu_backward", "sigmoid", "dropout", "dropout_backward"]

_K = math.sqrt(2.0 / math.pi)
_C = 0.044715


def gelu(xp, x):
    """``(y, cache)`` with ``y = 0.5 x (1 + tanh(k (x + 0.044715 x^3)))``."""
    t = xp.tanh(_K * (x + _C * x * x * x))
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_backward(dy, cache):
    """``dx`` from ``dy``."""
    x, t = cache
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _K * (1.0 + 3.0 * _C * x * x))


def sigmoid(xp, x):
    """The logistic function, computed as ``0.5 (1 + tanh(x / 2))`` (no overflow)."""
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


def dropout(x, rate, rng):
    """``(y, mask)``: inverted dropout; the identity when ``rng`` is None or ``rate`` is 0.

    ``rng`` is a random generator of x's namespace (``numpy.random.Generator`` or
    ``cupy.random.Generator``); ``mask`` is None when nothing was dropped.
    """
    if rng is None or rate <= 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= rate
    mask = keep.astype(x.dtype) / (1.0 - rate)
    return x * mask, mask


def dropout_backward(dy, mask):
    """``dx`` from ``dy``."""
    return dy if mask is None else dy * mask
