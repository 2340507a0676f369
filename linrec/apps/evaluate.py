"""The forecasting evaluation behind ``python -m linrec evaluate``.

Rolling origin: ``folds`` test periods of ``test_days`` whole days end the series, one
after the other and disjoint; each has its own validation period of ``val_days`` just
before it, and its models train on every row before that (normalised with those rows
only). Validation and test forecasts start at the series' day boundary (13:00 UTC for
vic_elec: Melbourne midnight in daylight time), one a day, and read their ``lookback``
inputs from the rows before the day, so every day of a period is forecast.

Protocol: every neural model gets the same tuning budget, ``configs`` configurations
(its default first, then a seeded random draw from its space), each trained once on the
first fold with seed 0 and judged by its best validation loss; the least-squares model
chooses its stride and ridge penalty on the same validation period. Only then is every
model refit on every fold with every seed and the test periods forecast, once. The
training settings (steps, early stopping, the time cap ``budget``, the parameter average
``ema``) are the same for every neural model, linrec's and the PyTorch peers'.

Costs: training seconds to the best validation epoch (from the run's own history), the
time per training step and the peak resident set size (RSS) of a fresh process that
trains the model at the evaluation's batch size (1 thread), and the inference latency
per window at batch 1 and batch 256 (median of repeats, 1 thread). The machine is shared:
timings are one run's and noisy.

Parallel fits: with ``jobs`` > 1 the fits (tuning candidates, then the final fits) run in
that many spawned worker processes, one thread each; the results are the same as with one
job (each fit depends on its seed only), the timings are those of fits sharing the machine
with ``jobs - 1`` others.
"""

import contextlib
import multiprocessing
import resource
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from linrec._host import to_numpy
from linrec.apps.data.forecast import ForecastData
from linrec.apps.data.windows import Standardiser, WindowSet, window_starts
from linrec.apps.metrics import forecast_metrics
from linrec.apps.stats import block_bootstrap
from linrec.nn.average import ParameterAverage

__all__ = ["EvalSettings", "MODELS", "NEURAL", "rolling_folds", "fold_data",
           "candidate_configs", "evaluate"]

MODELS = ("naive", "linear", "lru", "blur", "lstm", "gru", "transformer")
NEURAL = ("lru", "blur", "lstm", "gru", "transformer")
LINREC = ("lru", "blur")
PEERS = ("lstm", "gru", "transformer")
NAMES = {"naive": "seasonal naive", "linear": "linear least squares",
         "lru": "unidirectional LRU", "blur": "BLUR", "lstm": "LSTM", "gru": "GRU",
         "transformer": "Transformer"}
LINEAR_STRIDES = (48, 24, 12)
# Tuning spaces. Shared by every neural model: the training-window stride (2 = a window
# every hour of half-hourly data, 48 = midnight only), learning rate, width, depth,
# dropout and weight decay. The LRU models add the ring's outer radius; BLUR the merge of
# its two directions (a sum, a concatenation, or a learned gate: the paper's combination
# module). The unidirectional LRU has twice BLUR's state per block, so its recurrent
# capacity matches BLUR's two directions.
SHARED_SPACE = dict(train_stride=(2, 48), lr=(2e-3, 4e-3, 8e-3), d_model=(32, 48),
                    n_layers=(2, 3), dropout=(0.0, 0.1), weight_decay=(0.01, 0.05))
SPACES = {
    "lru": dict(SHARED_SPACE, r_max=(0.99, 0.999)),
    "blur": dict(SHARED_SPACE, r_max=(0.99, 0.999), merge=("sum", "concat", "gate")),
    "lstm": SHARED_SPACE, "gru": SHARED_SPACE, "transformer": SHARED_SPACE,
}
DEFAULTS = dict(train_stride=48, lr=6e-3, d_model=48, n_layers=2, dropout=0.0,
                weight_decay=0.05)
LINREC_DEFAULTS = dict(DEFAULTS, r_max=0.99, merge="sum", d_state=16)


