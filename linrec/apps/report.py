"""The Markdown report and the plots of an evaluation (from its JSON dict alone)."""

from pathlib import Path

import numpy as np

from linrec.apps.evaluate import NAMES, NEURAL

__all__ = ["write_report", "write_plots", "verdict"]

PLOTS = ("eval_forecasts.png", "eval_seeds.png", "eval_hour.png", "eval_time.png")


def _pm(pair, digits=1):
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def verdict(interval):
    """How an interval of BLUR's MAE minus another model's reads."""
    if interval["high"] < 0:
        return "BLUR better"
    if interval["low"] > 0:
        return "BLUR worse"
    return "no clear difference"


def _ci(b):
    return f"{b['mean']:+.1f} [{b['low']:+.1f}, {b['high']:+.1f}]"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _accuracy(res):
    folds = len(res["folds"])
    header = ["model"] + [f"fold {k} MAE" for k in range(folds)] + \
        ["all folds MAE", "RMSE", "MAPE %"]
    rows = []
    for m, s in res["summary"].items():
        rows.append([NAMES[m]] + [_pm(f["MAE"]) for f in s["folds"]] +
                    [_pm(s["all"]["MAE"]), _pm(s["all"]["RMSE"]),
                     _pm(s["all"]["MAPE"], 2)])
    return _table(header, rows)


def _validation(res):
    folds = len(res["folds"])
    rows = [[NAMES[m]] + [_pm(f["val_MAE"]) for f in s["folds"]]
            for m, s in res["summary"].items()]
    return _table(["model"] + [f"fold {k} val MAE" for k in range(folds)], rows)


def _ensemble_table(res):
    folds = len(res["folds"])
    rows = [[f"{NAMES[m]} (ensemble of {res['settings']['seeds']})"]
            + [f"{f['MAE']:.1f}" for f in e["folds"]]
            + [f"{e['all']['MAE']:.1f}", f"{e['all']['RMSE']:.1f}",
               f"{e['all']['MAPE']:.2f}"] for m, e in res["ensembles"].items()]
    return _table(["model"] + [f"fold {k} MAE" for k in range(folds)]
                  + ["mean MAE", "RMSE", "MAPE %"], rows)


def _bootstrap_table(boot, ensemble=False):
    folds = len(next(iter(boot.values()))["folds"])
    rows = [[NAMES[m] + (" (ensemble)" if ensemble and m in NEURAL else "")]
            + [_ci(f) for f in b["folds"]] + [_ci(b["all"]), verdict(b["all"])]
            for m, b in boot.items()]
    return _table([("BLUR ensemble" if ensemble else "BLUR") + " minus"]
                  + [f"fold {k}" for k in range(folds)] + ["all folds", "all folds says"],
                  rows)


def _costs(res):
    rows = []
    for m in res["summary"]:
        c = res["costs"].get(m, {})
        probe, lat = c.get("probe"), c.get("latency")
        rows.append([
            NAMES[m],
            _pm(c["seconds_to_best"]) if "seconds_to_best" in c else "—",
            c.get("time_capped", "—"),
            f"{1e3 * probe['step_seconds']:.0f}" if probe else "—",
            f"{probe['peak_rss_mib']:.0f} (+{probe['rss_increase_mib']:.0f})"
            if probe else "—",
            f"{lat['batch1_ms']:.2f}" if lat else "—",
            f"{lat['batch256_ms_per_window']:.3f}" if lat else "—"])
    return _table(["model", "s to best val (mean ± sd)", "runs cut by --budget",
                   "ms / train step",
                   "peak RSS MiB (+ training)", "latency batch 1 ms",
                   "batch 256 ms / window"], rows)


def _tuning(res):
    rows = []
    for m, t in res["tuning"].items():
        if "candidates" in t:
            losses = ", ".join(f"{c['val_loss']:.4f}" for c in t["candidates"])
            chosen = ", ".join(f"{k}={v}" for k, v in t["chosen"].items())
        else:
            losses = f"{t['chosen']['val_loss']:.4f}"
            chosen = f"stride={t['chosen']['stride']}, alpha={t['chosen']['alpha']:g}"
        rows.append([NAMES[m], losses, chosen])
    return _table(["model", "validation losses of the candidates (MSE, normalised)",
                   "chosen"], rows)


def _reuse_note(res):
    if not any(t.get("reused") for t in res["tuning"].values()):
        return ""
    return ("\nThese configurations were chosen by an earlier run's tuning (the same "
            "protocol, its own settings: see `--tuning-from` in the command) and reused "
            "here for every model alike.\n")


