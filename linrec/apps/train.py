"""The training loop: mini-batch Adam with clipping, a schedule, early stopping, a time
budget, a stop on non-finite values, and checkpoints that resume exactly.

Reproducibility: the shuffling of epoch ``e`` comes from ``default_rng([seed, e])`` and
the dropout of its step ``i`` from ``default_rng([seed, e, i, 1])``, so the state of a run
is its parameters, the Adam moments and its position (epoch, step in the epoch, the
losses of the epoch so far). A checkpoint holds all of that, written every
``checkpoint_every`` steps, at the end of every epoch and when the time budget stops
training mid-epoch; a run resumed from any of them ends bit-identical to one never
stopped. A finished run (completed or early-stopped) resumes as finished.
"""

import functools
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from linrec._host import to_numpy
from linrec.nn.average import ParameterAverage
from linrec.nn.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from linrec.nn.fit import evaluate_loss, require_tqdm
from linrec.nn.model import Model
from linrec.nn.optim import Adam, clip_grad_norm
from linrec.nn.schedule import lr_at

__all__ = ["TrainConfig", "ResumeError", "fit", "evaluate_loss", "load_best",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "linrec.train.checkpoint/1"
# TrainConfig fields that do not change the trained result: a resume may change them.
FREE_SETTINGS = ("budget_seconds", "progress", "checkpoint_every")


class ResumeError(ValueError):
    """A resume whose settings, model or data differ from the checkpoint's run."""


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    ``steps_per_epoch`` caps the mini-batches per epoch (a random subset of the training
    samples each epoch; None: one full pass). ``budget_seconds`` stops training (after
    the current step) once exceeded. ``patience`` epochs without a better validation loss
    stop it early; the best parameters are restored at the end either way.
    ``checkpoint_every`` steps the checkpoint is also written mid-epoch. ``ema``: the
    decay of an exponential moving average of the parameters after every step
    (:class:`linrec.nn.average.ParameterAverage`; None: no average); the validation
    loss, the best parameters and the trained model are then the average's.

    ValueError for a value out of range (naming the field).
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
    checkpoint_every: int = 25
    ema: float | None = None

    def __post_init__(self):
        positive = ("epochs", "batch_size", "steps_per_epoch", "lr", "ssm_lr_scale",
                    "clip", "step_every", "step_gamma", "patience", "eval_batch_size",
                    "checkpoint_every")
        for name in positive + ("weight_decay", "warmup", "seed", "budget_seconds"):
            value = getattr(self, name)
            if value is None and name in ("steps_per_epoch", "clip", "budget_seconds"):
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and math.isfinite(value)
                    and (value > 0 if name in positive else value >= 0)):
                raise ValueError(f"TrainConfig.{name}={value!r}; it must be a finite "
                                 f"number {'> 0' if name in positive else '>= 0'}")
        if self.ema is not None:
            ParameterAverage({}, self.ema)


