"""PyTorch peers of BLUR for the evaluation: LSTM, GRU and a Transformer encoder.

One interface for both tasks: :func:`make_peer` builds a ``torch.nn.Module`` mapping x
(n, T, F) float32 to (n, n_outputs): ``horizon * n_targets`` values to forecast, or
``n_classes`` logits to classify. :func:`fit_peer` trains it with the same procedure as
:func:`linrec.apps.train.fit` (the same :class:`~linrec.apps.train.TrainConfig`, the
same shuffling per seed and epoch, the same learning-rate schedule, early stopping on
the validation loss, a time budget), with AdamW and gradient-norm clipping;
:func:`predict_peer` runs it without gradients.

torch is imported only when a function here is called; without it an ImportError names
the ``peers`` extra. linrec's library never imports this module.
"""

import functools
import math
import sys
import time

import numpy as np

from linrec.apps.train import TrainConfig
from linrec.nn.average import ParameterAverage
from linrec.nn.schedule import lr_at

__all__ = ["PEERS", "POOLS", "make_peer", "fit_peer", "predict_peer"]

PEERS = ("lstm", "gru", "transformer")
POOLS = ("last", "mean", "window")


def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError("linrec.apps.peers needs PyTorch, the 'peers' extra: "
                          "pip install 'linrec[peers]'") from err
    return torch


def _check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r}; it must be an integer >= {low}")


def make_peer(kind, n_features, n_outputs, *, d_model=48, n_layers=2, n_heads=4,
              dropout=0.0, pool="last", window=1, seed=0):
    """A peer model: x (n, T, F) float32 -> (n, n_outputs) float32.

    Parameters
    ----------
    kind : {"lstm", "gru", "transformer"}
        ``lstm``/``gru``: ``n_layers`` stacked unidirectional recurrent layers of width
        ``d_model``. ``transformer``: a linear input map to ``d_model``, sinusoidal
        positions, ``n_layers`` pre-norm encoder layers (``n_heads`` heads, feed-forward
        width ``2 * d_model``, no mask: every step sees every other, like BLUR).
    n_features, n_outputs : int
        F, and the outputs per sequence (``horizon * n_targets`` or ``n_classes``).
    pool : {"last", "mean", "window"}
        What the linear head reads from the normalised final features: the last step,
        the time mean, or the last ``window`` steps flattened (BLUR's forecasting head).
    seed : int
        Seed of the initial parameters (``torch.manual_seed``).

    Raises
    ------
    ValueError
        An unknown ``kind`` or ``pool``, a size that is not a positive integer, a
        ``d_model`` not divisible by ``n_heads`` for the Transformer, a dropout outside
        [0, 1).
    ImportError
        torch is missing (the ``peers`` extra).
    """
    if kind not in PEERS:
        raise ValueError(f"kind={kind!r}; use one of {PEERS}")
    if pool not in POOLS:
        raise ValueError(f"pool={pool!r}; use one of {POOLS}")
    for name, value in (("n_features", n_features), ("n_outputs", n_outputs),
                        ("d_model", d_model), ("n_layers", n_layers),
                        ("n_heads", n_heads), ("window", window)):
        _check_int(name, value)
    _check_int("seed", seed, 0)
    if kind == "transformer" and d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}; "
                         f"pick sizes where it is")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r}; it must be in [0, 1)")
    torch = _torch()
    torch.manual_seed(seed)
    return _build(torch, kind, int(n_features), int(n_outputs), int(d_model),
                  int(n_layers), int(n_heads), float(dropout), pool, int(window))


