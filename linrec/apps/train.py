"""The training loop: mini-batch Adam with clipping, a schedule, early stopping, a time
budget, atomic checkpoints that resume identically, and a stop on non-finite loss.

Reproducibility: the shuffling and the dropout of epoch ``e`` come from
``numpy.random.default_rng([seed, e])``, so a run resumed from the checkpoint written at
the end of epoch ``e - 1`` takes exactly the steps an uninterrupted run would.
"""

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from linrec.nn.io import CheckpointError, load_npz, save_npz_atomic
from linrec.nn.optim import Adam, clip_grad_norm
from linrec.nn.schedule import lr_at

__all__ = ["TrainConfig", "fit", "evaluate_loss", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "linrec.train.checkpoint/1"


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    ``steps_per_epoch`` caps the mini-batches per epoch (a random subset of the training
    samples each epoch; None: one full pass). ``budget_seconds`` stops training (after
    the current step) once exceeded. ``patience`` epochs without a better validation loss
    stop it early; the best parameters are restored at the end either way.
    """

    epochs: int = 20
    batch_size: int = 32
    steps_per_epoch: int | None = None
    lr: float = 3e-3
    ssm_lr_scale: float = 0.5
    weight_decay: float = 0.05
    decoupled: bool = True
    clip: float | None = 1.0
    schedule: str = "cosine"
    warmup: int = 50
    step_every: int = 1000
    step_gamma: float = 0.5
    patience: int = 5
    seed: int = 0
    budget_seconds: float | None = None
    eval_batch_size: int = 256
    progress: bool = True


def evaluate_loss(model, data, batch_size=256):
    """Mean loss of ``model`` (no dropout) over every sample of ``data``."""
    total, count = 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y = data.batch(slice(i, i + batch_size))
        total += model.loss(model.xp.asarray(x), y) * len(x)
        count += len(x)
    return total / max(count, 1)


def _steps_per_epoch(cfg, n):
    full = max(1, n // cfg.batch_size)
    return full if cfg.steps_per_epoch is None else min(full, cfg.steps_per_epoch)


class _State:
    """What a checkpoint holds besides the model and the optimizer moments."""

    def __init__(self):
        self.epoch = 0
        self.step = 0
        self.best_val = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.history = []
        self.best_params = None


def _save(path, model, opt, state, cfg):
    t, moments = opt.state()
    arrays = {f"param/{k}": v for k, v in model.host_parameters().items()}
    arrays.update({f"adam/{k}": _host(v) for k, v in moments.items()})
    arrays.update({f"best/{k}": v for k, v in state.best_params.items()})
    meta = dict(
        model=model.config, train=asdict(cfg), adam_t=t, epoch=state.epoch,
        step=state.step, best_val=state.best_val, best_epoch=state.best_epoch,
        bad_epochs=state.bad_epochs, history=state.history,
    )
    save_npz_atomic(path, CHECKPOINT_FORMAT, meta, arrays)


def _restore(path, model, opt, state):
    _, meta, arrays = load_npz(path, (CHECKPOINT_FORMAT,))
    saved = {k: v for k, v in meta.get("model", {}).items() if k != "seed"}
    if saved != {k: v for k, v in model.config.items() if k != "seed"}:
        raise CheckpointError(
            f"{path} was written for another model configuration: {meta.get('model')} "
            f"vs this model's {model.config}"
        )
    model.set_parameters({k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
                         source=str(path))
    opt.load_state(meta["adam_t"],
                   {k[5:]: v for k, v in arrays.items() if k.startswith("adam/")})
    state.best_params = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
    for key in ("epoch", "step", "best_val", "best_epoch", "bad_epochs", "history"):
        setattr(state, key, meta[key])


def _host(x):
    return x.get() if hasattr(x, "get") else np.array(x, copy=True)


def fit(model, train, val, config=None, *, checkpoint=None, resume=False, label="train"):
    """Train ``model`` in place and return a JSON-ready summary dict.

    Parameters
    ----------
    model : linrec.nn.Model
    train, val : datasets with ``__len__`` and ``batch(index) -> (x, y)`` (NumPy).
    config : TrainConfig
    checkpoint : path, optional
        Written atomically at the end of every epoch (model, Adam moments, best
        parameters, history); with ``resume=True`` and an existing file, training
        continues from it.
    label : str
        Shown on the progress bar.

    Returns
    -------
    dict with ``status`` ("completed", "early_stopped", "budget", "diverged"), ``message``,
    ``epochs``, ``steps``, ``best_val``, ``best_epoch``, ``history`` (per-epoch train/val
    loss, lr, seconds, samples/s) and ``seconds``. On a NaN or inf loss training stops,
    the checkpoint keeps the last good epoch and the model gets the best parameters.

    Raises
    ------
    CheckpointError
        ``resume=True`` with a checkpoint of another model or not a checkpoint at all.
    """
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    opt = Adam(model.parameters(), groups=model.param_groups(), lr=cfg.lr,
               weight_decay=cfg.weight_decay, decoupled=cfg.decoupled,
               lr_scale={"recurrence": cfg.ssm_lr_scale})
    state = _State()
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        _restore(checkpoint, model, opt, state)
    if state.best_params is None:
        state.best_params = model.host_parameters()
    n_steps = _steps_per_epoch(cfg, len(train))
    total_steps = cfg.epochs * n_steps
    start = time.perf_counter()
    status, message = "completed", f"trained {cfg.epochs} epochs"
    bar = tqdm(total=total_steps, initial=state.step, desc=label, disable=not cfg.progress,
               leave=False, file=sys.stderr, dynamic_ncols=True)
    while state.epoch < cfg.epochs and status == "completed":
        epoch = state.epoch
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(train))[: n_steps * cfg.batch_size]
        drop_rng = _dropout_rng(model.xp, cfg.seed, epoch)
        t0, losses, step = time.perf_counter(), [], state.step
        for i in range(n_steps):
            idx = np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size])
            x, y = train.batch(idx)
            loss, grads = model.loss_and_grad(model.xp.asarray(x), y, rng=drop_rng)
            if not math.isfinite(loss):
                status = "diverged"
                message = (f"loss became {loss} at epoch {epoch}, step {step}; stopped, "
                           f"the checkpoint keeps the last good epoch; lower the learning "
                           f"rate or check the data")
                break
            clip_grad_norm(grads, cfg.clip)
            opt.step(grads, lr_at(step, base_lr=cfg.lr, total_steps=total_steps,
                                  kind=cfg.schedule, warmup=cfg.warmup,
                                  step_every=cfg.step_every, step_gamma=cfg.step_gamma))
            losses.append(loss)
            step += 1
            bar.update(1)
            seconds = time.perf_counter() - t0
            bar.set_postfix(loss=f"{loss:.4f}",
                            samples_s=f"{(i + 1) * cfg.batch_size / seconds:.0f}")
            if cfg.budget_seconds is not None and \
                    time.perf_counter() - start > cfg.budget_seconds:
                status, message = "budget", f"time budget of {cfg.budget_seconds} s reached"
                break
        if status == "diverged":
            break
        seconds = time.perf_counter() - t0
        val_loss = evaluate_loss(model, val, cfg.eval_batch_size)
        state.history.append(dict(
            epoch=epoch, train_loss=float(np.mean(losses)) if losses else math.nan,
            val_loss=val_loss, steps=len(losses), seconds=seconds,
            samples_per_s=len(losses) * cfg.batch_size / max(seconds, 1e-9),
            lr=lr_at(step - 1, base_lr=cfg.lr, total_steps=total_steps, kind=cfg.schedule,
                     warmup=cfg.warmup, step_every=cfg.step_every,
                     step_gamma=cfg.step_gamma)))
        state.epoch, state.step = epoch + 1, step
        if val_loss < state.best_val:
            state.best_val, state.best_epoch, state.bad_epochs = val_loss, epoch, 0
            state.best_params = model.host_parameters()
        else:
            state.bad_epochs += 1
        if checkpoint is not None:
            _save(checkpoint, model, opt, state, cfg)
        if status == "completed" and state.bad_epochs >= cfg.patience:
            status = "early_stopped"
            message = f"no better validation loss for {cfg.patience} epochs"
    bar.close()
    if status == "diverged":
        print(f"[{label}] {message}", file=sys.stderr)
    model.set_parameters(state.best_params)
    return dict(status=status, message=message, epochs=state.epoch, steps=state.step,
                best_val=state.best_val, best_epoch=state.best_epoch,
                history=state.history, seconds=time.perf_counter() - start)


def _dropout_rng(xp, seed, epoch):
    if xp is np:
        return np.random.default_rng([seed, epoch, 1])
    return xp.random.default_rng(seed * 1_000_003 + epoch)