def _findings(res):
    """Plain sentences on each target: where BLUR wins and where it does not."""
    s, lines = res["summary"], []
    others = [m for m in s if m != "blur"]
    folds = len(res["folds"])
    for k in range(folds):
        blur = s["blur"]["folds"][k]["MAE"][0]
        beat = [NAMES[m] for m in others if s[m]["folds"][k]["MAE"][0] <= blur]
        lines.append(f"- Fold {k}: BLUR's mean test MAE {blur:.1f} MW is "
                     + ("below every other model's." if not beat else
                        f"**not** below {', '.join(beat)}."))
    for m, b in res["bootstrap"]["single"].items():
        lines.append(f"- BLUR minus {NAMES[m]}, all folds: {_ci(b['all'])} MW "
                     f"({verdict(b['all'])}).")
    for m, b in res["bootstrap"]["ensemble"].items():
        other = NAMES[m] + (" ensemble" if m in NEURAL else "")
        lines.append(f"- BLUR ensemble minus {other}, all folds: {_ci(b['all'])} MW "
                     f"({verdict(b['all'])}).")
    val = {m: np.mean([f["val_MAE"][0] for f in s[m]["folds"]]) for m in s}
    best_val = min(val, key=val.get)
    lines.append(f"- Validation (mean over folds and seeds): best is {NAMES[best_val]} "
                 f"({val[best_val]:.1f} MW); BLUR {val['blur']:.1f} MW.")
    cut = {m: res["costs"][m]["time_capped"] for m in s if m in NEURAL}
    if any(cut.values()):
        steps = {m: [r["train"]["steps"] for r in res["runs"][m]] for m in cut}
        lines.append("- Runs cut by the time cap (`--budget`), so trained on fewer steps "
                     "than the others: " + "; ".join(
                         f"{NAMES[m]} {n} of {len(steps[m])} ({min(steps[m])}-"
                         f"{max(steps[m])} steps)" for m, n in cut.items() if n) + ".")
    times = {m: res["costs"][m]["seconds_to_best"][0] for m in s if m in NEURAL}
    slower = [NAMES[m] for m in times if m != "blur" and times[m] <= times["blur"]]
    lines.append(f"- Wall time to the best validation loss: BLUR {times['blur']:.0f} s"
                 + ("; faster than every peer." if not slower else
                    f"; **not** faster than {', '.join(slower)}."))
    return "\n".join(lines)


def _jobs_note(st):
    """How many fits shared the machine (``jobs``, absent from older results: 1)."""
    jobs = st.get("jobs", 1)
    return "" if jobs == 1 else (f", {jobs} fits at once (the training times and "
                                 f"latencies; the step probe ran alone)")


def _command(argv):
    """The command line, with the text of ``--note`` (printed in full below it) cut."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--note":
            out[i + 1] = "'...'"
    return " ".join(out)


def _training_note(st):
    """What every fit of the final runs got: steps, time budget, parameter average."""
    text = (f"\nEvery fit of the final runs: at most {st['steps']} steps "
            f"({st['steps_per_epoch']} per epoch, early stopping after "
            f"{st['patience']} epochs without a better validation loss)")
    if st.get("budget") is not None:
        text += f" and at most {st['budget']:.0f} s"
    if st.get("ema") is not None:
        text += (f"; every neural model keeps an exponential moving average of its "
                 f"parameters (decay {st['ema']}) and is validated and tested with it")
    return text + "."


def write_report(res, path, img="img"):
    """Write the Markdown report of results ``res`` to ``path``; plots are referred to
    as ``{img}/eval_*.png``."""
    st = res["settings"]
    cut = []
    if st["seeds"] < 5:
        cut.append(f"{st['seeds']} seeds instead of the default 5")
    if st["folds"] < 3:
        cut.append(f"{st['folds']} folds instead of the default 3")
    f = res["folds"]
    reused = any(t.get("reused") for t in res["tuning"].values())
    steps = "the earlier run's" if reused else st["steps"]
    fold_lines = "\n".join(
        f"- fold {k}: trains on the rows before {b['start']['val']} UTC, validates from "
        f"there, tests from {b['start']['test']} ({st['test_days']} days)"
        for k, b in enumerate(f))
    text = f"""# Evaluation: BLUR against LSTM, GRU, Transformer and baselines

Generated by `python -m linrec evaluate {_command(res.get('argv', []))}`
({res['seconds'] / 60:.0f} minutes on a shared 2-core machine; one run). Forecast the
next day ({st['horizon']} half-hours) of Victorian electricity demand from the past
{st['lookback']} half-hours; MAE, RMSE in MW. The protocol (rolling origin, tuning,
costs) is in the docstring of `linrec.apps.evaluate`.
{("**Sized down for time:** " + "; ".join(cut) + ".") if cut else ""}

{res.get("note", "")}

Folds ({st['val_days']} validation days before each test period; models refit per fold):

