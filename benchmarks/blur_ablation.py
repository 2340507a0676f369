"""BLUR, one change at a time, judged on the first fold's validation period only.

Starts from the BLUR configuration an evaluation chose (its results.json), trains each
variant with ``--seeds`` seeds under the evaluation's settings, and reports the
validation MAE (MW) of each seed and of the seeds' mean forecast (an ensemble). Writes
a JSON file and prints a Markdown table. No test data is read.

A change sets configuration keys (``merge``, ``train_stride``, ...) or evaluation
settings (``steps``: training steps per fit; ``patience``: epochs without a better
validation loss before early stopping; ``ema``: the decay of the parameter average, see
:class:`linrec.nn.average.ParameterAverage`; ``budget``: seconds per fit, None for no
cap). Each row records how each fit ended (``status``: "budget" when the time cap cut
it). ``--only`` picks changes by their key in ``CHANGES``; ``--model`` ablates another
neural model of the evaluation.

    python benchmarks/blur_ablation.py docs/eval/results.json docs/eval/ablation.json
    python benchmarks/blur_ablation.py docs/eval/steps200/results.json out.json \
        --only steps400 steps800
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from linrec.apps.cli import _limit_threads
from linrec.apps.data import DATASETS
from linrec.apps.evaluate import EvalSettings, fit_neural, fold_data, rolling_folds

SETTINGS = ("steps", "ema", "patience", "budget")
CHANGES = {
    "base": ("the evaluation's choice", {}),
    "concat": ("merge: concat (a learned linear merge)", {"merge": "concat"}),
    "r099": ("ring r_max 0.99", {"r_max": 0.99}),
    "depth2": ("2 blocks", {"n_layers": 2}),
    "nodrop": ("no dropout", {"dropout": 0.0}),
    "stride24": ("windows at midnight and noon (stride 24)", {"train_stride": 24}),
    "steps200": ("200 steps", {"steps": 200}),
    "steps400": ("400 steps", {"steps": 400}),
    "steps800": ("800 steps", {"steps": 800}),
    "stride6_400": ("windows every 3 hours (stride 6), 400 steps",
                    {"train_stride": 6, "steps": 400}),
    "stride6_800": ("windows every 3 hours (stride 6), 800 steps",
                    {"train_stride": 6, "steps": 800}),
    "stride2_800": ("windows every hour (stride 2), 800 steps",
                    {"train_stride": 2, "steps": 800}),
    "ema_400": ("400 steps, parameter average (EMA 0.98)", {"steps": 400, "ema": 0.98}),
    "ema_800": ("800 steps, parameter average (EMA 0.98)", {"steps": 800, "ema": 0.98}),
    "ema995_400": ("400 steps, parameter average (EMA 0.995)",
                   {"steps": 400, "ema": 0.995}),
    "stride6_ema_400": ("stride 6, 400 steps, EMA 0.98",
                        {"train_stride": 6, "steps": 400, "ema": 0.98}),
    "nostop_400": ("400 steps, no early stopping (patience 100)",
                   {"steps": 400, "patience": 100}),
    "nostop_ema_400": ("400 steps, no early stopping, EMA 0.98",
                       {"steps": 400, "patience": 100, "ema": 0.98}),
    "nostop_ema_800": ("800 steps, no early stopping, EMA 0.98",
                       {"steps": 800, "patience": 100, "ema": 0.98}),
    "stride6_nostop_800": ("windows every 3 hours (stride 6), 800 steps, no early "
                           "stopping", {"train_stride": 6, "steps": 800, "patience": 100}),
    "stride2_nostop_800": ("windows every hour (stride 2), 800 steps, no early stopping",
                           {"train_stride": 2, "steps": 800, "patience": 100}),
    "gate_nostop_400": ("400 steps, no early stopping, merge: gate",
                        {"steps": 400, "patience": 100, "merge": "gate", "budget": None}),
    "nostop_800": ("800 steps, no early stopping", {"steps": 800, "patience": 100}),
    "enc4": ("per-source encoders, 4 GELU units per source", {"source_width": 4}),
    "enc8": ("per-source encoders, 8 GELU units per source", {"source_width": 8}),
    "enc16": ("per-source encoders, 16 GELU units per source", {"source_width": 16}),
    "gate": ("merge: gate (a learned per-step, per-feature blend of the directions)",
             {"merge": "gate", "budget": None}),
    "ds32": ("state 32 per LRU", {"d_state": 32}),
    "concat_nostop_400": ("400 steps, no early stopping, merge: concat",
                          {"steps": 400, "patience": 100, "merge": "concat",
                           "budget": None}),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("out")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", nargs="+", choices=list(CHANGES), default=list(CHANGES))
    p.add_argument("--model", default="blur", choices=("blur", "lru", "lstm", "gru",
                                                        "transformer"))
    args = p.parse_args(argv)
    from tqdm.auto import tqdm

    _limit_threads(1)
    res = json.loads(Path(args.results).read_text())
    base = res["tuning"][args.model]["chosen"]
    changes = [CHANGES[k] for k in args.only]
    keys = ("folds", "val_days", "test_days", "lookback", "horizon", "steps",
            "steps_per_epoch", "patience", "batch_size", "budget")
    settings = EvalSettings(**{k: res["settings"][k] for k in keys}, progress=False)
    series = DATASETS["vic_elec"]()
    bounds = rolling_folds(len(series.values), series.steps_per_day, settings.folds,
                           settings.val_days, settings.test_days)[0]
    data = fold_data(series, bounds, settings.lookback, settings.horizon)
    xv, yv = data.sets["val"].all()
    actual = data.to_units(yv)
    rows = []
    bar = tqdm(total=len(changes) * args.seeds, desc="ablation", file=sys.stderr)
    for name, change in changes:
        hp = dict(base, **{k: v for k, v in change.items() if k not in SETTINGS})
        run = EvalSettings(**{**vars(settings),
                              **{k: v for k, v in change.items() if k in SETTINGS}})
        preds, maes, seconds, status = [], [], [], []
        for seed in range(args.seeds):
            predict, summary = fit_neural(args.model, hp, data, seed, run)
            preds.append(data.to_units(predict(xv)))
            maes.append(float(np.abs(preds[-1] - actual).mean()))
            seconds.append(summary["seconds_to_best"])
            status.append(summary["status"])
            bar.update(1)
        ensemble = float(np.abs(np.mean(preds, axis=0) - actual).mean())
        rows.append(dict(change=name, config=hp, steps=run.steps,
                         ema=run.ema, patience=run.patience, val_mae=maes,
                         ensemble_val_mae=ensemble, seconds_to_best=seconds,
                         status=status, budget=run.budget))
        Path(args.out).write_text(json.dumps(
            dict(model=args.model, base=base, seeds=args.seeds, rows=rows), indent=1))
    bar.close()
    print("| change | val MAE per seed | mean ± sd | ensemble | s to best |")
    print("|---|---|---|---|---|")
    for r in rows:
        v = np.asarray(r["val_mae"])
        print(f"| {r['change']} | {', '.join(f'{x:.1f}' for x in v)} | "
              f"{v.mean():.1f} ± {v.std(ddof=1):.1f} | {r['ensemble_val_mae']:.1f} | "
              f"{np.mean(r['seconds_to_best']):.0f} |")


if __name__ == "__main__":
    main()
