"""A learned gate between BLUR's two directions, position by position:

    g = sigmoid([f, b] @ W + c)        y = g * f + (1 - g) * b

for ``x = [f, b]`` of shape ``(..., 2H)`` (forward and backward LRU outputs side by side)
and ``y`` of shape ``(..., H)``. With ``W`` small and ``c = 0`` at initialisation the gate
starts near 1/2: the mean of the two directions.
"""

import numpy as np

from linrec.nn._layer import Layer, prefixed
from linrec.nn.activations import sigmoid
from linrec.nn.linear import Linear

__all__ = ["GatedMerge"]


class GatedMerge(Layer):
    """``(..., 2H) -> (..., H)``: a per-feature, per-step convex combination of the
    two halves of the input, weighted by a sigmoid gate computed from both (parameters
    ``gate.W`` of shape ``(2H, H)``, ``gate.b`` of shape ``(H,)``)."""

    def __init__(self, d_model, *, rng, scale=0.1, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.d_model = int(d_model)
        self.children["gate"] = Linear(2 * d_model, d_model, rng=rng, scale=scale,
                                       xp=xp, dtype=dtype)

    def forward(self, x):
        """``(y, cache)`` for x of shape ``(..., 2H)``."""
        h = self.d_model
        z, c_gate = self.children["gate"].forward(x)
        g = sigmoid(self.xp, z)
        f, b = x[..., :h], x[..., h:]
        return b + g * (f - b), (f, b, g, c_gate)

    def backward(self, dy, cache):
        """``(dx, grads)`` from ``dy`` of shape ``(..., H)``."""
        f, b, g, c_gate = cache
        dz = dy * (f - b) * g * (1.0 - g)
        dx, grads = self.children["gate"].backward(dz, c_gate)
        dx[..., :self.d_model] += dy * g
        dx[..., self.d_model:] += dy * (1.0 - g)
        return dx, prefixed("gate", grads)
