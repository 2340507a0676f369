"""Layers with hand-written gradients, the BLUR model, losses and the Adam optimizer.

Every layer has ``forward(x) -> (y, cache)`` and ``backward(dy, cache) -> (dx, grads)``
and works on arrays of its namespace ``xp`` (NumPy or CuPy); the only recurrence is
``linrec.scan`` (inside :class:`LRU`).
"""

from linrec.nn.block import BLURBlock
from linrec.nn.checkpoint import CheckpointError
from linrec.nn.linear import Linear
from linrec.nn.losses import cross_entropy, mae, mse, pinball
from linrec.nn.lru import LRU
from linrec.nn.model import Model
from linrec.nn.norm import LayerNorm, RMSNorm
from linrec.nn.optim import Adam, clip_grad_norm
from linrec.nn.projection import GLU, MLP
from linrec.nn.schedule import lr_at

__all__ = [
    "Adam", "BLURBlock", "CheckpointError", "GLU", "LRU", "LayerNorm", "Linear", "MLP",
    "Model", "RMSNorm", "clip_grad_norm", "cross_entropy", "lr_at", "mae", "mse", "pinball",
]
