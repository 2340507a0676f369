"""The base every layer shares: named parameters, children, and parameter creation.

A layer owns ``self.params`` (name -> array of its namespace ``xp``) and ``self.children``
(name -> layer). ``parameters()`` flattens both into one dict with dotted names
(``"blocks.0.fwd.nu_log"``); gradients returned by ``backward`` use the same names.
Optimizers update the arrays in place, so the dict stays valid for the layer's life.

Each layer also declares the optimizer group of its parameters (``param_groups()``, same
names): "decay" for matrices, "no_decay" for vectors (biases, gains), unless the layer's
``PARAM_GROUPS`` names another group for a parameter (the LRU puts its recurrence
parameters in "recurrence"). :class:`~linrec.nn.Adam` reads the groups, so it needs no
knowledge of any layer.
"""

import numpy as np

__all__ = ["Layer", "prefixed", "default_group"]


def prefixed(prefix, grads):
    """``grads`` with every key renamed ``prefix.key``."""
    return {f"{prefix}.{k}": v for k, v in grads.items()}


def default_group(param):
    """The optimizer group of a parameter no layer names: "decay" for a matrix
    (``ndim >= 2``), "no_decay" otherwise."""
    return "decay" if param.ndim >= 2 else "no_decay"


class Layer:
    """Parameters of one namespace and dtype; subclasses add ``forward`` / ``backward``.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``: the namespace of every parameter and activation.
    dtype : numpy dtype
        The real floating dtype of every parameter (float32 to train, float64 to check).
    """

    PARAM_GROUPS = {}

    def __init__(self, *, xp=np, dtype=np.float32):
        self.xp = xp
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.params = {}
        self.children = {}

    def new_param(self, name, host_values):
        """Register parameter ``name`` from a NumPy array (copied to ``xp``, cast)."""
        self.params[name] = self.xp.asarray(np.asarray(host_values, dtype=self.dtype))
        return self.params[name]

    def parameters(self):
        """name -> array for this layer and its children (dotted names), live references."""
        out = dict(self.params)
        for child_name, child in self.children.items():
            out.update(prefixed(child_name, child.parameters()))
        return out

    def param_groups(self):
        """name -> optimizer group for this layer and its children (the names of
        :meth:`parameters`): ``PARAM_GROUPS[name]`` or :func:`default_group`."""
        out = {k: self.PARAM_GROUPS.get(k, default_group(p))
               for k, p in self.params.items()}
        for child_name, child in self.children.items():
            out.update(prefixed(child_name, child.param_groups()))
        return out
