"""The command line: ``python -m linrec {train,demo,digits,predict,classify,evaluate}``.

``train``   the main job: forecast the next day of Victorian electricity demand from the
            past week (or your own CSV: --csv, --time, --target); prints the test table of
            seasonal naive, least squares, the unidirectional LRU model and BLUR; writes
            plots, ``results.json`` and the models (``*_model.npz``).
``demo``    the same job with a tiny budget (well under a minute of training).
``digits``  sequential 8x8 digits: the classification head against logistic regression.
``predict`` forecast from the last rows of a CSV with a model saved by ``train``.
``classify`` sequence classification (JapaneseVowels, BasicMotions, digits): BLUR against
            LSTM, GRU and a Transformer over seeds, choices on validation only.
``evaluate`` BLUR against the LSTM, GRU, Transformer, unidirectional LRU and baselines
            over seeds and rolling-origin folds; writes a JSON file, a Markdown report
            and plots (``linrec.apps.evaluate``).
"""

import argparse
import dataclasses
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from linrec._host import to_numpy
from linrec.nn.fit import limit_threads as _limit_threads

__all__ = ["main"]

MODELS = (("lru", "LRU (unidirectional)", False, 0.4), ("blur", "BLUR", True, 0.6))
# The modules of the 'model' extra (pyproject.toml) that the jobs import.
MODEL_EXTRA = ("tqdm", "matplotlib", "tsdata", "sklearn", "pandas", "threadpoolctl")
FORECAST_FILES = ("results.json", "lru_checkpoint.npz", "blur_checkpoint.npz",
                  "lru_model.npz", "blur_model.npz")
DIGITS_FILES = ("results.json", "blur_checkpoint.npz")
CLASSIFY_FILES = ("results.json",)
# The extra each optional module belongs to (pyproject.toml).
EXTRAS = {"aeon": "data", "torch": "peers"}


def _namespace(device):
    if device == "cpu":
        return np
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001 - any failure means: no usable GPU
        raise SystemExit(f"--device gpu needs CuPy and a CUDA GPU ({err}); "
                         f"install linrec[cuda12] or use --device cpu") from None
    return cupy


def _model_kwargs(args):
    return dict(d_model=args.d_model, d_state=args.d_state, n_layers=args.layers,
                merge=args.merge, projection=args.projection, dropout=args.dropout,
                r_min=args.r_min, r_max=args.r_max, max_phase=args.max_phase,
                source_width=args.source_width, seed=args.seed)


def _train_config(args, budget):
    from linrec.apps.train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                       steps_per_epoch=args.steps_per_epoch, lr=args.lr,
                       weight_decay=args.weight_decay, clip=args.clip, warmup=args.warmup,
                       patience=args.patience, seed=args.seed, budget_seconds=budget,
                       progress=not args.quiet, checkpoint_every=args.checkpoint_every)


def _format_table(title, columns, rows):
    width = max(len(r[0]) for r in rows) + 2
    lines = [title, "".ljust(width) + "".join(c.rjust(10) for c in columns)]
    for name, values in rows:
        lines.append(name.ljust(width) + "".join(f"{v:10.2f}" for v in values))
    return "\n".join(lines)