@dataclass
class EvalSettings:
    """The sizes of an evaluation; see the module docstring. ``steps`` caps the training
    steps of each fit (``steps // steps_per_epoch`` epochs with early stopping after
    ``patience`` epochs without a better validation loss); ``budget`` caps its seconds
    (None: no cap). ``ema``: every neural model, linrec's and the peers alike, keeps an
    exponential moving average of its parameters with this decay and is validated and
    tested with it (:class:`linrec.nn.average.ParameterAverage`; None: no average).
    ``jobs``: fits run at once, in worker processes of one thread each (1: in this
    process). ``quick`` shrinks the models for a smoke run."""

    seeds: int = 5
    folds: int = 3
    val_days: int = 56
    test_days: int = 56
    lookback: int = 336
    horizon: int = 48
    configs: int = 4
    steps: int = 300
    steps_per_epoch: int = 25
    patience: int = 4
    batch_size: int = 32
    budget: float | None = None
    ema: float | None = None
    jobs: int = 1
    models: tuple = MODELS
    quick: bool = False
    bootstrap_block: int = 7
    bootstrap_samples: int = 2000
    progress: bool = True

    def __post_init__(self):
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"models {list(self.models)}: use names from {MODELS}")
        if "blur" not in self.models:
            raise ValueError("models must include 'blur': the report compares BLUR with "
                             "every other model")
        self.models = tuple(m for m in MODELS if m in self.models)
        if not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise ValueError(f"jobs={self.jobs!r}: use a whole number of processes >= 1")
        if self.ema is not None:
            ParameterAverage({}, self.ema)


def rolling_folds(n_rows, steps_per_day, folds, val_days, test_days, min_train_days=28):
    """Row ranges ``[{"train", "val", "test"}: (start, stop)]`` of each fold, oldest
    first: test periods of ``test_days`` whole days end the series back to back, each
    preceded by ``val_days`` of validation, training on all earlier rows.

    ValueError when fewer than ``min_train_days`` days remain to train the first fold.
    """
    days = n_rows // steps_per_day
    first_train = days - folds * test_days - val_days
    if first_train < min_train_days:
        raise ValueError(f"{folds} folds of {test_days} test days plus {val_days} "
                         f"validation days leave {first_train} days to train (need "
                         f">= {min_train_days}); use fewer or shorter folds")
    out = []
    for k in range(folds):
        test0 = (first_train + val_days + k * test_days) * steps_per_day
        val0 = test0 - val_days * steps_per_day
        out.append(dict(train=(0, val0), val=(val0, test0),
                        test=(test0, test0 + test_days * steps_per_day)))
    return out


def fold_data(series, bounds, lookback, horizon, dtype=np.float32):
    """The :class:`ForecastData` of one fold: training windows at every row inside
    ``bounds["train"]`` (take a stride with ``.subset``); validation and test forecasts
    one per ``horizon`` whose targets tile their period and whose inputs may reach back
    before it."""
    scaler = Standardiser(series.values[slice(*bounds["train"])])
    inputs = scaler.transform(series.values).astype(dtype)
    targets = inputs[:, series.target_columns]
    sets = {"train": window_starts(bounds["train"], lookback, horizon)}
    for split in ("val", "test"):
        start, stop = bounds[split]
        sets[split] = window_starts((start - lookback, stop), lookback, horizon, horizon)
    sets = {k: WindowSet(inputs, targets, s, lookback, horizon) for k, s in sets.items()}
    return ForecastData(series, sets, dict(bounds), scaler, lookback, horizon)


def candidate_configs(model, n, seed=0):
    """``n`` configurations of a neural ``model``: its default, then distinct seeded
    random draws from ``SPACES[model]`` (fewer when the space runs out)."""
    default = dict(LINREC_DEFAULTS if model in LINREC else DEFAULTS)
    space = SPACES[model]
    rng = np.random.default_rng([seed, MODELS.index(model)])
    out, tries = [default], 0
    while len(out) < n and tries < 1000:
        tries += 1
        hp = dict(default, **{k: v[rng.integers(len(v))] for k, v in space.items()})
        hp = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in hp.items()}
        if hp not in out:
            out.append(hp)
    return out


def _linrec_state(hp, model):
    return 2 * hp["d_state"] if model == "lru" else hp["d_state"]


