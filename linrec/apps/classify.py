"""Sequence classification: BLUR against LSTM, GRU, a Transformer encoder and logistic
regression on the UEA archives JapaneseVowels and BasicMotions and on sequential digits.

The protocol, for every seed and every neural model alike: train each candidate
configuration (every width in ``widths`` times every learning rate in ``lrs``), keep
the one with the best validation accuracy (ties: the lower validation loss), and only
then read its test accuracy, once. Logistic regression on the flattened series picks
its C on validation the same way. Each model's chosen runs are also reported as a
seed ensemble (mean of their softmax probabilities), labelled as an ensemble.
Tuning runs (``--validation-only``) train the same way and read no test accuracy.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from linrec._host import to_numpy

__all__ = ["MODELS", "DATASETS", "load_task", "run_classify", "markdown_table",
           "validation_table"]

MODELS = ("blur", "lstm", "gru", "transformer")
NAMES = {"blur": "BLUR (linrec)", "lstm": "LSTM (PyTorch)", "gru": "GRU (PyTorch)",
         "transformer": "Transformer (PyTorch)", "logistic": "logistic regression"}
DATASETS = ("JapaneseVowels", "BasicMotions", "digits")
LOGISTIC_C = (0.01, 0.1, 1.0, 10.0)


def load_task(name, *, seed=0, max_shift=0, copies=0, max_crop=0.1, val_fraction=0.2):
    """``(sets, n_classes)``: "train", "val", "test" ArraySets of x (n, T, C) float32
    and integer labels for one of :data:`DATASETS`. ``seed`` fixes the split (digits:
    the shuffle before its 60/20/20 split; UEA: the validation holdout from the
    archive's training split); ``max_shift`` augments digits' training images,
    ``copies`` and ``max_crop`` the UEA training series (see
    :func:`~linrec.apps.data.uea.load_uea`). ValueError for an augmentation of the
    other kind of data."""
    from linrec.apps.data import load_digits_sequences
    from linrec.apps.data.uea import load_uea

    if name == "digits":
        if copies:
            raise ValueError(f"copies={copies} is for the UEA archives only; use "
                             f"max_shift for the digits")
        return load_digits_sequences(seed=seed, max_shift=max_shift), 10
    if max_shift:
        raise ValueError(f"max_shift={max_shift} is for the digits only; drop it for "
                         f"{name}")
    sets, classes = load_uea(name, seed=seed, val_fraction=val_fraction, copies=copies,
                             max_crop=max_crop)
    return sets, len(classes)


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _accuracy(probs, labels):
    return float((probs.argmax(axis=1) == labels).mean())


def _train(kind, sets, n_classes, width, lr, seed, model_kwargs, config, xp):
    """Train one candidate; returns ``(summary, predict)`` where ``predict(x)`` gives
    class probabilities (n, n_classes) float64 NumPy."""
    config = dataclasses.replace(config, lr=lr, seed=seed)
    n_features = sets["train"].x.shape[2]
    if kind == "blur":
        from linrec.apps.train import fit
        from linrec.nn import Model

        kw = {**model_kwargs, "d_model": width, "seed": seed}
        model = Model(n_features, task="classify", n_classes=n_classes, xp=xp, **kw)
        summary = fit(model, sets["train"], sets["val"], config, label=f"BLUR {width}")
        return summary, lambda x: _softmax(to_numpy(model.predict(xp.asarray(x)))
                                           .astype(np.float64))
    from linrec.apps.peers import fit_peer, make_peer, predict_peer

    model = make_peer(kind, n_features, n_classes, d_model=width,
                      n_layers=model_kwargs["n_layers"], dropout=model_kwargs["dropout"],
                      pool="mean", seed=seed)
    summary = fit_peer(model, sets["train"], sets["val"], config, task="classify",
                       label=f"{kind} {width}")
    return summary, lambda x: _softmax(predict_peer(model, x).astype(np.float64))


def _logistic(sets):
    """Logistic regression on the flattened series, C chosen on validation:
    ``(record, test probabilities)``."""
    from sklearn.linear_model import LogisticRegression

    flat = {s: (d.x.reshape(len(d.x), -1), d.y) for s, d in sets.items()}
    best = None
    for c in LOGISTIC_C:
        clf = LogisticRegression(C=c, max_iter=3000).fit(*flat["train"])
        acc = clf.score(*flat["val"])
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    probs = best[2].predict_proba(flat["test"][0])
    return dict(C=best[1], val_accuracy=best[0],
                test_accuracy=_accuracy(probs, flat["test"][1])), probs


def _summary(test_accuracies):
    a = np.asarray(test_accuracies, dtype=float)
    return dict(mean=float(a.mean()), sd=float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                per_seed=[float(v) for v in a])


def run_classify(args, xp, *, model_kwargs, config):
    """Run the protocol of the module docstring on ``args.dataset`` for ``args.seeds``
    seeds from ``args.seed``; prints the table and writes ``results.json`` to
    ``args.out``. ``model_kwargs`` are BLUR's :class:`~linrec.nn.Model` arguments
    (``d_model`` and ``seed`` are set per run); ``config`` is the
    :class:`~linrec.apps.train.TrainConfig` of every run (``lr`` and ``seed`` set per
    run). With ``args.validation_only`` (for tuning) no test accuracy is read: the
    chosen candidates' validation accuracy and loss are printed and written instead,
    and logistic regression is skipped. Returns the results dict."""
    from tqdm.auto import tqdm

    from linrec.apps.train import ResumeError

    if args.resume:
        raise ResumeError("classify keeps no checkpoints to resume; rerun with "
                          "--overwrite")
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets, n_classes = load_task(args.dataset, seed=args.split_seed,
                                max_shift=args.max_shift, copies=args.copies,
                                max_crop=args.max_crop)
    test_y = sets["test"].y
    validation_only = getattr(args, "validation_only", False)
    seeds = list(range(args.seed, args.seed + args.seeds))
    candidates = [(w, lr) for w in args.widths for lr in args.lrs]
    runs = {kind: [] for kind in args.models}
    probs = {kind: [] for kind in args.models}
    bar = tqdm(total=len(seeds) * len(args.models) * len(candidates), desc="runs",
               disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    for seed in seeds:
        for kind in args.models:
            tried = []
            for width, lr in candidates:
                summary, predict = _train(kind, sets, n_classes, width, lr, seed,
                                          model_kwargs, config, xp)
                val_acc = _accuracy(predict(sets["val"].x), sets["val"].y)
                tried.append(dict(width=width, lr=lr, val_accuracy=val_acc,
                                  val_loss=summary["best_val"],
                                  best_epoch=summary["best_epoch"],
                                  status=summary["status"],
                                  seconds=summary["seconds"], predict=predict))
                bar.update(1)
            chosen = max(tried, key=lambda t: (t["val_accuracy"], -t["val_loss"]))
            run = dict(seed=seed, width=chosen["width"], lr=chosen["lr"],
                       val_accuracy=chosen["val_accuracy"], val_loss=chosen["val_loss"],
                       candidates=[{k: v for k, v in t.items() if k != "predict"}
                                   for t in tried])
            if not validation_only:
                p = chosen["predict"](sets["test"].x)
                probs[kind].append(p)
                run["test_accuracy"] = _accuracy(p, test_y)
            runs[kind].append(run)
    bar.close()
    results = dict(
        dataset=args.dataset, n_classes=n_classes, split_seed=args.split_seed,
        max_shift=args.max_shift, copies=args.copies, max_crop=args.max_crop,
        sizes={s: len(d) for s, d in sets.items()},
        steps=int(sets["test"].x.shape[1]), channels=int(sets["test"].x.shape[2]),
        seeds=seeds, candidates=[dict(width=w, lr=lr) for w, lr in candidates],
        model=model_kwargs, train=dataclasses.asdict(config),
        validation={kind: dict(accuracy=_summary([r["val_accuracy"] for r in runs[kind]]),
                               loss=_summary([r["val_loss"] for r in runs[kind]]))
                    for kind in args.models},
        runs=runs, argv=sys.argv[1:], validation_only=validation_only,
    )
    if not validation_only:
        results["logistic"] = _logistic(sets)[0]
        results["accuracy"] = {kind: _summary([r["test_accuracy"] for r in runs[kind]])
                               for kind in args.models}
        results["ensemble"] = {kind: _accuracy(np.mean(probs[kind], axis=0), test_y)
                               for kind in args.models}
    results["seconds"] = time.perf_counter() - start
    print(validation_table(results) if validation_only else markdown_table(results))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"results.json in {out}")
    return results


def validation_table(results):
    """The validation accuracy (%) and loss of the chosen candidates of ``results`` (as
    :func:`run_classify` returns them) as a Markdown table: mean ± sd over seeds and the
    per-seed values. No test accuracy is read for it."""
    n = len(results["seeds"])
    lines = [f"{results['dataset']}: validation accuracy (%) of "
             f"{results['sizes']['val']} samples and validation loss, {n} seeds",
             "",
             "| model | accuracy mean ± sd | per seed | loss mean ± sd | per seed |",
             "|---|---|---|---|---|"]
    for kind, val in results["validation"].items():
        acc, loss = val["accuracy"], val["loss"]
        lines.append(
            f"| {NAMES[kind]} | {100 * acc['mean']:.2f} ± {100 * acc['sd']:.2f} | "
            + ", ".join(f"{100 * v:.1f}" for v in acc["per_seed"])
            + f" | {loss['mean']:.4f} ± {loss['sd']:.4f} | "
            + ", ".join(f"{v:.4f}" for v in loss["per_seed"]) + " |")
    return "\n".join(lines)


def markdown_table(results):
    """The test accuracies (%) of ``results`` (as :func:`run_classify` returns them) as
    a Markdown table: mean ± sd over seeds, the per-seed values and the seed ensemble."""
    n = len(results["seeds"])
    lines = [f"{results['dataset']}: test accuracy (%) of {results['sizes']['test']} "
             f"samples, {n} seeds",
             "",
             "| model | mean ± sd | per seed | ensemble of the seeds |",
             "|---|---|---|---|"]
    for kind, acc in results["accuracy"].items():
        seeds = ", ".join(f"{100 * v:.1f}" for v in acc["per_seed"])
        lines.append(f"| {NAMES[kind]} | {100 * acc['mean']:.2f} ± {100 * acc['sd']:.2f} "
                     f"| {seeds} | {100 * results['ensemble'][kind]:.2f} |")
    lines.append(f"| {NAMES['logistic']} (C = {results['logistic']['C']}) | "
                 f"{100 * results['logistic']['test_accuracy']:.2f} | deterministic | — |")
    return "\n".join(lines)