def _fit_linear(train, val, strides):
    """``(forecaster, stride)``: the least-squares forecaster with the training-window
    stride (and ridge penalty) that gives the lowest validation MSE."""
    from linrec.apps.baselines import LinearForecaster

    best = None
    for stride in strides:
        model = LinearForecaster().fit(train.subset(slice(None, None, stride)), val)
        x, y = val.all()
        err = float(((model.predict(x) - y) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, model, stride)
    return best[1:]


def run_forecast(args, xp):
    """Train and compare the four forecasters; returns the results dict."""
    from linrec.apps.baselines import seasonal_naive, seasonal_period
    from linrec.apps.data import make_forecast_data
    from linrec.apps.forecaster import Forecaster
    from linrec.apps.metrics import forecast_metrics, interval_coverage
    from linrec.apps.plots import plot_forecasts, plot_losses
    from linrec.apps.train import fit
    from linrec.nn import Model

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    series = _load_series(args)
    known = series.known_future if args.known_future is not None else ()
    data = make_forecast_data(series, lookback=args.lookback, horizon=args.horizon,
                              known_future=known)
    cols = series.target_columns
    preds = {split: {} for split in ("val", "test")}
    intervals = {split: {} for split in preds}
    actual = {s: data.to_units(data.sets[s].all()[1]) for s in preds}
    season = seasonal_period(series.steps_per_day, args.lookback, args.horizon)
    for split in preds:
        preds[split]["seasonal naive"] = seasonal_naive(
            data.raw_inputs(split), cols, args.horizon, season)
    train = data.sets["train"]
    linear, linear_stride = _fit_linear(train, data.sets["val"], args.linear_strides)
    for split in preds:
        preds[split]["linear (least squares)"] = data.to_units(
            linear.predict(data.sets[split].all()[0]))
    summaries = {}
    for key, name, bidirectional, share in MODELS:
        budget = None if args.budget_seconds is None else args.budget_seconds * share
        pool = "tail" if known else args.pool
        model = Model(data.n_features, horizon=args.horizon, n_targets=len(cols),
                      bidirectional=bidirectional, pool=pool, quantiles=args.quantiles,
                      sources=data.sources() if args.source_width else None, xp=xp,
                      **_model_kwargs(args))
        summaries[name] = fit(model, train.subset(slice(None, None, args.train_stride)),
                              data.sets["val"], _train_config(args, budget),
                              checkpoint=out / f"{key}_checkpoint.npz", resume=args.resume,
                              overwrite=args.overwrite, label=name)
        forecaster = Forecaster.from_data(model, data, known)
        forecaster.save(out / f"{key}_model.npz")
        for split in preds:
            preds[split][name], band = forecaster.forecast_windows(
                data.sets[split].all()[0])
            if band is not None:
                intervals[split][name] = band
    metrics = {s: {n: forecast_metrics(p, actual[s]) for n, p in preds[s].items()}
               for s in preds}
    for s, bands in intervals.items():
        for n, (low, high) in bands.items():
            metrics[s][n]["coverage"] = interval_coverage(low, high, actual[s])
    table = _format_table(
        f"{_data_name(args)}: {args.horizon}-step forecast from {args.lookback} steps, "
        f"test split ({len(actual['test'])} windows), units of {series.targets[0]}",
        ("MAE", "RMSE", "MAPE %"),
        [(n, [m["MAE"], m["RMSE"], m["MAPE"]]) for n, m in metrics["test"].items()])
    print(table)
    if args.quantiles is not None:
        print(_coverage_lines(args.quantiles, metrics["test"]))
    plot_forecasts(out / "test_week.png", data, actual["test"], preds["test"])
    plot_losses(out / "loss_curves.png", summaries,
                "MSE" if args.quantiles is None else "pinball loss")
    results = dict(
        dataset=_data_name(args), lookback=args.lookback, horizon=args.horizon,
        quantiles=args.quantiles,
        known_future=list(known), pool=pool, bounds=data.bounds, metrics=metrics,
        linear_alpha=linear.alpha, linear_stride=linear_stride,
        model=_model_kwargs(args), training=summaries, argv=sys.argv[1:],
        seconds=time.perf_counter() - start,
    )
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"plots, models and results.json in {out}")
    return results


def _load_series(args):
    """The series of ``--dataset``, or of ``--csv`` (SystemExit with the reason when the
    file cannot be used)."""
    from linrec.apps.data import DATASETS
    from linrec.apps.data.csv import load_csv

    if args.csv is None:
        return DATASETS[args.dataset]()
    try:
        return load_csv(args.csv, time=args.time, targets=args.target,
                        features=args.features, known_future=args.known_future or (),
                        fill=args.fill, timezone=args.timezone)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"python -m linrec {args.command}: {err}") from None


def _data_name(args):
    return args.dataset if args.csv is None else Path(args.csv).name


def _coverage_lines(quantiles, metrics):
    """What the quantile models' central intervals cover of the test split."""
    low, high = quantiles[0], quantiles[-1]
    lines = []
    for name, m in metrics.items():
        if "coverage" in m:
            lines.append(f"{name}: MAE of the median (P50) {m['MAE']:.2f}; the "
                         f"P{100 * low:g}-P{100 * high:g} interval covers "
                         f"{100 * m['coverage']:.1f}% of the test values (nominal "
                         f"{100 * (high - low):g}%)")
    return "\n".join(lines)


