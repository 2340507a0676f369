"""A dense layer y = x @ W + b over the last axis."""

import numpy as np

from linrec.nn._layer import Layer
from linrec.nn._reduce import sum_rows

__all__ = ["Linear"]


class Linear(Layer):
    """``y = x @ W + b``: x of shape ``(..., n_in)`` to y of shape ``(..., n_out)``.

    Parameters ``W`` of shape ``(n_in, n_out)`` (normal, std ``scale / sqrt(n_in)``) and,
    with ``bias=True``, ``b`` of shape ``(n_out,)`` (zeros).
    """

    def __init__(self, n_in, n_out, *, rng, bias=True, scale=1.0, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.new_param("W", rng.standard_normal((n_in, n_out)) * scale / np.sqrt(n_in))
        if bias:
            self.new_param("b", np.zeros(n_out))

    def forward(self, x):
        """``(y, cache)`` for x of shape ``(..., n_in)``."""
        y = x @ self.params["W"]
        if "b" in self.params:
            y += self.params["b"]
        return y, x

    def backward(self, dy, x):
        """``(dx, grads)`` from ``dy = dL/dy`` of shape ``(..., n_out)``."""
        x2 = x.reshape(-1, self.n_in)
        dy2 = dy.reshape(-1, self.n_out)
        grads = {"W": x2.T @ dy2}
        if "b" in self.params:
            grads["b"] = sum_rows(self.xp, dy2)
        return dy @ self.params["W"].T, grads
