"""Normalisation over the last (feature) axis: LayerNorm and RMSNorm."""

import numpy as np

from linrec.nn._layer import Layer
from linrec.nn._reduce import mean_last, sum_rows

__all__ = ["LayerNorm", "NORMS", "RMSNorm", "make_norm"]


class LayerNorm(Layer):
    """``y = (x - mean) / sqrt(var + eps) * g + b`` over the last axis of size ``dim``."""

    def __init__(self, dim, *, eps=1e-5, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.eps = eps
        self.new_param("g", np.ones(dim))
        self.new_param("b", np.zeros(dim))

    def forward(self, x):
        """``(y, cache)``; x and y of shape ``(..., dim)``."""
        xp = self.xp
        xc = x - mean_last(xp, x)
        rstd = 1.0 / xp.sqrt(mean_last(xp, xc * xc) + self.eps)
        xhat = xc * rstd
        y = xhat * self.params["g"]
        y += self.params["b"]
        return y, (xhat, rstd)

    def backward(self, dy, cache):
        """``(dx, {"g", "b"})``."""
        xp = self.xp
        xhat, rstd = cache
        grads = {"g": sum_rows(xp, dy * xhat), "b": sum_rows(xp, dy)}
        dxhat = dy * self.params["g"]
        dx = dxhat - mean_last(xp, dxhat)
        dx -= xhat * mean_last(xp, dxhat * xhat)
        dx *= rstd
        return dx, grads


class RMSNorm(Layer):
    """``y = x / sqrt(mean(x**2) + eps) * g`` over the last axis of size ``dim``."""

    def __init__(self, dim, *, eps=1e-5, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.eps = eps
        self.new_param("g", np.ones(dim))

    def forward(self, x):
        """``(y, cache)``; x and y of shape ``(..., dim)``."""
        rstd = 1.0 / self.xp.sqrt(mean_last(self.xp, x * x) + self.eps)
        xhat = x * rstd
        return xhat * self.params["g"], (xhat, rstd)

    def backward(self, dy, cache):
        """``(dx, {"g"})``."""
        xp = self.xp
        xhat, rstd = cache
        grads = {"g": sum_rows(xp, dy * xhat)}
        dxhat = dy * self.params["g"]
        dx = dxhat - xhat * mean_last(xp, dxhat * xhat)
        dx *= rstd
        return dx, grads


NORMS = {"layer": LayerNorm, "rms": RMSNorm}


def make_norm(kind, dim, *, xp=np, dtype=np.float32):
    """The norm named ``kind`` in ``NORMS``; ValueError otherwise."""
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r}; use one of {sorted(NORMS)}")
    return NORMS[kind](dim, xp=xp, dtype=dtype)
