"""Layers with hand-written gradients, the BLUR model, losses and the Adam optimizer.

Every layer has ``forward(x) -> (y, cache)`` and ``backward(dy, cache) -> (dx, grads)``
and works on arrays of its namespace ``xp`` (NumPy or CuPy); the only recurrence is
``linrec.scan`` (inside :class:`LRU`).

:class:`BLURClassifier` and :class:`BLURRegressor` (scikit-learn estimators, in
:mod:`linrec.nn.estimators`) are imported on first use, so that ``linrec.nn`` itself needs
no scikit-learn.
"""

from linrec.nn.block import BLURBlock
from linrec.nn.checkpoint import CheckpointError
from linrec.nn.encoder import SourceEncoder
from linrec.nn.linear import Linear
from linrec.nn.losses import cross_entropy, mae, mse, pinball
from linrec.nn.lru import LRU
from linrec.nn.model import Model
from linrec.nn.norm import LayerNorm, RMSNorm
from linrec.nn.optim import Adam, clip_grad_norm
from linrec.nn.projection import GLU, MLP
from linrec.nn.schedule import lr_at

__all__ = [
    "Adam", "BLURBlock", "BLURClassifier", "BLURRegressor", "CheckpointError", "GLU", "LRU",
    "LayerNorm", "Linear", "MLP", "Model", "RMSNorm", "SourceEncoder", "clip_grad_norm",
    "cross_entropy", "lr_at", "mae", "mse", "pinball",
]


def __getattr__(name):
    """The estimators, imported on first use (ImportError naming the 'model' extra
    without scikit-learn)."""
    if name in ("BLURClassifier", "BLURRegressor"):
        from linrec.nn import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'linrec.nn' has no attribute {name!r}")