def _build(torch, kind, n_features, n_outputs, d_model, n_layers, n_heads, dropout,
           pool, window):
    nn = torch.nn

    class Peer(nn.Module):
        def __init__(self):
            super().__init__()
            self.kind, self.pool, self.window = kind, pool, window
            if kind == "transformer":
                self.embed = nn.Linear(n_features, d_model)
                layer = nn.TransformerEncoderLayer(
                    d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout,
                    batch_first=True, norm_first=True)
                self.body = nn.TransformerEncoder(layer, n_layers,
                                                  enable_nested_tensor=False)
            else:
                rnn = nn.LSTM if kind == "lstm" else nn.GRU
                self.body = rnn(n_features, d_model, n_layers, batch_first=True,
                                dropout=dropout if n_layers > 1 else 0.0)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model * (window if pool == "window" else 1), n_outputs)

        def forward(self, x):
            if x.ndim != 3 or x.shape[2] != n_features:
                raise ValueError(f"x has shape {tuple(x.shape)}; expected (n, T, "
                                 f"{n_features})")
            if self.pool == "window" and x.shape[1] < self.window:
                raise ValueError(f"pool='window' needs at least window={self.window} "
                                 f"steps, x has {x.shape[1]}")
            if self.kind == "transformer":
                h = self.body(self.embed(x) + _positions(torch, x.shape[1], d_model))
            else:
                h = self.body(x)[0]
            h = self.norm(h)
            if self.pool == "last":
                h = h[:, -1]
            elif self.pool == "mean":
                h = h.mean(dim=1)
            else:
                h = h[:, -self.window:].reshape(len(h), -1)
            return self.head(h)

    return Peer()