def run_digits(args, xp):
    """Sequential digits: the classification head against logistic regression."""
    from sklearn.linear_model import LogisticRegression

    from linrec.apps.data import load_digits_sequences
    from linrec.apps.train import fit
    from linrec.nn import Model

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = load_digits_sequences(seed=args.seed)
    flat = {s: (d.x.reshape(len(d.x), -1), d.y) for s, d in sets.items()}
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        clf = LogisticRegression(C=c, max_iter=3000).fit(*flat["train"])
        acc = clf.score(*flat["val"])
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    accuracy = {"logistic regression": best[2].score(*flat["test"])}
    model = Model(1, task="classify", n_classes=10, xp=xp, **_model_kwargs(args))
    config = _train_config(args, args.budget_seconds)
    summary = fit(model, sets["train"], sets["val"], config,
                  checkpoint=out / "blur_checkpoint.npz", resume=args.resume,
                  overwrite=args.overwrite, label="BLUR")
    labels = to_numpy(model.predict(xp.asarray(sets["test"].x))).argmax(axis=1)
    accuracy["BLUR (classification head)"] = float((labels == sets["test"].y).mean())
    print(_format_table(f"sequential digits: test accuracy (%), {len(sets['test'])} images",
                        ("accuracy",), [(n, [100 * a]) for n, a in accuracy.items()]))
    results = dict(accuracy=accuracy, logistic_C=best[1], training=summary,
                   model=_model_kwargs(args), seconds=time.perf_counter() - start)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    return results


def _require(module):
    """SystemExit naming the extra to install when ``module`` is missing."""
    if importlib.util.find_spec(module) is None:
        raise SystemExit(f"this job needs {module}, the '{EXTRAS[module]}' extra: "
                         f"pip install 'linrec[{EXTRAS[module]}]'")


def run_classify(args, xp):
    """Sequence classification: BLUR against the PyTorch peers, see
    :mod:`linrec.apps.classify`."""
    from linrec.apps import classify

    if args.dataset != "digits":
        _require("aeon")
    if set(args.models) - {"blur"}:
        _require("torch")
        import torch

        torch.set_num_threads(args.threads)
    args.lrs = args.lrs or [args.lr]
    return classify.run_classify(args, xp,
                                 model_kwargs={**_model_kwargs(args), "pool": args.pool},
                                 config=dataclasses.replace(
                                     _train_config(args, args.budget_seconds),
                                     ema=args.ema))


def run_evaluate(args, xp):
    """The multi-seed, multi-fold forecasting evaluation; returns the results dict."""
    from linrec.apps.data import DATASETS
    from linrec.apps.evaluate import EvalSettings, evaluate
    from linrec.apps.report import write_plots, write_report

    if xp is not np:
        raise SystemExit("evaluate runs on the CPU only (--device cpu)")
    out, docs = Path(args.out), Path(args.report)
    if args.from_json is not None:
        results = json.loads(Path(args.from_json).read_text())
        if args.note is not None:
            results["note"] = args.note
            Path(args.from_json).write_text(json.dumps(results, indent=1))
        write_plots(results, docs / "img")
        write_report(results, docs / "evaluation.md")
        print(f"{docs / 'evaluation.md'} and {docs / 'img'}/eval_*.png rewritten")
        return results
    out.mkdir(parents=True, exist_ok=True)
    series = DATASETS["vic_elec"]()
    try:
        settings = EvalSettings(
            seeds=args.seeds, folds=args.folds, val_days=args.val_days,
            test_days=args.test_days, configs=args.configs, steps=args.steps,
            steps_per_epoch=args.steps_per_epoch, patience=args.patience,
            budget=args.budget, ema=args.ema, jobs=args.jobs,
            models=tuple(args.models), progress=not args.quiet)
    except ValueError as err:
        raise SystemExit(f"python -m linrec evaluate: {err}") from None
    if args.quick:
        settings = EvalSettings(**{**vars(settings), **QUICK})
        series = _tail(series, 130)
    tuning = None
    if args.tuning_from is not None:
        tuning = json.loads(Path(args.tuning_from).read_text())["tuning"]
    results = evaluate(series, settings, tuning) | dict(argv=sys.argv[2:])
    if args.note is not None:
        results["note"] = args.note
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    write_plots(results, docs / "img")
    write_report(results, docs / "evaluation.md")
    print(f"{out / 'results.json'}, {docs / 'evaluation.md'} and {docs / 'img'}/eval_*.png")
    return results