def _steps_per_epoch(cfg, n):
    full = max(1, n // cfg.batch_size)
    return full if cfg.steps_per_epoch is None else min(full, cfg.steps_per_epoch)


class _State:
    """The run's position and bookkeeping: what a checkpoint holds besides the model
    and the optimizer moments."""

    FIELDS = {"epoch": int, "position": int, "step": int, "losses": list,
              "best_val": float, "best_epoch": int, "bad_epochs": int, "history": list,
              "epoch_seconds": float, "finished": (dict, type(None))}

    def __init__(self, best_params):
        self.epoch = 0            # epochs completed
        self.position = 0         # steps done in the current epoch
        self.step = 0             # steps done in all
        self.losses = []          # training losses of the current epoch so far
        self.best_val = math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.history = []
        self.epoch_seconds = 0.0  # time spent in the current epoch so far
        self.finished = None      # {"status", "message"} once completed or early-stopped
        self.best_params = best_params
        self.saved_step = None    # the step of the last checkpoint written or read

    def meta(self):
        return {k: getattr(self, k) for k in self.FIELDS}


def _save(path, model, opt, avg, state, cfg, n_train):
    t, moments = opt.state()
    arrays = {f"param/{k}": v for k, v in model.host_parameters().items()}
    arrays.update({f"adam/{k}": to_numpy(v, copy=True) for k, v in moments.items()})
    if avg is not None:
        arrays.update({f"ema/{k}": to_numpy(v, copy=True)
                       for k, v in avg.state()[1].items()})
    arrays.update({f"best/{k}": v for k, v in state.best_params.items()})
    meta = dict(model=model.config, train=asdict(cfg), n_train=n_train, adam_t=t,
                **state.meta())
    write_checkpoint(path, CHECKPOINT_FORMAT, meta, arrays)
    state.saved_step = state.step


def _restore(path, model, opt, avg, state, cfg, n_train, n_steps):
    """Load the run in ``path`` into model, opt and state. ResumeError when it was
    trained with other settings, another model or another training set size;
    CheckpointError when the file is malformed or inconsistent."""
    _, meta, arrays = read_checkpoint(path, (CHECKPOINT_FORMAT,))
    for key, want in (("model", dict), ("train", dict), ("n_train", int),
                      ("adam_t", int), *_State.FIELDS.items()):
        if not isinstance(meta.get(key), want) or isinstance(meta.get(key), bool):
            raise CheckpointError(f"{path}: meta field {key!r} is missing or not "
                                  f"{getattr(want, '__name__', want)}")
    ours = {k: v for k, v in model.config.items() if k != "seed"}
    theirs = {k: v for k, v in meta["model"].items() if k != "seed"}
    settings = {k: v for k, v in asdict(cfg).items() if k not in FREE_SETTINGS}
    saved = {k: v for k, v in meta["train"].items() if k not in FREE_SETTINGS}
    for what, now, then in (("model", ours, theirs), ("training", settings, saved)):
        diff = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
        if diff:
            raise ResumeError(
                f"{path} holds a run with other {what} settings: "
                + ", ".join(f"{k}={then.get(k)!r} there, {now.get(k)!r} now" for k in diff)
                + "; resume with the same settings, or start over (overwrite)")
    if meta["n_train"] != n_train:
        raise ResumeError(f"{path} holds a run on {meta['n_train']} training samples, "
                          f"this call has {n_train}; resume with the same data")
    epoch, position, step = meta["epoch"], meta["position"], meta["step"]
    if not (0 <= position < n_steps and 0 <= epoch <= cfg.epochs
            and (epoch < cfg.epochs or meta["finished"] is not None)
            and step == epoch * n_steps + position == meta["adam_t"]
            and len(meta["losses"]) == position and len(meta["history"]) == epoch):
        raise CheckpointError(f"{path}: inconsistent position (epoch {epoch}, position "
                              f"{position}, step {step}, adam_t {meta['adam_t']})")
    params = model.parameters()
    parts = {}
    prefixes = ("param/", "adam/m/", "adam/v/", "best/") + ("ema/",) * (avg is not None)
    for prefix in prefixes:
        part = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if part.keys() != params.keys() or any(
                v.shape != params[k].shape for k, v in part.items()):
            raise CheckpointError(f"{path}: the {prefix!r} arrays do not match the model")
        parts[prefix] = part
    model.set_parameters(parts["param/"], source=str(path))
    opt.load_state(meta["adam_t"], {**{f"m/{k}": v for k, v in parts["adam/m/"].items()},
                                    **{f"v/{k}": v for k, v in parts["adam/v/"].items()}})
    if avg is not None:
        avg.load_state(step, parts["ema/"])
    for key in _State.FIELDS:
        setattr(state, key, meta[key])
    state.best_params = parts["best/"]
    state.saved_step = step


def load_best(path, xp=np):
    """The model with the best parameters so far of the training checkpoint ``path``
    (written by :func:`fit`).

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        A malformed file, or a model config and parameters that do not agree.
    """
    _, meta, arrays = read_checkpoint(path, (CHECKPOINT_FORMAT,))
    best = {k[len("best/"):]: v for k, v in arrays.items() if k.startswith("best/")}
    return Model.from_arrays(meta.get("model"), best, xp=xp, source=path)


def _finite(params):
    return all(bool(np.isfinite(to_numpy(p)).all()) for p in params.values())


def fit(model, train, val, config=None, *, checkpoint=None, resume=False, overwrite=False,
        label="train"):
    """Train ``model`` in place and return a JSON-ready summary dict.

    Parameters
    ----------
    model : linrec.nn.Model
    train, val : datasets with ``__len__`` and ``batch(index) -> (x, y)`` (NumPy).
    config : TrainConfig
    checkpoint : path, optional
        The run's checkpoint (see the module docstring). An existing one is continued
        with ``resume=True``, replaced with ``overwrite=True``, and refused otherwise.
    label : str
        Shown on the progress bar.

    Returns
    -------
    dict with ``status`` ("completed", "early_stopped", "budget", "diverged"), ``message``,
    ``epochs`` (completed), ``steps``, ``best_val``, ``best_epoch``, ``history``
    (per-epoch train/val loss, lr, steps, seconds, samples/s) and ``seconds``. The model
    ends with the best parameters. A non-finite loss or gradient norm stops training
    before that step is applied, a non-finite validation loss or parameter after the
    epoch; the checkpoint then keeps the last state written before it (it never holds
    NaN or inf).

    Raises
    ------
    FileExistsError
        ``checkpoint`` exists and neither ``resume`` nor ``overwrite`` is set.
    ResumeError
        ``resume=True`` with a checkpoint of other settings, model or data.
    CheckpointError
        ``resume=True`` with a malformed checkpoint or not a checkpoint at all.
    """
    cfg = config or TrainConfig()
    if resume and overwrite:
        raise ValueError("pass resume=True or overwrite=True, not both")
    tqdm = require_tqdm("linrec.apps.train.fit")
    opt = Adam(model.parameters(), groups=model.param_groups(), lr=cfg.lr,
               weight_decay=cfg.weight_decay, decoupled=cfg.decoupled,
               lr_scale={"recurrence": cfg.ssm_lr_scale})
    avg = None if cfg.ema is None else ParameterAverage(model.parameters(), cfg.ema)
    state = _State(model.host_parameters())
    n_steps = _steps_per_epoch(cfg, len(train))
    if checkpoint is not None and Path(checkpoint).exists():
        if resume:
            _restore(checkpoint, model, opt, avg, state, cfg, len(train), n_steps)
        elif overwrite:
            Path(checkpoint).unlink()
        else:
            raise FileExistsError(f"{checkpoint} holds an earlier run; pass resume=True "
                                  f"to continue it or overwrite=True to start over")
    start = time.perf_counter()
    if state.finished is not None:
        model.set_parameters(state.best_params)
        return _summary(state, state.finished["status"],
                        state.finished["message"] + " (resumed: the run had finished)",
                        start)
    lr = functools.partial(lr_at, base_lr=cfg.lr, total_steps=cfg.epochs * n_steps,
                           kind=cfg.schedule, warmup=cfg.warmup, step_every=cfg.step_every,
                           step_gamma=cfg.step_gamma)
    save = functools.partial(_save, checkpoint, model, opt, avg, state, cfg, len(train))

    def over_budget():
        return cfg.budget_seconds is not None and \
            time.perf_counter() - start > cfg.budget_seconds

    def diverged(what):
        kept = (f"the checkpoint keeps the state after {state.saved_step} steps"
                if state.saved_step is not None else "no checkpoint was written")
        best = (f"epoch {state.best_epoch}" if state.best_epoch >= 0
                else "the initial ones")
        return (f"{what}; stopped: {kept}, the model gets the best parameters ({best}); "
                f"lower the learning rate or check the data")

    status, message = None, None
    bar = tqdm(total=cfg.epochs * n_steps, initial=state.step, desc=label,
               disable=not cfg.progress, leave=False, file=sys.stderr, dynamic_ncols=True)
    while status is None:
        epoch, t0 = state.epoch, time.perf_counter() - state.epoch_seconds
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
        while state.position < n_steps:
            i = state.position
            x, y = train.batch(np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size]))
            drop_rng = _dropout_rng(model.xp, cfg.seed, epoch, i)
            loss, grads = model.loss_and_grad(model.xp.asarray(x), y, rng=drop_rng)
            norm = clip_grad_norm(grads, cfg.clip)
            if not (math.isfinite(loss) and math.isfinite(norm)):
                what = "loss" if not math.isfinite(loss) else "gradient norm"
                value = loss if what == "loss" else norm
                status = "diverged"
                message = diverged(f"the {what} became {value} at step {state.step} "
                                   f"(epoch {epoch}, counting from 0), before that step "
                                   f"was applied")
                break
            opt.step(grads, lr(state.step))
            if avg is not None:
                avg.update(model.parameters())
            state.losses.append(loss)
            state.position += 1
            state.step += 1
            state.epoch_seconds = time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if state.position == n_steps:
                break
            if checkpoint is not None and state.step % cfg.checkpoint_every == 0 or \
                    over_budget():
                if not _finite(model.parameters()):
                    status = "diverged"
                    message = diverged(f"a parameter became NaN or inf within the first "
                                       f"{state.step} steps")
                    break
                if checkpoint is not None:
                    save()
                if over_budget():
                    status = "budget"
                    message = f"time budget of {cfg.budget_seconds} s reached"
                    break
        if status is not None:
            break
        if avg is not None:
            live = model.host_parameters()
            model.set_parameters(avg.average())
        val_loss = evaluate_loss(model, val, cfg.eval_batch_size)
        if not (math.isfinite(val_loss) and _finite(model.parameters())):
            status = "diverged"
            what = (f"the validation loss became {val_loss}" if not math.isfinite(val_loss)
                    else "a parameter became NaN or inf")
            message = diverged(f"{what} in epoch {epoch} (counting from 0)")
            break
        seconds = time.perf_counter() - t0
        state.history.append(dict(
            epoch=epoch, train_loss=float(np.mean(state.losses)), val_loss=val_loss,
            steps=n_steps, seconds=seconds,
            samples_per_s=n_steps * cfg.batch_size / max(seconds, 1e-9),
            lr=lr(state.step - 1)))
        state.epoch, state.position, state.losses = epoch + 1, 0, []
        state.epoch_seconds = 0.0
        if val_loss < state.best_val:
            state.best_val, state.best_epoch, state.bad_epochs = val_loss, epoch, 0
            state.best_params = model.host_parameters()
        else:
            state.bad_epochs += 1
        if avg is not None:
            model.set_parameters(live)
        if state.bad_epochs >= cfg.patience:
            status, message = "early_stopped", \
                f"no better validation loss for {cfg.patience} epochs"
        elif state.epoch == cfg.epochs:
            status, message = "completed", f"trained {cfg.epochs} epochs"
        elif over_budget():
            status, message = "budget", f"time budget of {cfg.budget_seconds} s reached"
        if status in ("early_stopped", "completed"):
            state.finished = dict(status=status, message=message)
        if checkpoint is not None:
            save()
    bar.close()
    if status == "diverged":
        print(f"[{label}] {message}", file=sys.stderr)
    model.set_parameters(state.best_params)
    return _summary(state, status, message, start)


def _summary(state, status, message, start):
    return dict(status=status, message=message, epochs=state.epoch, steps=state.step,
                best_val=state.best_val, best_epoch=state.best_epoch,
                history=state.history, seconds=time.perf_counter() - start)


def _dropout_rng(xp, seed, epoch, step):
    """The dropout generator of step ``step`` of epoch ``epoch``."""
    key = [seed, epoch, step, 1]
    if xp is np:
        return np.random.default_rng(key)
    return xp.random.default_rng(int(np.random.SeedSequence(key).generate_state(1)[0]))