def _positions(torch, steps, d_model):
    """Sinusoidal position codes (steps, d_model) float32 (Vaswani et al. 2017)."""
    pos = torch.arange(steps, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                     * (-math.log(10000.0) / d_model))
    codes = torch.zeros(steps, d_model)
    codes[:, 0::2] = torch.sin(pos * freq)
    codes[:, 1::2] = torch.cos(pos * freq)[:, :d_model // 2]
    return codes


def _loss_fn(torch, task):
    if task == "forecast":
        return lambda out, y: torch.nn.functional.mse_loss(out, y.reshape(len(y), -1))
    if task == "classify":
        return lambda out, y: torch.nn.functional.cross_entropy(out, y.long())
    raise ValueError(f"task={task!r}; use 'forecast' or 'classify'")


def _tensor(torch, array, task, is_target):
    if is_target and task == "classify":
        return torch.as_tensor(np.asarray(array, np.int64))
    return torch.as_tensor(np.asarray(array, np.float32))


def _val_loss(torch, model, data, loss, task, batch_size):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            x, y = data.batch(slice(i, i + batch_size))
            out = model(_tensor(torch, x, task, False))
            total += float(loss(out, _tensor(torch, y, task, True))) * len(x)
            count += len(x)
    return total / max(count, 1)


def fit_peer(model, train, val, config=None, *, task="forecast", label="peer"):
    """Train a peer in place with AdamW; the model ends with its best parameters.

    Parameters
    ----------
    model : torch.nn.Module from :func:`make_peer`.
    train, val : datasets with ``__len__`` and ``batch(index) -> (x, y)`` (NumPy): x
        (b, T, F); y (b, horizon, n_targets) to forecast (MSE), integer labels (b,) to
        classify (cross-entropy).
    config : linrec.apps.train.TrainConfig
        The fields ``epochs, batch_size, steps_per_epoch, lr, weight_decay, clip,
        schedule, warmup, step_every, step_gamma, patience, seed, budget_seconds,
        eval_batch_size, progress, ema`` apply as in :func:`linrec.apps.train.fit`
        (``ssm_lr_scale``, ``decoupled`` and the checkpoint fields do not: there is no
        recurrence group, and AdamW's decay is decoupled).

    Returns
    -------
    dict with ``status`` ("completed", "early_stopped", "budget", "diverged"),
    ``message``, ``epochs``, ``steps``, ``best_val``, ``best_epoch``, ``history``
    (per-epoch train/val loss, lr, steps, seconds) and ``seconds``: the same keys as
    :func:`linrec.apps.train.fit`.

    Raises
    ------
    ValueError
        An unknown ``task``; an empty training set.
    """
    torch = _torch()
    cfg = config or TrainConfig()
    loss = _loss_fn(torch, task)
    if len(train) == 0:
        raise ValueError("the training set is empty; give fit_peer at least one sample")
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_steps = max(1, len(train) // cfg.batch_size)
    if cfg.steps_per_epoch is not None:
        n_steps = min(n_steps, cfg.steps_per_epoch)
    lr = functools.partial(lr_at, base_lr=cfg.lr, total_steps=cfg.epochs * n_steps,
                           kind=cfg.schedule, warmup=cfg.warmup, step_every=cfg.step_every,
                           step_gamma=cfg.step_gamma)
    params = dict(model.named_parameters())
    avg = None if cfg.ema is None else ParameterAverage(
        {k: p.detach() for k, p in params.items()}, cfg.ema)
    best = (math.inf, -1, {k: v.clone() for k, v in model.state_dict().items()})
    history, step, bad, status, message = [], 0, 0, None, None
    start = time.perf_counter()
    bar = tqdm(total=cfg.epochs * n_steps, desc=label, disable=not cfg.progress,
               leave=False, file=sys.stderr, dynamic_ncols=True)
    for epoch in range(cfg.epochs):
        t0, losses = time.perf_counter(), []
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
        model.train()
        for i in range(n_steps):
            x, y = train.batch(np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size]))
            for group in opt.param_groups:
                group["lr"] = lr(step)
            opt.zero_grad(set_to_none=True)
            out = model(_tensor(torch, x, task, False))
            value = loss(out, _tensor(torch, y, task, True))
            value.backward()
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip is not None else math.inf)
            value, norm = float(value.detach()), float(norm)
            if not (math.isfinite(value) and math.isfinite(norm)):
                status, message = "diverged", (f"non-finite loss or gradient at step "
                                               f"{step}; lower the learning rate")
                break
            opt.step()
            if avg is not None:
                with torch.no_grad():
                    avg.update({k: p.detach() for k, p in params.items()})
            losses.append(value)
            step += 1
            bar.update(1)
            if cfg.budget_seconds is not None and \
                    time.perf_counter() - start > cfg.budget_seconds:
                status, message = "budget", f"time budget of {cfg.budget_seconds} s reached"
                break
        if status == "diverged" or not losses:
            break
        if avg is not None:
            live = _swap_parameters(torch, params, avg.average())
        val_loss = _val_loss(torch, model, val, loss, task, cfg.eval_batch_size)
        history.append(dict(epoch=epoch, train_loss=float(np.mean(losses)),
                            val_loss=val_loss, steps=len(losses),
                            seconds=time.perf_counter() - t0, lr=lr(step - 1)))
        if not math.isfinite(val_loss):
            status, message = "diverged", f"the validation loss became {val_loss}"
            break
        if val_loss < best[0]:
            best, bad = (val_loss, epoch,
                         {k: v.clone() for k, v in model.state_dict().items()}), 0
        else:
            bad += 1
        if avg is not None:
            _swap_parameters(torch, params, live)
        if status is not None:
            break
        if bad >= cfg.patience:
            status, message = "early_stopped", \
                f"no better validation loss for {cfg.patience} epochs"
            break
    bar.close()
    if status is None:
        status, message = "completed", f"trained {cfg.epochs} epochs"
    model.load_state_dict(best[2])
    model.eval()
    return dict(status=status, message=message, epochs=len(history), steps=step,
                best_val=best[0], best_epoch=best[1], history=history,
                seconds=time.perf_counter() - start)


def _swap_parameters(torch, params, values):
    """Copy ``values`` (name -> tensor) into ``params`` in place; returns copies of the
    values they held."""
    with torch.no_grad():
        old = {k: p.detach().clone() for k, p in params.items()}
        for k, p in params.items():
            p.copy_(values[k])
    return old


def predict_peer(model, x, batch_size=256):
    """Outputs (n, n_outputs) float32 NumPy of ``model`` for x (n, T, F), in batches
    of ``batch_size``, without gradients and in eval mode (no dropout)."""
    torch = _torch()
    _check_int("batch_size", batch_size)
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.as_tensor(np.asarray(x[i:i + batch_size],
                                                         np.float32))).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, model.head.out_features),
                                                      np.float32)