# The smoke run of ``evaluate --quick``: the last 130 days, tiny models, a few steps.
QUICK = dict(seeds=2, val_days=7, test_days=7, lookback=96, configs=2, steps=4,
             steps_per_epoch=2, patience=2, bootstrap_samples=200, quick=True)


def _tail(series, days):
    """The last ``days`` whole days of ``series``."""
    from linrec.apps.data.series import Series

    n = days * series.steps_per_day
    return Series(series.values[-n:], series.names, series.targets, series.times[-n:],
                  series.steps_per_day, series.known_future)


def model_list(text):
    """argparse ``type``: comma-separated model names of the evaluation."""
    from linrec.apps.evaluate import MODELS

    names = text.split(",")
    if not text or any(n not in MODELS for n in names):
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated names from "
                                         f"{','.join(MODELS)}")
    return names


class Bounded:
    """An argparse ``type``: a finite ``kind`` (int or float) in a range.

    ``low`` and ``high`` bound it (None: unbounded), inclusive unless ``low_open`` /
    ``high_open``. A bad value is an ``ArgumentTypeError`` naming the range, so argparse
    exits with status 2 and its usage line.
    """

    def __init__(self, kind, low=None, high=None, *, low_open=False, high_open=False):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open = low_open, high_open

    def describe(self):
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high}")
        noun = "an integer" if self.kind is int else "a finite number"
        return f"{noun} {' and '.join(parts)}".strip()

    def contains(self, value):
        """Whether the number ``value`` is finite and in range."""
        above_low = self.low is None or value > self.low or \
            value == self.low and not self.low_open
        below_high = self.high is None or value < self.high or \
            value == self.high and not self.high_open
        return math.isfinite(value) and above_low and below_high

    def __call__(self, text):
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not self.contains(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}")
        return value


POSITIVE_INT = Bounded(int, 1)
NON_NEGATIVE_INT = Bounded(int, 0)
POSITIVE = Bounded(float, 0.0, low_open=True)
NON_NEGATIVE = Bounded(float, 0.0)
FRACTION = Bounded(float, 0.0, 1.0, high_open=True)


def positive_int_list(text):
    """argparse ``type``: comma-separated positive integers (``48,24,12``)."""
    return [POSITIVE_INT(v) for v in text.split(",")]


def positive_list(text):
    """argparse ``type``: comma-separated positive numbers (``0.006,0.002``)."""
    return [POSITIVE(v) for v in text.split(",")]


def classify_model_list(text):
    """argparse ``type``: comma-separated names of :data:`linrec.apps.classify.MODELS`."""
    from linrec.apps.classify import MODELS

    names = text.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct names from "
                                         f"{','.join(MODELS)}")
    return names


def _add_common(p, *, out, epochs, steps, budget, lr):
    from linrec.nn.block import MERGES
    from linrec.nn.projection import PROJECTIONS

    p.add_argument("--out", default=out, help="output folder (default %(default)s)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=epochs)
    p.add_argument("--steps-per-epoch", type=POSITIVE_INT, default=steps,
                   help="mini-batches per epoch, drawn at random (default %(default)s)")
    p.add_argument("--budget-seconds", type=POSITIVE, default=budget,
                   help="training time cap over all neural models (default %(default)s)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    p.add_argument("--lr", type=POSITIVE, default=lr)
    p.add_argument("--weight-decay", type=NON_NEGATIVE, default=0.05)
    p.add_argument("--clip", type=POSITIVE, default=1.0,
                   help="global gradient-norm clip (default %(default)s)")
    p.add_argument("--warmup", type=NON_NEGATIVE_INT, default=30, help="warm-up steps")
    p.add_argument("--patience", type=POSITIVE_INT, default=8)
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=POSITIVE_INT, default=1,
                   help="threads: Numba kernels and the training step's batch "
                        "shards (default %(default)s)")
    p.add_argument("--checkpoint-every", type=POSITIVE_INT, default=25,
                   help="steps between checkpoints within an epoch (default %(default)s)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoints")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--d-model", type=POSITIVE_INT, default=48)
    p.add_argument("--d-state", type=POSITIVE_INT, default=16)
    p.add_argument("--layers", type=POSITIVE_INT, default=2)
    p.add_argument("--merge", choices=MERGES, default="sum")
    p.add_argument("--projection", choices=sorted(PROJECTIONS), default="glu")
    p.add_argument("--dropout", type=FRACTION, default=0.0)
    p.add_argument("--r-min", type=FRACTION, default=0.0)
    p.add_argument("--r-max", type=FRACTION, default=0.99)
    p.add_argument("--max-phase", type=POSITIVE, default=2 * np.pi)
    p.add_argument("--source-width", type=NON_NEGATIVE_INT, default=0,
                   help="GELU units of a per-source input encoder added to the input "
                        "layer; a source is a data column, or the calendar columns "
                        "together (default %(default)s: no encoders)")


def quantile_list(text):
    """argparse ``type``: comma-separated quantile levels (``0.1,0.5,0.9``), strictly
    increasing in (0, 1), with 0.5 (the point forecast) and a level on each side of it
    (the interval whose coverage is reported)."""
    from linrec.nn.model import check_quantiles

    try:
        levels = check_quantiles(text.split(","))
    except ValueError:
        levels = []
    if not (0.5 in levels and levels[0] < 0.5 < levels[-1]):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of increasing levels in (0, 1) with 0.5 and a level "
            f"on each side of it, e.g. 0.1,0.5,0.9")
    return levels


