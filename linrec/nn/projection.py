"""The position-wise projections that follow the merge in a BLUR block: GLU and MLP."""

import numpy as np

from linrec.nn._layer import Layer, prefixed
from linrec.nn.activations import gelu, gelu_backward, sigmoid
from linrec.nn.linear import Linear

__all__ = ["GLU", "MLP", "PROJECTIONS", "make_projection"]


class GLU(Layer):
    """``y = (g W_a + b_a) * sigmoid(g W_g + b_g)``: one Linear ``dim -> 2 dim`` ("proj")
    split in two halves; x and y of shape ``(..., dim)``."""

    def __init__(self, dim, *, rng, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.dim = dim
        self.children["proj"] = Linear(dim, 2 * dim, rng=rng, xp=xp, dtype=dtype)

    def forward(self, x):
        """``(y, cache)``."""
        p, cp = self.children["proj"].forward(x)
        a, s = p[..., :self.dim], sigmoid(self.xp, p[..., self.dim:])
        return a * s, (cp, a, s)

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        cp, a, s = cache
        dp = self.xp.concatenate([dy * s, dy * a * s * (1.0 - s)], axis=-1)
        dx, g = self.children["proj"].backward(dp, cp)
        return dx, prefixed("proj", g)


class MLP(Layer):
    """``y = GELU(x W_1 + b_1) W_2 + b_2`` with hidden size ``expand * dim``."""

    def __init__(self, dim, *, rng, expand=2, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.children["fc1"] = Linear(dim, expand * dim, rng=rng, xp=xp, dtype=dtype)
        self.children["fc2"] = Linear(expand * dim, dim, rng=rng, xp=xp, dtype=dtype)

    def forward(self, x):
        """``(y, cache)``."""
        h, c1 = self.children["fc1"].forward(x)
        a, ca = gelu(self.xp, h)
        y, c2 = self.children["fc2"].forward(a)
        return y, (c1, ca, c2)

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        c1, ca, c2 = cache
        da, g2 = self.children["fc2"].backward(dy, c2)
        dx, g1 = self.children["fc1"].backward(gelu_backward(da, ca), c1)
        return dx, {**prefixed("fc1", g1), **prefixed("fc2", g2)}


PROJECTIONS = {"glu": GLU, "mlp": MLP}


def make_projection(kind, dim, *, rng, xp=np, dtype=np.float32):
    """The projection named ``kind`` in ``PROJECTIONS``; ValueError otherwise."""
    if kind not in PROJECTIONS:
        raise ValueError(f"projection={kind!r}; use one of {sorted(PROJECTIONS)}")
    return PROJECTIONS[kind](dim, rng=rng, xp=xp, dtype=dtype)
