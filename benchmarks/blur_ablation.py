"""BLUR, one change at a time, judged on the first fold's validation period only.

Starts from the BLUR configuration an evaluation chose (its results.json), trains each
variant with ``--seeds`` seeds under the evaluation's settings, and reports the
validation MAE (MW) of each seed and of the seeds' mean forecast (an ensemble). Writes
a JSON file and prints a Markdown table. No test data is read.

    python benchmarks/blur_ablation.py docs/eval/results.json docs/eval/ablation.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from linrec.apps.cli import _limit_threads
from linrec.apps.data import DATASETS
from linrec.apps.evaluate import EvalSettings, fit_neural, fold_data, rolling_folds

CHANGES = (
    ("the evaluation's choice", {}),
    ("merge: concat (a learned linear merge)", {"merge": "concat"}),
    ("ring r_max 0.99", {"r_max": 0.99}),
    ("2 blocks", {"n_layers": 2}),
    ("no dropout", {"dropout": 0.0}),
    ("windows at midnight and noon (stride 24)", {"train_stride": 24}),
    ("twice the steps", {"steps": 2}),
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("out")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    from tqdm.auto import tqdm

    _limit_threads(1)
    res = json.loads(Path(args.results).read_text())
    base = res["tuning"]["blur"]["chosen"]
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
    bar = tqdm(total=len(CHANGES) * args.seeds, desc="ablation", file=sys.stderr)
    for name, change in CHANGES:
        hp = dict(base, **{k: v for k, v in change.items() if k != "steps"})
        run = EvalSettings(**{**vars(settings),
                              "steps": settings.steps * change.get("steps", 1)})
        preds, maes, seconds = [], [], []
        for seed in range(args.seeds):
            predict, summary = fit_neural("blur", hp, data, seed, run)
            preds.append(data.to_units(predict(xv)))
            maes.append(float(np.abs(preds[-1] - actual).mean()))
            seconds.append(summary["seconds_to_best"])
            bar.update(1)
        ensemble = float(np.abs(np.mean(preds, axis=0) - actual).mean())
        rows.append(dict(change=name, config=hp, steps=run.steps, val_mae=maes,
                         ensemble_val_mae=ensemble, seconds_to_best=seconds))
    bar.close()
    Path(args.out).write_text(json.dumps(dict(base=base, seeds=args.seeds, rows=rows),
                                         indent=1))
    print("| change | val MAE per seed | mean ± sd | ensemble | s to best |")
    print("|---|---|---|---|---|")
    for r in rows:
        v = np.asarray(r["val_mae"])
        print(f"| {r['change']} | {', '.join(f'{x:.1f}' for x in v)} | "
              f"{v.mean():.1f} ± {v.std(ddof=1):.1f} | {r['ensemble_val_mae']:.1f} | "
              f"{np.mean(r['seconds_to_best']):.0f} |")


if __name__ == "__main__":
    main()