def _add_own_data(p):
    from linrec.apps.data.csv import FILLS

    g = p.add_argument_group("your own data (instead of --dataset)")
    g.add_argument("--csv", help="a CSV file with a time column and numeric columns")
    g.add_argument("--time", help="the time column of --csv")
    g.add_argument("--target", nargs="+", help="the column(s) to forecast")
    g.add_argument("--features", nargs="+", default=[],
                   help="columns observed up to the forecast time only")
    g.add_argument("--fill", choices=FILLS, default="none",
                   help="'interpolate': fill missing values and gaps in the time index "
                        "linearly in time (default: refuse them, naming the line)")
    g.add_argument("--timezone", help="IANA zone of the calendar features (default: "
                                      "the time stamps as written, UTC if they have "
                                      "an offset)")
    p.add_argument("--quantiles", type=quantile_list, default=None,
                   help="train the neural models for these quantile levels with the "
                        "pinball loss (e.g. 0.1,0.5,0.9); the table shows the median's "
                        "errors and the interval's test coverage")


def _add_forecast(p):
    from linrec.apps.data import DATASETS

    p.add_argument("--dataset", default="vic_elec", choices=sorted(DATASETS))
    p.add_argument("--lookback", type=POSITIVE_INT, default=336)
    p.add_argument("--horizon", type=POSITIVE_INT, default=48)
    p.add_argument("--train-stride", type=POSITIVE_INT, default=48,
                   help="steps between training windows of the neural models")
    p.add_argument("--linear-strides", type=positive_int_list,
                   default=[48, 24, 12],
                   help="steps between the least-squares training windows: each is tried "
                        "and the best on validation kept (default 48,24,12)")
    p.add_argument("--pool", choices=("window", "last+mean", "last", "mean"),
                   default="window",
                   help="what the forecasting head reads: the last horizon steps of the "
                        "final features (window), or the last step and/or the time mean")
    p.add_argument("--known-future", nargs="*", metavar="COL", default=None,
                   help="extend inputs over the forecast steps with the columns known "
                        "ahead (vic_elec: calendar and holidays; --csv: the calendar and "
                        "the columns COL named here); the neural models then read one "
                        "output per step")
    _add_own_data(p)


def build_parser():
    """The argparse parser of ``python -m linrec``."""
    parser = argparse.ArgumentParser(prog="python -m linrec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="the main job: forecasting vic_elec (a few minutes)")
    _add_common(p, out="runs/forecast", epochs=30, steps=50, budget=240.0, lr=6e-3)
    _add_forecast(p)
    p.set_defaults(func=run_forecast, run_files=FORECAST_FILES)
    p = sub.add_parser("demo", help="the main job with a tiny budget (< 1 minute)")
    _add_common(p, out="runs/demo", epochs=3, steps=15, budget=30.0, lr=6e-3)
    _add_forecast(p)
    p.set_defaults(func=run_forecast, run_files=FORECAST_FILES, linear_strides=[48])
    p = sub.add_parser("digits", help="sequence classification of 8x8 digits")
    _add_common(p, out="runs/digits", epochs=60, steps=None, budget=240.0, lr=6e-3)
    p.set_defaults(func=run_digits, run_files=DIGITS_FILES)
    _add_predict(sub.add_parser("predict", help="forecast from a CSV with a saved model"))
    _add_classify(sub)
    _add_evaluate(sub.add_parser(
        "evaluate", help="BLUR against LSTM, GRU, Transformer and baselines over seeds "
                         "and folds (about an hour; --quick: a smoke run)"))
    return parser


def _add_predict(p):
    from linrec.apps.data.csv import FILLS
    from linrec.apps.predict import run_predict

    p.add_argument("--model", required=True,
                   help="a model file written by train (e.g. runs/forecast/blur_model.npz)")
    p.add_argument("--csv", required=True,
                   help="the data: the model's columns, forecast from its last rows")
    p.add_argument("--out", default="forecast.csv",
                   help="the forecast CSV to write (default %(default)s)")
    p.add_argument("--fill", choices=FILLS, default="none",
                   help="'interpolate': fill missing values and gaps linearly in time")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=POSITIVE_INT, default=1)
    p.set_defaults(func=run_predict)