def build_model(model, hp, n_features, horizon, seed, quick=False, sources=None):
    """A fresh neural ``model`` of configuration ``hp``: a linrec Model or a peer.
    ``sources`` (lists of input columns) group the inputs of per-source encoders, which
    a linrec model has when ``hp["source_width"]`` is set (None: a source per column)."""
    width = 8 if quick else hp["d_model"]
    if model in LINREC:
        from linrec.nn import Model

        return Model(n_features, horizon=horizon, n_targets=1,
                     bidirectional=model == "blur", pool="window", d_model=width,
                     d_state=_linrec_state(hp, model),
                     n_layers=hp["n_layers"], merge=hp["merge"], dropout=hp["dropout"],
                     r_max=hp["r_max"], source_width=hp.get("source_width", 0),
                     sources=sources if hp.get("source_width") else None, seed=seed)
    from linrec.apps.peers import make_peer

    return make_peer(model, n_features, horizon, d_model=width, n_layers=hp["n_layers"],
                     n_heads=4, dropout=hp["dropout"], pool="window", window=horizon,
                     seed=seed)


def _train_config(settings, hp, seed):
    from linrec.apps.train import TrainConfig

    return TrainConfig(epochs=max(1, settings.steps // settings.steps_per_epoch),
                       batch_size=settings.batch_size,
                       steps_per_epoch=settings.steps_per_epoch, lr=hp["lr"],
                       weight_decay=hp["weight_decay"], warmup=min(30, settings.steps // 4),
                       patience=settings.patience, seed=seed,
                       budget_seconds=settings.budget, ema=settings.ema, progress=False)


def _predictor(model, net):
    """``x (n, T, F) -> (n, horizon, 1)`` normalised forecasts of a trained network."""
    if model in LINREC:
        return lambda x, batch_size=256: to_numpy(net.predict(x, batch_size=batch_size))
    from linrec.apps.peers import predict_peer

    return lambda x, batch_size=256: predict_peer(net, x, batch_size)[:, :, None]


def fit_neural(model, hp, data, seed, settings):
    """Train ``model`` with ``hp`` on ``data``; ``(predict, summary)`` with
    ``summary["seconds_to_best"]`` the wall time of the epochs up to the best one."""
    net = build_model(model, hp, data.n_features, data.horizon, seed, settings.quick,
                      data.sources())
    train = data.sets["train"].subset(slice(None, None, hp["train_stride"]))
    cfg = _train_config(settings, hp, seed)
    if model in LINREC:
        from linrec.apps.train import fit

        summary = fit(net, train, data.sets["val"], cfg, label=model)
    else:
        from linrec.apps.peers import fit_peer

        summary = fit_peer(net, train, data.sets["val"], cfg, label=model)
    seconds = [h["seconds"] for h in summary["history"]]
    summary["seconds_to_best"] = float(sum(seconds[:summary["best_epoch"] + 1]))
    return _predictor(model, net), summary


def fit_linear(data, strides=LINEAR_STRIDES):
    """``(predict, choice)``: least squares with the training stride and ridge penalty
    of lowest validation MSE."""
    from linrec.apps.baselines import LinearForecaster

    best = None
    xv, yv = data.sets["val"].all()
    for stride in strides:
        lin = LinearForecaster().fit(data.sets["train"].subset(slice(None, None, stride)),
                                     data.sets["val"])
        err = float(((lin.predict(xv) - yv) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, lin, stride)
    err, lin, stride = best
    return (lambda x, batch_size=None: lin.predict(x)), dict(
        stride=stride, alpha=lin.alpha, val_loss=err)


def _naive(data, split):
    from linrec.apps.baselines import seasonal_naive

    season = min(7 * data.series.steps_per_day, data.lookback)
    return seasonal_naive(data.raw_inputs(split), data.series.target_columns,
                          data.horizon, season)


def _run_scores(data, split, pred):
    """Metrics, per-day MAE and MAE by hour of day of forecasts ``pred`` (units)."""
    actual = data.to_units(data.sets[split].all()[1])
    err = np.abs(pred - actual)[:, :, 0]
    spd = data.series.steps_per_day
    hours = (np.arange(data.horizon) % spd) * 24 // spd
    by_hour = [float(err[:, hours == h].mean()) for h in range(24) if np.any(hours == h)]
    return dict(metrics=forecast_metrics(pred, actual),
                per_day_mae=err.mean(axis=1).tolist(), hour_mae=by_hour)


def _latency(predict, x):
    """Median seconds per window at batch 1 and at batch 256 (1 thread)."""
    one = x[:1]
    many = x[np.arange(256) % len(x)]
    predict(one)
    t1 = []
    for _ in range(15):
        t0 = time.perf_counter()
        predict(one, batch_size=1)
        t1.append(time.perf_counter() - t0)
    t256 = []
    for _ in range(3):
        t0 = time.perf_counter()
        predict(many, batch_size=256)
        t256.append(time.perf_counter() - t0)
    return dict(batch1_ms=1e3 * float(np.median(t1)),
                batch256_ms_per_window=1e3 * float(np.median(t256)) / 256)


def _peak_rss_mib():
    """This process's peak resident set size in MiB: VmHWM of /proc/self/status (which
    a new program starts afresh), else ru_maxrss (which Linux carries over exec)."""
    try:
        with open("/proc/self/status") as f:
            line = next(v for v in f if v.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe(model, hp, n_features, steps, batch_size, horizon, quick, sources, queue):
    """In a fresh process: RSS after building the model and a batch, the peak RSS while
    training ``steps`` steps, and the median step time (1 thread)."""
    from linrec.apps.cli import _limit_threads

    _limit_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, steps, n_features)).astype(np.float32)
    y = rng.standard_normal((batch_size, horizon, 1)).astype(np.float32)
    net = build_model(model, hp, n_features, horizon, 0, quick, sources)
    if model in LINREC:
        from linrec.nn.optim import Adam

        opt = Adam(net.parameters(), groups=net.param_groups(), lr=1e-4)

        def step():
            opt.step(net.loss_and_grad(x, y)[1], 1e-4)
    else:
        import torch

        torch.set_num_threads(1)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        xt, yt = torch.as_tensor(x), torch.as_tensor(y.reshape(batch_size, -1))

        def step():
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(xt), yt).backward()
            opt.step()
    base = _peak_rss_mib()
    step()
    times = []
    for _ in range(3 if quick else 8):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = _peak_rss_mib()
    queue.put(dict(step_seconds=float(np.median(times)), rss_before_mib=base,
                   peak_rss_mib=peak, rss_increase_mib=peak - base))


def probe_costs(model, hp, n_features, settings, sources=None):
    """:func:`_probe` of ``model`` in a spawned process (fresh memory accounting)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_probe, args=(model, hp, n_features, settings.lookback,
                                            settings.batch_size, settings.horizon,
                                            settings.quick, sources, queue))
    proc.start()
    out = queue.get(timeout=600)
    proc.join()
    return out


def _day(time):
    """A time stamp as ``YYYY-MM-DD HH:MM`` (UTC)."""
    return str(np.datetime64(time, "m")).replace("T", " ")


def _mean_sd(values):
    values = np.asarray(values, np.float64)
    return [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0]


def _summaries(runs, folds):
    """Per model: per fold and over all folds, mean and sd over seeds of each metric."""
    out = {}
    for model, rs in runs.items():
        per_fold = []
        for k in range(folds):
            mine = [r for r in rs if r["fold"] == k]
            per_fold.append({m: _mean_sd([r["test"]["metrics"][m] for r in mine])
                             for m in ("MAE", "RMSE", "MAPE")}
                            | {"val_MAE": _mean_sd([r["val"]["metrics"]["MAE"]
                                                    for r in mine])})
        seeds = sorted({r["seed"] for r in rs})
        overall = {m: _mean_sd([np.mean([r["test"]["metrics"][m] for r in rs
                                         if r["seed"] == s]) for s in seeds])
                   for m in ("MAE", "RMSE", "MAPE")}
        out[model] = dict(folds=per_fold, all=overall)
    return out


def _per_day(rs, folds):
    """Per-day test MAE averaged over seeds, one array per fold."""
    return [np.mean([r["test"]["per_day_mae"] for r in rs if r["fold"] == k], axis=0)
            for k in range(folds)]


def _bootstraps(per_day, settings, reference="blur"):
    """Paired block-bootstrap intervals of the mean per-day MAE difference,
    ``reference`` minus each other model, per fold and over all folds."""
    out = {}
    ref = per_day[reference]
    for model, days in per_day.items():
        if model == reference:
            continue
        diffs = [r - d for r, d in zip(ref, days, strict=True)]
        kw = dict(block=settings.bootstrap_block, samples=settings.bootstrap_samples)
        out[model] = dict(folds=[block_bootstrap([d], **kw) for d in diffs],
                          all=block_bootstrap(diffs, **kw))
    return out


def _ensembles(preds, data_by_fold, folds):
    """Metrics and per-day MAE of the seed-mean forecast of each neural model."""
    out, per_day = {}, {}
    for model, by_fold in preds.items():
        scores = [_run_scores(data_by_fold[k], "test", np.mean(by_fold[k], axis=0))
                  for k in range(folds)]
        out[model] = dict(
            folds=[s["metrics"] for s in scores],
            all={m: float(np.mean([s["metrics"][m] for s in scores]))
                 for m in ("MAE", "RMSE", "MAPE")})
        per_day[model] = [np.asarray(s["per_day_mae"]) for s in scores]
    return out, per_day


def _tune(models, data, settings, bar, run_all):
    """Choose each model's configuration on the first fold's validation (seed 0);
    ``run_all(tasks)`` yields the :func:`_fit_task` result of each task, in order."""
    tuning, chosen = {}, {}
    if "linear" in models:
        _, choice = fit_linear(data)
        tuning["linear"] = dict(chosen=choice)
        chosen["linear"] = choice
        bar.update(1)
    neural = [m for m in models if m in NEURAL]
    tasks = [(0, m, hp, 0, False) for m in neural
             for hp in candidate_configs(m, settings.configs)]
    trials = {m: [] for m in neural}
    for (_, model, hp, _, _), (_, summary, _) in zip(tasks, run_all(tasks), strict=True):
        trials[model].append(dict(config=hp, val_loss=summary["best_val"],
                                  seconds=summary["seconds"], status=summary["status"]))
        bar.update(1)
    for model in neural:
        best = min(trials[model], key=lambda t: t["val_loss"])
        tuning[model] = dict(candidates=trials[model], chosen=best["config"])
        chosen[model] = best["config"]
    return {m: tuning[m] for m in models if m in tuning}, chosen


def _fit_run(data, model, hp, seed, settings, latency):
    """One fit of ``model`` (``hp``, ``seed``) on a fold's ``data``: ``(forecasts,
    summary, latency)``, the forecasts of validation and test in units, the training
    summary without its history (None for the seasonal naive) and, if ``latency``,
    :func:`_latency` of the trained model (else None)."""
    if model == "naive":
        return {s: _naive(data, s) for s in ("val", "test")}, None, None
    if model == "linear":
        predict, summary = fit_linear(data)
    else:
        predict, summary = fit_neural(model, hp, data, seed, settings)
        summary.pop("history")
    out = {s: data.to_units(predict(data.sets[s].all()[0])) for s in ("val", "test")}
    return out, summary, (_latency(predict, data.sets["test"].all()[0]) if latency
                          else None)


# The folds and settings of the evaluation a process runs fits for (see _fits).
_state = {}


def _fit_task(task):
    """:func:`_fit_run` of ``task = (fold, model, hp, seed, latency)`` on ``_state``."""
    k, model, hp, seed, latency = task
    return _fit_run(_state["datas"][k], model, hp, seed, _state["settings"], latency)


def _start_worker(series, settings):
    """Initialiser of a worker process: one thread, and the evaluation's folds."""
    from linrec.nn.fit import limit_threads

    limit_threads(1)
    _one_torch_thread(settings.models)
    _state.update(datas=_folds(series, settings)[1], settings=settings)


