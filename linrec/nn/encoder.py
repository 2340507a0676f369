"""Per-source input encoders: a small nonlinear map of each source's features on its own,
mixed into the model width.

    z_s = GELU(x[..., sources[s]] @ U_s + c_s)        (..., k) for each source s
    y   = [z_0, ..., z_{S-1}] @ V                     (..., H)

A source is a group of input columns measured together (a sensor, a weather station,
the calendar). ``U`` is stored as one block-diagonal matrix of shape ``(F, S k)``: the
entries that would mix two sources are held at zero by a fixed mask (in the forward and
in the gradient), so one matrix product encodes every source. The model adds ``y`` to
its plain linear input projection (:class:`~linrec.nn.model.Model`,
``source_width``), so the encoders add nonlinear per-source features to what a linear
map of all the features already gives.
"""

import numpy as np

from linrec.nn._layer import Layer
from linrec.nn._reduce import sum_rows
from linrec.nn.activations import gelu, gelu_backward

__all__ = ["SourceEncoder", "check_sources"]


def check_sources(sources, n_features):
    """``sources`` as a list of lists of column indices (None: each of the
    ``n_features`` columns its own source). ValueError unless every group is a non-empty
    list of ints in ``[0, n_features)`` and every column is in exactly one group."""
    if sources is None:
        return [[j] for j in range(n_features)]
    try:
        groups = [list(g) for g in sources]
    except TypeError:
        groups = []
    ints = all(isinstance(j, int | np.integer) and not isinstance(j, bool)
               for g in groups for j in g)
    if not ints or not groups or any(not g for g in groups) or \
            sorted(j for g in groups for j in g) != list(range(n_features)):
        raise ValueError(
            f"sources={sources!r}; give groups of column indices (e.g. [[0], [1, 2]]) "
            f"that cover each of the {n_features} input columns exactly once, or None "
            f"for one source per column")
    return [[int(j) for j in g] for g in groups]


class SourceEncoder(Layer):
    """``(..., F) -> (..., H)``: a GELU layer of ``width`` units per source, then one
    linear map of all the sources' units to ``d_model``.

    Parameters ``U`` of shape ``(F, S width)`` (block-diagonal: source s's columns feed
    only its own ``width`` units; normal, std ``1 / sqrt(len(sources[s]))``), ``c`` of
    shape ``(S width,)`` (zeros) and ``V`` of shape ``(S width, d_model)`` (normal, std
    ``1 / sqrt(S width)``). ``sources``: see :func:`check_sources`.
    """

    def __init__(self, n_features, d_model, width, *, sources=None, rng, xp=np,
                 dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        self.sources = check_sources(sources, n_features)
        if not (isinstance(width, int | np.integer) and width >= 1):
            raise ValueError(f"width={width!r}; it must be an int >= 1")
        n_units = len(self.sources) * int(width)
        mask = np.zeros((n_features, n_units))
        for s, cols in enumerate(self.sources):
            mask[np.ix_(cols, range(s * width, (s + 1) * width))] = 1.0
        scale = 1.0 / np.sqrt(mask.sum(axis=0))
        self.mask = xp.asarray(mask.astype(self.dtype))
        self.new_param("U", rng.standard_normal(mask.shape) * scale * mask)
        self.new_param("c", np.zeros(n_units))
        self.new_param("V", rng.standard_normal((n_units, d_model)) / np.sqrt(n_units))

    def forward(self, x):
        """``(y, cache)`` for x of shape ``(..., F)``."""
        p = self.params
        z, c_gelu = gelu(self.xp, x @ (p["U"] * self.mask) + p["c"])
        return z @ p["V"], (x, z, c_gelu)

    def backward(self, dy, cache):
        """``(dx, grads)`` from ``dy`` of shape ``(..., H)``; ``grads["U"]`` is zero
        outside the blocks."""
        x, z, c_gelu = cache
        p = self.params
        n_units = p["c"].shape[0]
        dz = gelu_backward(dy @ p["V"].T, c_gelu)
        x2, z2 = x.reshape(-1, x.shape[-1]), z.reshape(-1, n_units)
        dz2, dy2 = dz.reshape(-1, n_units), dy.reshape(-1, dy.shape[-1])
        grads = {"U": (x2.T @ dz2) * self.mask, "c": sum_rows(self.xp, dz2),
                 "V": z2.T @ dy2}
        return dz @ (p["U"] * self.mask).T, grads