def _add_classify(sub):
    from linrec.apps.classify import DATASETS, MODELS

    p = sub.add_parser("classify", help="sequence classification: BLUR against LSTM, GRU "
                                        "and a Transformer over seeds")
    _add_common(p, out="runs/classify", epochs=150, steps=None, budget=600.0, lr=6e-3)
    p.add_argument("--dataset", choices=DATASETS, default="JapaneseVowels")
    p.add_argument("--seeds", type=POSITIVE_INT, default=5,
                   help="model seeds --seed, --seed + 1, ... (default %(default)s)")
    p.add_argument("--models", type=classify_model_list, default=list(MODELS),
                   help=f"comma-separated, from {','.join(MODELS)} (default all)")
    p.add_argument("--widths", type=positive_int_list, default=[48],
                   help="candidate d_model of every model (default 48)")
    p.add_argument("--lrs", type=positive_list, default=None,
                   help="candidate learning rates of every model (default: --lr)")
    p.add_argument("--split-seed", type=NON_NEGATIVE_INT, default=0,
                   help="seed of the train/validation(/test) split, fixed over the model "
                        "seeds (default %(default)s)")
    p.add_argument("--max-shift", type=NON_NEGATIVE_INT, default=0,
                   help="digits only: add the training images shifted by up to this many "
                        "pixels in each direction (default %(default)s)")
    p.add_argument("--copies", type=NON_NEGATIVE_INT, default=0,
                   help="UEA only: add this many randomly cropped and stretched copies "
                        "of each training series (default %(default)s)")
    p.add_argument("--max-crop", type=FRACTION, default=0.1,
                   help="UEA only: the most of a series' span a copy cuts at each end "
                        "(default %(default)s)")
    p.add_argument("--ema", type=Bounded(float, 0.0, 1.0, low_open=True, high_open=True),
                   default=None,
                   help="decay of the parameter average (an EMA, in (0, 1)) every neural "
                        "model trains with and is judged by (default none)")
    p.add_argument("--pool", choices=("mean", "last+mean"), default="mean",
                   help="BLUR's pooling over time before the head (default %(default)s)")
    p.add_argument("--validation-only", action="store_true",
                   help="train the candidates and report validation accuracy and loss "
                        "only; no test accuracy is read (for tuning)")
    p.set_defaults(func=run_classify, run_files=CLASSIFY_FILES, batch_size=16,
                   patience=20)