{fold_lines}

Tuning: {st['configs']} configurations per neural model (its default first), trained on
fold 0 with seed 0, at most {steps} steps of batch {st['batch_size']} each, chosen
by validation loss; the least-squares model chooses its stride and ridge penalty on the
same validation period. Test numbers were computed once, after every choice was fixed.
`d_state` is per direction: the unidirectional LRU gets twice the listed state, so its
recurrent capacity matches BLUR's two directions. `train_stride` 48 trains on the
windows that start at midnight, 2 on a window every hour.{_training_note(st)}

{_tuning(res)}
{_reuse_note(res)}
## Findings

{_findings(res)}

Which changes help BLUR on validation (one at a time, from the configuration chosen
here) is on [the model page](model.md).

## Test accuracy (mean ± sd over {st['seeds']} seeds)

{_accuracy(res)}

The deterministic baselines have one run per fold (sd 0). Validation, for comparison:

{_validation(res)}

## Paired block-bootstrap intervals

Per test day, the MAE of BLUR (averaged over seeds) minus the other model's; the mean
of that difference over the days and its 95% moving-block bootstrap interval (blocks of
{st['bootstrap_block']} days, {st['bootstrap_samples']} resamples, within each fold).
Negative means BLUR is better.

{_bootstrap_table(res['bootstrap']['single'])}

## Seed ensembles

The mean forecast of the {st['seeds']} seeds of each neural model, reported as
ensembles beside the single models above; intervals of BLUR's ensemble minus each
other ensemble (or baseline):

{_ensemble_table(res)}

{_bootstrap_table(res['bootstrap']['ensemble'], ensemble=True)}

## Costs

Seconds to the best validation loss: the training epochs up to the best one, per run
(mean ± sd over folds and seeds). Time per step and peak RSS (resident set size, the
process's high-water mark VmHWM; in brackets its rise during training) come from a fresh
process training the chosen configuration at batch {st['batch_size']}; latency is per
window, median of repeats. All on 1 thread of a machine shared with other
jobs{_jobs_note(st)}: one run's numbers.

{_costs(res)}

## Plots

![forecast examples]({img}/eval_forecasts.png)

![per-seed spread]({img}/eval_seeds.png)

![error by hour of day]({img}/eval_hour.png)

![accuracy against training time]({img}/eval_time.png)
"""
    Path(path).write_text(text)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(res, folder):
    """The four PNG plots of ``res`` into ``folder`` (names in ``PLOTS``)."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = list(res["summary"])
    ex = res["examples"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.plot(ex["actual"], color="black", lw=2, label="actual")
    for m, p in ex["forecasts"].items():
        ax.plot(p, lw=1, label=NAMES[m])
    ax.set(title=f"fold 0: the first test week from {ex['start']} (seed 0)",
           xlabel="half-hour", ylabel=res["units"])
    ax.legend(ncol=4, fontsize=8)
    fig.savefig(folder / PLOTS[0], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k in range(len(res["folds"])):
        for i, m in enumerate(models):
            v = [r["test"]["metrics"]["MAE"] for r in res["runs"][m] if r["fold"] == k]
            ax.scatter(np.full(len(v), i) + 0.12 * (k - 1), v, s=18,
                       color=f"C{k}", label=f"fold {k}" if i == 0 else None)
    ax.set_xticks(range(len(models)), [NAMES[m] for m in models], rotation=20)
    ax.set(ylabel=f"test MAE ({res['units']})", title="test MAE of every seed")
    ax.legend()
    fig.savefig(folder / PLOTS[1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for m in models:
        ax.plot(np.mean([r["test"]["hour_mae"] for r in res["runs"][m]], axis=0),
                marker=".", label=NAMES[m])
    ax.set(xlabel="hours after the forecast origin, 13:00 UTC (Melbourne midnight in "
                  "daylight time, 23:00 in standard time)",
           ylabel=f"test MAE ({res['units']})",
           title="error by hour of day (mean over folds and seeds)")
    ax.legend(ncol=4, fontsize=8)
    fig.savefig(folder / PLOTS[2], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    for i, m in enumerate(m for m in models if m in NEURAL):
        t, mae = res["costs"][m]["seconds_to_best"], res["summary"][m]["all"]["MAE"]
        ax.errorbar(t[0], mae[0], xerr=t[1], yerr=mae[1], fmt="o", color=f"C{i}",
                    label=NAMES[m], capsize=3)
    ax.set(xlabel="seconds to the best validation loss", title="accuracy against "
           "training time (mean ± sd)", ylabel=f"test MAE ({res['units']})")
    ax.legend()
    fig.savefig(folder / PLOTS[3], dpi=110, bbox_inches="tight")
    plt.close(fig)
