"""The BLUR block: norm, forward and backward LRUs over the same input, merge, GELU,
projection, dropout, residual.

    z = norm(x)
    m = LRU_fwd(z) + LRU_bwd(z)                 merge="sum"
    m = Linear([LRU_fwd(z), LRU_bwd(z)])        merge="concat"  (2H -> H)
    m = g * LRU_fwd(z) + (1 - g) * LRU_bwd(z)   merge="gate"    (g = sigmoid(Linear(..)))
    y = x + dropout(proj(GELU(m)))              proj: GLU or MLP

``bidirectional=False`` drops the backward LRU (m = LRU_fwd(z)): the unidirectional LRU
block used for ablations. Shapes: x and y are ``(batch, T, H)``.

Streaming (unidirectional blocks only): :meth:`BLURBlock.step` continues from the forward
LRU's state, one step or one chunk at a time, without dropout or a cache.
"""

import numpy as np

from linrec.nn._layer import Layer, prefixed
from linrec.nn.activations import dropout, dropout_backward, gelu, gelu_backward
from linrec.nn.gate import GatedMerge
from linrec.nn.linear import Linear
from linrec.nn.lru import LRU
from linrec.nn.norm import make_norm
from linrec.nn.projection import make_projection

__all__ = ["BLURBlock", "MERGES"]

MERGES = ("sum", "concat", "gate")


class BLURBlock(Layer):
    """One residual block; see the module docstring.

    Parameters
    ----------
    d_model, d_state : int
        H and the LRU state size N.
    bidirectional : bool
        Add the reverse-time LRU (BLUR) or not (unidirectional LRU block).
    merge : {"sum", "concat"}
        How the two directions are combined (ignored when unidirectional).
    projection : {"glu", "mlp"}
    norm : {"layer", "rms"}
    dropout : float
        Rate in [0, 1), applied only when ``forward`` gets an ``rng``.
    r_min, r_max, max_phase : float
        The LRUs' ring initialisation.
    """

    def __init__(self, d_model, d_state, *, rng, bidirectional=True, merge="sum",
                 projection="glu", norm="layer", dropout=0.0, r_min=0.0, r_max=0.99,
                 max_phase=2 * np.pi, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        if merge not in MERGES:
            raise ValueError(f"merge={merge!r}; use one of {MERGES}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout}; use a rate in [0, 1)")
        self.bidirectional, self.merge, self.rate = bidirectional, merge, dropout
        kw = dict(xp=xp, dtype=dtype)
        lru = dict(rng=rng, r_min=r_min, r_max=r_max, max_phase=max_phase, **kw)
        self.children["norm"] = make_norm(norm, d_model, **kw)
        self.children["fwd"] = LRU(d_model, d_state, **lru)
        if bidirectional:
            self.children["bwd"] = LRU(d_model, d_state, reverse=True, **lru)
            if merge == "concat":
                self.children["merge"] = Linear(2 * d_model, d_model, rng=rng, **kw)
            elif merge == "gate":
                self.children["merge"] = GatedMerge(d_model, rng=rng, **kw)
        self.children["proj"] = make_projection(projection, d_model, rng=rng, **kw)

    def forward(self, x, rng=None):
        """``(y, cache)``; dropout is active only when ``rng`` (x's namespace) is given."""
        ch = self.children
        z, c_norm = ch["norm"].forward(x)
        m, c_fwd = ch["fwd"].forward(z)
        c_bwd = c_merge = None
        if self.bidirectional:
            mb, c_bwd = ch["bwd"].forward(z)
            if self.merge == "sum":
                m = m + mb
            else:
                m, c_merge = ch["merge"].forward(self.xp.concatenate([m, mb], axis=-1))
        a, c_act = gelu(self.xp, m)
        p, c_proj = ch["proj"].forward(a)
        p, mask = dropout(p, self.rate, rng)
        return x + p, (c_norm, c_fwd, c_bwd, c_merge, c_act, c_proj, mask)

    def backward(self, dy, cache):
        """``(dx, grads)``."""
        ch = self.children
        c_norm, c_fwd, c_bwd, c_merge, c_act, c_proj, mask = cache
        grads = {}
        da, g = ch["proj"].backward(dropout_backward(dy, mask), c_proj)
        grads.update(prefixed("proj", g))
        dm = gelu_backward(da, c_act)
        dm_fwd = dm_bwd = dm
        if self.bidirectional and self.merge != "sum":
            dcat, g = ch["merge"].backward(dm, c_merge)
            grads.update(prefixed("merge", g))
            h = dcat.shape[-1] // 2
            dm_fwd, dm_bwd = dcat[..., :h], dcat[..., h:]
        dz, g = ch["fwd"].backward(dm_fwd, c_fwd)
        grads.update(prefixed("fwd", g))
        if self.bidirectional:
            dzb, g = ch["bwd"].backward(dm_bwd, c_bwd)
            grads.update(prefixed("bwd", g))
            dz = dz + dzb
        dx, g = ch["norm"].backward(dz, c_norm)
        grads.update(prefixed("norm", g))
        return dy + dx, grads

    def step(self, x, state=None):
        """``(y, state)`` for one step x of shape ``(batch, H)`` or a chunk
        ``(batch, T, H)``, continuing from the LRU ``state`` (complex ``(batch, N)``;
        None: the start of a sequence). Inference only: no dropout, no cache.

        ValueError for a bidirectional block: its reverse LRU reads steps not seen yet.
        """
        if self.bidirectional:
            raise ValueError("step: a bidirectional (BLUR) block reads the sequence "
                             "backwards too, so its output at a step depends on later "
                             "steps; use Model.predict_windows on a sliding window, or "
                             "a model with bidirectional=False to stream")
        ch = self.children
        z, _ = ch["norm"].forward(x)
        if x.ndim == 2:
            m, state = ch["fwd"].step(z, state)
        else:
            m, _, state = ch["fwd"].forward(z, state=state, return_state=True)
        a, _ = gelu(self.xp, m)
        p, _ = ch["proj"].forward(a)
        return x + p, state