def _add_evaluate(p):
    from linrec.apps.evaluate import MODELS, EvalSettings

    d = EvalSettings()
    p.add_argument("--out", default="runs/evaluate", help="folder of results.json")
    p.add_argument("--report", default="docs",
                   help="folder of evaluation.md; plots go to its img/ (default docs)")
    p.add_argument("--seeds", type=POSITIVE_INT, default=d.seeds)
    p.add_argument("--folds", type=POSITIVE_INT, default=d.folds,
                   help="rolling-origin test periods (default %(default)s)")
    p.add_argument("--val-days", type=POSITIVE_INT, default=d.val_days)
    p.add_argument("--test-days", type=POSITIVE_INT, default=d.test_days)
    p.add_argument("--configs", type=POSITIVE_INT, default=d.configs,
                   help="tuning configurations per neural model (default %(default)s)")
    p.add_argument("--steps", type=POSITIVE_INT, default=d.steps,
                   help="training steps per fit at most (default %(default)s)")
    p.add_argument("--steps-per-epoch", type=POSITIVE_INT, default=d.steps_per_epoch)
    p.add_argument("--patience", type=POSITIVE_INT, default=d.patience)
    p.add_argument("--budget", type=POSITIVE, default=None,
                   help="seconds per fit at most, the same for every model (default none)")
    p.add_argument("--ema", type=POSITIVE, default=None,
                   help="decay of the parameter average (an EMA, in (0, 1)) every neural "
                        "model trains with and is judged by (default none)")
    p.add_argument("--models", type=model_list, default=list(MODELS),
                   help=f"comma-separated, from {','.join(MODELS)} (default all)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (for tests)")
    p.add_argument("--tuning-from", default=None,
                   help="reuse the configurations chosen by this earlier results.json "
                        "instead of tuning")
    p.add_argument("--note", default=None,
                   help="a paragraph for the report (kept in the JSON), e.g. what was "
                        "seen before this run started")
    p.add_argument("--from-json", default=None,
                   help="only rewrite the report and plots from this results.json")
    p.add_argument("--threads", type=POSITIVE_INT, default=1,
                   help="Numba and BLAS threads (default %(default)s)")
    p.add_argument("--jobs", type=POSITIVE_INT, default=d.jobs,
                   help="fits at once, in worker processes of one thread each (default "
                        "%(default)s: in this process)")
    p.add_argument("--device", choices=("cpu",), default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results.json in --out")
    p.set_defaults(func=run_evaluate, run_files=("results.json",), resume=False,
                   r_min=0.0, r_max=0.0)


def _check_args(parser, args):
    """parser.error (exit 2) for settings that are fine alone but not together, and for
    an --out that holds an earlier run when neither --resume nor --overwrite is given."""
    if args.r_min > args.r_max:
        parser.error(f"--r-min {args.r_min} is above --r-max {args.r_max}")
    own = [f"--{k}" for k in ("time", "target", "timezone") if getattr(args, k, None)] + \
        ["--features"] * bool(getattr(args, "features", None)) + \
        ["--known-future COL"] * bool(getattr(args, "known_future", None)) + \
        ["--fill"] * (getattr(args, "fill", "none") != "none")
    if getattr(args, "csv", None) is None and own:
        parser.error(f"{', '.join(own)} name columns of --csv; pass --csv FILE too")
    if getattr(args, "csv", None) is not None and not (args.time and args.target):
        parser.error("--csv needs --time COL (the time column) and --target COL (the "
                     "column(s) to forecast)")
    if getattr(args, "horizon", 0) > getattr(args, "lookback", 0):
        parser.error(f"--horizon {args.horizon} is longer than --lookback "
                     f"{args.lookback}; the seasonal naive baseline needs horizon <= "
                     f"lookback")
    if getattr(args, "max_shift", 0) and args.dataset != "digits":
        parser.error(f"--max-shift is for --dataset digits, not {args.dataset}")
    if getattr(args, "copies", 0) and args.dataset == "digits":
        parser.error("--copies is for the UEA archives; use --max-shift for the digits")
    if getattr(args, "max_crop", 0) >= 0.5:
        parser.error(f"--max-crop {args.max_crop} cuts half a series or more from each "
                     f"end; use a fraction below 0.5")
    if getattr(args, "max_shift", 0) > 7:
        parser.error(f"--max-shift {args.max_shift} moves an 8x8 digit off the image; "
                     f"use 0 to 7")
    earlier = [name for name in args.run_files if (Path(args.out) / name).exists()]
    if earlier and not (args.resume or args.overwrite or getattr(args, "from_json", None)):
        parser.error(f"{args.out} holds an earlier run ({', '.join(earlier)}); pass "
                     f"--resume to continue it or --overwrite to replace it")


def _check_model_extra():
    """SystemExit naming the extra to install when a module of it is missing."""
    missing = []
    for name in MODEL_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SystemExit(f"python -m linrec needs the 'model' extra (missing: "
                         f"{', '.join(missing)}): pip install 'linrec[model]'")


def main(argv=None):
    """Entry point of ``python -m linrec`` and the ``linrec`` script."""
    from linrec.apps.train import ResumeError
    from linrec.nn import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "predict":
        _check_args(parser, args)
    _check_model_extra()
    limits = _limit_threads(args.threads)
    try:
        args.func(args, _namespace(args.device))
    except (ResumeError, CheckpointError) as err:
        parser.error(str(err))
    finally:
        limits.restore_original_limits()
    return 0
