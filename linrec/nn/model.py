"""The stacked model: input projection, L BLUR (or LRU) blocks, a final norm and a head.

    x (batch, T, F) -> Linear F->H -> L x BLURBlock -> norm -> pool -> head

Heads: ``task="forecast"`` pools the last step and the time mean (``pool``) and maps them
to ``horizon * n_targets`` values, returned as ``(batch, horizon, n_targets)`` and trained
with MSE; ``pool="window"`` flattens the features of the last ``horizon`` input steps
into the head instead; ``pool="tail"`` maps each of the last ``horizon`` steps to its
``n_targets`` values (for inputs that extend over the forecast steps with known-future
covariates). ``task="classify"`` pools and maps to ``n_classes`` logits, trained with
softmax cross-entropy on integer labels.
"""

import inspect

import numpy as np

from linrec._host import to_numpy
from linrec.nn import shards
from linrec.nn._layer import Layer, prefixed
from linrec.nn._memory import keep_freed_memory
from linrec.nn.block import BLURBlock
from linrec.nn.checkpoint import (
    MODEL_FORMAT,
    CheckpointError,
    read_checkpoint,
    write_checkpoint,
)
from linrec.nn.linear import Linear
from linrec.nn.losses import cross_entropy, mse
from linrec.nn.norm import make_norm

__all__ = ["Model", "MODEL_FORMAT"]

POOLS = ("last", "mean", "last+mean", "tail", "window")