def _one_torch_thread(models):
    if any(m in PEERS for m in models):
        import torch

        torch.set_num_threads(1)


def _folds(series, settings):
    """``(bounds, datas)``: :func:`rolling_folds` and each fold's :func:`fold_data`."""
    bounds = rolling_folds(len(series.values), series.steps_per_day, settings.folds,
                           settings.val_days, settings.test_days)
    return bounds, [fold_data(series, b, settings.lookback, settings.horizon)
                    for b in bounds]


@contextlib.contextmanager
def _fits(series, settings, datas):
    """``run_all(tasks)``: an iterator of :func:`_fit_task` results in task order, in
    this process (``settings.jobs == 1``) or in ``settings.jobs`` spawned workers."""
    if settings.jobs == 1:
        _state.update(datas=datas, settings=settings)
        try:
            yield lambda tasks: map(_fit_task, tasks)
        finally:
            _state.clear()
        return
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(settings.jobs, mp_context=ctx, initializer=_start_worker,
                             initargs=(series, settings)) as pool:
        yield lambda tasks: pool.map(_fit_task, tasks)


def _total_fits(settings, reused):
    neural = [m for m in settings.models if m in NEURAL]
    linear = "linear" in settings.models
    tune = (len(neural) * settings.configs + linear) * (not reused)
    final = settings.folds * (len(neural) * settings.seeds + linear)
    return tune + final


