"""Normalisation over the last (feature) axis: LayerNorm and RMSNorm."""

import numpy as np

from linrec.nn._layer import Layer

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
        xc = x - x.mean(axis=-1, keepdims=True)
        rstd = 1.0 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * rstd
        return xhat * self.params["g"] + self.params["b"], (xhat, rstd)

    def backward(self, dy, cache):
        """``(dx, {"g", "b"})``."""
        xhat, rstd = cache
        lead = tuple(range(dy.ndim - 1))
        grads = {"g": (dy * xhat).sum(axis=lead), "b": dy.sum(axis=lead)}
        dxhat = dy * self.params["g"]
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                     - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return dx, grads


class RMSNorm(Layer):
    """``y = x / sqrt(mean(x**2) + eps) * g`` over the last axis of size ``dim``."""

    def __init__(self, dim, *, eps=1e-5, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.eps = eps
        self.new_param("g", np.ones(dim))

    def forward(self, x):
        """``(y, cache)``; x and y of shape ``(..., dim)``."""
        rstd = 1.0 / self.xp.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)
        xhat = x * rstd
        return xhat * self.params["g"], (xhat, rstd)

    def backward(self, dy, cache):
        """``(dx, {"g"})``."""
        xhat, rstd = cache
        grads = {"g": (dy * xhat).sum(axis=tuple(range(dy.ndim - 1)))}
        dxhat = dy * self.params["g"]
        dx = rstd * (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return dx, grads


NORMS = {"layer": LayerNorm, "rms": RMSNorm}


def make_norm(kind, dim, *, xp=np, dtype=np.float32):
    """The norm named ``kind`` in ``NORMS``; ValueError otherwise."""
    if kind not in NORMS:
        raise ValueError(f"norm={kind!r}; use one of {sorted(NORMS)}")
    return NORMS[kind](dim, xp=xp, dtype=dtype)