class Model(Layer):
    """BLUR (``bidirectional=True``) or unidirectional LRU model with a head.

    Parameters
    ----------
    n_features : int
        F, the features per time step the model accepts.
    task : {"forecast", "classify"}
    horizon, n_targets : int
        Forecast shape (``task="forecast"``).
    n_classes : int
        Number of classes (``task="classify"``).
    d_model, d_state, n_layers : int
        H, the LRU state size N, and the number of blocks L.
    pool : {"last", "mean", "last+mean", "window", "tail"} or None
        What the head reads; None picks "last+mean" to forecast and "mean" to classify.
    seed : int
        Seed of the initial parameters.
    bidirectional, merge, projection, norm, dropout, r_min, r_max, max_phase :
        Passed to every :class:`~linrec.nn.block.BLURBlock`.
    xp, dtype : the namespace and real dtype of parameters and activations.
    """

    def __init__(self, n_features, *, task="forecast", horizon=48, n_targets=1,
                 n_classes=None, d_model=32, d_state=32, n_layers=2, bidirectional=True,
                 merge="sum", projection="glu", norm="layer", dropout=0.0, r_min=0.0,
                 r_max=0.99, max_phase=2 * np.pi, pool=None, seed=0, xp=np,
                 dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        if task not in ("forecast", "classify"):
            raise ValueError(f"task={task!r}; use 'forecast' or 'classify'")
        if task == "classify" and not (n_classes and n_classes >= 2):
            raise ValueError("task='classify' needs n_classes >= 2")
        pool = pool or ("last+mean" if task == "forecast" else "mean")
        if pool not in POOLS:
            raise ValueError(f"pool={pool!r}; use one of {POOLS}")
        self.config = dict(
            n_features=int(n_features), task=task, horizon=int(horizon),
            n_targets=int(n_targets), n_classes=n_classes, d_model=int(d_model),
            d_state=int(d_state), n_layers=int(n_layers), bidirectional=bool(bidirectional),
            merge=merge, projection=projection, norm=norm, dropout=float(dropout),
            r_min=float(r_min), r_max=float(r_max), max_phase=float(max_phase), pool=pool,
            seed=int(seed), dtype=self.dtype.name,
        )
        rng = np.random.default_rng(seed)
        kw = dict(xp=xp, dtype=dtype)
        self.children["inp"] = Linear(n_features, d_model, rng=rng, **kw)
        self.blocks = [
            BLURBlock(d_model, d_state, rng=rng, bidirectional=bidirectional, merge=merge,
                      projection=projection, norm=norm, dropout=dropout, r_min=r_min,
                      r_max=r_max, max_phase=max_phase, **kw)
            for _ in range(n_layers)
        ]
        for i, block in enumerate(self.blocks):
            self.children[f"blocks.{i}"] = block
        self.children["norm"] = make_norm(norm, d_model, **kw)
        if pool in ("tail", "window") and task != "forecast":
            raise ValueError(f"pool={pool!r} is for task='forecast'")
        self.children["head"] = Linear(*_head_shape(self.config), rng=rng, **kw)

    def check_input(self, x):
        """ValueError unless x is ``(batch, T, n_features)`` with T >= 1 and all finite."""
        f = self.config["n_features"]
        if getattr(x, "ndim", None) != 3 or x.shape[2] != f or x.shape[1] < 1:
            raise ValueError(
                f"x has shape {getattr(x, 'shape', None)}; the model needs "
                f"(batch, T, {f}) with {f} features per step"
            )
        if not bool(self.xp.isfinite(x).all()):
            raise ValueError("x contains NaN or inf; clean or impute the data first")

    def forward(self, x, rng=None):
        """``(out, cache)``: forecasts ``(batch, horizon, n_targets)`` or logits
        ``(batch, n_classes)``. Dropout is active only when ``rng`` is given."""
        self.check_input(x)
        xp, ch = self.xp, self.children
        h, c_inp = ch["inp"].forward(xp.asarray(x, dtype=self.dtype))
        c_blocks = []
        for block in self.blocks:
            h, c = block.forward(h, rng)
            c_blocks.append(c)
        h, c_norm = ch["norm"].forward(h)
        pool = self.config["pool"]
        if pool == "tail":
            out, c_head = ch["head"].forward(h[:, -self.config["horizon"]:])
            return out, (c_inp, c_blocks, c_norm, c_head, h.shape)
        if pool == "window":
            if h.shape[1] < self.config["horizon"]:
                raise ValueError(f"pool='window' needs at least horizon="
                                 f"{self.config['horizon']} input steps, got {h.shape[1]}")
            parts = [h[:, -self.config["horizon"]:].reshape(h.shape[0], -1)]
        else:
            parts = []
        if "last" in pool:
            parts.append(h[:, -1])
        if "mean" in pool:
            parts.append(h.mean(axis=1))
        out, c_head = ch["head"].forward(xp.concatenate(parts, axis=-1))
        if self.config["task"] == "forecast":
            out = out.reshape(-1, self.config["horizon"], self.config["n_targets"])
        return out, (c_inp, c_blocks, c_norm, c_head, h.shape)

    def backward(self, dout, cache):
        """``(dx, grads)`` from ``dL/dout``; grads keyed like :meth:`parameters`."""
        xp, ch = self.xp, self.children
        c_inp, c_blocks, c_norm, c_head, shape = cache
        grads = {}
        pool, d = self.config["pool"], shape[2]
        dh = xp.zeros(shape, dtype=self.dtype)
        if pool == "tail":
            dtail, g = ch["head"].backward(dout, c_head)
            dh[:, -dtail.shape[1]:] = dtail
        elif pool == "window":
            dflat, g = ch["head"].backward(dout.reshape(shape[0], -1), c_head)
            horizon = self.config["horizon"]
            dh[:, -horizon:] = dflat.reshape(shape[0], horizon, d)
        else:
            dpool, g = ch["head"].backward(dout.reshape(shape[0], -1), c_head)
        grads.update(prefixed("head", g))
        if "last" in pool:
            dh[:, -1] += dpool[:, :d]
        if "mean" in pool:
            dh += dpool[:, None, -d:] / shape[1]
        dh, g = ch["norm"].backward(dh, c_norm)
        grads.update(prefixed("norm", g))
        for i in reversed(range(len(self.blocks))):
            dh, g = self.blocks[i].backward(dh, c_blocks[i])
            grads.update(prefixed(f"blocks.{i}", g))
        dx, g = ch["inp"].backward(dh, c_inp)
        grads.update(prefixed("inp", g))
        return dx, grads

    def _loss(self, out, y):
        if self.config["task"] == "forecast":
            return mse(self.xp, out, self.xp.asarray(y, dtype=self.dtype))
        return cross_entropy(self.xp, out, self.xp.asarray(y))

    def loss(self, x, y):
        """The loss alone (float, no dropout): see :meth:`loss_and_grad`."""
        return self._loss(self.forward(x)[0], y)[0]

    def loss_and_grad(self, x, y, rng=None, *, workers=None):
        """``(float loss, grads)``: MSE against forecasts ``y`` (batch, horizon,
        n_targets) or cross-entropy against integer labels ``y`` (batch,). Dropout is
        active only when ``rng`` is given.

        ``workers``: on NumPy, the number of threads that run shards of the batch in
        parallel (:mod:`linrec.nn.shards`); None uses as many as linrec's CPU kernels
        (``numba.get_num_threads()``), 1 runs the whole batch on the calling thread.
        Ignored on CuPy. TypeError unless an int or None, ValueError below 1. On NumPy
        the first call keeps freed memory in the process
        (:func:`linrec.nn._memory.keep_freed_memory`), so the step's arrays are reused
        rather than page-faulted fresh at every step."""
        shards.check_workers(workers)
        if self.xp is np:
            keep_freed_memory()
            workers = shards.default_workers() if workers is None else workers
            if workers > 1 and len(x) > 1:
                self.check_input(x)
                return shards.sharded_loss_and_grad(self, x, y, rng, workers)
        out, cache = self.forward(x, rng)
        loss, dout = self._loss(out, y)
        return loss, self.backward(dout.astype(self.dtype), cache)[1]

    def predict(self, x, batch_size=256):
        """Forecasts or logits for x, computed in batches of ``batch_size``, no dropout."""
        outs = [self.forward(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
        return self.xp.concatenate(outs, axis=0)

    def host_parameters(self):
        """name -> NumPy copy of every parameter."""
        return {k: to_numpy(v, copy=True) for k, v in self.parameters().items()}

    def set_parameters(self, arrays, source="arrays"):
        """Copy ``arrays`` (name -> array) into the parameters in place.

        CheckpointError when names or shapes differ from this model's (another model
        shape); nothing is changed then.
        """
        params = self.parameters()
        missing = sorted(set(params) - set(arrays))
        extra = sorted(set(arrays) - set(params))
        bad = [k for k in params
               if k in arrays and tuple(arrays[k].shape) != params[k].shape]
        if missing or extra or bad:
            detail = "; ".join(
                f"{what}: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}"
                for what, names in (("missing", missing), ("unexpected", extra),
                                    ("wrong shape", bad)) if names)
            raise CheckpointError(f"{source} holds parameters of another model shape "
                                  f"({detail})")
        for k, p in params.items():
            p[...] = self.xp.asarray(arrays[k], dtype=self.dtype)

    def save(self, path):
        """Write config and parameters to ``path`` (.npz, atomically, see
        :mod:`linrec.nn.checkpoint`)."""
        arrays = {f"param/{k}": v for k, v in self.host_parameters().items()}
        write_checkpoint(path, MODEL_FORMAT, self.config, arrays)

    @classmethod
    def from_arrays(cls, config, params, *, xp=np, source="arrays"):
        """A model built from its ``config`` (as :meth:`save` writes it) and its
        parameters (name -> array). The config is checked against the parameters'
        shapes before anything is built, so a tampered config cannot make the model
        larger than the arrays; ``source`` names them in errors.

        Raises
        ------
        CheckpointError
            A config that does not describe a model, or parameters that do not match it
            (names, shapes, NaN or inf, not real floating point).
        """
        _check_config(config, {k: v.shape for k, v in params.items()}, source)
        try:
            model = cls(**config, xp=xp)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source} has an invalid model config ({err})") from None
        model.set_parameters(params, source=str(source))
        return model

    @classmethod
    def load(cls, path, xp=np):
        """A model rebuilt from a file written by :meth:`save` (see :meth:`from_arrays`).

        Raises
        ------
        FileNotFoundError
            No such file.
        CheckpointError
            A malformed file, or one :meth:`from_arrays` refuses.
        """
        _, config, arrays = read_checkpoint(path, (MODEL_FORMAT,))
        params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
        return cls.from_arrays(config, params, xp=xp, source=path)

SIZES = ("n_features", "horizon", "n_targets", "d_model", "d_state", "n_layers")


def _head_shape(config):
    """``(inputs, outputs)`` of the head's weight for a model config."""
    pool, d_model, horizon = config["pool"], config["d_model"], config["horizon"]
    n_pool = {"last+mean": 2 * d_model, "window": horizon * d_model}.get(pool, d_model)
    if config["task"] != "forecast":
        return n_pool, config["n_classes"]
    return n_pool, config["n_targets"] if pool == "tail" else horizon * config["n_targets"]


def _check_config(config, shapes, path):
    """CheckpointError unless ``config`` has exactly the keys of :class:`Model`, its
    sizes are positive integers, and the input layer, the number of blocks, the LRU
    state size and the head agree with the parameter ``shapes`` (name -> tuple)."""
    keys = set(inspect.signature(Model).parameters) - {"xp"}
    if not isinstance(config, dict) or set(config) != keys:
        got = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{path}: the model config must be an object with keys "
                              f"{sorted(keys)}, got {got}")
    bad = [k for k in SIZES + ("n_classes",) if not (
        type(config[k]) is int and config[k] >= 1
        or k == "n_classes" and config[k] is None)]
    if bad or config["pool"] not in POOLS or config["task"] not in ("forecast", "classify"):
        raise CheckpointError(f"{path}: invalid model config values "
                              f"{ {k: config[k] for k in bad + ['pool', 'task']} }")
    blocks = {k.split(".")[1] for k in shapes if k.startswith("blocks.")}
    expect = {
        "input layer": (shapes.get("inp.W"), (config["n_features"], config["d_model"])),
        "blocks": (blocks, {str(i) for i in range(config["n_layers"])}),
        "LRU states": ({s for k, s in shapes.items() if k.endswith(".nu_log")},
                       {(config["d_state"],)}),
        "head": (shapes.get("head.W"), _head_shape(config)),
    }
    wrong = [f"{name}: config implies {want}, arrays hold {have}"
             for name, (have, want) in expect.items() if have != want]
    if wrong:
        raise CheckpointError(f"{path}: the config disagrees with the parameters "
                              f"({'; '.join(wrong)})")