def evaluate(series, settings, tuning=None):
    """Run the evaluation of ``settings`` on ``series``; returns the JSON-ready dict.

    ``tuning``: the ``"tuning"`` entry of an earlier evaluation's results, whose chosen
    configurations are then reused instead of tuning again (KeyError naming a model it
    lacks)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    _one_torch_thread(settings.models)
    bounds, datas = _folds(series, settings)
    bar = tqdm(total=_total_fits(settings, tuning is not None), desc="evaluate (fits)",
               file=sys.stderr, disable=not settings.progress, dynamic_ncols=True)
    if tuning is not None:
        missing = [m for m in settings.models if m != "naive" and m not in tuning]
        if missing:
            raise KeyError(f"the earlier tuning has no configuration for {missing}")
        tuning = {m: dict(tuning[m], reused=True) for m in settings.models if m in tuning}
        chosen = {m: t["chosen"] for m, t in tuning.items()}
    runs = {m: [] for m in settings.models}
    preds = {m: [[] for _ in bounds] for m in settings.models if m in NEURAL}
    costs = {m: {} for m in settings.models}
    examples = {}
    with _fits(series, settings, datas) as run_all:
        if tuning is None:
            tuning, chosen = _tune(settings.models, datas[0], settings, bar, run_all)
        tasks = [(k, model, chosen.get(model), seed, k == 0 and seed in (0, None))
                 for k in range(len(datas)) for model in settings.models
                 for seed in (range(settings.seeds) if model in NEURAL else [None])]
        for (k, model, _, seed, first), (out, summary, latency) in zip(
                tasks, run_all(tasks), strict=True):
            run = dict(fold=k, seed=seed)
            run.update({s: _run_scores(datas[k], s, out[s]) for s in out}, train=summary)
            if model != "naive":
                bar.update(1)
            if model in NEURAL:
                preds[model][k].append(out["test"])
            if first:
                examples[model] = out["test"][:7, :, 0].ravel().tolist()
                if latency is not None:
                    costs[model]["latency"] = latency
            runs[model].append(run)
    for model in settings.models:
        if model in NEURAL:
            costs[model]["probe"] = probe_costs(model, chosen[model], datas[0].n_features,
                                                settings, datas[0].sources())
            times = [r["train"]["seconds_to_best"] for r in runs[model]]
            costs[model]["seconds_to_best"] = _mean_sd(times)
            costs[model]["time_capped"] = sum(r["train"]["status"] == "budget"
                                              for r in runs[model])
            costs[model]["train_seconds"] = _mean_sd([r["train"]["seconds"]
                                                      for r in runs[model]])
    bar.close()
    per_day = {m: _per_day(rs, settings.folds) for m, rs in runs.items()}
    ensembles, ens_days = _ensembles(preds, datas, settings.folds)
    mixed = {m: per_day[m] for m in settings.models if m not in NEURAL} | ens_days
    test0 = datas[0].sets["test"]
    actual0 = datas[0].to_units(test0.all()[1])[:7, :, 0].ravel().tolist()
    return dict(
        settings=asdict(settings) | dict(models=list(settings.models)),
        dataset="vic_elec", units="MW",
        folds=[dict(rows=b, start={s: _day(series.times[b[s][0]]) for s in b})
               for b in bounds],
        tuning=tuning, runs=runs, summary=_summaries(runs, settings.folds),
        ensembles=ensembles,
        bootstrap=dict(single=_bootstraps(per_day, settings),
                       ensemble=_bootstraps(mixed, settings)),
        costs=costs,
        examples=dict(start=_day(series.times[test0.starts[0] + test0.lookback]),
                      actual=actual0, forecasts=examples),
        seconds=time.perf_counter() - start)

