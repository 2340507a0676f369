"""The stacked model: input projection, L BLUR (or LRU) blocks, a final norm and a head.

    x (batch, T, F) -> Linear F->H [+ SourceEncoder] -> L x BLURBlock -> norm -> pool
      -> head

Heads: ``task="forecast"`` pools the last step and the time mean (``pool``) and maps them
to ``horizon * n_targets`` values, returned as ``(batch, horizon, n_targets)`` and trained
with MSE; ``pool="window"`` flattens the features of the last ``horizon`` input steps
into the head instead; ``pool="tail"`` maps each of the last ``horizon`` steps to its
``n_targets`` values (for inputs that extend over the forecast steps with known-future
covariates). With ``quantiles`` (Q levels in (0, 1)) the forecasting head gives Q values
per forecast step, returned as ``(batch, horizon, n_targets, Q)`` and trained with the
pinball loss. ``task="classify"`` pools and maps to ``n_classes`` logits, trained with
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
from linrec.nn.encoder import SourceEncoder, check_sources
from linrec.nn.linear import Linear
from linrec.nn.losses import cross_entropy, mse, pinball
from linrec.nn.norm import make_norm

__all__ = ["Model", "MODEL_FORMAT", "check_quantiles"]

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
    quantiles : sequence of float or None
        Strictly increasing levels in (0, 1) (e.g. ``(0.1, 0.5, 0.9)``), for
        ``task="forecast"``: the head then forecasts these quantiles (pinball loss)
        instead of one value (MSE).
    seed : int
        Seed of the initial parameters.
    bidirectional, merge, projection, norm, dropout, r_min, r_max, max_phase :
        Passed to every :class:`~linrec.nn.block.BLURBlock`.
    source_width : int
        0: the input layer is one Linear ``F -> H``. k >= 1: a
        :class:`~linrec.nn.encoder.SourceEncoder` with k GELU units per source is added
        to it (parameters ``enc.*``).
    sources : list of lists of int, or None
        The input columns of each source, for ``source_width >= 1`` (None: one source
        per column); see :func:`~linrec.nn.encoder.check_sources`.
    xp, dtype : the namespace and real dtype of parameters and activations.
    """

    def __init__(self, n_features, *, task="forecast", horizon=48, n_targets=1,
                 n_classes=None, d_model=32, d_state=32, n_layers=2, bidirectional=True,
                 merge="sum", projection="glu", norm="layer", dropout=0.0, r_min=0.0,
                 r_max=0.99, max_phase=2 * np.pi, pool=None, quantiles=None,
                 source_width=0, sources=None, seed=0, xp=np, dtype=np.float32):
        super().__init__(xp=xp, dtype=dtype)
        if task not in ("forecast", "classify"):
            raise ValueError(f"task={task!r}; use 'forecast' or 'classify'")
        if task == "classify" and not (n_classes and n_classes >= 2):
            raise ValueError("task='classify' needs n_classes >= 2")
        pool = pool or ("last+mean" if task == "forecast" else "mean")
        if pool not in POOLS:
            raise ValueError(f"pool={pool!r}; use one of {POOLS}")
        if quantiles is not None:
            quantiles = check_quantiles(quantiles)
            if task != "forecast":
                raise ValueError("quantiles are for task='forecast'")
        integer = isinstance(source_width, int | np.integer) and \
            not isinstance(source_width, bool)
        if not integer or source_width < 0:
            raise ValueError(f"source_width={source_width!r}; use 0 (no per-source "
                             f"encoders) or an int >= 1")
        if source_width:
            sources = check_sources(sources, n_features)
        elif sources is not None:
            raise ValueError("sources needs source_width >= 1")
        self.config = dict(
            n_features=int(n_features), task=task, horizon=int(horizon),
            n_targets=int(n_targets), n_classes=n_classes, d_model=int(d_model),
            d_state=int(d_state), n_layers=int(n_layers), bidirectional=bool(bidirectional),
            merge=merge, projection=projection, norm=norm, dropout=float(dropout),
            r_min=float(r_min), r_max=float(r_max), max_phase=float(max_phase), pool=pool,
            quantiles=quantiles, source_width=int(source_width), sources=sources,
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
        if source_width:
            self.children["enc"] = SourceEncoder(n_features, d_model, int(source_width),
                                                 sources=sources, rng=rng, **kw)

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

    def forward(self, x, rng=None, *, state=None, return_state=False):
        """``(out, cache)``: forecasts ``(batch, horizon, n_targets)`` (``(batch,
        horizon, n_targets, Q)`` with quantiles, in the order trained, which may cross)
        or logits ``(batch, n_classes)``. Dropout is active only when ``rng`` is
        given.

        Streaming (``bidirectional=False`` only): ``state`` (from an earlier call or
        :meth:`step`; None: the start of a sequence) continues a sequence, and
        ``return_state=True`` returns ``(out, cache, state)``; chunks fed one after
        another give the output of the whole sequence. A forward that carries a state
        is for inference: no dropout, and the cache is None (train on whole sequences).
        ValueError for a bidirectional model.
        """
        if state is not None or return_state:
            out, state = self._stream(x, state)
            return (out, None, state) if return_state else (out, None)
        self.check_input(x)
        xp, ch = self.xp, self.children
        h, c_inp = self._embed(xp.asarray(x, dtype=self.dtype))
        c_blocks = []
        for block in self.blocks:
            h, c = block.forward(h, rng)
            c_blocks.append(c)
        h, c_norm = ch["norm"].forward(h)
        mean = h.mean(axis=1) if "mean" in self.config["pool"] else None
        out, c_head = self._head(h[:, -1], mean, h[:, -self.config["horizon"]:])
        return out, (c_inp, c_blocks, c_norm, c_head, h.shape)

    def _embed(self, x):
        """``(h, cache)``: the input layer on x ``(..., F)``, h of shape ``(..., H)``."""
        h, c_inp = self.children["inp"].forward(x)
        if "enc" not in self.children:
            return h, (c_inp, None)
        e, c_enc = self.children["enc"].forward(x)
        return h + e, (c_inp, c_enc)

    def _embed_backward(self, dh, cache):
        """``(dx, grads)`` of the input layer (grads named ``inp.*`` and ``enc.*``)."""
        c_inp, c_enc = cache
        dx, g = self.children["inp"].backward(dh, c_inp)
        grads = prefixed("inp", g)
        if c_enc is not None:
            dx_enc, g = self.children["enc"].backward(dh, c_enc)
            dx += dx_enc
            grads.update(prefixed("enc", g))
        return dx, grads

    def _head(self, last, mean, tail):
        """``(out, cache)`` of the head from what the pool reads: the last step and the
        time mean ``(batch, H)``, and the last (up to) ``horizon`` steps
        ``(batch, <= horizon, H)``."""
        pool, horizon, head = self.config["pool"], self.config["horizon"], \
            self.children["head"]
        if pool == "tail":
            out, c_head = head.forward(tail)
            return out.reshape(out.shape[:2] + self._out_shape(1)[2:]), c_head
        parts = []
        if pool == "window":
            if tail.shape[1] < horizon:
                raise ValueError(f"pool='window' needs at least horizon={horizon} input "
                                 f"steps, got {tail.shape[1]}")
            parts.append(tail.reshape(tail.shape[0], -1))
        if "last" in pool:
            parts.append(last)
        if "mean" in pool:
            parts.append(mean)
        out, c_head = head.forward(self.xp.concatenate(parts, axis=-1))
        if self.config["task"] == "forecast":
            out = out.reshape(self._out_shape(len(out)))
        return out, c_head

    def _out_shape(self, batch):
        """The forecast shape (batch, horizon, n_targets[, Q])."""
        c = self.config
        q = () if c["quantiles"] is None else (len(c["quantiles"]),)
        return (batch, c["horizon"], c["n_targets"]) + q

    def step(self, x, state=None):
        """``(out, state)`` after one new observation x of shape ``(batch, F)``: the
        output :meth:`forward` gives for the whole sequence seen so far, in work that
        does not grow with its length (O(L (H N + H^2)) per step, plus O(horizon H)
        for ``pool="window"`` or ``"tail"``; with ``pool="window"`` out is None until
        ``horizon`` steps have been seen). ``state``: None at the start of a sequence,
        then the state returned by the previous call (or by ``forward(...,
        return_state=True)``). Inference only (no dropout).

        ValueError for a bidirectional (BLUR) model, whose output at a step depends on
        later steps: use :meth:`predict_windows` for it.
        """
        if getattr(x, "ndim", None) != 2:
            raise ValueError(f"step: x has shape {getattr(x, 'shape', None)}; it needs "
                             f"(batch, {self.config['n_features']}), one time step")
        return self._stream(x, state)

    def _stream(self, x, state):
        """``(out, state)`` for one step ``(batch, F)`` or a chunk ``(batch, T, F)``
        continuing from ``state``; see :meth:`step`."""
        if self.config["bidirectional"]:
            raise ValueError(
                "streaming needs bidirectional=False: a BLUR model reads the sequence "
                "backwards too, so its output at a step depends on later steps; use "
                "Model.predict_windows (a forward over a sliding window per output)")
        self.check_input(x[:, None] if getattr(x, "ndim", None) == 2 else x)
        xp, ch, horizon = self.xp, self.children, self.config["horizon"]
        state = self._check_state(state, x.shape[0])
        h, _ = self._embed(xp.asarray(x, dtype=self.dtype))
        lru = []
        for block, s in zip(self.blocks, state["lru"]):
            h, s = block.step(h, s)
            lru.append(s)
        h, _ = ch["norm"].forward(h)
        h = h[:, None] if h.ndim == 2 else h
        count = state["count"] + h.shape[1]
        total = state["sum"] + h.sum(axis=1)
        tail = xp.concatenate([state["tail"], h[:, -horizon:]], axis=1)[:, -horizon:]
        mean = total / self.dtype.type(count)
        warming_up = self.config["pool"] == "window" and tail.shape[1] < horizon
        out = None if warming_up else self._head(h[:, -1], mean, tail)[0]
        return out, dict(lru=lru, sum=total, count=count, tail=tail)

    def _check_state(self, state, batch):
        """The streaming state (a new one for None); ValueError unless it is one this
        model returned for a batch of ``batch`` sequences."""
        d = self.config["d_model"]
        if state is None:
            zeros = self.xp.zeros((batch, d), dtype=self.dtype)
            return dict(lru=[None] * len(self.blocks), sum=zeros, count=0,
                        tail=self.xp.zeros((batch, 0, d), dtype=self.dtype))
        ok = (isinstance(state, dict) and set(state) == {"lru", "sum", "count", "tail"}
              and len(state["lru"]) == len(self.blocks)
              and getattr(state["sum"], "shape", None) == (batch, d)
              and state["tail"].shape[0] == batch)
        if not ok:
            raise ValueError(f"state is not a streaming state of this model for a batch "
                             f"of {batch}: pass None to start, then the state the "
                             f"previous step or forward(..., return_state=True) returned")
        return state

    def predict_windows(self, x, window, *, stride=1, batch_size=256):
        """The outputs of :meth:`forward` on sliding windows: for x ``(batch, T, F)``,
        window ``k`` is ``x[:, s:s + window]`` with ``s = k * stride``; the result has
        shape ``(batch, n_windows, ...)`` (``...``: one output's shape), no dropout.

        This is how a bidirectional (BLUR) model forecasts from a stream: each output is
        a full forward over ``window`` steps, O(window L (H N + H^2)) work, where
        :meth:`step` of a unidirectional model costs O(L (H N + H^2)) per new step.
        ValueError unless ``1 <= window <= T`` and ``stride >= 1``.
        """
        self.check_input(x)
        n, t = x.shape[:2]
        if not (isinstance(window, int | np.integer) and 1 <= window <= t):
            raise ValueError(f"window={window!r}; it must be an int in [1, T={t}]")
        if not (isinstance(stride, int | np.integer) and stride >= 1):
            raise ValueError(f"stride={stride!r}; it must be an int >= 1")
        xp = self.xp
        starts = xp.arange(0, t - window + 1, stride)
        seq, start = xp.divmod(xp.arange(n * len(starts)), len(starts))
        steps = starts[start][:, None] + xp.arange(window)
        outs = [self.forward(x[seq[i:i + batch_size, None], steps[i:i + batch_size]])[0]
                for i in range(0, len(seq), batch_size)]
        out = xp.concatenate(outs, axis=0)
        return out.reshape(n, len(starts), *out.shape[1:])

    def backward(self, dout, cache):
        """``(dx, grads)`` from ``dL/dout``; grads keyed like :meth:`parameters`."""
        xp, ch = self.xp, self.children
        c_inp, c_blocks, c_norm, c_head, shape = cache
        grads = {}
        pool, d = self.config["pool"], shape[2]
        dh = xp.zeros(shape, dtype=self.dtype)
        if pool == "tail":
            dtail, g = ch["head"].backward(dout.reshape(dout.shape[:2] + (-1,)), c_head)
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
        dx, g = self._embed_backward(dh, c_inp)
        grads.update(g)
        return dx, grads

    def _loss(self, out, y):
        if self.config["quantiles"] is not None:
            return pinball(self.xp, out, self.xp.asarray(y, dtype=self.dtype),
                           self.config["quantiles"])
        if self.config["task"] == "forecast":
            return mse(self.xp, out, self.xp.asarray(y, dtype=self.dtype))
        return cross_entropy(self.xp, out, self.xp.asarray(y))

    def loss(self, x, y):
        """The loss alone (float, no dropout): see :meth:`loss_and_grad`."""
        return self._loss(self.forward(x)[0], y)[0]

    def loss_and_grad(self, x, y, rng=None, *, workers=None):
        """``(float loss, grads)``: MSE (or, with quantiles, the pinball loss) against
        forecasts ``y`` (batch, horizon, n_targets) or cross-entropy against integer
        labels ``y`` (batch,). Dropout is active only when ``rng`` is given.

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
        """Forecasts or logits for x, computed in batches of ``batch_size``, no dropout.

        Quantile forecasts are sorted along their last axis, so they never cross (the
        lowest value is given to the lowest level)."""
        outs = [self.forward(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
        out = self.xp.concatenate(outs, axis=0)
        return out if self.config["quantiles"] is None else self.xp.sort(out, axis=-1)

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
        if isinstance(config, dict):  # written before quantile heads, source encoders
            config = {"quantiles": None, "source_width": 0, "sources": None, **config}
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
    per_step = config["n_targets"] * len(config["quantiles"] or (0,))
    return n_pool, per_step if pool == "tail" else horizon * per_step


def _encoder_shape(config):
    """The shape of the source encoder's ``U`` a config implies (None without one);
    CheckpointError-free: invalid ``sources`` give a shape no array has."""
    width, f = config["source_width"], config["n_features"]
    if not (type(width) is int and width >= 0):
        return "an invalid source_width"
    if width == 0:
        return None
    try:
        return (f, len(check_sources(config["sources"], f)) * width)
    except ValueError:
        return "invalid sources"


def check_quantiles(quantiles):
    """``quantiles`` as a list of floats; ValueError unless they are strictly increasing
    numbers in (0, 1)."""
    try:
        levels = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        levels = []
    if not levels or any(not 0 < q < 1 for q in levels) or \
            any(a >= b for a, b in zip(levels, levels[1:])):
        raise ValueError(f"quantiles={quantiles!r}; give strictly increasing levels in "
                         f"(0, 1), e.g. (0.1, 0.5, 0.9)")
    return levels


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
    quantiles = config["quantiles"]
    if quantiles is not None:
        try:
            check_quantiles(quantiles if isinstance(quantiles, list) else None)
        except ValueError:
            bad.append("quantiles")
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
        "source encoder": (shapes.get("enc.U"), _encoder_shape(config)),
    }
    wrong = [f"{name}: config implies {want}, arrays hold {have}"
             for name, (have, want) in expect.items() if have != want]
    if wrong:
        raise CheckpointError(f"{path}: the config disagrees with the parameters "
                              f"({'; '.join(wrong)})")
